"""`majlis fork` (issue 17): a new run from the state of another just before one of its
events, with changes, built on the parent's langgraph checkpoints rather than a replay."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import openai
import pytest
from conftest import REPO, FailAfter, chromium, events_of
from typer.testing import CliRunner

from majlis.cli import app
from majlis.compare import fork_pairs
from majlis.model import (
    LoopbackServer,
    ModelConfig,
    ResponseCache,
    party_of,
    scripted_responder,
)
from majlis.run import (
    ForkOptions,
    RunDir,
    RunOptions,
    children_of,
    fork_session,
    resume_session,
    run_session,
)
from majlis.workshop import build_data, write_html

runner = CliRunner()
EDITED = "Washington will pull every soldier out of Iraq by the spring."


def first(events: list[dict[str, Any]], type_: str, speaker: str, after: int = 0) -> int:
    """The seq of the first event of this type by this speaker from seq `after` on."""
    return next(
        e["seq"]
        for e in events
        if e["type"] == type_ and e["speaker"] == speaker and e["seq"] >= after
    )


def prompts(requests: list[dict[str, Any]]) -> list[str]:
    """Each request's messages as one text (what the model read)."""
    return ["\n".join(m["content"] for m in body["messages"]) for body in requests]


async def scripted_run(home: Path, runs: Path, run_id: str = "parent", **fields: Any) -> Path:
    opts = RunOptions(
        model=ModelConfig(model="scripted"), home=home, runs_root=runs, rounds=2, run_id=run_id
    )
    for name, value in fields.items():
        setattr(opts, name, value)
    return (await run_session(opts)).run_dir.path


def folders(runs: Path) -> set[str]:
    return {p.name for p in runs.iterdir() if p.is_dir()}


async def test_fork_with_another_model_shares_the_past_and_calls_for_none_of_it(
    home: Path, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    cache = ResponseCache(tmp_path / "cache.sqlite")
    with LoopbackServer(scripted_responder) as server:
        model = ModelConfig(model="scripted", base_url=server.base_url)
        parent = await scripted_run(home, runs, model=model, seed=7, cache=cache)
        parent_events = events_of(parent)
        at = first(parent_events, "message", "washington")  # round 1, after sudani's turn
        requests, hits = server.calls, cache.stats.hits
        child = await fork_session(
            ForkOptions(
                parent=parent, at=at, party_models={"washington": "scripted:firm"}, cache=cache
            )
        )
        sent = server.requests[requests:]
        hits = cache.stats.hits - hits

    events = events_of(child)
    point = child.manifest.parent.seq  # type: ignore[union-attr]
    # the fork restarts washington's turn: its private note comes from the same call
    assert point == at - 1 and parent_events[point]["type"] == "private_note"
    assert events[:point] == parent_events[:point], "the shared part is the parent's, as written"
    assert events[point]["speaker"] == "washington" and events[point]["seq"] == point
    assert [e["seq"] for e in events] == list(range(len(events)))
    assert events[-1]["type"] == "outcome" and child.manifest.status == "complete"

    manifest = RunDir(child.run_dir.path).read_manifest()
    assert manifest.schema_version == 4
    assert manifest.parent is not None and manifest.changes is not None
    assert (manifest.parent.run_id, manifest.parent.path) == ("parent", str(parent))
    assert manifest.parent.checkpoint_id
    assert manifest.changes.models == {"washington": "scripted:firm"}
    assert manifest.parties["washington"].model == "scripted:firm"
    assert manifest.parties["sudani"] == RunDir(parent).read_manifest().parties["sudani"]
    assert child.run_dir.path.parent == runs, "made beside its parent"

    # every call the child made (to the server or answered by the cache) is one of its own
    # moves after the fork point: the part before it was never asked for again
    own = [e for e in events if e["seq"] >= point and e.get("usage")]
    assert len(sent) + hits == len(own) > 0
    assert sent[0]["model"] == "scripted:firm", "the first call is washington's turn"
    assert len(own) < child.outcome.calls, "the outcome counts the shared calls too"


async def test_an_edited_message_is_in_the_record_and_every_later_prompt(
    home: Path, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    with LoopbackServer(scripted_responder) as server:
        model = ModelConfig(model="scripted", base_url=server.base_url)
        parent = await scripted_run(home, runs, model=model)
        parent_events = events_of(parent)
        at = first(parent_events, "message", "washington")
        before = server.calls
        child = await fork_session(ForkOptions(parent=parent, at=at, edit=EDITED))
        later = prompts(server.requests[before:])

    events = events_of(child)
    assert child.manifest.parent.seq == at  # type: ignore[union-attr]
    assert child.manifest.changes.edit.model_dump() == {"seq": at, "text": EDITED}  # type: ignore[union-attr]
    assert events[:at] == parent_events[:at]
    edited, original = events[at], parent_events[at]
    assert edited["content"]["text"] == EDITED and edited["edited"] is True
    assert edited["content"]["positions"] == original["content"]["positions"]
    assert {k: v for k, v in edited.items() if k not in ("content", "edited")} == {
        k: v for k, v in original.items() if k != "content"
    }
    # the rest of washington's turn stands as the parent had it; the next turn is new
    turn_end = first(parent_events, "private_note", "tehran")
    assert events[at + 1 : turn_end] == parent_events[at + 1 : turn_end]
    assert RunDir(child.run_dir.path).read_events()[0][at]["edited"] is True  # a valid event

    assert later, "the child played on"
    for text in later:  # every party sees the public record: the new words, not a mark
        assert EDITED in text
        assert '"edited"' not in text


async def test_an_edited_side_message_stays_between_its_two_parties(
    home: Path, tmp_path: Path
) -> None:
    secret = "Only Tehran hears this: we can live with a slower withdrawal."
    with LoopbackServer(scripted_responder) as server:
        model = ModelConfig(model="scripted", base_url=server.base_url)
        parent = await scripted_run(home, tmp_path / "runs", model=model)
        parent_events = events_of(parent)
        at = first(parent_events, "side_message", "washington")
        between = {"washington", parent_events[at]["content"]["to"]}
        before = server.calls
        child = await fork_session(ForkOptions(parent=parent, at=at, edit=secret))
        later = server.requests[before:]

    events = events_of(child)
    assert events[at]["content"]["text"] == secret
    assert events[at]["audience"] == parent_events[at]["audience"]
    read = [
        (party_of(body), secret in text) for body, text in zip(later, prompts(later), strict=True)
    ]
    assert {party for party, saw in read if saw} == between
    assert all(saw for party, saw in read if party in between), "in each of their later prompts"


async def test_an_inject_is_announced_at_the_fork_point(home: Path, tmp_path: Path) -> None:
    parent = await scripted_run(home, tmp_path / "runs")
    parent_events = events_of(parent)
    at = first(parent_events, "message", "tehran")
    child = await fork_session(
        ForkOptions(parent=parent, at=at, inject=("Ceasefire", "Both sides stop firing."))
    )
    events = events_of(child)
    point = at - 1
    assert events[:point] == parent_events[:point]
    inject = events[point]
    assert (inject["type"], inject["round"], inject["audience"]) == ("inject", 1, "all")
    assert inject["content"]["title"] == "Ceasefire"
    assert (events[point + 1]["type"], events[point + 1]["speaker"]) == ("private_note", "tehran")
    added = child.manifest.changes.inject  # type: ignore[union-attr]
    assert added is not None and (added.seq, added.title) == (point, "Ceasefire")


async def test_forking_at_a_round_opening_starts_after_it(home: Path, tmp_path: Path) -> None:
    parent = await scripted_run(home, tmp_path / "runs")
    parent_events = events_of(parent)
    opening = next(e["seq"] for e in parent_events if e["type"] == "round" and e["round"] == 2)
    first_turn = next(
        e["seq"] for e in parent_events if e["round"] == 2 and e["type"] == "private_note"
    )
    child = await fork_session(ForkOptions(parent=parent, at=opening, seed=3))
    assert child.manifest.parent.seq == first_turn  # type: ignore[union-attr]
    assert events_of(child)[:first_turn] == parent_events[:first_turn]
    assert child.manifest.seed == 3 and child.manifest.changes.seed == 3  # type: ignore[union-attr]
    assert all(m.seed == 3 for m in child.manifest.parties.values())


async def test_a_fork_of_a_fork(home: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    parent = await scripted_run(home, runs)
    parent_events = events_of(parent)
    at = first(parent_events, "message", "washington")
    child = await fork_session(ForkOptions(parent=parent, at=at, edit=EDITED, run_id="child"))
    child_events = events_of(child)
    later = first(child_events, "message", "kurds")
    grandchild = await fork_session(
        ForkOptions(
            parent=child.run_dir.path,
            at=later,
            party_models={"kurds": "scripted:soft"},
            run_id="grandchild",
        )
    )
    events = events_of(grandchild)
    point = grandchild.manifest.parent.seq  # type: ignore[union-attr]
    assert point == later - 1
    assert grandchild.manifest.parent.run_id == "child"  # type: ignore[union-attr]
    assert events[:point] == child_events[:point]
    assert events[:at] == parent_events[:at]
    assert events[at]["content"]["text"] == EDITED, "the edit its parent made stands"
    assert [e["seq"] for e in events] == list(range(len(events)))
    assert grandchild.manifest.status == "complete"
    assert [rd.run_id for rd, _ in children_of(parent)] == ["child"]
    assert [rd.run_id for rd, _ in children_of(child.run_dir.path)] == ["grandchild"]
    # the grandchild is forked again at the very message its parent edited: that turn is
    # played afresh, so the edit is gone
    again = await fork_session(ForkOptions(parent=grandchild.run_dir.path, at=at))
    assert events_of(again)[at - 1]["speaker"] == "washington"
    assert "edited" not in events_of(again)[at]


async def test_a_fork_cut_short_resumes_from_its_own_checkpoints(
    home: Path, tmp_path: Path
) -> None:
    with LoopbackServer(scripted_responder) as server:
        model = ModelConfig(model="scripted", base_url=server.base_url, max_retries=0)
        parent = await scripted_run(home, tmp_path / "runs", model=model)
        parent_events = events_of(parent)
        at = first(parent_events, "message", "washington")
        server.responder = FailAfter(4)
        with pytest.raises(openai.InternalServerError):
            await fork_session(ForkOptions(parent=parent, at=at, edit=EDITED, run_id="cut"))
        cut = parent.parent / "cut"
        assert RunDir(cut).read_manifest().status == "failed", "kept, to go on with"
        server.responder = scripted_responder
        result = await resume_session(cut)

    events = events_of(cut)
    assert result.manifest.status == "complete" and events[-1]["type"] == "outcome"
    assert [e["seq"] for e in events] == list(range(len(events)))
    assert events[:at] == parent_events[:at] and events[at]["content"]["text"] == EDITED
    assert result.manifest.parent is not None and result.manifest.parent.seq == at


def invoke(*args: str) -> Any:
    return runner.invoke(app, list(args))


def test_the_fork_command_and_its_refusals(home_copy: Path, tmp_path: Path) -> None:
    home = home_copy
    runs = home / "runs"
    parent = asyncio.run(scripted_run(home, runs))
    parent_events = events_of(parent)
    side = first(parent_events, "side_message", "washington")
    message = first(parent_events, "message", "washington")
    tehran_turn = first(parent_events, "private_note", "tehran")
    sample = runs / "sample"
    shutil.copytree(REPO / "runs" / "sample", sample)  # a run kept without its checkpoints
    refusals = [
        (["fork", str(runs / "nothing"), "--at", "3"], "not a majlis run"),
        (
            ["fork", str(parent), "--at", "9999"],
            f"no event 9999 (its events: 0 to {len(parent_events) - 1})",
        ),
        (["fork", str(parent), "--at", "-1"], "no event -1"),
        (["fork", str(parent), "--at", str(side)], f"nearest: {message}, {tehran_turn}"),
        (["fork", str(parent)], "--at SEQ"),
        (["fork", str(parent), "--edit", f"{tehran_turn}=Hello"], "not a message"),
        (["fork", str(parent), "--at", "3", "--edit", f"{message}=Hello"], "an edit forks at"),
        (
            ["fork", str(parent), "--at", str(message), "--party-model", "nobody=scripted"],
            "unknown party 'nobody'",
        ),
        (["fork", str(parent), "--at", str(message), "--inject", "no colon"], "TITLE: TEXT"),
        (
            ["fork", str(parent), "--at", str(message), "--variant", "nope"],
            "unknown variant 'nope'",
        ),
        (["fork", str(sample), "--at", "3"], "no checkpoint.sqlite"),
    ]
    for args, said in refusals:
        res = invoke(*args, "--quiet", "--home", str(home))
        assert res.exit_code == 2, (args, res.output)
        assert said in res.output and len(res.output.strip().splitlines()) == 1, res.output
        assert folders(runs) == {"parent", "sample"}, f"no folder left by {args}"

    words = tmp_path / "words.txt"
    words.write_text(EDITED + "\n", encoding="utf-8")
    res = invoke(
        "fork", "parent", "--at", str(message), "--edit-file", str(words),
        "--party-model", "sunnis=scripted:firm", "--quiet", "--home", str(home),
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    child = Path(res.output.strip())
    assert child.parent == runs
    manifest = RunDir(child).read_manifest()
    assert manifest.parent is not None and manifest.parent.seq == message
    assert manifest.changes is not None and manifest.changes.models == {"sunnis": "scripted:firm"}
    assert events_of(child)[message]["content"]["text"] == EDITED
    assert manifest.status == "complete"


def test_the_viewer_links_a_fork_and_its_parent(home: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    parent = asyncio.run(scripted_run(home, runs))
    at = first(events_of(parent), "message", "washington")
    forked = asyncio.run(fork_session(ForkOptions(parent=parent, at=at, edit=EDITED)))
    child = forked.run_dir.path

    data = build_data(child, "facilitator")
    assert data["run"]["parent"] == {"id": "parent", "seq": at}
    assert build_data(parent, "facilitator")["run"]["children"] == [{"id": child.name, "seq": at}]
    public = build_data(child, "participant")
    assert "parent" not in public["run"] and "children" not in public["run"]
    assert all("edited" not in e for e in public["events"]), "the room never knew"

    write_html(parent, "facilitator")
    page_path = write_html(child, "facilitator")
    with chromium() as browser:
        page = browser.new_page()
        page.goto(page_path.resolve().as_uri())
        page.wait_for_selector("html[data-ready]", timeout=10_000)
        assert page.locator(f"#ev-{at} .badge.edited").count() == 1
        assert page.locator(".badge.edited").count() == 1
        link = page.locator("#fork-parent a")
        assert link.inner_text() == "parent"
        link.click()
        page.wait_for_selector("html[data-ready]", timeout=10_000)
        assert page.url == (parent / "view-facilitator.html").resolve().as_uri()
        back = page.locator("#fork-children a")
        assert back.inner_text() == child.name
        assert page.locator("#fork-children").inner_text() == f"Forks: {child.name} at #{at}"


async def test_compare_pairs_a_run_with_its_forks(home: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    parent = await scripted_run(home, runs)
    parent_events = events_of(parent)
    at = first(parent_events, "message", "washington")
    firm = await fork_session(
        ForkOptions(parent=parent, at=at, party_models={"washington": "scripted:firm"}, run_id="a")
    )
    edited = await fork_session(ForkOptions(parent=parent, at=at, edit=EDITED, run_id="b"))
    await fork_session(ForkOptions(parent=firm.run_dir.path, at=at, run_id="c"))  # a grandchild
    cut = runs / "d"  # a fork that never finished: no outcome
    shutil.copytree(edited.run_dir.path, cut)
    (cut / "outcome.json").unlink()
    manifest = json.loads((cut / "manifest.json").read_text())
    (cut / "manifest.json").write_text(json.dumps({**manifest, "run_id": "d", "status": "failed"}))

    pairs, unfinished = fork_pairs(parent)
    assert [p.child for p in pairs] == ["a", "b"] and unfinished == ["d"]
    base = json.loads((parent / "outcome.json").read_text())
    for pair, result in zip(pairs, (firm, edited), strict=True):
        mine = json.loads((result.run_dir.path / "outcome.json").read_text())
        assert pair.seq == result.manifest.parent.seq  # type: ignore[union-attr]
        for d in pair.parties:
            assert (
                d.score_diff
                == mine["parties"][d.party]["score"] - base["parties"][d.party]["score"]
            )
            assert (
                d.margin_diff
                == mine["parties"][d.party]["margin"] - base["parties"][d.party]["margin"]
            )
        assert [d.party for d in pair.parties] == list(base["parties"])
        theirs = events_of(result)
        assert pair.after["events"] == (len(parent_events) - pair.seq, len(theirs) - pair.seq)
        assert pair.after["calls"][1] == sum(1 for e in theirs[pair.seq :] if e.get("usage"))
    assert pairs[0].changes.models == {"washington": "scripted:firm"}
    assert pairs[1].changes.edit is not None

    report = tmp_path / "report"
    res = invoke("compare", str(parent), "--forks", "--out", str(report))
    assert res.exit_code == 0, res.output
    text = (report / "forks.md").read_text()
    assert "## a" in text and "## b" in text and "## c" not in text
    assert "washington plays scripted:firm" in text and f"message #{at} edited" in text
    assert "Not finished (left out): d." in text
    res = invoke("compare", str(cut), "--forks")
    assert res.exit_code == 2 and "no outcome" in res.output


@pytest.mark.parametrize("version", [3, 4])
def test_manifests_before_forks_still_read(tmp_path: Path, version: int) -> None:
    run = tmp_path / "sample"
    shutil.copytree(REPO / "runs" / "sample", run)
    data = json.loads((run / "manifest.json").read_text())
    (run / "manifest.json").write_text(json.dumps({**data, "schema_version": version}))
    manifest = RunDir(run).read_manifest()
    assert manifest.parent is None and manifest.changes is None
    assert build_data(run, "facilitator")["run"]["children"] == []
