"""Finding and loading scenarios: the data folder, scenario names, and a scenario with
its cards, checked against each other and cached per process.

Every error names the file and the field that is wrong.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from ..errors import ScenarioError, UserError
from ..files import parse_file
from .schema import AgentCard, LoadedScenario, Scenario, no_duplicates, package_count

M = TypeVar("M", bound=BaseModel)


# The folder majlis ships with: the checkout (an editable install) holding the default
# scenarios, cards, prompt templates and eval files. Anything a home or a scenario folder
# does not define is read from here.
SHIPPED = Path(__file__).resolve().parents[3]
# The scenario `majlis run` plays when none is named and the home holds several, one of them
# this (the shipped home does).
DEFAULT_SCENARIO = "cornered-in-iraq"


def is_home(folder: Path) -> bool:
    """A home is a folder with a scenarios/ folder (agents/, prompts/ and evals/ optional)."""
    return (folder / "scenarios").is_dir()


def given_home(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The home the user chose: --home, else $MAJLIS_HOME, else the current folder if it is
    one; None when none was chosen. A chosen folder that is not a home is an error, never
    passed over for another."""
    for given, how in ((explicit, "--home"), (os.environ.get("MAJLIS_HOME"), "MAJLIS_HOME")):
        if given:
            folder = Path(given)
            if not is_home(folder):
                raise ScenarioError(
                    folder, None, f"{how}: not a majlis home (no scenarios/ folder)"
                )
            return folder.resolve()
    return Path.cwd().resolve() if is_home(Path.cwd()) else None


def data_root(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Where scenarios/ (and agents/, prompts/, evals/) are read: the chosen home, else the
    shipped one."""
    home = given_home(explicit)
    if home is not None:
        return home
    if not is_home(SHIPPED):
        raise ScenarioError(Path.cwd(), None, "no scenarios/ folder here (set --home)")
    return SHIPPED


def runs_home(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Where runs/ goes by default: in the chosen home, else in the current folder (a
    scenario played from a folder of its own records its runs beside it, not in the
    shipped checkout)."""
    return given_home(explicit) or Path.cwd().resolve()


def list_scenarios(root: Path) -> list[str]:
    return sorted(p.parent.name for p in (root / "scenarios").glob("*/scenario.yaml"))


def default_scenario(root: Path) -> str:
    """The scenario a command plays when none is named: the home's only one, else the
    shipped default if the home holds it; otherwise the user must say which."""
    names = list_scenarios(root)
    if len(names) == 1:
        return names[0]
    if DEFAULT_SCENARIO in names:
        return DEFAULT_SCENARIO
    if not names:
        raise ScenarioError(root / "scenarios", None, "no scenario here: name one by path")
    raise UserError(
        f"{root / 'scenarios'}: several scenarios here, name one (known: {', '.join(names)})"
    )


def scenario_path(root: Path, name_or_path: str | None = None) -> Path:
    """A scenario file from a path (a folder or its scenario.yaml) or a name: the home's
    scenarios/NAME, else the shipped one of that name. None: the home's default."""
    if name_or_path is None:
        name_or_path = default_scenario(root)
    p = Path(name_or_path)
    if p.suffix in {".yaml", ".yml"} or p.is_dir():
        return p / "scenario.yaml" if p.is_dir() else p
    for base in dict.fromkeys((root, SHIPPED)):
        candidate = base / "scenarios" / name_or_path / "scenario.yaml"
        if candidate.exists():
            return candidate
    own = list_scenarios(root)
    shipped = [n for n in list_scenarios(SHIPPED) if n not in own]
    known = ", ".join(own) or "none"
    if shipped:
        known += f"; shipped: {', '.join(shipped)}"
    raise ScenarioError(
        root / "scenarios" / name_or_path / "scenario.yaml",
        None,
        f"unknown scenario {name_or_path!r} (known: {known})",
    )


def prompt_dirs(root: Path, scenario_file: Path | None = None) -> list[Path]:
    """Where prompt templates and variants are looked up, first match wins: the scenario's
    own prompts/ folder (beside its scenario.yaml), the home's, the shipped one."""
    own = [scenario_file.parent / "prompts"] if scenario_file else []
    return _existing([*own, root / "prompts", SHIPPED / "prompts"])


def eval_dirs(root: Path) -> list[Path]:
    """Where the judge's templates are looked up: the home's evals/, then the shipped one."""
    return _existing([root / "evals", SHIPPED / "evals"])


def _existing(folders: list[Path]) -> list[Path]:
    found = [f for f in dict.fromkeys(p.resolve() for p in folders) if f.is_dir()]
    return found or [folders[-1]]


def shipped_file(root: Path, relative: str) -> Path:
    """A data file of the home (evals/prices.yaml, a rubric), else the shipped one."""
    own = root / relative
    return own if own.exists() or not (SHIPPED / relative).exists() else SHIPPED / relative


def card_path(root: Path, scenario_file: Path, party: str) -> Path:
    """A party's card: in the scenario's own agents/ folder, else in the agents/ of the home
    the scenario sits in (scenarios/NAME/ in it), else in the home's. A card that is there
    but broken (a dangling or looping link) is reported, never silently replaced by another
    folder's card of the same name."""
    folders = [scenario_file.parent / "agents"]
    if scenario_file.parent.parent.name == "scenarios":
        folders.append(scenario_file.parent.parent.parent / "agents")
    folders.append(root / "agents")
    for folder in folders:
        card = folder / f"{party}.yaml"
        if card.exists() or card.is_symlink():
            return card
    return folders[-1] / f"{party}.yaml"


def _why_broken(path: Path) -> str:
    """What is wrong with a link that leads nowhere: a loop, or a target that is missing."""
    try:
        path.resolve(strict=True)
    except RuntimeError:
        return "the link loops"
    except OSError as exc:
        if "loop" in str(exc).lower() or getattr(exc, "errno", None) == 40:  # ELOOP
            return "the link loops"
        return f"it points to {os.readlink(path)!r}, which does not exist"
    return "it cannot be read"


def _stamp(path: Path) -> tuple[str, bytes] | None:
    try:
        return (str(path), path.read_bytes())
    except OSError:
        return None


# Scenarios already loaded in this process, by scenario file: the bytes each file held when
# it was parsed (the scenario's, then each card's) and the result. A sweep loads the same
# scenario for every session; reading a few small files to compare costs microseconds,
# parsing their YAML again milliseconds. A file edited, replaced or shadowed by a card of
# the scenario's own misses the cache.
_LOADED: dict[tuple[str, str], tuple[tuple[Any, ...], LoadedScenario]] = {}


def load_scenario(name_or_path: str | None = None, root: Path | None = None) -> LoadedScenario:
    """A scenario by name or path (None: the home's default), with its cards, checked."""
    root = root or data_root()
    path = scenario_path(root, name_or_path)
    key = (str(root), str(path))
    hit = _LOADED.get(key)
    if hit is not None:
        stamps, loaded = hit
        parties = loaded.scenario.parties
        now = (_stamp(path), *(_stamp(card_path(root, path, p)) for p in parties))
        if now == stamps and None not in now:
            return loaded
    parsed: list[tuple[str, bytes] | None] = []
    loaded = _load_scenario(path, root, parsed)
    _LOADED[key] = (tuple(parsed), loaded)
    return loaded


def _parse_stamped(path: Path, model: type[M], parsed: list[tuple[str, bytes] | None]) -> M:
    """Parse the bytes read for the stamp, so the cache holds exactly what was parsed.
    An unreadable file is read again by the parser, which says why."""
    stamp = _stamp(path)
    parsed.append(stamp)
    return parse_file(path, model, None if stamp is None else stamp[1])


def _load_scenario(
    path: Path, root: Path, parsed: list[tuple[str, bytes] | None]
) -> LoadedScenario:
    scenario = _parse_stamped(path, Scenario, parsed)
    _check_scenario(path, scenario)
    cards: dict[str, AgentCard] = {}
    files = [path]
    for pid in scenario.parties:
        cpath = card_path(root, path, pid)
        if cpath.is_symlink() and not cpath.exists():
            raise ScenarioError(
                cpath, None, f"the card for {pid!r} is a broken link: {_why_broken(cpath)}"
            )
        if not cpath.exists():
            raise ScenarioError(path, "parties", f"unknown party {pid!r}: no card at {cpath}")
        card = _parse_stamped(cpath, AgentCard, parsed)
        if card.id != pid:
            raise ScenarioError(cpath, "id", f"card id {card.id!r} does not match its file name")
        _check_card(cpath, card, scenario)
        cards[pid] = card
        files.append(cpath)
    return LoadedScenario(scenario=scenario, cards=cards, root=root, files=files)


# The scripted player, the zone of agreement and the Pareto metrics enumerate every package
# (one option per issue). The default agenda has 2,304; this many keeps a scripted move
# under a tenth of a second and the metrics under a second.
MAX_PACKAGES = 20_000


def _check_scenario(path: Path, s: Scenario) -> None:
    def fail(field: str, msg: str) -> None:
        raise ScenarioError(path, field, msg)

    if package_count(s) > MAX_PACKAGES:
        fail(
            "agenda",
            f"{len(s.agenda)} issues make {package_count(s):,} packages, more than the "
            f"{MAX_PACKAGES:,} majlis enumerates: fewer issues or fewer options",
        )

    for field, items in (("parties", s.parties), ("agenda", [i.id for i in s.agenda])):
        try:
            no_duplicates(items, field)
        except ValueError as exc:
            fail(field, str(exc))
    if s.convener not in s.parties:
        fail("convener", f"unknown party {s.convener!r}")
    for i, v in enumerate(s.deal_rule.veto):
        if v not in s.parties:
            fail(f"deal_rule.veto.{i}", f"unknown party {v!r}")
    if s.deal_rule.min_accept > len(s.parties):
        fail(
            "deal_rule.min_accept",
            f"needs {s.deal_rule.min_accept} acceptances but only {len(s.parties)} parties",
        )
    if s.deal_rule.min_accept < len(set(s.deal_rule.veto)):
        fail("deal_rule.min_accept", "is smaller than the number of veto parties")
    for i, inj in enumerate(s.injects):
        if inj.round is not None and inj.round > s.deal_rule.max_rounds:
            fail(
                f"injects.{i}.round",
                f"round {inj.round} is after the last round {s.deal_rule.max_rounds}",
            )
        when = inj.when
        if when is None:
            continue
        for field, party in (
            ("margin_below.party", when.margin_below and when.margin_below.party),
            ("red_line_crossed", when.red_line_crossed),
        ):
            if (
                party
                and party not in s.parties
                and not (field == "red_line_crossed" and party == "any")
            ):
                fail(f"injects.{i}.when.{field}", f"unknown party {party!r}")
        if when.no_proposal_by is not None and when.no_proposal_by >= s.deal_rule.max_rounds:
            fail(
                f"injects.{i}.when.no_proposal_by",
                f"round {when.no_proposal_by} leaves no round to announce it in "
                f"(the last is {s.deal_rule.max_rounds})",
            )
    ids = [inj.id for inj in s.injects]
    try:
        no_duplicates(ids, "injects")
    except ValueError as exc:
        fail("injects", str(exc))
    _check_branches(path, s)


def _check_branches(path: Path, s: Scenario) -> None:
    """Branch ids are unique, only the last branch (the catch-all) has no `when`, and the
    issues and options a branch names are on the agenda."""

    def fail(field: str, msg: str) -> None:
        raise ScenarioError(path, field, msg)

    seen: set[str] = set()
    last = len(s.branches) - 1
    issues = {i.id: i for i in s.agenda}
    for n, branch in enumerate(s.branches):
        if branch.id in seen:
            fail(f"branches.{n}.id", f"duplicate branch {branch.id!r}")
        seen.add(branch.id)
        if branch.when is None and n < last:
            fail(
                f"branches.{n}.when",
                "only the last branch may leave out `when`: "
                "the branches after this one could never apply",
            )
        if branch.when is not None and n == last:
            fail(
                f"branches.{n}.when",
                "the last branch takes every outcome the others do not: it has no `when`",
            )
        for issue_id, options in ((branch.when and branch.when.agreed) or {}).items():
            where = f"branches.{n}.when.agreed.{issue_id}"
            if issue_id not in issues:
                fail(where, f"no such issue {issue_id!r} on the agenda")
            for k, option in enumerate(options):
                if option not in issues[issue_id].option_ids():
                    fail(f"{where}.{k}", f"no such option {option!r} for issue {issue_id!r}")


def _check_card(path: Path, card: AgentCard, s: Scenario) -> None:
    def fail(field: str, msg: str) -> None:
        raise ScenarioError(path, field, msg)

    issues = {i.id: i for i in s.agenda}
    for issue_id in card.scores:
        if issue_id not in issues:
            fail(f"scores.{issue_id}", "no such issue on the agenda")
    for issue in s.agenda:
        table = card.scores.get(issue.id)
        if table is None:
            fail(f"scores.{issue.id}", "missing score table for this agenda issue")
            return
        for opt in table:
            if opt not in issue.option_ids():
                fail(f"scores.{issue.id}.{opt}", "no such option for this issue")
        for opt in issue.option_ids():
            if opt not in table:
                fail(f"scores.{issue.id}.{opt}", "missing score for this option")
    for i, rl in enumerate(card.red_lines):
        if rl.issue not in issues:
            fail(f"red_lines.{i}.issue", f"no such issue {rl.issue!r}")
        if rl.option not in issues[rl.issue].option_ids():
            fail(f"red_lines.{i}.option", f"no such option {rl.option!r} for issue {rl.issue!r}")
    if card.veto != (card.id in s.deal_rule.veto):
        fail("veto", f"is {card.veto} but the scenario's deal_rule.veto says otherwise")
    best = sum(max(t.values()) for t in card.scores.values())
    if card.threshold > best:
        fail("threshold", f"{card.threshold} is above the best possible score {best}")
