"""The exported JSON schemas in schemas/ match the models (run `majlis schema` after a change)."""

from __future__ import annotations

from pathlib import Path

from majlis.cli.schemas import export


def test_committed_schemas_are_current(tmp_path: Path, home: Path) -> None:
    for fresh in export(tmp_path):
        committed = home / "schemas" / fresh.name
        assert committed.exists(), f"schemas/{fresh.name} is missing: run `majlis schema`"
        assert committed.read_text() == fresh.read_text(), (
            f"schemas/{fresh.name} is stale: run `majlis schema`"
        )
