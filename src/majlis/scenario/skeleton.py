"""New scenario folders: a runnable skeleton to edit, or a copy of an existing scenario.

Either way the folder is self-contained (scenario.yaml, agents/, prompts/personas/) and
each YAML file starts with a `yaml-language-server` line pointing at the shipped JSON
schema, so an editor checks it as it is typed. The folder is built aside and moved into
place whole: an error leaves nothing behind.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable
from itertools import product
from pathlib import Path

from ..errors import ScenarioError, UserError
from .load import SHIPPED
from .schema import LoadedScenario

SCHEMAS = SHIPPED / "schemas"
NAME = re.compile(r"^[a-z][a-z0-9_-]*$")
PARTY = re.compile(r"^[a-z][a-z0-9_]*$")
MODELINE = "# yaml-language-server: $schema="

# The skeleton's agenda: two issues of three options. The options are placeholders an
# author renames; the scores are set so that the parties want different things and the
# middle options make a compromise every party can accept, so the skeleton plays (and
# reaches a deal) as it is.
AGENDA = (
    ("timing", "When the plan starts", ("now", "phased", "later"), True),
    ("costs", "How the costs are shared", ("evenly", "by_use", "by_means"), False),
)
OPTION_LABELS = {
    "now": "Start now",
    "phased": "Start in phases",
    "later": "Start next year",
    "evenly": "Split evenly",
    "by_use": "Split by use",
    "by_means": "Split by means",
}
BEST, MIDDLE = 10, 6  # a party's favourite option; the middle one, when it is not that


def modeline(schema: str, folder: Path) -> str:
    """The editor's schema line for a YAML file in `folder`: a relative path inside the
    checkout (it moves with it), a file URL to the shipped schema from anywhere else."""
    target = SCHEMAS / f"{schema}.schema.json"
    folder = folder.resolve()
    if folder.is_relative_to(SHIPPED):
        return f"{MODELINE}{Path(os.path.relpath(target, folder)).as_posix()}\n"
    return f"{MODELINE}{target.as_uri()}\n"


def with_modeline(text: str, schema: str, folder: Path) -> str:
    """The text with its schema line first (replacing one it had)."""
    lines = [line for line in text.splitlines(keepends=True) if not line.startswith(MODELINE)]
    return modeline(schema, folder) + "".join(lines)


def check_name(name: str, parties: list[str] | None = None) -> None:
    if not NAME.match(name) or len(name) > 60:
        raise UserError(
            f"scenario name {name!r}: lower-case letters, digits, '-' and '_', starting "
            "with a letter (at most 60)"
        )
    if parties is None:
        return
    if len(parties) < 2:
        raise UserError("--parties: at least two parties, separated by commas")
    for p in parties:
        if not PARTY.match(p) or len(p) > 40:
            raise UserError(
                f"--parties: {p!r} is not a party id (lower-case letters, digits and '_', "
                "starting with a letter)"
            )
    if len(set(parties)) != len(parties):
        raise UserError("--parties: a party is named twice")


def write_skeleton(target: Path, parties: list[str]) -> list[Path]:
    """A runnable scenario for `parties` in the new folder `target` (its name is the id)."""
    check_name(target.name, parties)
    thresholds = _thresholds(len(parties))

    def build(tmp: Path) -> None:
        files = {"scenario.yaml": _scenario_text(target.name, parties)}
        for k, party in enumerate(parties):
            files[f"agents/{party}.yaml"] = _card_text(party, k, k == 0, thresholds[k])
            files[f"prompts/personas/{party}.md.j2"] = _persona_text()
        for rel, text in files.items():
            kind = "scenario" if rel == "scenario.yaml" else "agent-card"
            if rel.endswith(".yaml"):
                text = with_modeline(text, kind, (target / rel).parent)
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).write_text(text, encoding="utf-8")

    return _build_aside(target, build)


def copy_scenario(loaded: LoadedScenario, target: Path, prompts: list[Path]) -> list[Path]:
    """A self-contained copy of a loaded scenario in `target`: its file, its cards and their
    persona templates (from wherever they were found), under the new folder's name."""
    check_name(target.name)
    source = loaded.files[0]

    def build(tmp: Path) -> None:
        text = source.read_text(encoding="utf-8")
        text = re.sub(r"(?m)^id:.*$", f"id: {target.name}", text, count=1)
        (tmp / "scenario.yaml").write_text(with_modeline(text, "scenario", target), "utf-8")
        (tmp / "agents").mkdir()
        for card_file, party in zip(loaded.files[1:], loaded.scenario.parties, strict=True):
            card = with_modeline(card_file.read_text(encoding="utf-8"), "agent-card", target)
            (tmp / "agents" / f"{party}.yaml").write_text(card, encoding="utf-8")
            persona = loaded.cards[party].persona
            found = next((b / persona for b in prompts if (b / persona).is_file()), None)
            inside = (tmp / "prompts" / persona).resolve().is_relative_to(tmp.resolve())
            if found is not None and inside:
                (tmp / "prompts" / persona).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(found, tmp / "prompts" / persona)

    return _build_aside(target, build)


def _build_aside(target: Path, build: Callable[[Path], None]) -> list[Path]:
    """Build the folder in a temporary sibling, then move it into place whole."""
    if target.exists():
        raise ScenarioError(target, None, "already exists: choose another name or folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        build(tmp)
        written = sorted(p.relative_to(tmp) for p in tmp.rglob("*") if p.is_file())
        tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return [target / p for p in written]


def _score(party: int, issue: int, option: int) -> int:
    """Each party's favourite differs from its neighbours' on every issue; the middle
    option is the one everybody can live with."""
    if option == (party + issue) % 3:
        return BEST
    return MIDDLE if option == 1 else 0


def _thresholds(n: int) -> list[int]:
    """Each party's walk-away point: half its best total, lowered for all until some package
    would pass (the convener, who holds the veto, and a majority clear theirs), so the
    skeleton has a zone of agreement and can reach a deal."""
    best = BEST * len(AGENDA)
    packages = list(product(*(range(len(opts)) for _, _, opts, _ in AGENDA)))

    def passes(package: tuple[int, ...], level: int) -> bool:
        clear = [sum(_score(k, i, o) for i, o in enumerate(package)) >= level for k in range(n)]
        return clear[0] and sum(clear) >= n // 2 + 1

    level = best // 2
    while level > 0 and not any(passes(p, level) for p in packages):
        level -= 1
    return [level] * n


def _scenario_text(name: str, parties: list[str]) -> str:
    title = name.replace("-", " ").replace("_", " ").capitalize()
    majority = len(parties) // 2 + 1
    agenda = "".join(_issue_text(*issue) for issue in AGENDA)
    return f"""\
# A new scenario: edit every text, the agenda and the rules; `majlis validate` checks it,
# `majlis zone` shows which packages could pass.
id: {name}
title: {title}
brief: |
  The parties meet to settle a shared plan: when it starts and how its costs are shared.
  Each comes with its own needs, and what each says in public is not all it wants.
convener: {parties[0]}
parties: [{", ".join(parties)}]
turn_order: convener_first
agenda:
{agenda}deal_rule:
  veto: [{parties[0]}]
  min_accept: {majority}
  max_rounds: 4
# Outcome branches, first match wins; the last one has no condition.
branches:
  - id: settled
    label: Settled
    description: The parties agree on a whole package.
    when: {{outcome: [deal]}}
  - id: unsettled
    label: Unsettled
    description: No package passes; the plan waits.
"""


def _issue_text(issue: str, title: str, options: tuple[str, ...], ordered: bool) -> str:
    lines = [f"  - id: {issue}", f"    title: {title}", f"    ordered: {str(ordered).lower()}"]
    lines.append("    options:")
    for option in options:
        lines += [f"      - id: {option}", f"        label: {OPTION_LABELS[option]}"]
    return "\n".join(lines) + "\n"


def _card_text(party: str, k: int, veto: bool, threshold: int) -> str:
    name = party.replace("_", " ").capitalize()
    scores = "".join(
        f"  {issue}: {{"
        + ", ".join(f"{o}: {_score(k, i, j)}" for j, o in enumerate(options))
        + "}\n"
        for i, (issue, _, options, _) in enumerate(AGENDA)
    )
    return f"""\
id: {party}
name: {name}
role: One of the parties to the plan
persona: personas/{party}.md.j2
# What every party reads about {name}, then what only {name} knows: edit both.
public_stance: >-
  {name} wants the plan to go ahead on terms it can defend to the people it answers to.
private_brief: >-
  {name} can give ground on one issue if it wins on the other, but a package that leaves
  it worst off on both is worse than no agreement at all.
private_interests:
  - Come away ahead on at least one issue.
red_lines: []
# The party's hidden score of each option; a package scores the sum of its options.
scores:
{scores}# Below this score a package is worse than no deal for this party.
threshold: {threshold}
veto: {str(veto).lower()}
"""


def _persona_text() -> str:
    return (
        "{# How this party talks: its tone, what it stresses, what it avoids. Edit freely; "
        "the card is in party, the scenario in scenario. #}\n"
        "You speak for {{ party.name }}, {{ party.role | lower }}. You are courteous and "
        "firm: you say what your side needs, listen for what the others need, and look for "
        "a package everyone can accept.\n"
    )
