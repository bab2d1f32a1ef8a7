"""Where two transcripts part: two runs' moves aligned slot by slot, the first difference marked.

Runs that share a seed play the same game until one side does something else, and
everything after that is a consequence. So the page lines the two runs up by slot, not by
event number (one extra side message or failed turn shifts every later seq): a slot is
one round's announcement, one party's turn (its message, stated positions, proposal and
side talk), the round's votes with their tally, or the outcome. A turn is placed by its
party's place in the round's turn order, so two runs whose orders differ part at once.

Side talk is private to its two parties; this page is for whoever runs the comparison
(who holds every run folder anyway), so it is shown and counted, marked facilitator-only.
Private notes are not moves and are left out: their wording would mark a difference
before any party did anything different. All text is escaped.
"""

from __future__ import annotations

import html
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..run import RunDir, load_snapshot
from ..scenario import LoadedScenario

ANCHOR = "first-difference"
# a slot's place in a round: announcements, then turns in order, then the votes; outcome last
INJECT, TURN, VOTES, OUTCOME = range(4)
# what differs, in words, where the part's name is not plain enough
WHAT = {
    "missing": "only one run has it",
    "party": "whose turn",
    "failed": "a failed turn",
    "result": "the tally",
}


@dataclass
class Slot:
    """One aligned row of a run: what happened there, to compare and to show."""

    key: tuple[int, int, int]  # (round, phase, place): phase INJECT..OUTCOME
    party: str = ""  # the party whose turn it is (turns only)
    parts: dict[str, Any] = field(default_factory=dict)  # what is compared, by what it is
    events: list[dict[str, Any]] = field(default_factory=list)


def slots(events: list[dict[str, Any]]) -> dict[tuple[int, int, int], Slot]:
    """A run's moves grouped into slots, keyed for alignment with another run's."""
    out: dict[tuple[int, int, int], Slot] = {}
    orders: dict[int, list[str]] = {}
    injects: defaultdict[int, int] = defaultdict(int)
    for e in events:
        r, kind, c = e["round"], e["type"], e["content"]
        if kind == "round":
            orders[r] = list(c["order"])
        elif kind == "inject":
            key = (r, INJECT, injects[r])
            injects[r] += 1
            out[key] = Slot(key, parts={"announcement": (c["id"], c["title"], c["text"])})
            out[key].events.append(e)
        elif kind in ("message", "proposal", "side_message") or _failed(e, "move"):
            party = c["party"] if kind == "error" else e["speaker"]
            order = orders.get(r, [])
            place = order.index(party) if party in order else len(order)
            key = (r, TURN, place)
            slot = out.setdefault(key, Slot(key, party=party))
            slot.events.append(e)
            _add_move(slot, e)
        elif kind in ("vote", "tally") or _failed(e, "vote"):
            key = (r, VOTES, 0)
            slot = out.setdefault(key, Slot(key, parts={"votes": {}}))
            slot.events.append(e)
            if kind == "vote":
                slot.parts["votes"][e["speaker"]] = c["vote"]
            elif kind == "tally":
                slot.parts["result"] = c["passed"]
        elif kind == "outcome":
            key = (r, OUTCOME, 0)
            parts = {"outcome": (c["kind"], c["branch"]), "package": c["package"]}
            out[key] = Slot(key, parts=parts, events=[e])
    return out


def _failed(e: dict[str, Any], task: str) -> bool:
    return e["type"] == "error" and e["content"].get("task") == task


def _add_move(slot: Slot, e: dict[str, Any]) -> None:
    c = e["content"]
    slot.parts["party"] = slot.party
    if e["type"] == "message":
        slot.parts["message"] = c["text"]
        slot.parts["positions"] = c["positions"]
    elif e["type"] == "proposal":
        slot.parts["proposal"] = c["package"]
    elif e["type"] == "side_message":
        slot.parts.setdefault("side talk", []).append((c["to"], c["text"]))
    else:
        slot.parts["failed"] = True


def differences(a: Slot | None, b: Slot | None) -> list[str]:
    """What differs between two aligned slots, by name; ["missing"] if one run has no such slot."""
    if a is None or b is None:
        return [] if a is b else ["missing"]
    names = list(dict.fromkeys([*a.parts, *b.parts]))
    return [n for n in names if a.parts.get(n) != b.parts.get(n)]


@dataclass
class Parting:
    """Two runs aligned: every slot key in order, and where they first differ (if they do)."""

    keys: list[tuple[int, int, int]]
    left: dict[tuple[int, int, int], Slot]
    right: dict[tuple[int, int, int], Slot]
    first: tuple[int, int, int] | None
    what: list[str]  # what differs at the first difference


def part(left: list[dict[str, Any]], right: list[dict[str, Any]]) -> Parting:
    """Align two runs' events slot by slot and find the first slot where they differ."""
    a, b = slots(left), slots(right)
    keys = sorted(set(a) | set(b))
    for k in keys:
        what = differences(a.get(k), b.get(k))
        if what:
            return Parting(keys, a, b, k, what)
    return Parting(keys, a, b, None, [])


def _e(x: object) -> str:
    return html.escape(str(x))


def side_by_side_body(left: Path, right: Path) -> tuple[str, str]:
    """The body of a side-by-side page for two run folders (a verdict line, then a table of
    slots) and the verdict in a few words, for the report's list of pages."""
    runs = [RunDir(p) for p in (left, right)]
    logs = [rd.read_events()[0] for rd in runs]
    seen = [load_snapshot(rd) for rd in runs]
    p = part(*logs)
    head = (
        f'<p class="verdict">The runs part at {_e(where(p, seen[0]))} '
        f"({_e(', '.join(WHAT.get(w, w) for w in p.what))}). "
        f'<a href="#{ANCHOR}">Go to the first difference</a>.</p>'
        if p.first
        else '<p class="verdict">Identical: every move of the two runs is the same.</p>'
    )
    rows = [f"<tr><th></th><th>{_e(runs[0].run_id)}</th><th>{_e(runs[1].run_id)}</th></tr>"]
    shown_round = None
    for k in p.keys:
        if k[0] != shown_round:
            shown_round = k[0]
            rows.append(f'<tr class="round"><th colspan="3">Round {k[0]}</th></tr>')
        sa, sb = p.left.get(k), p.right.get(k)
        label = _e(_label(sa or sb, seen[0] if sa else seen[1]))
        if k == p.first:
            row = f'<tr id="{ANCHOR}" class="parting"><th>&#9654; {label}<br>'
            row += '<span class="mark">the runs part here</span></th>'
        else:
            row = f"<tr><th>{label}</th>"
        cells = [_cell(sa, sb, seen[0]), _cell(sb, sa, seen[1])]
        rows.append(row + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    note = (
        '<p class="note">One row per slot: an announcement, a party\'s turn (message, stated '
        "positions, proposal, side talk), a round's votes, the outcome. Entries that differ "
        "from the other run are in bold. Side talk is facilitator-only: the parties never "
        "saw each other's.</p>"
    )
    summary = f"part at {where(p, seen[0])}" if p.first else "identical"
    return head + note + f'<table class="sbs">{"".join(rows)}</table>', summary


def _name(loaded: LoadedScenario, party: str) -> str:
    card = loaded.cards.get(party)
    return card.name if card else party


def where(p: Parting, loaded: LoadedScenario) -> str:
    """The first difference in words: "round 2, Washington's turn"."""
    assert p.first is not None
    slot = p.left.get(p.first) or p.right[p.first]
    if p.first[1] == OUTCOME:
        return "the outcome"
    return f"round {p.first[0]}, {_label(slot, loaded)}"


def _label(slot: Slot, loaded: LoadedScenario) -> str:
    phase = slot.key[1]
    if phase == TURN:
        name = _name(loaded, slot.party)
        return f"{name}' turn" if name.endswith("s") else f"{name}'s turn"
    if phase == INJECT:
        return "the announcement"
    return "the votes" if phase == VOTES else "the outcome"


def _cell(slot: Slot | None, other: Slot | None, loaded: LoadedScenario) -> str:
    """A slot's moves, compact; an entry that differs from the other run's is in bold."""
    if slot is None:
        return '<span class="note">(nothing here in this run)</span>'
    theirs = other.parts if other else {}
    out = []
    for e in slot.events:
        c, kind = e["content"], e["type"]
        if kind == "inject":
            out.append(f'<div class="msg inject"><b>{_e(c["title"])}</b>: {_e(c["text"])}</div>')
        elif kind == "message":
            text = _bold(_e(c["text"]), theirs.get("message") != c["text"])
            who = _e(_name(loaded, e["speaker"]))
            out.append(f'<div class="msg"><span class="who">{who}</span>: {text}</div>')
            out.append(_package("positions", c["positions"], theirs.get("positions")))
        elif kind == "proposal":
            out.append(_package("proposes", c["package"], theirs.get("proposal")))
        elif kind == "side_message":
            to = _e(_name(loaded, c["to"]))
            text = _bold(_e(c["text"]), (c["to"], c["text"]) not in theirs.get("side talk", []))
            out.append(f'<div class="msg side">side talk to {to} (facilitator only): {text}</div>')
        elif kind == "error":
            out.append(f'<div class="moves">{_e(c.get("task", ""))} failed</div>')
        elif kind == "vote":
            vote = _bold(_e(c["vote"]), theirs.get("votes", {}).get(e["speaker"]) != c["vote"])
            out.append(f'<span class="moves">{_e(_name(loaded, e["speaker"]))}: {vote}; </span>')
        elif kind == "tally":
            result = _bold(
                "passed" if c["passed"] else "failed", theirs.get("result") != c["passed"]
            )
            out.append(f'<div class="moves">the vote {result}</div>')
        elif kind == "outcome":
            branch = _e(loaded.scenario.branch_label(c["branch"]))
            out.append(f'<div class="moves">{_e(c["kind"])} ({branch})</div>')
            out.append(_package("package", c["package"], theirs.get("package")))
    return "".join(out)


def _package(title: str, pkg: dict[str, Any], other: Any) -> str:
    """`title: issue=option ...`, each pair that the other run's package lacks in bold."""
    theirs = other if isinstance(other, dict) else {}
    pairs = [_bold(f"{_e(k)}={_e(v or '-')}", theirs.get(k, object()) != v) for k, v in pkg.items()]
    return f'<div class="moves">{_e(title)}: {" ".join(pairs)}</div>'


def _bold(text: str, differs: bool) -> str:
    return f"<b>{text}</b>" if differs else text
