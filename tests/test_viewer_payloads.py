"""More hostile text through the viewer: every kind of payload a model, a card or a trainee
could write, in every field the page shows, in both audiences. None may run, load, style or
add an element; each must read back as the very text that was written.

test_viewer.py plants one script-and-image payload; these are the ones it does not try.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import chromium

from majlis.model import Completion, LoopbackServer, ModelConfig, scripted
from majlis.run import RunOptions, run_session
from majlis.workshop import write_html

PAYLOADS = [
    '<svg onload="window.__pwned=3"></svg>',
    '<iframe srcdoc="&lt;script&gt;parent.__pwned=4&lt;/script&gt;"></iframe>',
    '<a href="javascript:window.__pwned=5">click</a>',
    "</script><script>window.__pwned=6</script>",
    '<style>body{display:none}</style><link rel="stylesheet" href="http://127.0.0.1:9/x.css">',
    '<object data="data:text/html,<script>parent.__pwned=7</script>"></object>',
    "\u2028\u2029 line separators and \u202e right-to-left override",
    "{{ 7*7 }} ${7*7} <%= 7*7 %>",
    '"><img src=x onerror="window.__pwned=8">',
    '<!-- a comment --><base href="http://127.0.0.1:9/">',
]


class PayloadModel:
    """The scripted player, writing one payload into each public message and side note."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self, body: dict[str, Any]) -> Completion:
        reply = json.loads(scripted.respond(body["messages"], "scripted"))
        if "public_message" in reply:
            reply["public_message"] = PAYLOADS[self.n % len(PAYLOADS)]
            if reply.get("side_message"):
                reply["side_message"]["text"] = PAYLOADS[(self.n + 3) % len(PAYLOADS)]
            self.n += 1
        reply["private_reasoning"] = PAYLOADS[self.n % len(PAYLOADS)]
        return Completion(json.dumps(reply), prompt_tokens=10, completion_tokens=10)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("home")
    repo = Path(__file__).resolve().parents[1]
    for folder in ("agents", "prompts", "scenarios"):
        shutil.copytree(repo / folder, home / folder)
    card_path = home / "agents" / "kurds.yaml"
    card = yaml.safe_load(card_path.read_text())
    card["name"] = '<img src=x onerror="window.__pwned=9">Kurds'
    card["public_stance"] = PAYLOADS[0] + " " + PAYLOADS[3]
    card_path.write_text(yaml.safe_dump(card, sort_keys=False))

    async def go() -> Path:
        with LoopbackServer(PayloadModel()) as server:
            result = await run_session(
                RunOptions(
                    model=ModelConfig(model="scripted", base_url=server.base_url),
                    home=home,
                    runs_root=tmp_path_factory.mktemp("runs"),
                    rounds=2,
                    command=["t"],
                )
            )
        return result.run_dir.path

    return asyncio.run(go())


@pytest.mark.parametrize("audience", ["facilitator", "participant"])
def test_no_payload_runs_loads_or_adds_an_element(run_dir: Path, audience: str) -> None:
    path = write_html(run_dir, audience)  # type: ignore[arg-type]
    with chromium() as browser:
        context = browser.new_context()
        page = context.new_page()
        requests: list[str] = []
        errors: list[str] = []
        context.on("request", lambda r: requests.append(r.url))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(path.resolve().as_uri())
        page.wait_for_selector("html[data-ready]", timeout=10_000)
        for link in page.locator("a[href^='javascript']").all():
            link.click()
        assert page.evaluate("typeof window.__pwned") == "undefined"
        assert requests == [path.resolve().as_uri()], "nothing else was fetched"
        assert errors == []
        body = page.locator("main, body").first
        for tag in ("svg[onload]", "iframe", "object", "base", "style", "link", "img"):
            assert page.locator(f"body {tag}").count() == 0, tag
        assert body.evaluate("b => getComputedStyle(b).display") != "none"
        text = page.locator("body").inner_text()
        shown = 0
        for payload in PAYLOADS:
            visible = re.sub(r"\s+", " ", payload).strip()
            shown += visible[:30] in re.sub(r"\s+", " ", text)
        assert shown >= len(PAYLOADS) - 1, "the payloads read back as text"
        assert 'window.__pwned=9">Kurds' in text, "a card's name is text too"
        context.close()
