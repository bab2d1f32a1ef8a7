"""Shared fixtures and helpers: the repository's data, a copy to break, a loopback server,
reading a run's events, running `majlis` in a subprocess, and writing an experiment."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from majlis.compare import Experiment
from majlis.model import Completion, LoopbackServer, scripted_responder

REPO = Path(__file__).resolve().parents[1]
VOLATILE = ("ts", "latency_ms", "call_id")
# `majlis` as the console script runs it (both call majlis.cli.main), in this interpreter
MAJLIS = (sys.executable, "-m", "majlis")


@pytest.fixture
def home() -> Path:
    """The repository's own data, read only."""
    return REPO


@pytest.fixture
def home_copy(tmp_path: Path) -> Path:
    """A private copy of agents/, prompts/ and the default scenario that a test may edit
    (the home's only scenario, so `majlis validate` speaks of it alone)."""
    dst = tmp_path / "home"
    for folder in ("agents", "prompts", "scenarios/cornered-in-iraq"):
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


def events_of(run: Path | Any) -> list[dict[str, Any]]:
    """Every event of a run, from its folder, its RunDir or the result of run_session."""
    if not isinstance(run, Path):
        run = getattr(run, "run_dir", run).path
    return [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]


def sweep_events(sweep: Path) -> dict[str, list[dict[str, Any]]]:
    """Every run's events in a sweep's folder, by run id."""
    return {run.name: events_of(run) for run in sorted((sweep / "runs").iterdir())}


def event(
    seq: int,
    rnd: int,
    type_: str,
    speaker: str,
    audience: Any,
    content: dict[str, Any],
    ts: str = "2026-01-01T00:00:00+00:00",
) -> dict[str, Any]:
    """One event as a session records it, made by hand: no model call behind it."""
    return {
        "seq": seq,
        "round": rnd,
        "type": type_,
        "speaker": speaker,
        "audience": audience,
        "content": content,
        "call_id": None,
        "usage": None,
        "latency_ms": None,
        "ts": ts,
    }


class FailAfter:
    """The scripted player, until it has answered `n` calls; then the server errors."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __call__(self, body: dict[str, Any]) -> Completion:
        if self.n <= 0:
            raise RuntimeError("the model server fell over")
        self.n -= 1
        return scripted_responder(body)


FEDERAL_ONLY = {  # guarantees=federal_only crosses a red line of the Kurdish and the Sunni parties
    "coalition": "remain",
    "bilateral": "full_partnership",
    "militias": "prosecute",
    "us_response": "consent",
    "guarantees": "federal_only",
    "economy": "conditional",
}


def scripted_options(home: Path, runs_root: Path, **more: Any) -> Any:
    """RunOptions for a session of the scripted player (in process unless `model=` says
    otherwise), recorded under runs_root."""
    from majlis.model import ModelConfig
    from majlis.run import RunOptions

    given = {"model": ModelConfig(model="scripted"), "home": home, "runs_root": runs_root}
    return RunOptions(**(given | more))


def add_variant(home: Path, name: str, text: str) -> Path:
    """A new prompt variant under `home`, its variant.yaml holding `text`."""
    folder = home / "prompts" / "variants" / name
    folder.mkdir()
    (folder / "variant.yaml").write_text(text)
    return folder


def experiment(
    base_url: str,
    variants: list[str] | None = None,
    *,
    path: Path | None = None,
    model_name: str = "scripted",
    default: dict[str, Any] | None = None,
    **fields: Any,
) -> Experiment:
    """An experiment of the scripted player at base_url; with `path`, also written there as YAML."""
    # named "test" unless `name` is given; `default` holds model settings over the player's own
    spec: dict[str, Any] = {"name": "test", **fields}
    if variants is not None:
        spec["variants"] = variants
    model = {"model": "scripted", "base_url": base_url, **(default or {})}
    spec["models"] = [{"name": model_name, "default": model}]
    exp = Experiment.model_validate(spec)
    if path is not None:
        path.write_text(yaml.safe_dump(spec))
    return exp


def small_home(
    root: Path,
    agenda: dict[str, list[str]],
    cards: dict[str, dict[str, Any]],
    *,
    ordered: Sequence[str] = (),
    leans: dict[str, dict[str, int]] | None = None,
    min_accept: int = 2,
    rounds: int = 4,
    name: str = "small",
    branches: list[dict[str, Any]] | None = None,
) -> Path:
    """A home under `root` holding one small scenario of our own, for figures worked out by hand.

    `agenda` gives each issue's option ids in the order listed (the issues in `ordered` are
    marked so, and `leans` gives options a lean other than 0); `cards` gives each party's
    `scores` and `threshold`, and may set any other card field. The first party convenes and
    alone holds a veto. The prompts are the repository's, with one plain persona."""
    home = root / name
    shutil.copytree(REPO / "prompts", home / "prompts")
    (home / "prompts" / "personas" / "plain.md.j2").write_text("You speak plainly.\n")
    (home / "agents").mkdir()
    folder = home / "scenarios" / name
    (folder / "agents").mkdir(parents=True)
    parties = list(cards)
    vetoes = parties[:1]
    issues = [
        {
            "id": issue,
            "title": f"Issue {issue}",
            "ordered": issue in ordered,
            "options": [
                {"id": o, "label": f"Option {o}", "lean": (leans or {}).get(issue, {}).get(o, 0)}
                for o in options
            ],
        }
        for issue, options in agenda.items()
    ]
    scenario = {
        "id": name,
        "title": f"The {name} scenario",
        "brief": "A small test of the rules.",
        "convener": parties[0],
        "parties": parties,
        "agenda": issues,
        "deal_rule": {"veto": vetoes, "min_accept": min_accept, "max_rounds": rounds},
    }
    if branches is not None:
        scenario["branches"] = branches
    (folder / "scenario.yaml").write_text(yaml.safe_dump(scenario, sort_keys=False))
    for pid, fields in cards.items():
        card = {
            "id": pid,
            "name": pid.title(),
            "role": f"The {pid} party",
            "persona": "personas/plain.md.j2",
            "public_stance": "We want a fair settlement.",
            "private_brief": "You want the package that scores best for you.",
            "veto": pid in vetoes,
            **fields,
        }
        (folder / "agents" / f"{pid}.yaml").write_text(yaml.safe_dump(card, sort_keys=False))
    return home


def environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment plus `extra`, unbuffered: a killed child has written its lines."""
    return {**os.environ, "PYTHONUNBUFFERED": "1", **(extra or {})}


def run_process(
    argv: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 300,
    **kwargs: Any,
) -> subprocess.CompletedProcess[str]:
    """Run `argv` to its end in environment(env), its output captured as text."""
    return subprocess.run(
        list(argv),
        env=environment(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )


def majlis_process(
    *args: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 300,
    **kwargs: Any,
) -> subprocess.CompletedProcess[str]:
    """`majlis ARGS` in a fresh interpreter, run to its end (see run_process)."""
    return run_process([*MAJLIS, *args], env=env, cwd=cwd, timeout=timeout, **kwargs)


def majlis_started(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """`majlis ARGS` started in a fresh interpreter and left running, its output discarded."""
    return subprocess.Popen(
        [*MAJLIS, *args],
        env=environment(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


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
