"""Shared fixtures: the repository's data, a copy to break, and a loopback server."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from majlis.model import LoopbackServer, scripted_responder

REPO = Path(__file__).resolve().parents[1]
VOLATILE = ("ts", "latency_ms", "call_id")


@pytest.fixture
def home() -> Path:
    return REPO


@pytest.fixture
def home_copy(tmp_path: Path) -> Path:
    """A private copy of agents/, prompts/ and scenarios/ that a test may edit."""
    dst = tmp_path / "home"
    for folder in ("agents", "prompts", "scenarios"):
        shutil.copytree(REPO / folder, dst / folder)
    (dst / "runs").mkdir()
    return dst


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer(scripted_responder) as srv:
        yield srv


def stable(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Events without the fields that differ between two identical runs (times, call ids)."""
    out = []
    for e in events:
        e = {k: v for k, v in e.items() if k not in VOLATILE}
        if e.get("usage"):
            e["usage"] = None
        out.append(e)
    return out


CHROMIUM = Path("/usr/bin/chromium")  # Debian's Chromium: never a browser download of Playwright's
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """Headless Chromium under Playwright; a missing browser fails the test, never skips it."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (these tests never skip)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the playwright package is missing: pip install playwright")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()
