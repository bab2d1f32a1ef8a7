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
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REPO, stable

from majlis.model import LoopbackServer, scripted_responder

SEED = 20240128
# the `majlis` console script's entry point, run by this interpreter
MAJLIS = (sys.executable, "-c", "from majlis.cli import app; app(prog_name='majlis')")
RUN_IDS = {f"{v}--scripted--s{s}" for v in ("baseline", "firm-washington") for s in (1, 2, 3)}


def all_events(sweep: Path) -> dict[str, list[dict[str, Any]]]:
    out = {}
    for run in sorted((sweep / "runs").glob("*")):
        path = run / "events.jsonl"
        if path.exists():
            out[run.name] = [json.loads(x) for x in path.read_text().splitlines()]
    return out


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
    events = [json.loads(x) for x in (tmp_path / "cut" / "events.jsonl").read_text().splitlines()]
    ref = [json.loads(x) for x in reference.run_dir.events_path.read_text().splitlines()]
    assert [e["seq"] for e in events] == list(range(len(events))), "no event twice"
    assert stable(events) == stable(ref)


def test_a_sweep_killed_at_random_points_resumes_to_the_same_transcripts(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with LoopbackServer(scripted_responder, latency=0.01) as server:
        experiment = tmp_path / "crash.yaml"
        experiment.write_text(
            yaml.safe_dump(
                {
                    "name": "crash",
                    "variants": ["baseline", "firm-washington"],
                    "seeds": 3,
                    "rounds": 3,
                    "concurrency": 2,
                    "models": [
                        {
                            "name": "scripted",
                            "default": {"model": "scripted", "base_url": server.base_url},
                        }
                    ],
                }
            )
        )

        def sweep(out: str, cache: str) -> list[str]:
            return [
                *(*MAJLIS, "sweep", str(experiment)),
                *("--home", str(REPO), "--out", str(tmp_path / out)),
                *("--cache-file", str(tmp_path / cache)),
            ]

        ref = subprocess.run(
            sweep("ref", "ref.sqlite"), env=env, capture_output=True, text=True, timeout=300
        )
        assert ref.returncode == 0, ref.stderr
        reference = all_events(tmp_path / "ref")
        assert set(reference) == RUN_IDS
        total = sum(len(e) for e in reference.values())

        cut = tmp_path / "cut"
        points = sorted(rng.sample(range(total // 10, total * 9 // 10), k=rng.randint(3, 5)))
        killed_running = 0
        for point in points:
            proc = subprocess.Popen(
                sweep("cut", "cut.sqlite"),
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
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

        final = subprocess.run(
            sweep("cut", "cut.sqlite"), env=env, capture_output=True, text=True, timeout=300
        )
        assert final.returncode == 0, final.stderr
        assert "0 failed" in final.stdout

    resumed = all_events(cut)
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
    res = subprocess.run(
        [sys.executable, "-m", "majlis", "sweep", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
