"""The command line: a run, listings, and one clear line with exit code 2 for bad input."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from typer.testing import CliRunner

from majlis.cli import app
from majlis.model import Completion, FaultPlan, LoopbackServer, scripted_responder

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


def test_run_scripted_writes_a_run_folder(home: Path, tmp_path: Path) -> None:
    res = invoke(
        "run", "--model", "scripted", "--home", str(home), "--out", str(tmp_path), "--rounds", "2"
    )
    assert res.exit_code == 0, res.output
    (run,) = tmp_path.iterdir()
    assert {p.name for p in run.iterdir()} >= {
        "manifest.json",
        "events.jsonl",
        "outcome.json",
        "scenario.json",
    }
    assert "Round 1" in res.output and "Prime Minister Sudani" in res.output
    assert json.loads((run / "manifest.json").read_text())["rounds"] == 2


def test_listings(home: Path) -> None:
    assert "cornered-in-iraq" in invoke("scenarios", "--home", str(home)).output
    res = invoke("agents", "--home", str(home))
    assert res.exit_code == 0 and "washington" in res.output and "militias" in res.output
    res = invoke("validate", "--home", str(home))
    assert res.exit_code == 0 and "ok" in res.output


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--scenario", "atlantis"], "unknown scenario 'atlantis'"),
        (["--rounds", "0"], "--rounds must be between 1 and 100"),
        (["--variant", "nope"], "unknown variant 'nope'"),
        (["--model", "scripted:reckless"], "unknown scripted style"),
        (
            ["--model", "gpt-x", "--base-url", "http://127.0.0.1:9/v1"],
            "cannot reach model endpoint",
        ),
        (
            [
                "--model",
                "gpt-x",
                "--base-url",
                "http://127.0.0.1:9/v1",
                "--api-key-env",
                "MAJLIS_NO_SUCH_KEY",
            ],
            "MAJLIS_NO_SUCH_KEY is not set",
        ),
        (["--temperature", "9"], "--temperature"),
        (["--structured", "xml"], "--structured"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    home: Path, tmp_path: Path, args: list[str], words: str
) -> None:
    res = invoke(
        "run", "--model", "scripted", "--home", str(home), "--out", str(tmp_path / "runs"), *args
    )
    assert res.exit_code == 2, res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("majlis: error:"), res.output
    assert words in " ".join(res.output.split())
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir()), (
        "nothing half-written"
    )


def test_wrong_key_is_refused_before_the_run(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAJLIS_TEST_KEY", "wrong")
    with LoopbackServer(scripted_responder, api_key="right") as srv:
        res = invoke(
            "run",
            "--model",
            "scripted",
            "--base-url",
            srv.base_url,
            "--api-key-env",
            "MAJLIS_TEST_KEY",
            "--home",
            str(home),
            "--out",
            str(tmp_path / "runs"),
        )
    assert res.exit_code == 2 and "refused the API key" in res.output
    assert not (tmp_path / "runs").exists()


def test_broken_scenario_file(home_copy: Path, tmp_path: Path) -> None:
    path = home_copy / "agents" / "tehran.yaml"
    path.write_text(path.read_text().replace("threshold: 42", "threshold: [42"))
    res = invoke(
        "run", "--model", "scripted", "--home", str(home_copy), "--out", str(tmp_path / "runs")
    )
    assert res.exit_code == 2
    assert "tehran.yaml" in res.output and "invalid YAML" in res.output
    res = invoke("validate", "--home", str(home_copy))
    assert res.exit_code == 2 and "tehran.yaml" in res.output


def test_unknown_template_variable_is_named(home_copy: Path, tmp_path: Path) -> None:
    path = home_copy / "prompts" / "move.md.j2"
    path.write_text(path.read_text() + "\n{{ secret_agenda }}\n")
    res = invoke(
        "run", "--model", "scripted", "--home", str(home_copy), "--out", str(tmp_path / "runs")
    )
    assert res.exit_code == 2
    assert "move.md.j2" in res.output and "secret_agenda" in res.output


def test_resume_unknown_run(home: Path, tmp_path: Path) -> None:
    res = invoke("resume", str(tmp_path / "nothing-here"), "--home", str(home))
    assert res.exit_code == 2 and "not a majlis run" in res.output


def test_tags_and_debrief_commands(home: Path, tmp_path: Path) -> None:
    assert (
        invoke(
            "run",
            "--model",
            "scripted",
            "--home",
            str(home),
            "--out",
            str(tmp_path),
            "--rounds",
            "2",
            "--quiet",
        ).exit_code
        == 0
    )
    (run,) = tmp_path.iterdir()
    res = invoke(
        "tags", str(run), "--add", "2", "--tag", "turning point", "--note", "=HYPERLINK(1)"
    )
    assert res.exit_code == 0 and "turning_point" in res.output
    tag_id = res.output.split("(id ")[1].split(")")[0]
    csv_text = invoke("tags", str(run), "--export", "csv").output
    assert f"{tag_id},2,turning_point,'=HYPERLINK(1)" in csv_text, (
        "no formula reaches a spreadsheet"
    )
    assert invoke("tags", str(run), "--add", "99999", "--tag", "threat").exit_code == 2
    assert invoke("tags", str(run), "--remove", tag_id).exit_code == 0
    assert tag_id not in invoke("tags", str(run), "--export", "json").output
    res = invoke("debrief", str(run))
    assert res.exit_code == 0 and (run / "debrief.md").exists() and (run / "debrief.html").exists()
    assert invoke("debrief", str(tmp_path / "nothing")).exit_code == 2


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((), "window:2"),  # the embedded model: 8192 tokens, outgrown by the full record
        (("--model", "scripted"), "full"),
        (("--context", "full"), "full"),
    ],
)
def test_run_picks_a_bounded_context_for_the_embedded_model(
    home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: tuple[str, ...],
    expected: str,
) -> None:
    from majlis.errors import UserError
    from majlis.run import Prepared

    seen: list[str] = []

    async def fake(prepared: Prepared, *a: object, **k: object) -> None:
        seen.append(prepared.opts.context)
        raise UserError("stopped before any model was started")

    monkeypatch.setattr("majlis.run.run_session", fake)  # the CLI calls it through the face
    res = invoke("run", "--home", str(home), "--out", str(tmp_path), "--quiet", *args)
    assert res.exit_code == 2 and seen == [expected]


def run_at(url: str, model: str, home: Path, runs: Path, *more: str):
    """`majlis run --quiet` against one endpoint, into `runs`."""
    args = ["--model", model, "--base-url", url, "--home", str(home), "--out", str(runs)]
    return invoke("run", *args, "--quiet", *more)


def _unknown_model(body: dict) -> Completion:
    raise AssertionError("never asked: every chat request is refused first")


def _refuse_unknown_models(body: dict, n: int) -> JSONResponse | None:
    """What OpenAI answers for a model name it does not know."""
    if body.get("model") == "gpt-x":
        message = f"The model `{body['model']}` does not exist or you do not have access to it."
        return JSONResponse(
            {"error": {"message": message, "type": "invalid_request_error"}}, status_code=404
        )
    return None


def test_a_model_the_endpoint_does_not_know_is_refused_before_a_run_is_kept(
    home: Path, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    with LoopbackServer(_unknown_model, fault=_refuse_unknown_models) as srv:
        res = run_at(srv.base_url, "gpt-x", home, runs)
    assert res.exit_code == 2, res.output
    line = " ".join(res.output.split())
    assert line.startswith("majlis: error: the first model call was refused, no run recorded")
    assert "404" in line and "`gpt-x` does not exist" in line and srv.base_url in line
    assert len(res.output.strip().splitlines()) == 1
    assert not runs.exists() or not any(runs.iterdir()), "nothing half-written in runs/"


def test_a_refusal_after_the_first_reply_keeps_the_failed_run(home: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    plan = lambda body, n: _refuse_unknown_models({"model": "gpt-x"}, n) if n > 3 else None  # noqa: E731
    with LoopbackServer(scripted_responder, fault=plan) as srv:
        res = run_at(srv.base_url, "scripted", home, runs)
    assert res.exit_code == 1, res.output
    (run,) = runs.iterdir()
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "failed" and "NotFoundError" in manifest["error"]


def one_retry(server: LoopbackServer, tmp_path: Path) -> str:
    """A models file: the scripted model at `server`, one transport retry a call."""
    spec = tmp_path / "models.yaml"
    spec.write_text(
        f"default: {{model: scripted, base_url: '{server.base_url}', max_retries: 1}}\n"
    )
    return str(spec)


def test_a_server_that_fails_the_first_call_leaves_no_run(home: Path, tmp_path: Path) -> None:
    """A 5xx through every retry of the run's first call is the server's fault (exit 1, not
    2), and a folder that holds no reply is not kept: the same command again does as much
    as a resume would."""
    runs = tmp_path / "runs"
    plan = FaultPlan.from_request(1, "500")
    with LoopbackServer(scripted_responder, fault=plan) as srv:
        res = run_at(srv.base_url, "scripted", home, runs, "--models", one_retry(srv, tmp_path))
    assert res.exit_code == 1, res.output
    assert not runs.exists() or list(runs.iterdir()) == []
    (line,) = res.output.strip().splitlines()
    assert line.startswith("majlis: stopped: the first model call failed, no run recorded: ")
    assert "no run recorded" in line and "500" in line


def test_a_server_fault_after_the_first_reply_keeps_the_failed_run(
    home: Path, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    plan = FaultPlan.from_request(4, "500")
    with LoopbackServer(scripted_responder, fault=plan) as srv:
        res = run_at(srv.base_url, "scripted", home, runs, "--models", one_retry(srv, tmp_path))
    assert res.exit_code == 1, res.output
    (run,) = runs.iterdir()
    assert json.loads((run / "manifest.json").read_text())["status"] == "failed"
    assert f"majlis resume {run}" in res.output


@dataclass
class _NoModelsRoute(LoopbackServer):
    """A server with the chat route only, as some OpenAI-compatible servers are."""

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v1/chat/completions", self._chat, methods=["POST"])])


def test_a_base_url_without_the_api_path_is_told_apart_from_a_server_without_models(
    home: Path, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    with _NoModelsRoute(scripted_responder) as srv:
        works = run_at(srv.base_url, "scripted", home, runs, "--rounds", "1")
        assert works.exit_code == 0, works.output  # no /models, but the chat route answers
        wrong = srv.base_url.removesuffix("/v1")
        res = run_at(wrong, "scripted", home, runs, "--rounds", "1")
    assert res.exit_code == 2, res.output
    line = " ".join(res.output.split())
    assert f"majlis: error: {wrong} answered 404 Not Found to /models and to a chat" in line
    assert "usually ends in /v1" in line and len(res.output.strip().splitlines()) == 1
    assert len(list(runs.iterdir())) == 1, "only the run that worked is kept"


def test_why_an_endpoint_cannot_be_used_is_said_in_plain_words(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SDK's transport calls every failed connect a ConnectTimeout; the line says which
    failure it was, and the OpenAI API without a key is refused before any request."""
    silent = socket.socket()  # accepts connections, never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    quiet_url = f"http://127.0.0.1:{silent.getsockname()[1]}/v1"
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    cases = [
        (["--model", "gpt-4o-mini"], "which needs a key: set OPENAI_API_KEY"),
        (["--base-url", "http://127.0.0.1:9/v1"], "connection refused"),
        (["--base-url", "http://no-such-host.invalid/v1"], "the host name does not resolve"),
        (["--base-url", quiet_url, "--timeout", "1"], "timed out"),
    ]
    with silent:
        for args, words in cases:
            runs = tmp_path / "runs"
            res = invoke("run", "--model", "gpt-x", *args, "--home", str(home), "--out", str(runs))
            assert res.exit_code == 2, res.output
            assert words in " ".join(res.output.split()), res.output
            assert "ConnectTimeout" not in res.output and len(res.output.strip().splitlines()) == 1
            assert not runs.exists() or not any(runs.iterdir())


def test_end_of_input_at_a_prompt_is_an_interruption(monkeypatch: pytest.MonkeyPatch) -> None:
    """Typer turns EOF at a prompt into its own Abort (not Click's): one line, exit 130."""
    import typer

    from majlis.cli import core, main

    def abort(**_: object) -> None:
        raise typer.Abort()

    monkeypatch.setattr(core, "app", abort)
    assert main(["run"]) == 130
