"""Where two transcripts part (issue 17): the side-by-side page aligns two runs slot by slot
and marks the first slot where their moves differ, or says the runs are identical."""

from __future__ import annotations

import asyncio
import html
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, events_of, stable

from majlis.compare import side_by_side_page
from majlis.model import ModelConfig
from majlis.run import RunOptions, run_session
from majlis.scenario import load_scenario

ANCHOR = 'id="first-difference"'
PAYLOAD = '<img src=x onerror="alert(1)">&amp;'


def play(root: Path, party_models: dict[str, ModelConfig] | None = None) -> Path:
    """A three-round scripted run with seed 7 under root; `party_models` as for `majlis run`."""
    opts = RunOptions(
        model=ModelConfig(model="scripted"),
        party_models=party_models or {},
        home=REPO,
        runs_root=root,
        rounds=3,
        seed=7,
        command=["t"],
    )
    return asyncio.run(run_session(opts)).run_dir.path


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return play(tmp_path_factory.mktemp("runs"))


def marked(page: str) -> str:
    """The row label of the slot marked as the first difference (the anchor is there once)."""
    assert page.count(ANCHOR) == 1
    row = page.split(ANCHOR, 1)[1].split("</tr>", 1)[0]
    return html.unescape(re.search(r"&#9654; ([^<]*)<br>", row).group(1))


def verdict(page: str) -> str:
    return html.unescape(
        re.sub("<[^>]+>", "", page.split('<p class="verdict">')[1].split("</p>")[0])
    )


def names() -> dict[str, str]:
    return {pid: c.name for pid, c in load_scenario("cornered-in-iraq", REPO).cards.items()}


def rewrite(run: Path, change: Any) -> None:
    """Apply `change` to each of the run's events, in place."""
    events = events_of(run)
    for e in events:
        change(e)
    (run / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))


def first_moved(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> dict[str, Any]:
    """The first event, private notes aside, where two runs of one seed stop being equal:
    they are equal up to there, so this needs no alignment."""

    def moves(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for e in stable(events):
            if e["type"] != "private_note":
                content = {k: v for k, v in e["content"].items() if k != "proposal_seq"}
                out.append({k: v for k, v in e.items() if k != "seq"} | {"content": content})
        return out

    pairs = zip(moves(a), moves(b), strict=False)
    return next(x for x, y in pairs if x != y)


def test_a_firmer_party_marks_where_the_runs_part(baseline: Path, tmp_path: Path) -> None:
    firm = play(tmp_path, {"washington": ModelConfig(model="scripted:firm")})
    page = side_by_side_page(baseline, firm, "firm vs baseline")
    moved = first_moved(events_of(baseline), events_of(firm))
    turn = moved["type"] in ("message", "proposal", "side_message")
    slot = f"{names()[moved['speaker']]}'s turn" if turn else "the votes"
    assert marked(page) == slot
    assert verdict(page).startswith(f"The runs part at round {moved['round']}, {slot} (")
    assert "Go to the first difference" in verdict(page) and 'href="#first-difference"' in page
    assert "<script" not in page  # the page is self-contained and runs nothing


def test_two_equal_runs_are_identical(baseline: Path, tmp_path: Path) -> None:
    again = play(tmp_path)
    page = side_by_side_page(baseline, again, "again")
    assert ANCHOR not in page and "the runs part here" not in page
    assert verdict(page) == "Identical: every move of the two runs is the same."
    assert page.count('<tr class="round">') == 3


def test_an_edited_proposal_is_the_marked_slot_and_text_is_escaped(
    baseline: Path, tmp_path: Path
) -> None:
    edited = tmp_path / "edited"
    shutil.copytree(baseline, edited)

    def change(e: dict[str, Any]) -> None:
        if (e["round"], e["speaker"]) == (2, "washington"):
            if e["type"] == "proposal":
                e["content"]["package"]["coalition"] = "expel"
            if e["type"] == "message":
                e["content"]["text"] = PAYLOAD
        if e["round"] == 3 and e["type"] == "message":  # a later slot differs too, unmarked
            e["content"]["text"] = "<script>alert(2)</script>"

    rewrite(edited, change)
    page = side_by_side_page(baseline, edited, f"edited {PAYLOAD}")
    assert marked(page) == "Washington's turn"
    assert verdict(page).startswith(
        "The runs part at round 2, Washington's turn (message, proposal)"
    )
    row = page.split(ANCHOR, 1)[1].split("</tr>", 1)[0]
    assert "<b>coalition=expel</b>" in row and html.escape(PAYLOAD) in row
    # no text of the run's is markup: the payloads appear escaped and only so
    assert "<img" not in page and "<script" not in page and "&amp;amp;" in page
    assert html.escape("<script>alert(2)</script>") in page


def test_a_changed_vote_marks_the_votes(baseline: Path, tmp_path: Path) -> None:
    edited = tmp_path / "edited"
    shutil.copytree(baseline, edited)
    flipped = {"accept": "reject", "reject": "accept"}

    def change(e: dict[str, Any]) -> None:
        if e["round"] == 1 and e["type"] == "vote" and e["speaker"] == "tehran":
            e["content"]["vote"] = flipped[e["content"]["vote"]]

    rewrite(edited, change)
    page = side_by_side_page(baseline, edited, "a vote")
    assert marked(page) == "the votes"
    assert verdict(page).startswith("The runs part at round 1, the votes (votes)")
