"""Finding and loading scenarios: the data folder, scenario names, and a scenario with
its cards, checked against each other and cached per process.

Every error names the file and the field that is wrong.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from ..errors import ScenarioError
from ..files import parse_file
from .schema import AgentCard, LoadedScenario, Scenario, no_duplicates, package_count

M = TypeVar("M", bound=BaseModel)


def data_root(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Where agents/, prompts/ and scenarios/ live: --home, $MAJLIS_HOME, cwd, or the checkout."""
    candidates: list[Path] = []
    if explicit:
        candidates.append(Path(explicit))
    if os.environ.get("MAJLIS_HOME"):
        candidates.append(Path(os.environ["MAJLIS_HOME"]))
    candidates += [Path.cwd(), Path(__file__).resolve().parents[3]]
    for c in candidates:
        if (c / "scenarios").is_dir() and (c / "agents").is_dir():
            return c.resolve()
    raise ScenarioError(candidates[0], None, "no scenarios/ and agents/ folders here (set --home)")


def list_scenarios(root: Path) -> list[str]:
    return sorted(p.parent.name for p in (root / "scenarios").glob("*/scenario.yaml"))


def scenario_path(root: Path, name_or_path: str) -> Path:
    p = Path(name_or_path)
    if p.suffix in {".yaml", ".yml"} or p.is_dir():
        return p / "scenario.yaml" if p.is_dir() else p
    candidate = root / "scenarios" / name_or_path / "scenario.yaml"
    if not candidate.exists():
        known = ", ".join(list_scenarios(root)) or "none"
        raise ScenarioError(candidate, None, f"unknown scenario {name_or_path!r} (known: {known})")
    return candidate


def card_path(root: Path, scenario_file: Path, party: str) -> Path:
    """A scenario may carry its own agents/ folder; the top-level agents/ is the fallback.
    A card that is there but broken (a dangling or looping link) is the scenario's own:
    it is reported, never silently replaced by the fallback's card of the same name."""
    local = scenario_file.parent / "agents" / f"{party}.yaml"
    return local if local.exists() or local.is_symlink() else root / "agents" / f"{party}.yaml"


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


def load_scenario(
    name_or_path: str = "cornered-in-iraq", root: Path | None = None
) -> LoadedScenario:
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
        if inj.round > s.deal_rule.max_rounds:
            fail(
                f"injects.{i}.round",
                f"round {inj.round} is after the last round {s.deal_rule.max_rounds}",
            )


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
