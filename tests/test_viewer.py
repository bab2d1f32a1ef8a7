"""The offline HTML viewer: privacy by audience, a strict CSP, inert model text, filters.

The browser tests drive Debian's Chromium (/usr/bin/chromium) through Playwright, headless,
never a browser Playwright downloads. If Chromium or Playwright is missing they fail: they
do not skip.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import shutil
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from conftest import chromium, events_of

from majlis.model import Completion, LoopbackServer, ModelConfig, scripted
from majlis.run import RunDir, RunOptions, load_snapshot, run_session
from majlis.workshop import turn_contexts
from majlis.workshop.viewer import (
    PUBLIC_CARD_FIELDS,
    build_data,
    embed_json,
    render_html,
    write_html,
)

REPO = Path(__file__).resolve().parents[1]
PAYLOAD = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
TARGET = "tehran"  # whose first public message carries the payload
BROKEN = "militias"  # whose round-2 move never parses: a failed turn
NOTE_MARK = "NOTEMARK"  # planted in every private reasoning
SIDE_MARK = "SIDEMARK"  # planted in every side message
ROUNDS = 2
ALLOWED_DIRECTIVES = {
    "default-src",
    "script-src",
    "style-src",
    "img-src",
    "base-uri",
    "form-action",
}


class PlantingModel:
    """The scripted player, but with marked private text, a payload and one broken turn."""

    def __init__(self) -> None:
        self.n = 0
        self.planted = False

    def __call__(self, body: dict[str, Any]) -> Completion:
        prompt = "\n".join(m.get("content") or "" for m in body["messages"])
        turn = json.loads(re.findall(r"<turn>(.*?)</turn>", prompt)[-1])  # re-asks come after it
        if turn["task"] == "move" and turn["party"] == BROKEN and turn["round"] == 2:
            return Completion("this is no JSON <b>at all</b>", 5, 5)
        reply = json.loads(scripted.respond(body["messages"], "scripted"))
        self.n += 1
        reply["private_reasoning"] += f" {NOTE_MARK}-{self.n}"
        if "public_message" in reply and turn["party"] == TARGET and not self.planted:
            reply["public_message"] = PAYLOAD
            self.planted = True
        if reply.get("side_message"):
            reply["side_message"]["text"] = f"{SIDE_MARK}-{self.n} \U0001f91d {PAYLOAD}"
        return Completion(json.dumps(reply), prompt_tokens=10, completion_tokens=10)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-round run over HTTP with planted text; its events are checked for the plants."""
    root = tmp_path_factory.mktemp("runs")

    async def go() -> Path:
        with LoopbackServer(PlantingModel()) as server:
            cfg = ModelConfig(model="scripted", base_url=server.base_url)
            result = await run_session(
                RunOptions(model=cfg, home=REPO, runs_root=root, rounds=ROUNDS, command=["t"])
            )
        return result.run_dir.path

    path = asyncio.run(go())
    events = events_of(path)
    types = {e["type"] for e in events}
    assert {"private_note", "side_message", "error", "proposal", "vote", "tally"} <= types
    assert any(e["type"] == "message" and e["content"]["text"] == PAYLOAD for e in events)
    return path


def payload_seq(path: Path) -> int:
    return next(
        e["seq"]
        for e in events_of(path)
        if e["type"] == "message" and e["content"]["text"] == PAYLOAD
    )


# ---------------------------------------------------------------------------------------
# Plain tests: the document itself


class Blocks(HTMLParser):
    """The CSP meta, the inline blocks and every attribute of the static markup."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.csp: str | None = None
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self.styles: list[str] = []
        self.attrs: list[tuple[str, str, str | None]] = []
        self.tags: list[str] = []
        self._open: tuple[str, dict[str, str | None]] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append(tag)
        self.attrs += [(tag, k, v) for k, v in attrs]
        if tag == "meta" and (a.get("http-equiv") or "").lower() == "content-security-policy":
            self.csp = a.get("content")
        if tag in ("script", "style"):
            self._open, self._text = (tag, a), []

    def handle_data(self, data: str) -> None:
        if self._open:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if self._open and tag == self._open[0]:
            text = "".join(self._text)
            if tag == "script":
                self.scripts.append((self._open[1], text))
            else:
                self.styles.append(text)
            self._open = None


def sha(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def directives(csp: str) -> dict[str, list[str]]:
    out = {}
    for part in csp.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


@pytest.mark.parametrize("audience", ["facilitator", "participant"])
def test_csp_is_strict_and_its_hashes_match_the_inline_blocks(run_dir: Path, audience: str) -> None:
    doc = render_html(run_dir, audience)
    p = Blocks()
    p.feed(doc)
    assert p.csp, "a Content-Security-Policy meta tag"
    for bad in ("unsafe-inline", "unsafe-eval", "unsafe-hashes", "strict-dynamic", "http", "*"):
        assert bad not in p.csp
    d = directives(p.csp)
    assert d["default-src"] == ["'none'"]
    assert set(d) <= ALLOWED_DIRECTIVES
    assert d.get("img-src", ["data:"]) == ["data:"]
    code = [text for attrs, text in p.scripts if attrs.get("type") is None]
    data = [text for attrs, text in p.scripts if attrs.get("type") == "application/json"]
    assert len(code) == 1 and len(data) == 1 and len(p.scripts) == 2
    assert d["script-src"] == [sha(code[0])]
    assert len(p.styles) == 1 and d["style-src"] == [sha(p.styles[0])]
    # the meta comes before any block it governs, and the markup has nothing inline or remote
    assert doc.index("Content-Security-Policy") < doc.index("<style") < doc.index("<script")
    assert not [a for a in p.attrs if a[1] == "style" or a[1].startswith("on")]
    assert not [a for a in p.attrs if a[1] in ("src", "href", "action", "srcset")]
    assert not {"link", "img", "iframe", "object", "embed", "base"} & set(p.tags)
    assert "@import" not in p.styles[0] and "url(" not in p.styles[0]
    assert not re.search(r"https?://", code[0].replace("http://www.w3.org/2000/svg", ""))
    for word in ("fetch(", "XMLHttpRequest", "WebSocket", "innerHTML", "outerHTML", "eval("):
        assert word not in code[0]


def test_embedded_json_cannot_break_out() -> None:
    value = {"t": "</script><!-- & <img src=x> \u2028", "n": [1, None]}
    text = embed_json(value)
    assert not set("<>&") & set(text)
    assert json.loads(text) == value


def test_participant_file_holds_nothing_private(run_dir: Path) -> None:
    doc = render_html(run_dir, "participant")
    snapshot = json.loads((run_dir / "scenario.json").read_text())
    assert NOTE_MARK not in doc and SIDE_MARK not in doc
    assert "no JSON" not in doc, "a failed turn's raw reply"
    for card in snapshot["cards"].values():
        assert card["private_brief"].strip()[:60] not in doc
        for interest in card["private_interests"]:
            assert interest not in doc
    p = Blocks()
    p.feed(doc)
    raw = next(t for a, t in p.scripts if a.get("type") == "application/json")
    data = json.loads(raw)
    assert data["audience"] == "participant"
    assert {"chart", "proposal_scores", "annotations", "contexts"}.isdisjoint(data)
    assert {i["kind"] for i in data["timeline"]} <= {"inject", "proposal", "tally", "outcome"}
    assert all(e["audience"] == "all" for e in data["events"])
    assert not {"private_note", "side_message", "error"} & {e["type"] for e in data["events"]}
    assert all(set(c) == {*PUBLIC_CARD_FIELDS, "played_by"} for c in data["parties"])
    outcome = data["outcome"]
    assert all(set(r) == {"vote"} for r in outcome["parties"].values())
    assert "failed_turns" not in outcome and "usage" not in outcome
    for key in ('"scores"', '"threshold"', '"margin"', '"score"', '"reasoning"', '"raw"'):
        assert key not in raw
    notes = [{"seq": 0, "tag": "t", "note": "FACILITATOR-ONLY-NOTE", "author": "a", "ts": "t"}]
    assert "FACILITATOR-ONLY-NOTE" not in render_html(run_dir, "participant", notes)
    # but every public event is there
    public = [e["seq"] for e in events_of(run_dir) if e["audience"] == "all"]
    assert [e["seq"] for e in data["events"]] == public


def test_write_html_is_atomic_and_defaults_beside_the_run(run_dir: Path, tmp_path: Path) -> None:
    out = write_html(run_dir, "participant")
    assert out == run_dir / "view-participant.html"
    assert out.read_text(encoding="utf-8") == render_html(run_dir, "participant")
    assert not list(run_dir.glob(".*.tmp"))
    other = write_html(run_dir, "facilitator", tmp_path / "f.html")
    assert other == tmp_path / "f.html" and "<!DOCTYPE html>" in other.read_text()
    with pytest.raises(Exception, match="audience"):
        render_html(run_dir, "room")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------
# Browser tests


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


class Page:
    """An opened file with everything the page says and asks for recorded."""

    def __init__(self, browser: Any, path: Path) -> None:
        self.url = path.resolve().as_uri()
        self.context = browser.new_context()
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.context.on("request", lambda r: self.requests.append(r.url))
        self.page.goto(self.url)
        self.page.wait_for_selector("html[data-ready]", timeout=10_000)

    def close(self) -> None:
        assert self.errors == [], self.errors
        assert self.requests == [self.url], self.requests
        assert self.page.evaluate("typeof window.__pwned") == "undefined"
        self.context.close()

    def visible(self, selector: str) -> int:
        return self.page.locator(selector).evaluate_all(
            "els => els.filter(e => e.checkVisibility()).length"
        )


@pytest.fixture
def open_page(browser: Any) -> Iterator[Any]:
    pages: list[Page] = []

    def opener(path: Path) -> Page:
        pages.append(Page(browser, path))
        return pages[-1]

    yield opener
    for p in pages:
        p.close()


def test_facilitator_view_shows_everything_and_runs_no_model_text(
    run_dir: Path, tmp_path: Path, open_page: Any
) -> None:
    seq = payload_seq(run_dir)
    notes = [
        {
            "seq": seq,
            "tag": "tactic",
            "note": "Opening bluff " + PAYLOAD,
            "author": "fac",
            "ts": "t",
        },
        {"seq": 99999, "tag": "lost", "note": "no such event", "author": "fac", "ts": "t"},
    ]
    path = tmp_path / "fac.html"
    path.write_text(render_html(run_dir, "facilitator", notes), encoding="utf-8")
    v = open_page(path)
    page = v.page

    assert page.locator("h1").inner_text() == "Cornered in Iraq"
    assert "It is early 2024" in page.locator("#situation").inner_text()
    for card in page.locator("#parties .card").all():
        assert card.evaluate("e => getComputedStyle(e).getPropertyValue('--c')").startswith("#")
    assert page.locator("#parties .card").count() == 6
    assert page.locator("#parties .badge.veto").count() == 2

    # the payload is text, nothing ran, nothing was made of it
    message = page.locator(f'article[data-seq="{seq}"]')
    assert message.get_attribute("data-type") == "message"
    assert message.get_attribute("data-speaker") == TARGET
    assert PAYLOAD in message.inner_text()
    assert page.locator("img").count() == 0
    assert page.locator("script").count() == 2
    note = message.locator(".note")
    assert note.count() == 1 and PAYLOAD in note.inner_text() and "tactic" in note.inner_text()
    assert "no such event" in page.locator("#stray-notes").inner_text()

    # private material, failed turns and hidden scores are shown
    privates = page.locator('article[data-type="private_note"]')
    assert privates.count() >= 6 * ROUNDS and NOTE_MARK in privates.first.inner_text()
    assert SIDE_MARK in page.locator('article[data-type="side_message"]').first.inner_text()
    error = page.locator('article[data-type="error"]')
    assert error.count() >= 1 and error.first.get_attribute("data-speaker") == BROKEN
    assert page.locator("#hidden-scores details.hidden-card").count() == 6
    assert page.locator("#hidden-scores .score").count() > 6 * 6
    assert page.locator("#chart svg polyline").count() >= 1
    assert page.locator("#chart g.series").count() == 6
    assert page.locator("#outcome table.results thead th").all_inner_texts()[2:] == [
        "Score",
        "Threshold",
        "Margin",
    ]
    inject = page.locator('article[data-type="inject"]')
    assert inject.count() >= 1 and "Scenario event" in inject.first.inner_text()
    assert page.locator('article[data-type="tally"]').count() == ROUNDS

    # proposals: an issue-by-option table with agenda titles and labels
    proposal = page.locator('article[data-type="proposal"]').first
    assert proposal.locator("table.pkg tr").count() == 6
    assert "Future of the anti-ISIS coalition" in proposal.inner_text()
    assert proposal.locator("td.chosen").count() == 6

    # every event has its seq on screen, in order, with no gaps
    seqs = [
        int(s)
        for s in page.locator("article.ev").evaluate_all("els => els.map(e => e.dataset.seq)")
    ]
    assert seqs == list(range(len(events_of(run_dir))))
    assert page.locator('article[data-seq="0"] .seq').inner_text() == "#0"


def test_participant_view_hides_private_material(run_dir: Path, open_page: Any) -> None:
    v = open_page(write_html(run_dir, "participant"))
    page = v.page
    for kind in ("private_note", "side_message", "error"):
        assert page.locator(f'article[data-type="{kind}"]').count() == 0
    assert page.locator("#hidden-scores, #chart, .note, .proposal-scores").count() == 0
    assert page.locator("#context, button.context-open, article.ev[data-turn]").count() == 0
    page.locator("article.ev").nth(3).click()  # a click on a turn opens nothing here
    assert page.locator("aside").count() == 0
    kinds = set(page.locator("#timeline a.tl").evaluate_all("els => els.map(e => e.dataset.kind)"))
    assert {"proposal", "tally"} <= kinds <= {"inject", "proposal", "tally", "outcome"}
    assert page.locator("#outcome table.results thead th").all_inner_texts() == [
        "Party",
        "Last vote",
    ]
    text = page.locator("body").inner_text()
    assert NOTE_MARK not in text and SIDE_MARK not in text
    assert page.locator('article[data-type="message"]').count() >= 6 * ROUNDS - 1
    assert PAYLOAD in page.locator(f'article[data-seq="{payload_seq(run_dir)}"]').inner_text()
    assert page.locator("img").count() == 0


def test_party_filter_and_search(run_dir: Path, open_page: Any) -> None:
    v = open_page(write_html(run_dir, "facilitator"))
    page = v.page
    total = page.locator("article.ev").count()
    assert v.visible("article.ev") == total
    assert v.visible(f'article[data-speaker="{TARGET}"]') > 0

    box = page.locator(f'#party-filter input[value="{TARGET}"]')
    box.uncheck()
    assert v.visible(f'article[data-speaker="{TARGET}"]') == 0
    assert v.visible('article[data-speaker="sudani"]') > 0
    assert v.visible('article[data-speaker="facilitator"]') > 0
    shown = "g => getComputedStyle(g).display !== 'none'"
    assert not page.locator(f'#chart g.series[data-party="{TARGET}"]').evaluate(shown)
    assert page.locator('#chart g.series[data-party="sudani"]').evaluate(shown)
    box.check()
    assert v.visible("article.ev") == total

    page.locator('#party-filter button[data-all="party"][data-on="0"]').click()
    assert v.visible("article.ev") == 0
    page.locator('#party-filter button[data-all="party"][data-on="1"]').click()
    assert v.visible("article.ev") == total

    search = page.locator("#search")
    search.fill(f"{NOTE_MARK}-3")  # matches one reasoning (and 30..39 if so many calls)
    shown = page.locator("article.ev").evaluate_all(
        "els => els.filter(e => e.checkVisibility()).map(e => e.dataset.type)"
    )
    assert shown and set(shown) == {"private_note"}
    assert "of" in page.locator("#count").inner_text()
    search.fill("window.__PWNED")  # case-insensitive, finds the payload as text
    shown_seqs = page.locator("article.ev").evaluate_all(
        "els => els.filter(e => e.checkVisibility()).map(e => +e.dataset.seq)"
    )
    assert payload_seq(run_dir) in shown_seqs and len(shown_seqs) < total
    assert v.visible("section.round") <= ROUNDS
    search.fill("")
    assert v.visible("article.ev") == total

    page.locator('#type-filter input[value="private_note"]').uncheck()
    assert v.visible('article[data-type="private_note"]') == 0
    assert v.visible('article[data-type="message"]') > 0


def test_interrupted_run_says_so(run_dir: Path, tmp_path: Path, open_page: Any) -> None:
    cut = tmp_path / "cut"
    shutil.copytree(run_dir, cut)
    (cut / "outcome.json").unlink()
    lines = (cut / "events.jsonl").read_text().splitlines(keepends=True)
    keep = lines[: len(lines) // 2]
    (cut / "events.jsonl").write_text("".join(keep) + lines[len(keep)][:25])
    for audience in ("facilitator", "participant"):
        v = open_page(write_html(cut, audience))
        assert "No outcome" in v.page.locator("#no-outcome").inner_text()
        assert v.page.locator("#events-cut").count() == 1
        assert v.page.locator("#outcome").count() == 0
    assert v.page.locator("article.ev").count() == sum(
        json.loads(x)["audience"] == "all" for x in keep
    )


def test_after_action_review_shows_what_each_party_knew(
    run_dir: Path, tmp_path: Path, open_page: Any
) -> None:
    """Click a turn: the panel shows that party's messages as its agent got them (checked
    against the requests themselves in test_privacy); the timeline leads to its events."""
    events = events_of(run_dir)
    first_move = next(e for e in events if e["type"] == "message")
    tagged = next(e for e in events if e["type"] == "inject")
    notes = [{"seq": tagged["seq"], "tag": "turning_point", "note": "the room turns"}]
    path = tmp_path / "fac.html"
    path.write_text(render_html(run_dir, "facilitator", notes), encoding="utf-8")
    rd = RunDir.open(run_dir)
    contexts = turn_contexts(load_snapshot(rd), rd.read_manifest(), events)
    turns = {s: t for t in contexts["turns"] for s in t["seqs"]}
    packed = build_data(run_dir, "facilitator")["contexts"]["turns"]
    assert sum(len(t["tail"]) for t in packed) < sum(len(t["user"]) for t in turns.values()) / 2
    v = open_page(path)
    page = v.page
    panel = page.locator("#context")
    assert panel.is_hidden()

    # a move: click the message itself
    page.locator(f'article[data-seq="{first_move["seq"]}"] .text').first.click()
    assert panel.is_visible()
    turn = turns[first_move["seq"]]
    assert turn["party"] == first_move["speaker"] and turn["task"] == "move"
    assert panel.locator('pre[data-role="user"]').text_content() == turn["user"]
    system = panel.locator('pre[data-role="system"]')
    assert system.text_content() == contexts["systems"][turn["party"]]
    assert not system.is_visible()  # folded until asked for
    assert "round 1" in panel.locator("h2").inner_text()
    lit = page.locator("article.ev.in-context").evaluate_all("els => els.map(e => +e.dataset.seq)")
    assert lit == turn["seqs"] and first_move["seq"] in lit
    panel.locator("button[data-close]").click()
    assert panel.is_hidden() and page.locator("article.ev.in-context").count() == 0

    # a failed turn and a ballot have their context too, through their buttons
    failed = next(e for e in events if e["type"] == "error" and e["speaker"] == BROKEN)
    page.locator(f'article[data-seq="{failed["seq"]}"] button.context-open').click()
    user = panel.locator('pre[data-role="user"]').text_content()
    assert f'"party":"{BROKEN}"' in user and '"round":2' in user and '"task":"move"' in user
    page.keyboard.press("Escape")
    assert panel.is_hidden()
    ballot = next(e for e in events if e["type"] == "vote")
    page.locator(f'article[data-seq="{ballot["seq"]}"] button.context-open').click()
    assert turns[ballot["seq"]]["task"] == "vote" and "its vote" in panel.locator("h2").inner_text()
    assert '"task":"vote"' in panel.locator('pre[data-role="user"]').text_content()
    for t in contexts["turns"]:  # each rebuilt in the page from the one before, exactly
        page.locator(f'article[data-seq="{t["seqs"][0]}"] button.context-open').click()
        assert panel.locator('pre[data-role="user"]').text_content() == t["user"], t["id"]
    assert any("\U0001f91d" in t["user"] for t in contexts["turns"])  # two UTF-16 units in JS
    page.keyboard.press("Escape")
    for e in events:  # every turn's events lead to it; nothing else does
        made_by_turn = e["type"] in ("private_note", "message", "side_message", "proposal", "vote")
        assert (e["seq"] in turns) == (made_by_turn or e["type"] == "error"), e

    # the timeline: every proposal, vote and scenario event, the tag, and a turning point
    strip = page.locator("#timeline a.tl")
    kinds = strip.evaluate_all("els => els.map(e => [e.dataset.kind, +e.dataset.seq])")
    want = {
        (k, e["seq"]) for e in events for k in ("inject", "proposal", "tally") if e["type"] == k
    }
    assert want <= {tuple(k) for k in kinds}
    assert ["tag", tagged["seq"]] in kinds
    assert any(k == "turning_point" for k, _ in kinds)
    assert page.locator("#chart line.marker-inject").count() >= 1
    tally = next(e for e in events if e["type"] == "tally")
    page.locator('#type-filter input[value="tally"]').uncheck()  # hidden: the link shows it
    assert v.visible(f'article[data-seq="{tally["seq"]}"]') == 0
    page.locator(f'#timeline a.tl[data-kind="tally"][data-seq="{tally["seq"]}"]').click()
    target = page.locator(f'article[data-seq="{tally["seq"]}"]')
    assert target.is_visible() and "flash" in (target.get_attribute("class") or "")
    assert target.evaluate(
        "e => { const r = e.getBoundingClientRect(); return r.top >= 0 && r.bottom <= innerHeight; }"
    )
