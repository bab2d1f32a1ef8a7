"""`majlis validate`: check files the way a session would load them, reporting every problem."""

from __future__ import annotations

from pathlib import Path

import jinja2

from .errors import ScenarioError
from .scenario import AgentCard, list_scenarios, load_scenario, parse_file


def validate_paths(root: Path, paths: list[Path]) -> tuple[list[str], int]:
    """Return (problems, number of files checked). No path means every scenario under root."""
    from .session import _Prepared

    problems: list[str] = []
    checked = 0
    targets = paths or [root / "scenarios" / n / "scenario.yaml" for n in list_scenarios(root)]
    for path in targets:
        try:
            if path.is_dir() or path.name == "scenario.yaml":
                loaded = load_scenario(str(path), root)
                _Prepared(loaded, None, {})  # renders every template for every party
                checked += len(loaded.files)
            elif path.suffix in {".yaml", ".yml"}:
                parse_file(path, AgentCard)
                checked += 1
            elif path.suffix == ".j2":
                try:
                    jinja2.Environment().parse(path.read_text(encoding="utf-8"))
                except jinja2.TemplateSyntaxError as exc:
                    raise ScenarioError(
                        path, f"line {exc.lineno}", f"template syntax error: {exc.message}"
                    ) from None
                except OSError as exc:
                    raise ScenarioError(path, None, f"cannot read: {exc.strerror}") from None
                checked += 1
            else:
                raise ScenarioError(
                    path, None, "not a scenario, agent card (.yaml) or template (.j2)"
                )
        except ScenarioError as exc:
            problems.append(str(exc))
    return problems, checked
