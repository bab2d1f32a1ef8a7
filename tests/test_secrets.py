"""The API key goes to the endpoint and nowhere else.

The key lives in an environment variable (`api_key_env`); the loopback server requires it.
A session, a sweep and a run that fails and is resumed go through the command line in
subprocesses with the SDK's debug logging on; then every file under the runs folder (run
folders, checkpoints, the response cache and its WAL), and everything the processes
printed, is searched for the key and for "Authorization" / "Bearer".
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REPO, experiment, majlis_process
from starlette.responses import JSONResponse

from majlis.model import FaultPlan, LoopbackServer, scripted_responder

ENV = "MAJLIS_SECRET_TEST_KEY"
KEY = "sk-majlis-" + hashlib.sha256(b"test_secrets").hexdigest()[:32]
FORBIDDEN = (KEY.encode(), KEY[-12:].encode(), b"Authorization", b"authorization", b"Bearer")
REMOTE = {"api_key_env": ENV, "max_retries": 0}  # the scripted player's settings over HTTP


def leaks(blob: bytes) -> list[str]:
    return [f.decode() for f in FORBIDDEN if f in blob]


def scan(folder: Path) -> dict[str, list[str]]:
    found = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            hits = leaks(path.read_bytes())
            if hits:
                found[str(path.relative_to(folder))] = hits
    return found


class Echo:
    """A proxy that, once tripped, fails every call and quotes the request's credentials."""

    def __init__(self) -> None:
        self.on = False

    def __call__(self, body: dict[str, Any], n: int) -> JSONResponse | None:
        if not self.on:
            return None
        return JSONResponse(
            {
                "error": {
                    "message": f"upstream rejected headers {{'Authorization': 'Bearer {KEY}'}}",
                    "type": "server_error",
                    "code": 502,
                }
            },
            status_code=502,
        )


@pytest.fixture
def env() -> dict[str, str]:
    """What the subprocesses get on top of this environment: the key, and the SDK's debug log."""
    return {ENV: KEY, "OPENAI_LOG": "debug"}


def experiment_file(tmp_path: Path, base_url: str) -> Path:
    path = tmp_path / "secret.yaml"
    experiment(
        base_url, path=path, name="secret", seeds=2, rounds=2, model_name="remote", default=REMOTE
    )
    return path


def models_file(tmp_path: Path, base_url: str) -> Path:
    path = tmp_path / "models.yaml"
    remote = {"model": "scripted", "base_url": base_url, **REMOTE}
    path.write_text(yaml.safe_dump({"default": remote}))
    return path


def test_the_key_reaches_the_server_and_nothing_else(tmp_path: Path, env: dict[str, str]) -> None:
    runs = tmp_path / "runs"
    outputs: list[str] = []
    plan = FaultPlan(rates={"500": 1.0}, first=15)
    plan.stop()
    with LoopbackServer(scripted_responder, api_key=KEY, fault=plan) as server:
        # a session, cached (a seed turns the cache on)
        res = majlis_process(
            *("run", "--model", "scripted", "--base-url", server.base_url),
            *("--api-key-env", ENV, "--seed", "3", "--rounds", "2"),
            *("--home", str(REPO), "--out", str(runs)),
            env=env,
        )
        outputs += [res.stdout, res.stderr]
        assert res.returncode == 0, res.stderr
        assert server.calls > 0, "the key was accepted"

        # a sweep, cached, into the same runs folder
        calls = server.calls
        res = majlis_process(
            *("sweep", str(experiment_file(tmp_path, server.base_url)), "--home", str(REPO)),
            *("--out", str(runs / "sweeps" / "secret"), "--cache-file", str(runs / "cache.sqlite")),
            env=env,
        )
        outputs += [res.stdout, res.stderr]
        assert res.returncode == 0, res.stderr
        assert server.calls > calls

        # a run that fails on the endpoint's 500s after its first replies, then resumes (a
        # run whose very first call fails leaves no folder: nothing would hold the key)
        plan.first = server.calls + 5
        plan.start()
        failing = runs / "failing"
        res = majlis_process(
            *("run", "--models", str(models_file(tmp_path, server.base_url)), "--rounds", "2"),
            *("--quiet", "--home", str(REPO), "--out", str(failing)),
            env=env,
        )
        outputs += [res.stdout, res.stderr]
        assert res.returncode == 1, res.stderr
        plan.stop()
        (run,) = failing.iterdir()
        res = majlis_process("resume", str(run), "--quiet", env=env)
        outputs += [res.stdout, res.stderr]
        assert res.returncode == 0, res.stderr

    assert {p.name for p in runs.rglob("*.sqlite")} >= {"cache.sqlite", "checkpoint.sqlite"}
    assert "DEBUG" in "".join(outputs), "the SDK's debug log was captured too"
    assert scan(runs) == {}, "the key or an auth header is in the runs folder"
    for text in outputs:
        assert leaks(text.encode()) == [], f"the key or an auth header was printed: {text[-2000:]}"


def test_a_key_quoted_back_by_the_endpoint_is_masked(tmp_path: Path, env: dict[str, str]) -> None:
    """An endpoint whose errors quote the credentials: the key never reaches a file or a line."""
    runs = tmp_path / "runs"
    echo = Echo()
    outputs: list[str] = []
    with LoopbackServer(scripted_responder, api_key=KEY, fault=echo) as server:
        echo.on = True
        res = majlis_process(
            *("run", "--models", str(models_file(tmp_path, server.base_url)), "--rounds", "2"),
            *("--quiet", "--home", str(REPO), "--out", str(runs)),
            env=env,
        )
        outputs += [res.stdout, res.stderr]
        assert res.returncode == 1, res.stderr
        assert "Bearer ***" in res.stderr, "the error is still reported, masked"
        res = majlis_process(
            *("sweep", str(experiment_file(tmp_path, server.base_url)), "--home", str(REPO)),
            *("--no-cache", "--out", str(runs / "sweeps" / "failing")),
            env=env,
        )
        outputs += [res.stdout, res.stderr]
        assert res.returncode == 1
        assert "failed" in json.loads((runs / "sweeps" / "failing" / "sweep.json").read_text())

    secret = (KEY.encode(), KEY[-12:].encode())
    for path in runs.rglob("*"):
        if path.is_file():
            blob = path.read_bytes()
            assert not any(s in blob for s in secret), f"the key is in {path}"
            assert blob.count(b"Bearer") == blob.count(b"Bearer ***"), path
    for text in outputs:
        assert not any(s.decode() in text for s in secret), text[-2000:]
