"""Prompt variants: prompts/variants/NAME/ overlays templates, and may set model parameters per party.

A variant is looked up in a scenario's own prompts/ first, then the home's, then the shipped
ones (the same folders, in the same order, as its templates).

prompts/variants/hawkish-washington/
    personas/washington.md.j2     replaces prompts/personas/washington.md.j2
    variant.yaml                  optional: description, per-party model settings
"""

from __future__ import annotations

from collections.abc import Sequence
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


def variant_folder(prompts: Sequence[Path], name: str) -> Path:
    """prompts/variants/NAME in the first of the prompt folders that has it (a scenario's
    own, the home's, the shipped ones); a ScenarioError listing the known ones if none."""
    for base in prompts:
        if (base / "variants" / name).is_dir():
            return base / "variants" / name
    known = ", ".join(list_variants(prompts)) or "none"
    raise ScenarioError(
        prompts[0] / "variants" / name, None, f"unknown variant {name!r} (known: {known})"
    )


def list_variants(prompts: Sequence[Path]) -> list[str]:
    return sorted({p.name for b in prompts for p in (b / "variants").glob("*") if p.is_dir()})


def load_variant(prompts: Sequence[Path], name: str | None) -> Variant:
    if not name or name == BASELINE:
        return Variant()
    spec = variant_folder(prompts, name) / "variant.yaml"
    return parse_file(spec, Variant) if spec.exists() else Variant()


def template_files(prompts: Sequence[Path], name: str) -> list[str]:
    folder = variant_folder(prompts, name)
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*.j2"))
