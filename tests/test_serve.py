"""`majlis serve`: the run index, the served views, and tags that round-trip through the UI.

The browser test drives Debian's Chromium (/usr/bin/chromium) through Playwright, headless,
never a browser Playwright downloads; it fails rather than skips when either is missing.
The HTTP tests check what a hostile page could try: writes without the token, with the
wrong content type or from another site, bad input, another Host, and path traversal.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import re
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from conftest import chromium, events_of

from majlis.errors import UserError
from majlis.model import ModelConfig
from majlis.run import RunOptions, run_session
from majlis.workshop import RunsServer, read_annotations, render_html, serve_runs

REPO = Path(__file__).resolve().parents[1]
OLD = "2020-01-02T03:04:05+00:00"  # the older run's creation time, so the order is known


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """Two scripted two-round runs, made in process once; the first is backdated to OLD."""
    root = tmp_path_factory.mktemp("made")
    names = []
    for _ in range(2):
        opts = RunOptions(model=ModelConfig(model="scripted"), home=REPO, runs_root=root, rounds=2)
        names.append((await run_session(opts)).run_dir.path.name)
    manifest = root / names[0] / "manifest.json"
    manifest.write_text(json.dumps(json.loads(manifest.read_text()) | {"created": OLD}))
    (root / "not-a-run").mkdir()  # no manifest.json: never listed, never served
    return root, names


@pytest.fixture
def runs(made: tuple[Path, list[str]], tmp_path: Path) -> list[Path]:
    """A fresh copy of the two runs for each test, older first."""
    shutil.copytree(made[0], tmp_path / "runs")
    return [tmp_path / "runs" / name for name in made[1]]


@pytest.fixture
def server(runs: list[Path]) -> Iterator[RunsServer]:
    srv = serve_runs(runs[0].parent).start()
    try:
        yield srv
    finally:
        srv.stop()


def page_data(text: str) -> dict[str, Any]:
    raw = re.search(r'<script type="application/json" id="majlis-data">(.*?)</script>', text, re.S)
    assert raw
    return json.loads(raw.group(1))


def first_message(run: Path) -> int:
    return next(e["seq"] for e in events_of(run) if e["type"] == "message")


# ---------------------------------------------------------------------------------------
# HTTP


async def test_index_lists_runs_newest_first(server: RunsServer, runs: list[Path]) -> None:
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", server.url) and server.port != 0
    async with httpx.AsyncClient(base_url=server.url) as c:
        r = await c.get("/")
    assert r.status_code == 200 and r.headers["x-frame-options"] == "DENY"
    order = re.findall(r'<tr data-run="([^"]+)">', r.text)
    assert order == [runs[1].name, runs[0].name]
    assert "not-a-run" not in r.text and "<script" not in r.text
    for run in runs:
        assert f'href="/runs/{run.name}/facilitator"' in r.text
        assert f'href="/runs/{run.name}/participant"' in r.text
    assert "cornered-in-iraq" in r.text and "2020-01-02 03:04:05 UTC" in r.text
    assert "partial / " in r.text or "none / " in r.text


async def test_writes_need_json_the_token_and_a_same_site_page(
    server: RunsServer, runs: list[Path]
) -> None:
    run, seq = runs[0], first_message(runs[0])
    url = f"/runs/{run.name}/tags"
    body = {"seq": seq, "tag": "anchor"}
    good = {"x-majlis-token": server.token}
    async with httpx.AsyncClient(base_url=server.url) as c:
        page = (await c.get(f"/runs/{run.name}/facilitator")).text
        assert page_data(page)["served"]["token"] == server.token
        participant = (await c.get(f"/runs/{run.name}/participant")).text
        assert server.token not in participant and "served" not in page_data(participant)

        refused = [
            await c.post(url, json=body),  # no token
            await c.post(url, json=body, headers={"x-majlis-token": "guess"}),
            await c.post(url, json=body, headers={**good, "sec-fetch-site": "cross-site"}),
            await c.post(
                url, content=json.dumps(body), headers={**good, "content-type": "text/plain"}
            ),
            await c.post(url, data={"seq": str(seq), "tag": "anchor"}, headers=good),  # a form
            await c.post(url, json=body, headers={**good, "host": "attacker.example"}),  # rebinding
            await c.post(url, json=body, headers={**good, "origin": "http://attacker.example"}),
            await c.post(url, json=body, headers={**good, "origin": "null"}),  # file:// or sandbox
            await c.post(url, json=body, headers={**good, "origin": "http://127.0.0.1:1"}),
        ]
        assert [r.status_code for r in refused] == [403, 403, 403, 415, 415, 400, 403, 403, 403]
        assert all("\n" not in r.text.strip() and r.text.strip() for r in refused)
        assert not (run / "annotations.jsonl").exists()

        own = server.url.rstrip("/")  # the server's own page, as a browser names it
        r = await c.post(url, json=body, headers={**good, "origin": own})
        assert r.status_code == 201 and r.json()["tag"] == "anchor" and r.json()["seq"] == seq
        assert [a["id"] for a in read_annotations(run)] == [r.json()["id"]]
        # a page that another Host name serves (DNS rebinding) is refused too
        assert (await c.get("/", headers={"host": "attacker.example"})).status_code == 400


@pytest.mark.parametrize(
    "body",
    [
        {"seq": 99999, "tag": "anchor"},
        {"seq": -1, "tag": "anchor"},
        {"seq": "3", "tag": "anchor"},
        {"seq": True, "tag": "anchor"},
        {"tag": "anchor"},
        {"seq": 2, "tag": ""},
        {"seq": 2, "tag": "<script>"},
        {"seq": 2, "tag": "x" * 41},
        {"seq": 2, "tag": 7},
        {"seq": 2, "tag": "anchor", "note": "n" * 4001},
        {"seq": 2, "tag": "anchor", "removed": True},
        [2, "anchor"],
        "not an object",
    ],
)
async def test_bad_tags_are_400_with_one_line(
    server: RunsServer, runs: list[Path], body: Any
) -> None:
    async with httpx.AsyncClient(base_url=server.url) as c:
        r = await c.post(
            f"/runs/{runs[0].name}/tags", json=body, headers={"x-majlis-token": server.token}
        )
    assert r.status_code == 400, r.text
    assert r.text.strip() and "\n" not in r.text.strip()
    assert read_annotations(runs[0]) == []


async def test_bad_json_and_unknown_removals_are_400(server: RunsServer, runs: list[Path]) -> None:
    headers = {"x-majlis-token": server.token, "content-type": "application/json"}
    base = f"/runs/{runs[0].name}"
    async with httpx.AsyncClient(base_url=server.url) as c:
        assert (await c.post(base + "/tags", content=b"{nope", headers=headers)).status_code == 400
        for body in ({"id": "nosuchtag"}, {"id": 5}, {}, {"id": "x", "seq": 1}):
            r = await c.post(base + "/tags/remove", content=json.dumps(body), headers=headers)
            assert r.status_code == 400 and "\n" not in r.text.strip()
        assert (await c.get(base + "/tags")).status_code == 405


@pytest.mark.parametrize(
    "path",
    [
        "/runs/../x/facilitator",
        "/runs/..%2Fx/facilitator",
        "/runs/%2E%2E/facilitator",
        "/runs/..%2F..%2Fetc%2Fpasswd/facilitator",
        "/runs/not-a-run/facilitator",
        "/runs/./participant",
        "/runs/%2Fetc/tags.csv",
        "/runs/../x/debrief",
    ],
)
async def test_run_ids_cannot_leave_the_runs_folder(server: RunsServer, path: str) -> None:
    async with httpx.AsyncClient(base_url=server.url) as c:
        assert (await c.get(path)).status_code == 404
        r = await c.post(
            path.rsplit("/", 1)[0] + "/tags",
            json={"seq": 0, "tag": "anchor"},
            headers={"x-majlis-token": server.token},
        )
        assert r.status_code == 404


def test_served_csp_adds_only_connect_self_and_the_file_stays_offline(tmp_path: Path) -> None:
    run = REPO / "runs" / "sample"
    served = render_html(run, "facilitator", [], editable=True, token="T0KEN")
    static = render_html(run, "facilitator", [])
    csp = re.search(r'Content-Security-Policy" content="([^"]+)"', served)
    assert csp and "connect-src &#x27;self&#x27;" in csp.group(1)
    assert "default-src &#x27;none&#x27;" in csp.group(1)
    assert "connect-src" not in static and "T0KEN" not in static and "fetch(" not in static
    assert served.count("<script>") == 2 and static.count("<script>") == 1
    for code in re.findall(r"<script>(.*?)</script>", served, re.S):  # each allowed by its hash
        digest = base64.b64encode(hashlib.sha256(code.encode()).digest()).decode()
        assert f"&#x27;sha256-{digest}&#x27;" in csp.group(1)
    editor = re.findall(r"<script>(.*?)</script>", served, re.S)[1]
    assert "fetch(" in editor and "innerHTML" not in editor and "http" not in editor
    with pytest.raises(ValueError):
        render_html(run, "participant", editable=True, token="T0KEN")
    with pytest.raises(ValueError):
        render_html(run, "facilitator", editable=True)
    with pytest.raises(UserError):
        serve_runs(tmp_path / "missing")
    with pytest.raises(ValueError):
        RunsServer(runs_dir=tmp_path, host="0.0.0.0")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(UserError, match="already in use"):
            serve_runs(tmp_path, taken.getsockname()[1]).start()


# ---------------------------------------------------------------------------------------
# The browser


@pytest.fixture
def browser(runs: list[Path]) -> Iterator[Any]:
    """Function-scoped and after `runs`: Playwright's sync API holds the thread's event loop,
    so the runs (made on pytest-asyncio's loop) must exist before it starts."""
    with chromium() as b:
        yield b


def test_tags_round_trip_through_the_browser(
    server: RunsServer, runs: list[Path], browser: Any
) -> None:
    run = runs[1]
    seq = first_message(run)
    other = next(e["seq"] for e in events_of(run) if e["type"] == "proposal")
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    errors: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    context.on("request", lambda r: requests.append(r.url))

    page.goto(server.url)
    page.locator(f'tr[data-run="{run.name}"] td:first-child a').click()
    page.wait_for_selector("html[data-editable]", timeout=10_000)
    assert page.url == f"{server.url}runs/{run.name}/facilitator"
    assert page.locator("button.tag-add").count() == len(events_of(run))

    # pick a tag from the list, with a note that must stay text
    article = page.locator(f'article[data-seq="{seq}"]')
    article.locator("button.tag-add").click()
    form = article.locator("form.tagger")
    form.locator("select").select_option("turning_point")
    form.locator("textarea").fill("Washington blinks <b>here</b>")
    form.locator("button.save").click()
    note = article.locator('.note[data-tag="turning_point"]')
    note.wait_for(timeout=5_000)
    assert "Washington blinks <b>here</b>" in note.inner_text()
    assert article.locator("form.tagger").count() == 0
    saved = read_annotations(run)
    assert [(a["seq"], a["tag"]) for a in saved] == [(seq, "turning_point")]

    # or type one's own; an empty one is caught before anything is sent
    target = page.locator(f'article[data-seq="{other}"]')
    target.locator("button.tag-add").click()
    target.locator("form.tagger select").select_option("")
    target.locator("form.tagger button.save").click()
    assert "Type a tag" in target.locator(".form-status").inner_text()
    target.locator('form.tagger input[name="custom"]').fill("Bluff called")
    target.locator("form.tagger button.save").click()
    target.locator('.note[data-tag="bluff_called"]').wait_for(timeout=5_000)

    # both survive a reload
    page.reload()
    page.wait_for_selector("html[data-editable]", timeout=10_000)
    assert "Washington blinks <b>here</b>" in article.locator(".note").inner_text()
    assert target.locator('.note[data-tag="bluff_called"]').count() == 1

    # export as CSV from the link
    with page.expect_download() as info:
        page.locator("#export-csv").click()
    rows = list(csv.DictReader(io.StringIO(Path(info.value.path()).read_text(encoding="utf-8"))))
    assert [(int(r["seq"]), r["tag"], r["note"]) for r in rows] == [
        (seq, "turning_point", "Washington blinks <b>here</b>"),
        (other, "bluff_called", ""),
    ]
    assert all(r["run_id"] == run.name for r in rows)

    # remove one; it is gone now and after a reload, and the file keeps the history
    article.locator('.note[data-tag="turning_point"] button.note-remove').click()
    article.locator(".note").wait_for(state="detached", timeout=5_000)
    page.reload()
    page.wait_for_selector("html[data-editable]", timeout=10_000)
    assert article.locator(".note").count() == 0
    assert [a["tag"] for a in read_annotations(run)] == ["bluff_called"]
    assert len((run / "annotations.jsonl").read_text().splitlines()) == 3

    # the index counts the tags; the participant view and the debrief have no controls
    page.goto(server.url)
    assert page.locator(f'tr[data-run="{run.name}"] td.num').inner_text() == "1"
    page.goto(f"{server.url}runs/{run.name}/participant")
    page.wait_for_selector("html[data-ready]", timeout=10_000)
    assert page.locator("button.tag-add, #served-bar, .note").count() == 0
    page.goto(f"{server.url}runs/{run.name}/debrief")
    assert "Bluff called" not in page.content()  # tags are lower-cased slugs
    assert "bluff called" in page.locator("#turning_points").inner_text()

    context.close()
    assert errors == [], errors
    assert requests and all(u.startswith(server.url) for u in requests), requests
