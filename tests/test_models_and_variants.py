"""Per-party models, transport retries that honour Retry-After, and prompt variants."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from starlette.responses import JSONResponse, Response
from typer.testing import CliRunner

from majlis.cli import app
from majlis.model import LoopbackServer, ModelConfig, scripted_responder
from majlis.run import RunOptions, run_session

runner = CliRunner()


def test_each_party_can_have_its_own_model_and_endpoint(home: Path, tmp_path: Path) -> None:
    with LoopbackServer(scripted_responder) as a, LoopbackServer(scripted_responder) as b:
        spec = tmp_path / "models.yaml"
        spec.write_text(
            f"default: {{model: scripted, base_url: '{a.base_url}'}}\n"
            f"parties:\n"
            f"  tehran: {{model: 'scripted:firm', base_url: '{b.base_url}', temperature: 0.2}}\n"
            f"  militias: {{model: 'scripted:soft'}}\n"
        )
        res = runner.invoke(
            app,
            [
                "run",
                "--models",
                str(spec),
                "--home",
                str(home),
                "--out",
                str(tmp_path / "r"),
                "--quiet",
                "--rounds",
                "2",
            ],
        )
        assert res.exit_code == 0, res.output
        parties_at_b = {_party(r) for r in b.requests}
        parties_at_a = {_party(r) for r in a.requests}
    assert parties_at_b == {"tehran"} and all(r["model"] == "scripted:firm" for r in b.requests)
    assert (
        "tehran" not in parties_at_a and "militias" not in parties_at_a
    )  # militias played in process
    assert {r["temperature"] for r in b.requests} == {0.2}
    (run,) = (tmp_path / "r").iterdir()
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["parties"]["tehran"]["base_url"] == b.base_url
    assert manifest["parties"]["militias"] == {
        **manifest["parties"]["militias"],
        "model": "scripted:soft",
        "base_url": None,
    }


def test_models_file_errors_name_the_field(home: Path, tmp_path: Path) -> None:
    spec = tmp_path / "models.yaml"
    spec.write_text("parties:\n  tehran: {model: x, temprature: 0.2}\n")
    res = runner.invoke(
        app, ["run", "--models", str(spec), "--home", str(home), "--out", str(tmp_path / "r")]
    )
    assert (
        res.exit_code == 2
        and "parties.tehran.temprature" in res.output
        and "unknown key" in res.output
    )
    spec.write_text("parties:\n  ankara: {model: scripted}\n")
    res = runner.invoke(
        app, ["run", "--models", str(spec), "--home", str(home), "--out", str(tmp_path / "r")]
    )
    assert res.exit_code == 2 and "unknown party 'ankara'" in res.output
    assert not (tmp_path / "r").exists()


def _party(body: dict[str, Any]) -> str:
    user = body["messages"][-1]["content"]
    return json.loads(user.split("<turn>")[1].split("</turn>")[0])["party"]


async def test_rate_limits_are_retried_after_the_servers_delay(home: Path, tmp_path: Path) -> None:
    def limited(body: dict[str, Any], n: int) -> Response | None:
        if n in (3, 4):  # two 429s in a row on the third call
            return JSONResponse(
                {"error": {"message": "slow down", "type": "rate_limit"}},
                status_code=429,
                headers={"retry-after": "1"},
            )
        return None

    with LoopbackServer(scripted_responder, fault=limited) as srv:
        cfg = ModelConfig(model="scripted", base_url=srv.base_url, max_retries=3)
        start = time.monotonic()
        result = await run_session(RunOptions(model=cfg, home=home, runs_root=tmp_path, rounds=1))
        elapsed = time.monotonic() - start
    assert result.manifest.status == "complete"
    assert srv.calls == result.outcome.calls + 2, "the two refused requests were sent again"
    assert elapsed >= 2.0, "the client waited as the server asked"


def test_a_variant_overlays_templates_and_is_recorded(home_copy: Path, tmp_path: Path) -> None:
    vdir = home_copy / "prompts" / "variants" / "test-hawk" / "personas"
    vdir.mkdir(parents=True)
    (vdir / "washington.md.j2").write_text(
        "You are a hawkish US envoy. HAWK-MARKER. You concede nothing.\n"
    )
    with LoopbackServer(scripted_responder) as srv:
        res = runner.invoke(
            app,
            [
                "run",
                "--model",
                "scripted",
                "--base-url",
                srv.base_url,
                "--variant",
                "test-hawk",
                "--home",
                str(home_copy),
                "--out",
                str(tmp_path / "runs"),
                "--quiet",
                "--rounds",
                "1",
            ],
        )
        assert res.exit_code == 0, res.output
        marked = {_party(r) for r in srv.requests if "HAWK-MARKER" in r["messages"][0]["content"]}
    assert marked == {"washington"}
    (run,) = (tmp_path / "runs").iterdir()
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["variant"] == "test-hawk"
    variant_hash = hashlib.sha256((vdir / "washington.md.j2").read_bytes()).hexdigest()
    assert manifest["prompts"]["personas/washington.md.j2"] == variant_hash
