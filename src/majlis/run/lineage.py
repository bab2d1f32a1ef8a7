"""Parents and forks: which runs were forked from a run, read from their manifests.

A fork is made beside its parent (in the same runs folder) unless told otherwise, and its
manifest names the parent (`Manifest.parent`), so a run's forks are found by reading the
manifests of the folders beside it. Kept apart from fork.py, which drives a session: the
viewer and `majlis compare --forks` read lineage without importing langgraph.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import UserError
from .folder import RunDir
from .log import Manifest


def children_of(run: Path) -> list[tuple[RunDir, Manifest]]:
    """The runs forked from this one that sit beside it, oldest first. A folder beside it
    whose manifest cannot be read is passed over: it is no one's fork that we can tell."""
    rd = RunDir.open(run)
    me = rd.read_manifest().run_id
    found = []
    for path in sorted(p for p in rd.path.parent.iterdir() if p.is_dir() and p != rd.path):
        if not (path / "manifest.json").is_file():
            continue
        child = RunDir(path)
        try:
            manifest = child.read_manifest()
        except UserError:
            continue
        if manifest.parent is not None and manifest.parent.run_id == me:
            found.append((child, manifest))
    return sorted(found, key=lambda c: (c[1].created, c[1].run_id))
