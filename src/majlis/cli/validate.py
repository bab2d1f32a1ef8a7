"""`majlis validate`: check files the way majlis would load them, reporting every problem."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2

from ..errors import ScenarioError, UserError
from ..files import parse_file
from ..protocol import Zone, zone_of
from ..scenario import AgentCard, list_scenarios, load_scenario


def _scenario(root: Path, path: Path) -> int:
    from ..run import check_templates

    loaded = load_scenario(str(path), root)
    check_templates(loaded)
    return len(loaded.files)


def _template(root: Path, path: Path) -> int:
    try:
        jinja2.Environment().parse(path.read_text(encoding="utf-8"))
    except jinja2.TemplateSyntaxError as exc:
        raise ScenarioError(
            path, f"line {exc.lineno}", f"template syntax error: {exc.message}"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(path, None, f"cannot read: {exc}") from None
    return 1


def _model(model: Callable[[], Any]) -> Callable[[Path, Path], int]:
    def check(root: Path, path: Path) -> int:
        parse_file(path, model())
        return 1

    return check


def _kind(root: Path, path: Path) -> Callable[[Path, Path], int]:
    """Which checker a file needs, from where it lives."""
    from ..compare import Experiment
    from ..evals import CalibrationSet, Rubric
    from ..model import PriceTable
    from ..scenario import Variant
    from ..workshop import DebriefTexts

    if path.is_dir() or path.name == "scenario.yaml":
        return _scenario
    if path.suffix == ".j2":
        return _template
    if path.suffix not in {".yaml", ".yml"}:
        raise ScenarioError(path, None, "not a scenario, card, rubric, experiment or template file")
    parts = path.resolve().parts
    if "rubrics" in parts:
        return _model(lambda: Rubric)
    if path.name == "debrief.yaml":
        return _model(lambda: DebriefTexts)
    if path.name == "prices.yaml":
        return _model(lambda: PriceTable)
    if path.name == "set.yaml":
        return _model(lambda: CalibrationSet)
    if path.name == "variant.yaml":
        return _model(lambda: Variant)
    if "experiments" in parts:
        return _model(lambda: Experiment)
    return _model(lambda: AgentCard)


def default_targets(root: Path) -> list[Path]:
    return [
        *(root / "scenarios" / n / "scenario.yaml" for n in list_scenarios(root)),
        *sorted((root / "evals" / "rubrics").glob("*.yaml")),
        *[
            p
            for p in (root / "evals" / "debrief.yaml", root / "evals" / "prices.yaml")
            if p.exists()
        ],
        *sorted((root / "prompts" / "variants").glob("*/variant.yaml")),
        *sorted((root / "experiments").glob("*.yaml")),
    ]


def validate_paths(root: Path, paths: list[Path]) -> tuple[list[str], int, list[Zone]]:
    """Return (problems, files checked, the zone of agreement of each valid scenario). No
    path means everything majlis ships under root."""
    problems: list[str] = []
    checked = 0
    zones: list[Zone] = []
    for path in paths or default_targets(root):
        try:
            if not path.exists():
                raise ScenarioError(path, None, "file not found")
            kind = _kind(root, path)
            checked += kind(root, path)
            if kind is _scenario:
                zones.append(zone_of(load_scenario(str(path), root)))
        except UserError as exc:
            problems.append(str(exc))
    return problems, checked, zones
