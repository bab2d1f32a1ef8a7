"""The package's shape (issue 15): layers import only downward, modules stay small, and
each package's face offers what it lists.

Layers, lowest first; a module may import from its own layer or a lower one:
errors, files and tracing, scenario, protocol, model, run, evals, compare, workshop, cli.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "majlis"
LAYERS = ["errors", "files", "scenario", "protocol", "model", "run", "evals", "compare"]
LAYERS += ["workshop", "cli"]
RANK = {name: (0 if name in ("errors", "files") else i) for i, name in enumerate(LAYERS)}
RANK["tracing"] = 0  # beside errors and files: spans are made in several layers
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80
LONG_REASON = "# long:"  # the comment that states why a function may pass the limit


def modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if p.parent != SRC or p.stem in RANK)


def layer_of(module: str) -> str:
    """`majlis.run.session` -> `run`; `majlis.files` -> `files`."""
    return module.split(".")[1]


def imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, absolute module, names) of every majlis import in a file, at any depth."""
    own = ["majlis", *path.relative_to(SRC).with_suffix("").parts]
    package = own[:-1]  # a module's package, or for an __init__ its own package
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - (node.level - 1)]
            target = ".".join(base + ([node.module] if node.module else []))
            names = [a.name for a in node.names]
            if not node.module:  # `from .. import rules`: each name is a module
                found += [(node.lineno, f"{target}.{n}", []) for n in names]
            else:
                found.append((node.lineno, target, names))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("majlis."):
            found.append((node.lineno, node.module or "", [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name, []) for a in node.names if a.name.startswith("majlis.")]
    return found


def test_every_import_points_down_or_sideways() -> None:
    upward = []
    for path in modules():
        mine = layer_of("majlis." + ".".join(path.relative_to(SRC).with_suffix("").parts))
        for line, target, _ in imports(path):
            if target.count(".") and RANK[layer_of(target)] > RANK[mine]:
                upward.append(f"{path.relative_to(SRC)}:{line} ({mine}) imports {target}")
    assert upward == []


def test_no_module_imports_a_private_name_of_another() -> None:
    private = []
    for path in modules():
        for line, target, names in imports(path):
            hidden = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if hidden:
                private.append(f"{path.relative_to(SRC)}:{line} takes {hidden} from {target}")
    assert private == []


def test_modules_and_functions_stay_small() -> None:
    big = []
    for path in modules():
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        if len(lines) > MAX_MODULE_LINES:
            big.append(f"{path.relative_to(SRC)}: {len(lines)} lines")
        for node in ast.walk(ast.parse(text)):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            reason = lines[first - 2].strip().startswith(LONG_REASON) if first > 1 else False
            if length > MAX_FUNCTION_LINES and not reason:
                big.append(f"{path.relative_to(SRC)}:{node.lineno} {node.name}: {length} lines")
    assert big == []


@pytest.mark.parametrize(
    "package",
    ["majlis", *(f"majlis.{p}" for p in LAYERS[2:-1])],
)
def test_each_face_offers_what_it_lists(package: str) -> None:
    """lazy_loader's EAGER_IMPORT resolves every listed name at import: a wrong entry fails."""
    env = {**os.environ, "EAGER_IMPORT": "1"}
    code = f"import {package} as p; missing = [n for n in p.__all__ if not hasattr(p, n)]; "
    code += "assert not missing, missing; print(len(p.__all__))"
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    assert int(res.stdout) > 0
