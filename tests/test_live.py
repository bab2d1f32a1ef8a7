"""`majlis serve --live`: a trainee plays a party in the browser, the facilitator steers.

The browser tests drive Debian's Chromium through Playwright (never a downloaded browser;
they fail rather than skip without it). The agents are the scripted player behind a
loopback server, which keeps every prompt, so a test can read what each party was asked.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import FEDERAL_ONLY, chromium, events_of, scripted_options
from test_privacy import CANARY, CanaryModel, may_see, plant_card_canaries

from majlis.errors import UserError
from majlis.model import Completion, LoopbackServer, ModelConfig, scripted_responder
from majlis.run import LiveSession, prepare, turn_block
from majlis.workshop import LiveServer, read_annotations, serve_live

TRAINEE = "sunnis"  # the last to speak: their proposal in round 2 is the one voted on
RED_LINE = FEDERAL_ONLY  # its guarantees=federal_only crosses a red line of the Sunni parties


def start_live(
    home: Path, runs: Path, base_url: str | None = None, **more: Any
) -> tuple[LiveSession, LiveServer]:
    """A live session with the trainee in TRAINEE's seat (by default; `humans=` for
    others), its server and its driver started. The agents: the scripted player behind
    `base_url`, or in process without one."""
    if base_url:
        more["model"] = ModelConfig(model="scripted", base_url=base_url)
    opts = scripted_options(home, runs, **({"humans": [TRAINEE], "rounds": 2} | more))
    live = LiveSession(prepare(opts))
    server = serve_live(live).start()
    live.start()
    return live, server


def until(check: Callable[[], Any], timeout: float = 30) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = check()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


class HalfToTrainee(CanaryModel):
    """test_privacy's canary player, every other side message addressed to the trainee (the
    rest go where the player sends them, which the trainee must never read)."""

    def __call__(self, body: dict[str, Any]) -> Completion:
        done = super().__call__(body)
        reply = json.loads(done.text)
        side = reply.get("side_message")
        if side and self.n % 2 == 0:
            head = side["text"].rsplit("-", 1)[0]
            reply["side_message"] = {"to": TRAINEE, "text": f"{head}-{TRAINEE}"}
            done.text = json.dumps(reply)
        return done


@pytest.fixture
def canaries(home_copy: Path, tmp_path: Path) -> Iterator[tuple[LiveSession, LiveServer, dict]]:
    """A live session on a home whose private material is marked (test_privacy's canaries),
    the agents writing markers into their notes and side messages."""
    marks = plant_card_canaries(home_copy)
    with LoopbackServer(HalfToTrainee()) as model:
        live, server = start_live(home_copy, tmp_path / "runs", model.base_url)
        try:
            yield live, server, marks
        finally:
            live.resume()
            server.stop()


def select_package(page: Any, prefix: str, package: dict[str, str]) -> None:
    for issue, option in package.items():
        page.locator(f"#{prefix}{issue}").select_option(option)


def test_a_trainee_plays_a_whole_session_in_the_browser(
    canaries: tuple[LiveSession, LiveServer, dict[str, str]],
) -> None:
    live, server, marks = canaries
    seen: list[str] = []  # every page and state the trainee's browser was sent
    with chromium() as browser:
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        link = server.links()[TRAINEE]
        state = link.replace(f"/play/{TRAINEE}?", f"/play/{TRAINEE}/state?")

        def snap() -> None:
            seen.extend([page.content(), httpx.get(state).text])

        page.goto(link)

        # the briefing in words: no JSON, no prompt tags; the scores as a table of labels
        page.locator("#briefing").wait_for()
        shown = page.inner_text("body")
        assert "{" not in shown and "<private_scores>" not in shown and '"threshold"' not in shown
        card = live.loaded.cards[TRAINEE]
        assert card.private_brief.split()[0] in shown and "Your walk-away point is" in shown
        assert "Federal forces only" in page.inner_text("#scores")
        options = sum(len(i.options) for i in live.loaded.scenario.agenda)
        assert page.locator("#scores tbody tr").count() == options

        # round 1: a move with a proposal across a red line; the trainee says no at the
        # confirmation, and the move goes without it
        page.locator("#move-form").wait_for(timeout=30_000)
        snap()
        page.fill("#message", "The Region wants guarantees first.")
        select_package(page, "pos-", RED_LINE)
        page.check("#propose")
        select_package(page, "prop-", RED_LINE)
        page.check("#side")
        page.locator("#side-to").select_option("kurds")
        page.fill("#side-text", "Stand with us on guarantees.")
        page.click("#send-move")
        page.locator("#confirm").wait_for(state="visible")
        assert "crosses your red line" in page.inner_text("#confirm-text")
        page.click("#confirm-no")

        # the vote: reloaded first, the question is still there
        page.locator("#vote-form").wait_for(timeout=30_000)
        page.reload()
        page.locator("#vote-form").wait_for(timeout=10_000)
        snap()
        page.click("#vote-reject")

        # round 2: the same proposal, confirmed this time; at the vote on it, accepting
        # asks again, and the trainee's no is a reject
        page.locator("#move-form").wait_for(timeout=30_000)
        assert "Round 2" in page.inner_text("#where")
        snap()
        page.fill("#message", "Then let the vote decide.")
        page.check("#propose")
        select_package(page, "prop-", RED_LINE)
        page.click("#send-move")
        page.locator("#confirm").wait_for(state="visible")
        page.click("#confirm-yes")
        page.locator("#vote-form").wait_for(timeout=30_000)
        assert "Federal forces only" in page.inner_text("#where")
        page.click("#vote-accept")
        page.locator("#confirm").wait_for(state="visible")
        assert "crosses your red line" in page.inner_text("#confirm-text")
        assert page.inner_text("#confirm-no") == "No: vote reject"
        page.click("#confirm-no")

        page.wait_for_selector("html[data-over]", timeout=30_000)
        assert page.get_attribute("html", "data-over") == "complete"
        assert "The session is over." in page.inner_text("#status")
        record = page.inner_text("#record-lines")
        snap()
        assert errors == [], errors

    assert live.status == "complete"
    events = events_of(live.run_path)
    mine = [e for e in events if e["speaker"] == TRAINEE]
    said = [e["content"]["text"] for e in mine if e["type"] == "message"]
    assert said == ["The Region wants guarantees first.", "Then let the vote decide."]
    assert "The Region wants guarantees first." in record
    proposals = [e for e in mine if e["type"] == "proposal"]
    assert [(e["round"], e["content"]["package"]) for e in proposals] == [(2, RED_LINE)]
    side = [e for e in mine if e["type"] == "side_message"]
    assert [(e["audience"], e["content"]["text"]) for e in side] == [
        ([TRAINEE, "kurds"], "Stand with us on guarantees.")
    ]
    assert [e["content"]["vote"] for e in mine if e["type"] == "vote"] == ["reject", "reject"]
    manifest = json.loads((live.run_path / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["parties"][TRAINEE]["played_by"] == "human"

    # privacy: the trainee was sent their own private material and what was said to them,
    # never another party's brief, interests, red-line reasons, scores or notes
    assert any(e["type"] == "side_message" and TRAINEE not in e["audience"] for e in events)
    text = "\n".join(seen)
    found = CANARY.findall(text)
    for owner, kind, _n, recipient in found:
        assert may_see(TRAINEE, owner, kind, recipient), f"the trainee saw {owner}'s {kind}"
    assert f"CANARY-{TRAINEE}-brief-x-x" in text
    assert any(o != TRAINEE and k == "side" for o, k, _n, _r in found), "side talk delivered"
    for owner, mark in marks.items():
        assert (mark in text) == (owner == TRAINEE), f"{owner}'s score table on the page"

    # the facilitator's console: the whole record is theirs to read, but the view of each
    # party shows only what that party may see
    console = httpx.get(server.links()["console"].replace("/console?", "/console/state?"))
    views = console.json()["views"]
    assert set(views) == set(live.parties)
    shown_in_views = 0
    for party, lines in views.items():
        for owner, kind, _n, recipient in CANARY.findall("\n".join(lines)):
            shown_in_views += 1
            assert may_see(party, owner, kind, recipient), f"{party}'s view: {owner}'s {kind}"
    assert shown_in_views, "the views carry the marked notes and side messages"


def answer_for(live: LiveSession, asked: list[dict[str, Any]], stop: threading.Event) -> None:
    """Plays the trainee with plain moves and rejects, keeping each question it was asked."""
    while not stop.is_set():
        q = live.pending(TRAINEE)
        if q is None:
            time.sleep(0.05)
            continue
        asked.append(q)
        if q["task"] == "vote":
            live.answer(TRAINEE, q["id"], {"private_reasoning": "", "vote": "reject"}, False)
            continue
        issues = q["schema"]["properties"]["positions"]["properties"]
        package = {i: spec["enum"][0] for i, spec in issues.items()}
        move = {
            "private_reasoning": "",
            "private_positions": package,
            "public_message": "We listen.",
            "positions": package,
            "proposal": None,
            "side_message": None,
        }
        live.answer(TRAINEE, q["id"], move, False)


def test_the_facilitator_pushes_an_inject_that_reaches_every_next_prompt(
    home: Path, tmp_path: Path
) -> None:
    text = "A drone strike hits Erbil airport; the Region demands answers."
    with LoopbackServer(scripted_responder) as model:
        live, server = start_live(home, tmp_path / "runs", model.base_url)
        asked: list[dict[str, Any]] = []
        stop = threading.Event()
        player = threading.Thread(target=answer_for, args=(live, asked, stop), daemon=True)
        try:
            with chromium() as browser:
                page = browser.new_page()
                page.goto(server.links()["console"])
                page.click("#pause")
                page.wait_for_selector('html[data-paused="true"]')
                player.start()
                time.sleep(1)  # a call made before the pause has reached the model by now
                before, asked_before = len(model.requests), len(asked)
                page.fill("#inject-title", "Strike on Erbil")
                page.fill("#inject-text", text)
                page.click("#inject-push")
                page.locator("#news li").wait_for()
                assert "Strike on Erbil" in page.inner_text("#news")
                assert len(model.requests) == before, "paused: no party was asked anything"
                page.click("#resume")

                # tag an event as it happens, and read another party's view
                first = page.locator("#event-lines li").first
                first.wait_for(timeout=30_000)
                first.locator("button.tag-this").click()
                page.fill("#tag-name", "Turning point")
                page.fill("#tag-note", "the room hears of the strike")
                page.click("#tag-save")
                until(lambda: "Tagged event" in page.inner_text("#tag-status"))
                page.locator("#view-party").select_option("tehran")
                until(lambda: "Strike on Erbil" in page.inner_text("#view-lines"))
                page.wait_for_selector('html[data-status="complete"]', timeout=60_000)
                assert page.locator("#news li").count() == 0, "delivered: no longer waiting"
        finally:
            stop.set()
            live.resume()
            server.stop()
        requests = list(model.requests)

    assert live.status == "complete"
    events = events_of(live.run_path)
    (pushed,) = [e for e in events if e["type"] == "inject" and e["content"]["id"] == "live-1"]
    assert pushed["audience"] == "all" and pushed["content"]["text"] == text
    after = requests[before:]
    parties = {turn_block(r["messages"][-1]["content"])["party"] for r in after}
    assert parties == set(live.parties) - {TRAINEE}
    assert all(text in r["messages"][-1]["content"] for r in after), "every next prompt"
    trainee_next = asked[asked_before]
    assert text in trainee_next["messages"][-1]["content"]
    assert turn_block(trainee_next["messages"][-1]["content"])["party"] == TRAINEE
    tags = read_annotations(live.run_path)
    assert [(t["seq"], t["tag"], t["note"]) for t in tags] == [
        (0, "turning_point", "the room hears of the strike")
    ]


@pytest.fixture
def waiting(home: Path, tmp_path: Path) -> Iterator[tuple[LiveSession, LiveServer]]:
    """A live session (the in-process scripted player) waiting on the trainee's first move."""
    live, server = start_live(home, tmp_path, humans=[TRAINEE, "kurds"], rounds=1)
    try:
        until(lambda: live.pending("kurds") or live.pending(TRAINEE))
        yield live, server
    finally:
        server.stop()


def test_each_page_reads_and_writes_with_its_own_key_alone(
    waiting: tuple[LiveSession, LiveServer],
) -> None:
    live, server = waiting
    links = server.links()
    key = {p: links[p].split("key=")[1] for p in (TRAINEE, "kurds")}
    base = server.url.rstrip("/")
    shown = httpx.get(links[TRAINEE])
    assert shown.status_code == 200
    (csp,) = re.findall(r'http-equiv="Content-Security-Policy" content="([^"]+)"', shown.text)
    assert csp.startswith("default-src &#x27;none&#x27;; script-src &#x27;sha256-")
    for url in (
        f"{base}/play/{TRAINEE}?key={key['kurds']}",  # another trainee's key
        f"{base}/play/{TRAINEE}/state?key=guess",
        f"{base}/play/{TRAINEE}/state",
        f"{base}/play/tehran?key={key['kurds']}",  # a party the model plays
        f"{base}/console?key={key[TRAINEE]}",  # a trainee's key on the console
        f"{base}/console/state?key={key[TRAINEE]}",
        f"{base}/runs",  # nothing of `majlis serve`'s index: it shows everything
    ):
        assert httpx.get(url).status_code in (403, 404), url
    party = "kurds" if live.pending("kurds") else TRAINEE
    asked = live.pending(party)
    assert asked is not None
    answer_url = f"{base}/play/{party}/answer"
    good = {"x-majlis-token": key[party]}
    body = {"ask": asked["id"], "answer": {"private_reasoning": "", "vote": "accept"}}
    other = "kurds" if party == TRAINEE else TRAINEE
    refused = [
        httpx.post(answer_url, json=body).status_code,  # no key
        httpx.post(answer_url, json=body, headers={"x-majlis-token": key[other]}).status_code,
        httpx.post(answer_url, content=json.dumps(body), headers=good).status_code,  # not JSON
        httpx.post(
            answer_url, json=body, headers={**good, "origin": "http://evil.test"}
        ).status_code,
        httpx.post(f"{base}/console/pause", json={}, headers=good).status_code,
    ]
    assert refused == [403, 403, 415, 403, 403]
    assert not live.paused
    bad = httpx.post(answer_url, json=body, headers=good)  # a vote for a move question
    assert bad.status_code == 400 and "\n" not in bad.text and "not a field" in bad.text
    stale = httpx.post(answer_url, json={**body, "ask": asked["id"] + 99}, headers=good)
    assert stale.status_code == 400 and "no longer waiting" in stale.text
    assert live.pending(party) == asked, "a refused answer leaves the question waiting"


def test_serve_live_refuses_bad_input_before_anything_plays(home: Path, tmp_path: Path) -> None:
    from conftest import majlis_process

    for args, said in (
        ([], "--live needs at least one --trainee PARTY"),
        (["--trainee", "nobody"], "unknown party 'nobody'"),
    ):
        res = majlis_process(
            "serve",
            str(tmp_path),
            "--live",
            "cornered-in-iraq",
            "--model",
            "scripted",
            "--home",
            str(home),
            "--port",
            "0",
            *args,
            timeout=60,
        )
        assert res.returncode == 2 and said in res.stderr + res.stdout, res.stderr
    assert list(tmp_path.iterdir()) == []


def test_stopping_the_server_ends_a_session_that_waits_for_a_trainee(
    waiting: tuple[LiveSession, LiveServer],
) -> None:
    """Ctrl-C on `majlis serve --live` while a trainee's question waits: the session ends
    (its worker threads too, or the process would hang at exit), the run folder says it
    was stopped, and the page's late answer is refused in one line."""
    live, server = waiting
    party = "kurds" if live.pending("kurds") else TRAINEE
    asked = live.pending(party)
    assert asked is not None
    server.stop()
    assert live.wait(10) and live.status == "stopped"
    assert not [t for t in threading.enumerate() if t.name == "majlis-ask"]
    manifest = json.loads((live.run_path / "manifest.json").read_text())
    assert manifest["status"] == "failed" and "stopped before its end" in manifest["error"]
    with pytest.raises(UserError, match="the session has stopped"):
        live.answer(party, asked["id"], {"private_reasoning": "", "vote": "reject"}, True)


def test_ctrl_c_on_serve_live_ends_the_process_and_says_where_the_record_is(
    home: Path, tmp_path: Path
) -> None:
    """The whole command as a facilitator meets it: Ctrl-C while the trainee's question
    waits ends the process at once (no thread left waiting for an answer), with a line
    naming the run folder, which says the session was stopped."""
    import signal
    import subprocess

    from conftest import MAJLIS, environment

    proc = subprocess.Popen(
        [*MAJLIS, "serve", str(tmp_path), "--live", "cornered-in-iraq", "--trainee", TRAINEE,
         "--model", "scripted", "--home", str(home), "--port", "0"],
        env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    said: list[str] = []
    assert proc.stdout is not None
    reader = threading.Thread(target=lambda: said.extend(iter(proc.stdout.readline, "")))
    reader.start()
    try:
        console = until(lambda: [w for line in said for w in line.split() if "/console?" in w])
        state = console[0].replace("/console?", "/console/state?")
        until(lambda: httpx.get(state).json()["waiting"] == {TRAINEE: "move"})
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    finally:
        proc.kill()
        reader.join(10)
    run = next(tmp_path.iterdir())
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
    last = said[-1].strip()
    assert last == f"the live session was stopped before its end; its record: {run}"
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "failed" and "stopped before its end" in manifest["error"]
