"""Reading and writing majlis's own files: strict YAML in, atomic writes out.

Every YAML file majlis reads (scenarios, cards, variants, models, experiments, rubrics,
prices) goes through `parse_file`: a safe loader that refuses a key given twice, and a
pydantic model that refuses unknown keys; an error names the file, the line or the field.
Every file majlis writes for others to read goes through `write_text_atomic`: a reader
sees the old file or the new one, never half of either.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, TypeVar

import orjson
import yaml
from pydantic import BaseModel, ValidationError

from .errors import ScenarioError

M = TypeVar("M", bound=BaseModel)


class _UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """A safe loader that refuses a key given twice (YAML would silently keep the last).
    On libyaml's parser when PyYAML has it: about ten times faster than the pure-Python one."""


def _mapping_without_duplicates(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates
)


def read_yaml(path: Path, raw: bytes | None = None) -> Any:
    """The YAML in `path`, or in `raw` when the caller has read the file already."""
    try:
        text = path.read_text(encoding="utf-8") if raw is None else raw.decode("utf-8")
    except FileNotFoundError:
        raise ScenarioError(path, None, "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(path, None, f"cannot read: {exc}") from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ScenarioError(path, None, f"invalid YAML: {where}{problem}") from None


def parse_file(path: Path, model: type[M], raw: bytes | None = None) -> M:
    data = read_yaml(path, raw)
    if not isinstance(data, dict):
        raise ScenarioError(
            path, None, f"expected a mapping at the top, found {type(data).__name__}"
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or None
        raise ScenarioError(path, field, _short(err)) from None


def _short(err: Any) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown key"
    if err["type"] == "missing":
        return "required field is missing"
    return str(err["msg"])


def write_text_atomic(path: Path, text: str) -> None:
    """Write through a temporary file in the same folder, then rename it into place. The file
    is readable by all (mkstemp makes 0600): runs and pages are meant to be shared."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, data: Any) -> None:
    """A pydantic model or plain data as indented JSON, written atomically."""
    text = (
        data.model_dump_json(indent=2)
        if isinstance(data, BaseModel)
        # orjson: the json module indents in pure Python, a millisecond or more per file
        else orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode()
    )
    write_text_atomic(path, text + "\n")
