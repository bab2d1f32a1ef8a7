"""kill -9 a running `majlis sweep` again and again; running the same command finishes it.

The sweep (2 variants x 3 seeds, the scripted player over HTTP, a loopback server with a
little latency) is killed with SIGKILL at seeded random points, measured in events written,
then run again with the same command line. At the end no event is lost or duplicated in
any run (seq contiguous, exactly one outcome), and every transcript equals the one an
uninterrupted run of the same experiment wrote.
"""

from __future__ import annotations

import contextlib
import json
import random
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    REPO,
    events_of,
    experiment,
    majlis_process,
    majlis_started,
    stable,
    sweep_events,
)

from majlis.model import LoopbackServer, scripted_responder

SEED = 20240128
VARIANTS = ["baseline", "firm-washington"]
RUN_IDS = {f"{v}--scripted--s{s}" for v in VARIANTS for s in (1, 2, 3)}
# the sweep: each variant with seeds 1-3, three rounds a session, two sessions at a time
SWEEP = {"name": "crash", "variants": VARIANTS, "seeds": 3, "rounds": 3, "concurrency": 2}


def events_written(sweep: Path) -> int:
    """Whole lines in every events.jsonl (a file may be mid-rewrite: count what is there)."""
    n = 0
    for path in (sweep / "runs").glob("*/events.jsonl"):
        with contextlib.suppress(OSError):
            n += path.read_bytes().count(b"\n")
    return n


def outcome_of(run: Path) -> dict[str, Any]:
    outcome = json.loads((run / "outcome.json").read_text())
    outcome.pop("usage", None)
    return outcome


class SimulatedKill(Exception):
    """Stands for SIGKILL arriving after a step's writes are saved, before its checkpoint."""


@pytest.mark.parametrize("step", [3, 9, 19])  # a turn, a vote, the end node (2 rounds)
async def test_a_kill_between_a_steps_writes_and_its_checkpoint_loses_and_repeats_nothing(
    step: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from majlis.model import ModelConfig
    from majlis.run import RunOptions, resume_session, run_session
    from majlis.run.checkpoints import InlineSqliteSaver

    opts = dict(model=ModelConfig(model="scripted"), home=REPO, rounds=2, seed=SEED)
    reference = await run_session(RunOptions(**opts, runs_root=tmp_path / "ref"))
    put = InlineSqliteSaver.aput
    fired: list[int] = []

    async def aput(self: Any, config: Any, checkpoint: Any, metadata: Any, versions: Any) -> Any:
        if metadata.get("step") == step and not fired:
            fired.append(step)
            raise SimulatedKill(f"killed before the checkpoint of step {step}")
        return await put(self, config, checkpoint, metadata, versions)

    monkeypatch.setattr(InlineSqliteSaver, "aput", aput)
    with pytest.raises(SimulatedKill):
        await run_session(RunOptions(**opts, runs_root=tmp_path, run_id="cut"))
    assert fired == [step]
    await resume_session(tmp_path / "cut")
    events = events_of(tmp_path / "cut")
    ref = events_of(reference)
    assert [e["seq"] for e in events] == list(range(len(events))), "no event twice"
    assert stable(events) == stable(ref)


def test_a_sweep_killed_at_random_points_resumes_to_the_same_transcripts(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    with LoopbackServer(scripted_responder, latency=0.01) as server:
        spec = tmp_path / "crash.yaml"
        experiment(server.base_url, path=spec, **SWEEP)

        def sweep(out: str, cache: str) -> list[str]:
            return [
                *("sweep", str(spec), "--home", str(REPO), "--out", str(tmp_path / out)),
                *("--cache-file", str(tmp_path / cache)),
            ]

        ref = majlis_process(*sweep("ref", "ref.sqlite"))
        assert ref.returncode == 0, ref.stderr
        reference = sweep_events(tmp_path / "ref")
        assert set(reference) == RUN_IDS
        total = sum(len(e) for e in reference.values())

        cut = tmp_path / "cut"
        points = sorted(rng.sample(range(total // 10, total * 9 // 10), k=rng.randint(3, 5)))
        killed_running = 0
        for point in points:
            proc = majlis_started(*sweep("cut", "cut.sqlite"))
            start = events_written(cut) if cut.exists() else 0
            target = max(point, start + rng.randint(1, 12))  # always some progress first
            deadline = time.monotonic() + 120
            while proc.poll() is None and time.monotonic() < deadline:
                if cut.exists() and events_written(cut) >= target:
                    break
                time.sleep(0.005)
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                killed_running += 1
            proc.wait(timeout=30)
        assert killed_running >= 3, "the sweep was killed mid-run at least three times"
        unfinished = [
            r
            for r in RUN_IDS
            if not (cut / "runs" / r / "manifest.json").exists()
            or json.loads((cut / "runs" / r / "manifest.json").read_text())["status"] != "complete"
        ]
        assert unfinished, "the kills left work to resume"

        final = majlis_process(*sweep("cut", "cut.sqlite"))
        assert final.returncode == 0, final.stderr
        assert "0 failed" in final.stdout

    resumed = sweep_events(cut)
    assert set(resumed) == RUN_IDS
    for run_id, events in resumed.items():
        assert [e["seq"] for e in events] == list(range(len(events))), f"{run_id}: seq"
        assert [e["type"] for e in events].count("outcome") == 1, f"{run_id}: one outcome"
        assert events[-1]["type"] == "outcome"
        assert stable(events) == stable(reference[run_id]), f"{run_id}: transcript differs"
        manifest = json.loads((cut / "runs" / run_id / "manifest.json").read_text())
        assert manifest["status"] == "complete" and manifest["error"] is None
        assert outcome_of(cut / "runs" / run_id) == outcome_of(tmp_path / "ref" / "runs" / run_id)
    summary = json.loads((cut / "sweep.json").read_text())
    assert summary["failed"] == {} and set(summary["sessions"].values()) == {"complete"}


def test_python_dash_m_knows_every_command() -> None:
    res = majlis_process("sweep", "--help", timeout=60)
    assert res.returncode == 0, res.stderr
