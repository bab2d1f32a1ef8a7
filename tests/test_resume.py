"""A run stopped midway resumes from its checkpoint with no missing and no duplicated events."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import openai
import pytest
from conftest import (
    MAJLIS,
    FailAfter,
    environment,
    events_of,
    majlis_process,
    majlis_started,
    stable,
)

from majlis.model import LoopbackServer, ModelConfig, scripted_responder
from majlis.run import RunDir, RunOptions, resume_session, run_session


def assert_whole(events: list[dict[str, Any]]) -> None:
    assert [e["seq"] for e in events] == list(range(len(events))), "no gaps, no duplicates"
    assert events[-1]["type"] == "outcome"


async def test_interrupted_graph_resumes_to_the_same_transcript(home: Path, tmp_path: Path) -> None:
    with LoopbackServer(scripted_responder) as server:
        cfg = ModelConfig(model="scripted", base_url=server.base_url, max_retries=0)
        reference = await run_session(RunOptions(model=cfg, home=home, runs_root=tmp_path / "ref"))

        server.responder = FailAfter(20)  # dies in round 2, inside the vote of round 1 or a turn
        with pytest.raises(openai.InternalServerError):
            await run_session(
                RunOptions(model=cfg, home=home, runs_root=tmp_path / "cut", run_id="cut")
            )
        cut = tmp_path / "cut" / "cut"
        assert RunDir(cut).read_manifest().status == "failed"
        partial = events_of(cut)
        assert 0 < len(partial) < len(events_of(reference.run_dir.path))
        assert not (cut / "outcome.json").exists()

        server.responder = scripted_responder
        calls_before = server.calls
        result = await resume_session(cut)
        assert server.calls - calls_before < reference.outcome.calls, "finished work is not redone"

    events = events_of(cut)
    assert_whole(events)
    assert stable(events) == stable(events_of(reference.run_dir.path))
    assert result.manifest.status == "complete"
    assert result.outcome.model_dump(exclude={"usage"}) == reference.outcome.model_dump(
        exclude={"usage"}
    )


def test_killed_process_resumes_with_the_cli(home: Path, tmp_path: Path) -> None:
    with LoopbackServer(scripted_responder, latency=0.03) as server:
        run = [
            "run",
            "--model",
            "scripted",
            "--base-url",
            server.base_url,
            "--quiet",
            "--home",
            str(home),
        ]
        ref = majlis_process(*run, "--out", str(tmp_path / "ref"))
        assert ref.returncode == 0, ref.stderr
        ref_dir = next((tmp_path / "ref").iterdir())

        proc = majlis_started(*run, "--out", str(tmp_path / "cut"))
        deadline = time.monotonic() + 120
        events_file = None
        while time.monotonic() < deadline:
            found = list((tmp_path / "cut").glob("*/events.jsonl"))
            if found and len(found[0].read_text().splitlines()) >= 60:
                events_file = found[0]
                break
            time.sleep(0.02)
        assert events_file is not None, "the run never got going"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        cut_dir = events_file.parent
        assert not (cut_dir / "outcome.json").exists()

        resumed = majlis_process("resume", str(cut_dir), "--quiet")
        assert resumed.returncode == 0, resumed.stderr

    events = events_of(cut_dir)
    assert_whole(events)
    assert stable(events) == stable(events_of(ref_dir))
    assert json.loads((cut_dir / "manifest.json").read_text())["status"] == "complete"


async def test_resuming_a_complete_run_is_refused(home: Path, tmp_path: Path) -> None:
    from majlis.errors import RunError

    done = await run_session(
        RunOptions(model=ModelConfig(model="scripted"), home=home, runs_root=tmp_path)
    )
    with pytest.raises(RunError, match="already complete"):
        await resume_session(done.run_dir.path)


async def test_a_cancelled_session_is_recorded_as_interrupted_and_resumes(
    home: Path, tmp_path: Path
) -> None:
    """Ctrl-C reaches a session as its task's cancellation (in a sweep's worker, too)."""
    with LoopbackServer(scripted_responder, latency=0.05) as srv:
        opts = RunOptions(
            model=ModelConfig(model="scripted", base_url=srv.base_url),
            home=home,
            runs_root=tmp_path,
            rounds=2,
            run_id="cut",
        )
        task = asyncio.create_task(run_session(opts))
        while srv.calls < 4:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        manifest = json.loads((tmp_path / "cut" / "manifest.json").read_text())
        assert (manifest["status"], manifest["error"]) == ("failed", "interrupted")
        result = await resume_session(tmp_path / "cut")
    assert result.manifest.status == "complete"
    assert_whole(events_of(tmp_path / "cut"))


def test_ctrl_c_names_the_run_folder_and_the_resume_command(home: Path, tmp_path: Path) -> None:
    """SIGINT, as a terminal's Ctrl-C sends it, in the middle of a session: one line that
    says where the run is kept and how to go on with it, exit 130, and the run resumes."""
    with LoopbackServer(scripted_responder, latency=0.05) as server:
        proc = subprocess.Popen(
            [*MAJLIS, "run", "--model", "scripted", "--base-url", server.base_url, "--quiet",
             "--home", str(home), "--out", str(tmp_path)],
            env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            found = list(tmp_path.glob("*/events.jsonl"))
            if found and len(found[0].read_text().splitlines()) >= 20:
                break
            time.sleep(0.02)
        else:
            proc.kill()
            pytest.fail("the run never got going")
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
        run = found[0].parent
        assert proc.returncode == 130, stderr
        assert stderr.strip().splitlines()[-1] == (
            f"majlis: interrupted; the run is kept, to go on with: majlis resume {run}"
        )
        manifest = json.loads((run / "manifest.json").read_text())
        assert (manifest["status"], manifest["error"]) == ("failed", "interrupted")
        resumed = majlis_process("resume", str(run), "--quiet")
        assert resumed.returncode == 0, resumed.stderr
