"""What the live pages show, built on the server: a trainee's briefing as HTML, the question
waiting for them in words, and the facilitator's view of the whole session.

The trainee's page gets only what `LiveSession` lets through for its party: its own brief,
its record (the privacy gate's events, in plain words) and its own question. Nothing here
puts another party's brief, scores or notes on a trainee's page; the facilitator's view has
everything.
"""

from __future__ import annotations

import html
from typing import Any

from ..protocol import Briefing
from ..run import LIVE, LiveSession, turn_block


def briefing_html(b: Briefing) -> str:
    """The party's brief as a person reads it: words and a score table, never JSON."""
    e = html.escape
    parts = [
        f'<h2>You play {e(b.name)}</h2><p class="role">{e(b.role)}</p>',
        f"<h3>The situation</h3><p>{_paragraphs(b.situation)}</p>",
        f"<h3>What you say in public</h3><p>{_paragraphs(b.public_stance)}</p>",
        "<h3>Your private brief <small>(no one else sees it)</small></h3>",
        f"<p>{_paragraphs(b.private_brief)}</p>",
    ]
    if b.private_interests:
        items = "".join(f"<li>{e(i)}</li>" for i in b.private_interests)
        parts.append(f"<h3>What you need</h3><ul>{items}</ul>")
    if b.red_lines:
        items = "".join(
            f"<li><strong>{e(r.words)}</strong>" + (f": {e(r.why)}" if r.why else "") + "</li>"
            for r in b.red_lines
        )
        parts.append(f'<h3>Your red lines (never accept these)</h3><ul id="red-lines">{items}</ul>')
    vetoes = " and ".join(e(b.names[v]) for v in b.veto)
    parts.append(
        f'<p id="walk-away">Your walk-away point is <strong>{b.threshold}</strong> (the best '
        f"package is worth {b.best} to you): a package worth less is worse for you than no "
        f"deal. A package passes with {b.min_accept} acceptances, {vetoes} among them.</p>"
    )
    return "\n".join(parts)


def scores_html(b: Briefing) -> str:
    """The party's hidden scores: one row per option, by its label, best first."""
    e = html.escape
    rows = []
    for issue in b.issues:
        options = sorted(issue.options, key=lambda o: -o.score)
        for n, o in enumerate(options):
            head = f'<th rowspan="{len(options)}">{e(issue.title)}</th>' if n == 0 else ""
            rows.append(f'<tr>{head}<td>{e(o.label)}</td><td class="num">{o.score}</td></tr>')
    return (
        '<table id="scores"><thead><tr><th>Issue</th><th>Option</th><th>Your score</th></tr>'
        f"</thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _paragraphs(text: str) -> str:
    return "<br>".join(html.escape(line) for line in text.strip().splitlines())


def question(live: LiveSession, party: str) -> dict[str, Any] | None:
    """The question waiting for `party`, in the words and labels its form needs."""
    asked = live.pending(party)
    if asked is None:
        return None
    b = live.briefs[party]
    turn = turn_block(asked["messages"][-1]["content"])
    standing = turn.get("standing_proposal")
    out: dict[str, Any] = {
        "id": asked["id"],
        "task": asked["task"],
        "round": turn.get("round"),
        "max_rounds": turn.get("max_rounds"),
        "threshold": b.threshold,
        "standing": _package_words(b, standing),
        "standing_ids": standing,
        "worth": b.value(standing) if standing else None,
        "issues": [i.model_dump() for i in b.issues],
        "recipients": [],
    }
    if asked["task"] == "move":
        side = asked["schema"]["properties"]["side_message"]["anyOf"][0]
        out["recipients"] = [
            {"id": p, "name": b.names.get(p, p)} for p in side["properties"]["to"]["enum"]
        ]
    return out


def _package_words(b: Briefing, package: dict[str, Any] | None) -> list[dict[str, str]] | None:
    if not package:
        return None
    titles = {i.id: i.title for i in b.issues}
    return [{"issue": titles.get(i, i), "option": b.label(i, o)} for i, o in package.items()]


def trainee_state(live: LiveSession, party: str) -> dict[str, Any]:
    """All a trainee's page polls for: where the session stands, their record, their
    question."""
    return {
        "status": live.status,
        "paused": live.paused,
        "record": live.record(party),
        "question": question(live, party),
    }


def console_state(live: LiveSession, tags: list[dict[str, Any]]) -> dict[str, Any]:
    """All the facilitator's console polls for: every event, every party's view and
    question, the injects pushed and not yet delivered, the tags so far."""
    with_names = {p: live.loaded.cards[p].name for p in live.parties}
    return {
        "status": live.status,
        "paused": live.paused,
        "run": str(live.run_path),
        "events": [_event_row(e, with_names) for e in list(live.events)],
        "views": {p: live.record(p) for p in live.parties},
        "names": with_names,
        "trainees": live.trainees,
        "waiting": {p: q["task"] for p in live.trainees if (q := live.pending(p))},
        "news": live.news(),
        "tags": tags,
    }


def _event_row(e: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """One event of the whole record, as the facilitator reads it."""
    c = e["content"]
    who = names.get(e["speaker"], "Facilitator")
    kind = e["type"]
    if kind == "inject":
        pushed = " (pushed live)" if str(c.get("id", "")).startswith(LIVE) else ""
        text = f"Scenario event{pushed}: {c.get('title')}: {c.get('text')}"
    elif kind in ("message", "side_message"):
        to = f" to {names.get(c.get('to'), c.get('to'))}" if kind == "side_message" else ""
        text = f"{who}{to}: {c.get('text')}"
    elif kind == "private_note":
        text = f"{who} (private note): {c.get('reasoning', '')}"
    elif kind == "proposal":
        text = f"{who} proposes: " + ", ".join(f"{i}={o}" for i, o in c["package"].items())
    elif kind == "vote":
        text = f"{who} votes {c.get('vote')}"
    elif kind == "round":
        text = c.get("text", "")
    elif kind == "tally":
        text = f"The vote {'passed' if c.get('passed') else 'failed'}"
    else:
        text = f"{kind}: " + ", ".join(f"{k}={v}" for k, v in c.items() if k != "raw")
    return {
        "seq": e["seq"],
        "round": e["round"],
        "type": kind,
        "speaker": e["speaker"],
        "text": text,
    }
