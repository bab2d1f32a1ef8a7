"""Prompt variants: prompts/variants/NAME/ overlays templates, and may set model parameters per party.

prompts/variants/hawkish-washington/
    personas/washington.md.j2     replaces prompts/personas/washington.md.j2
    variant.yaml                  optional: description, per-party model settings
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from ..errors import ScenarioError
from ..files import parse_file

BASELINE = "baseline"  # the name a sweep gives to "no variant"


class Variant(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: str = ""
    models: dict[str, dict[str, Any]] = {}  # party -> ModelConfig fields to override


def variants_dir(root: Path) -> Path:
    return root / "prompts" / "variants"


def list_variants(root: Path) -> list[str]:
    base = variants_dir(root)
    return sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []


def load_variant(root: Path, name: str | None) -> Variant:
    if not name or name == BASELINE:
        return Variant()
    folder = variants_dir(root) / name
    if not folder.is_dir():
        known = ", ".join(list_variants(root)) or "none"
        raise ScenarioError(folder, None, f"unknown variant {name!r} (known: {known})")
    spec = folder / "variant.yaml"
    return parse_file(spec, Variant) if spec.exists() else Variant()


def template_files(root: Path, name: str) -> list[str]:
    folder = variants_dir(root) / name
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*.j2"))
