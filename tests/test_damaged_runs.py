"""Damaged run folders: no reader ends in a traceback (issue 14, "Robust readers").

A line of events.jsonl that is not an event (a list, a string, a number, null, a missing or
mistyped field, content of the wrong shape, bytes that are not UTF-8, a line cut in the
middle) is either left out by `eval`, which says so on stderr and in eval.json, or refused
by the readers that must not show or score a log with a hole (`view`, `debrief`,
`tags --add`, `compare`, `serve`), in one line naming the file and line, exit 2. `resume`
rebuilds events.jsonl from the checkpoint, so it refuses only what it reads: the manifest,
the scenario snapshot and checkpoint.sqlite. manifest.json, outcome.json, scenario.json and
annotations.jsonl of the wrong shape or encoding get one line naming the file.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from starlette.testclient import TestClient
from typer.testing import CliRunner

from majlis.cli import app
from majlis.model import ModelConfig
from majlis.run import RunOptions, run_session
from majlis.workshop import RunsServer

REPO = Path(__file__).resolve().parents[1]
CELL = "baseline--scripted--s1"  # a sweep cell's name, so that `compare` takes the run too
runner = CliRunner()


def _without(key: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda e: {k: v for k, v in e.items() if k != key}


# the parsed event -> what its line holds instead
AS_JSON: dict[str, Callable[[dict[str, Any]], Any]] = {
    "a list": lambda e: [1, 2],
    "a string": lambda e: "text",
    "a number": lambda e: 42,
    "null": lambda e: None,
    "no type": _without("type"),
    "no content": _without("content"),
    "no seq": _without("seq"),
    "seq a string": lambda e: {**e, "seq": str(e["seq"])},
    "content a list": lambda e: {**e, "content": [1, 2]},
    "proposal without package": lambda e: {**e, "content": {}},
    "package a list": lambda e: {**e, "content": {"package": [1, 2]}},
}
# the line's bytes -> its damaged bytes
AS_BYTES: dict[str, Callable[[bytes], bytes]] = {
    "not UTF-8": lambda b: b[:30] + b"\xff\xfe" + b[30:],
    "cut in the middle": lambda b: b[: len(b) // 2],
    "nested too deep": lambda b: b"[" * 100_000 + b"]" * 100_000,
}
EVENT_DAMAGES = [*AS_JSON, *AS_BYTES]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One scripted two-round run, made once; each test damages its own copy."""
    root = tmp_path_factory.mktemp("runs")
    opts = RunOptions(model=ModelConfig(model="scripted"), home=REPO, runs_root=root, rounds=2)
    return asyncio.run(run_session(opts)).run_dir.path


def copy_run(pristine: Path, tmp_path: Path) -> Path:
    """A copy in a sweep-shaped folder: tmp_path/sweep/runs/<cell>."""
    run = tmp_path / "sweep" / "runs" / CELL
    shutil.copytree(pristine, run)
    return run


def damaged_line(run: Path, damage: str) -> int:
    """Damage the first proposal's line (one in the middle, whose loss matters); its number."""
    path = run / "events.jsonl"
    lines = path.read_bytes().split(b"\n")
    i = next(n for n, raw in enumerate(lines) if json.loads(raw)["type"] == "proposal")
    if damage in AS_BYTES:
        lines[i] = AS_BYTES[damage](lines[i])
    else:
        lines[i] = json.dumps(AS_JSON[damage](json.loads(lines[i]))).encode()
    path.write_bytes(b"\n".join(lines))
    assert 0 < i < len(lines) - 2  # a middle line, not a cut last one
    return i + 1


def last_seq(run: Path) -> int:
    return int(json.loads((run / "events.jsonl").read_bytes().splitlines()[-1])["seq"])


def one_error_line(res: Result, *needles: str) -> str:
    """The run was refused in one line on stderr, exit 2, no traceback; it names `needles`."""
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert "Traceback" not in res.output
    lines = res.stderr.strip().splitlines()
    assert res.exit_code == 2 and len(lines) == 1, (res.exit_code, res.output)
    assert lines[0].startswith("majlis: error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


# ---------------------------------------------------------------------------------------
# A damaged line of events.jsonl


@pytest.mark.parametrize("damage", EVENT_DAMAGES)
def test_eval_leaves_a_damaged_event_out_and_says_so(
    pristine: Path, tmp_path: Path, damage: str
) -> None:
    run = copy_run(pristine, tmp_path)
    total = len((run / "events.jsonl").read_bytes().splitlines())
    line = damaged_line(run, damage)
    res = runner.invoke(app, ["eval", str(run), "--format", "json"])
    assert res.exit_code == 0 and res.exception is None, res.output
    warnings = res.stderr.strip().splitlines()
    assert len(warnings) == 1 and "Traceback" not in res.output, warnings
    assert warnings[0].startswith("majlis: warning: left out of the evaluation: ")
    assert f"{run / 'events.jsonl'}: line {line}: " in warnings[0]
    assert json.loads(res.stdout)[0]["skipped"] == 1
    report = json.loads((run / "eval.json").read_text())
    assert report["events"] == total - 1 and len(report["skipped"]) == 1
    assert report["skipped"][0].startswith(f"{run / 'events.jsonl'}: line {line}: ")


def test_eval_names_five_damaged_lines_and_counts_the_rest(pristine: Path, tmp_path: Path) -> None:
    run = copy_run(pristine, tmp_path)
    path = run / "events.jsonl"
    lines = path.read_bytes().splitlines()
    path.write_bytes(b"\n".join(b"[]" if 10 <= i < 17 else x for i, x in enumerate(lines)))
    res = runner.invoke(app, ["eval", str(run)])
    assert res.exit_code == 0 and res.exception is None, res.output
    warnings = res.stderr.strip().splitlines()
    assert len(warnings) == 6 and all(
        f"{path}: line {n}: " in warnings[n - 11] for n in range(11, 16)
    )
    assert (
        warnings[5]
        == f"majlis: warning: {run.name}: 2 more damaged lines left out (in its eval.json)"
    )
    assert len(json.loads((run / "eval.json").read_text())["skipped"]) == 7


REFUSING: dict[str, Callable[[Path], list[str]]] = {
    "view": lambda run: ["view", str(run)],
    "view participant": lambda run: ["view", str(run), "--audience", "participant"],
    "debrief": lambda run: ["debrief", str(run)],
    "tags --add": lambda run: ["tags", str(run), "--add", str(last_seq(run)), "--tag", "anchor"],
    "compare": lambda run: ["compare", str(run.parent.parent)],
}


@pytest.mark.parametrize("command", list(REFUSING))
@pytest.mark.parametrize("damage", [d for d in EVENT_DAMAGES if d != "cut in the middle"])
def test_readers_refuse_a_damaged_event_in_one_line(
    pristine: Path, tmp_path: Path, damage: str, command: str
) -> None:
    run = copy_run(pristine, tmp_path)
    line = damaged_line(run, damage)
    res = runner.invoke(app, REFUSING[command](run))
    one_error_line(res, f"{run / 'events.jsonl'}: line {line}: ")
    assert not (run / "annotations.jsonl").exists()  # no tag pointing into a damaged log


def test_a_last_line_cut_mid_character_is_a_cut_line(pristine: Path, tmp_path: Path) -> None:
    """The writer may die inside a multi-byte character: that is a cut, not bad UTF-8."""
    run = copy_run(pristine, tmp_path)
    path = run / "events.jsonl"
    lines = path.read_bytes().splitlines()
    last = json.loads(lines[-1])
    last["content"]["text"] = "مجلس"
    cut = json.dumps(last, ensure_ascii=False).encode()
    cut = cut[: cut.index("مجلس".encode()) + 1]  # half of the first letter
    path.write_bytes(b"\n".join([*lines[:-1], cut]))
    res = runner.invoke(app, ["eval", str(run)])
    assert res.exit_code == 0 and res.exception is None, res.output
    assert f"is cut: evaluated up to event {len(lines) - 2}" in res.stderr
    assert runner.invoke(app, ["view", str(run)]).exit_code == 0


# ---------------------------------------------------------------------------------------
# manifest.json, outcome.json, scenario.json and annotations.jsonl


def _edit(name: str, change: Callable[[dict[str, Any]], Any]) -> Callable[[Path], None]:
    def damage(run: Path) -> None:
        path = run / name
        path.write_text(json.dumps(change(json.loads(path.read_text()))))

    return damage


def _write(name: str, data: bytes) -> Callable[[Path], None]:
    return lambda run: (run / name).write_bytes(data)


ANNOTATION = {"id": "t1", "seq": 3, "tag": "anchor", "note": "", "author": "f", "ts": "now"}
# name -> (damage, the file the error names, what it says)
FILE_DAMAGES: dict[str, tuple[Callable[[Path], None], str, str]] = {
    "manifest a list": (
        _edit("manifest.json", lambda d: [d]),
        "manifest.json",
        "not a JSON object",
    ),
    "manifest not UTF-8": (
        _write("manifest.json", b'{"schema_version": 3, "run_id": "\xff"}'),
        "manifest.json",
        "cannot read: not valid UTF-8",
    ),
    "outcome a list": (_edit("outcome.json", lambda d: [d]), "outcome.json", "not a JSON object"),
    "outcome not UTF-8": (
        _write("outcome.json", b"\xff\xfe{}"),
        "outcome.json",
        "cannot read: not valid UTF-8",
    ),
    "scenario a list": (
        _edit("scenario.json", lambda d: [d]),
        "scenario.json",
        "not a JSON object",
    ),
    "scenario cards a list": (
        _edit("scenario.json", lambda d: {**d, "cards": [1]}),
        "scenario.json",
        "cards: ",
    ),
    "scenario without a party's card": (
        _edit("scenario.json", lambda d: {**d, "cards": dict(list(d["cards"].items())[1:])}),
        "scenario.json",
        "cards: no card for party",
    ),
    "annotation a list": (_write("annotations.jsonl", b"[1]\n"), "annotations.jsonl", "line 1: "),
    "annotation without id": (
        _write(
            "annotations.jsonl",
            json.dumps({k: v for k, v in ANNOTATION.items() if k != "id"}).encode() + b"\n",
        ),
        "annotations.jsonl",
        "line 1: id: ",
    ),
    "annotation not UTF-8": (
        _write("annotations.jsonl", json.dumps(ANNOTATION).encode() + b"\n\xff\n"),
        "annotations.jsonl",
        "line 2: not valid UTF-8",
    ),
}
FILE_COMMANDS: dict[str, Callable[[Path], list[str]]] = {
    "eval": lambda run: ["eval", str(run)],
    "view": lambda run: ["view", str(run)],
    "view participant": lambda run: ["view", str(run), "--audience", "participant"],
    "debrief": lambda run: ["debrief", str(run)],
    "tags": lambda run: ["tags", str(run)],
    "tags --export": lambda run: ["tags", str(run), "--export", "csv"],
    "compare": lambda run: ["compare", str(run.parent.parent)],
    "resume": lambda run: ["resume", str(run), "--quiet", "--home", str(REPO)],
}
# which commands read which file (the others never open it, and answer as for a good run)
READS = {
    "manifest.json": {"eval", "view", "view participant", "debrief", "compare", "resume"},
    "outcome.json": {"view", "view participant", "debrief", "compare"},
    "scenario.json": {"eval", "view", "view participant", "debrief", "compare", "resume"},
    "annotations.jsonl": {"view", "debrief", "tags", "tags --export"},
}
FILE_CASES = [
    (damage, command)
    for damage, (_, name, _) in FILE_DAMAGES.items()
    for command in FILE_COMMANDS
    if command in READS[name]
]


@pytest.mark.parametrize(("damage", "command"), FILE_CASES)
def test_a_damaged_file_is_refused_in_one_line(
    pristine: Path, tmp_path: Path, damage: str, command: str
) -> None:
    run = copy_run(pristine, tmp_path)
    make, name, says = FILE_DAMAGES[damage]
    if command == "resume" and name != "manifest.json":  # resume takes unfinished runs only
        _edit("manifest.json", lambda d: {**d, "status": "failed"})(run)
    make(run)
    one_error_line(runner.invoke(app, FILE_COMMANDS[command](run)), f"{run / name}: {says}")


@pytest.mark.parametrize(
    "damage", [b"this is no database", "a damaged page"], ids=["garbage", "damaged page"]
)
def test_resume_refuses_damaged_checkpoints_in_one_line(
    pristine: Path, tmp_path: Path, damage: bytes | str
) -> None:
    run = copy_run(pristine, tmp_path)
    _edit("manifest.json", lambda d: {**d, "status": "failed"})(run)
    db = run / "checkpoint.sqlite"
    if isinstance(damage, bytes):
        db.write_bytes(damage)
    else:
        with db.open("r+b") as fh:  # past the schema page: opens, then fails to read
            fh.seek(8192)
            fh.write(b"\xde\xad" * 2000)
    before = (run / "events.jsonl").read_bytes()
    res = runner.invoke(app, ["resume", str(run), "--quiet", "--home", str(REPO)])
    one_error_line(res, f"{db}: cannot read the checkpoints: ")
    assert (run / "events.jsonl").read_bytes() == before  # nothing rewritten


# ---------------------------------------------------------------------------------------
# majlis serve: the run's page says what is wrong; the server never answers 500


def served(run: Path) -> TestClient:
    """The server's ASGI app, called in process; a 500 would raise here, not hide."""
    app_ = RunsServer(runs_dir=run.parent.resolve(), port=0).app()
    return TestClient(app_, base_url="http://127.0.0.1")


def one_line_answer(r: Any, *needles: str) -> None:
    assert r.status_code == 400 and r.headers["content-type"].startswith("text/plain"), r.text
    assert len(r.text.splitlines()) == 1 and "Traceback" not in r.text
    for needle in needles:
        assert needle in r.text, (needle, r.text)


@pytest.mark.parametrize("damage", ["a list", "no type", "not UTF-8"])
def test_serve_answers_one_line_for_a_damaged_event(
    pristine: Path, tmp_path: Path, damage: str
) -> None:
    run = copy_run(pristine, tmp_path)
    line = damaged_line(run, damage)
    where = f"events.jsonl: line {line}: "
    with served(run) as client:
        assert client.get("/").status_code == 200  # the index still lists every run
        for page in ("facilitator", "participant", "debrief"):
            one_line_answer(client.get(f"/runs/{CELL}/{page}"), where)


def test_serve_tag_on_a_damaged_log_is_refused_in_one_line(pristine: Path, tmp_path: Path) -> None:
    run = copy_run(pristine, tmp_path)
    line = damaged_line(run, "a list")
    server = RunsServer(runs_dir=run.parent.resolve(), port=0)
    with TestClient(server.app(), base_url="http://127.0.0.1") as client:
        r = client.post(
            f"/runs/{CELL}/tags",
            json={"seq": last_seq(run), "tag": "anchor"},
            headers={"x-majlis-token": server.token},
        )
    one_line_answer(r, f"events.jsonl: line {line}: ")
    assert not (run / "annotations.jsonl").exists()


@pytest.mark.parametrize(
    "damage", ["manifest not UTF-8", "scenario a list", "annotation a list", "outcome not UTF-8"]
)
def test_serve_answers_one_line_for_a_damaged_file(
    pristine: Path, tmp_path: Path, damage: str
) -> None:
    run = copy_run(pristine, tmp_path)
    make, name, says = FILE_DAMAGES[damage]
    make(run)
    pages = {
        "manifest.json": ["facilitator", "participant", "debrief"],
        "scenario.json": ["facilitator", "participant", "debrief"],
        "outcome.json": ["facilitator", "participant", "debrief"],
        "annotations.jsonl": ["facilitator", "debrief", "tags.csv"],
    }[name]
    with served(run) as client:
        index = client.get("/")
        assert index.status_code == 200 and CELL in index.text
        for page in pages:
            one_line_answer(client.get(f"/runs/{CELL}/{page}"), f"{name}: {says}")
