"""The debrief: what a facilitator takes into the room after a session.

runs/<id>/debrief.md and debrief.html: what was agreed, each party against its walk-away
point, the turning points (the facilitator's tags and what the record shows), key quotes
with their event numbers, and questions for each stakeholder team. Every figure comes from
`metrics.compute_metrics`, so the debrief and the metrics never disagree; every sentence
comes from evals/debrief.yaml (debrief_texts), so a workshop can reword it.

It shows hidden scores and private play: it is the facilitator's document. The HTML has no
script and a strict CSP; run text is escaped in both files (debrief_render).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..evals import PartyMetrics, RunMetrics, compute_metrics
from ..files import write_text_atomic
from ..protocol import score
from ..run import RunDir, load_snapshot
from ..scenario import LoadedScenario
from .charts import score_chart, timeline_chart
from .debrief_render import Block, Section, to_html, to_markdown
from .debrief_texts import DebriefTexts, fill, load_texts
from .tags import read_annotations
from .timeline import timeline
from .viewer import standing_scores


def write_debrief(run_dir: Path, texts: Path | None = None) -> tuple[Path, Path]:
    """Write runs/<id>/debrief.md and debrief.html; returns their paths."""
    run_dir = Path(run_dir)
    md, page = render_debrief(run_dir, texts)
    paths = run_dir / "debrief.md", run_dir / "debrief.html"
    write_text_atomic(paths[0], md)
    write_text_atomic(paths[1], page)
    return paths


def render_debrief(run_dir: Path, texts: Path | None = None) -> tuple[str, str]:
    """The debrief as (Markdown, HTML), written nowhere (`majlis serve` shows it live)."""
    run = load_run(Path(run_dir), load_texts(texts))
    title = fill(run.t.title, run.values)
    meta = " · ".join(str(run.values[k]) for k in ("run_id", "created", "kind"))
    builders: dict[str, Callable[[Run], list[Block]]] = {
        "agreed": agreed,
        "results": results,
        "charts": charts,
        "turning_points": turning_points,
        "quotes": quotes,
        "questions": questions,
    }
    sections = []
    for name, build in builders.items():
        sec = getattr(run.t.sections, name)
        heading, intro = fill(sec.title, run.values), fill(sec.intro, run.values)
        sections.append(Section(name, heading, intro, build(run)))
    return to_markdown(title, meta, sections), to_html(title, meta, sections)


@dataclass
class Run:
    """Everything the debrief reads, loaded once, and the words to say it with."""

    loaded: LoadedScenario
    events: list[dict[str, Any]]
    metrics: RunMetrics
    tags: list[dict[str, Any]]
    votes: dict[str, str | None]  # each party's last vote
    package: dict[str, str | None]  # agreed: the deal, or issue by issue
    values: dict[str, object]  # the run-level placeholders
    t: DebriefTexts

    def name(self, party: str) -> str:
        card = self.loaded.cards.get(party)
        return card.name if card else party.replace("_", " ").capitalize()

    def issue(self, issue_id: str) -> str:
        return next((i.title for i in self.loaded.scenario.agenda if i.id == issue_id), issue_id)

    def option(self, issue_id: str, option: str | None) -> str:
        issues = [i for i in self.loaded.scenario.agenda if i.id == issue_id]
        labels = {o.id: o.label for i in issues for o in i.options}
        return self.t.labels.no_agreement if option is None else labels.get(option, option)

    def event(self, seq: int) -> dict[str, Any]:
        if not hasattr(self, "_by_seq"):
            self._by_seq = {e["seq"]: e for e in self.events}
        return self._by_seq.get(seq, {})

    def title(self, seq: int) -> str:
        return str(self.event(seq).get("content", {}).get("title", "?"))

    def passed(self) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """(tally, proposal) of the vote that made the deal; None if the tally names no
        proposal (a hand-edited log): there is then no proposal to quote."""
        tallies = (e for e in self.events if e["type"] == "tally" and e["content"].get("passed"))
        tally = next(tallies, None)
        prop = self.event(tally["content"]["proposal_seq"]) if tally else {}
        return (tally, prop) if tally and prop.get("type") == "proposal" else None

    def tags_by_priority(self) -> list[dict[str, Any]]:
        order = self.t.labels.priority_tags
        return sorted(self.tags, key=lambda a: (_index(order, a["tag"]), a["seq"]))

    def na(self, value: object) -> object:
        return self.t.labels.not_applicable if value is None else value


def load_run(path: Path, t: DebriefTexts) -> Run:
    rd = RunDir.open(path)
    manifest, outcome, loaded = rd.read_manifest(), rd.read_outcome(), load_snapshot(rd)
    events = sorted(rd.read_events()[0], key=lambda e: e["seq"])  # whole, or a RunError
    m = compute_metrics(loaded, events)
    votes = {e["speaker"]: e["content"].get("vote") for e in events if e["type"] == "vote"}
    if outcome:
        votes = {p: r.vote for p, r in outcome.parties.items()}
    deal = dict(m.package) if m.deal and m.package else None
    package = dict(outcome.package) if outcome else (deal or dict(m.agreement))
    branch_id = outcome.branch if outcome else m.branch
    branch = loaded.scenario.branch(branch_id)  # None: a branch the recorded scenario lacks
    values: dict[str, object] = {
        "scenario": loaded.scenario.title,
        "run_id": manifest.run_id,
        "created": manifest.created.replace("T", " ").replace("+00:00", " UTC"),
        "kind": t.labels.kinds[outcome.kind if outcome else m.kind],
        "branch": loaded.scenario.branch_label(branch_id),
        "branch_description": branch.description.strip() if branch else "",
        "deal_round": m.deal_round or t.labels.not_applicable,
        "rounds": m.rounds,
    }
    return Run(loaded, events, m, read_annotations(path), votes, package, values, t)


def event_text(e: dict[str, Any]) -> str:
    """The words of an event: a message, a side message, a reasoning, a scenario event."""
    c = e.get("content") or {}
    return next((c[k] for k in ("text", "reasoning", "error") if str(c.get(k) or "").strip()), "")


# ---------------------------------------------------------------------------------------
# The sections


def agreed(run: Run) -> list[Block]:
    kind = "deal" if run.metrics.deal else ("partial" if any(run.package.values()) else "none")
    rows = [[run.issue(i), run.option(i, o)] for i, o in run.package.items()]
    head = [run.t.labels.issue, run.t.labels.option]
    return [("p", fill(run.t.outcome[kind], run.values)), ("table", head, rows)]


def results(run: Run) -> list[Block]:
    lab, rows = run.t.labels, []
    for p, pm in run.metrics.parties.items():
        margin = run.na(None if pm.margin is None else f"{pm.margin:+d}" if pm.margin else "0")
        veto = lab.yes if run.loaded.cards[p].veto else ""
        vote = run.votes.get(p) or lab.no_vote
        rows.append([run.name(p), veto, run.na(pm.score), pm.threshold, margin, vote])
    head = [lab.party, lab.veto, lab.score, lab.threshold, lab.margin, lab.vote]
    scored = fill(run.t.scored[run.metrics.scored or "none"], run.values)
    return [("p", scored), ("table", head, rows)]


def charts(run: Run) -> list[Block]:
    """The score of the standing proposal by round and the timeline: SVG in the HTML (and
    so in the PDF and the PNGs), the same figures as tables in the Markdown."""
    parties = [p for p in run.loaded.scenario.parties if p in run.loaded.cards]
    cards = [run.loaded.cards[p] for p in parties]
    data = standing_scores(run.loaded, run.events)
    drawn = [{"id": c.id, "name": c.name, "color": c.color} for c in cards]
    head = [run.t.labels.round, *(c.name for c in cards)]
    rows = [
        [r, *(run.na(data["series"][p][i]) for p in parties)] for i, r in enumerate(data["rounds"])
    ]
    items = timeline(run.loaded, run.events, run.tags, facilitator=True)
    colors = {c.id: c.color for c in cards}
    lines = [[i["round"], f"#{i['seq']}", i["label"]] for i in items]
    return [
        ("chart", "scores", score_chart(data, drawn), head, rows),
        (
            "chart",
            "timeline",
            timeline_chart(items, data["rounds"], colors),
            [*head[:1], "#", ""],
            lines,
        ),
    ]


def turning_points(run: Run) -> list[Block]:
    """The facilitator's tags (turning points, concessions, threats first), then what the
    record shows, in transcript order: the deal, others' proposals that lifted a veto party
    over its walk-away point, scenario events and who moved after them, failed turns and
    red lines crossed."""
    lines, found = run.t.lines, []
    for a in run.tags_by_priority():
        e = run.event(a["seq"])
        where = {"round": e.get("round", "?"), "speaker": run.name(e.get("speaker", "?"))}
        found.append((-1, fill(lines.tag, {**a, **where, "tag": _tag(a["tag"])})))
    if made := run.passed():
        tally, prop = made
        v = {"round": tally["round"], "proposal_seq": prop["seq"], "tally_seq": tally["seq"]}
        found.append((tally["seq"], fill(lines.deal, {**v, "speaker": run.name(prop["speaker"])})))
    for p in run.loaded.scenario.deal_rule.veto:
        card, before = run.loaded.cards[p], None
        for e in (e for e in run.events if e["type"] == "proposal"):
            now = score(card.scores, e["content"]["package"])
            if before is not None and before < card.threshold <= now and e["speaker"] != p:
                v = {"seq": e["seq"], "round": e["round"], "speaker": run.name(e["speaker"])}
                v |= {"party": card.name, "score": now, "threshold": card.threshold}
                found.append((e["seq"], fill(lines.crossing, {**v, "before": before})))
            before = now
    for inj in run.metrics.injects:
        moved = ", ".join(f"{run.name(p)} {n}" for p, n in inj.changed.items() if n is not None)
        v = {"seq": inj.seq, "round": inj.round, "title": run.title(inj.seq)}
        found.append((inj.seq, fill(lines.inject, {**v, "moved": run.na(moved or None)})))
    for e in (e for e in run.events if e["type"] == "error"):
        c = e["content"]
        v = {"seq": e["seq"], "round": e["round"], "party": run.name(c.get("party", e["speaker"]))}
        v |= {"task": c.get("task", "turn"), "attempts": c.get("attempts", 0)}
        found.append((e["seq"], fill(lines.failed_turn, v)))
    for p, pm in run.metrics.parties.items():
        for b in pm.red_line_breaches:
            v = {"seq": b.seq, "round": b.round, "party": run.name(p), "act": _act(run, b.act)}
            v |= {"issue": run.issue(b.issue), "option": run.option(b.issue, b.option)}
            found.append((b.seq, fill(lines.breach, v)))
    found.sort(key=lambda f: f[0])  # stable: the tags keep their priority order at the top
    return [("ul", [text for _, text in found] or [lines.nothing])]


def quotes(run: Run) -> list[Block]:
    """Tagged events first, then the words that came with the deal, the biggest move after
    each scenario event, and each party's last public words; shown in transcript order."""
    why, msgs = run.t.lines.quote_reasons, [e for e in run.events if e["type"] == "message"]
    picks = [(a["seq"], fill(why["tag"], {"tag": _tag(a["tag"])})) for a in run.tags_by_priority()]
    if made := run.passed():
        said = [m for m in msgs if m["speaker"] == made[1]["speaker"] and m["seq"] < made[1]["seq"]]
        picks += [(m["seq"], why["deal"]) for m in said[-1:]]
    for inj in run.metrics.injects:
        moved = {p: n for p, n in inj.changed.items() if n}
        top = max(moved, key=lambda p: moved[p]) if moved else None
        after = [m for m in msgs if m["speaker"] == top and m["seq"] > inj.seq]
        picks += [(m["seq"], fill(why["inject"], {"title": run.title(inj.seq)})) for m in after[:1]]
    for p in run.loaded.scenario.parties:
        picks += [(m["seq"], why["closing"]) for m in [m for m in msgs if m["speaker"] == p][-1:]]
    chosen: dict[int, str] = {}
    for seq, reason in picks:
        if len(chosen) < run.t.limits.max_quotes and event_text(run.event(seq)):
            chosen.setdefault(seq, reason)
    out: list[Block] = []
    for seq, reason in sorted(chosen.items()):
        e = run.event(seq)
        v = {"seq": seq, "round": e["round"], "speaker": run.name(e["speaker"]), "reason": reason}
        text = _clip(event_text(e), run.t.limits.quote_chars)
        out.append(("quote", seq, fill(run.t.lines.quote, v), text))
    return out or [("p", run.t.lines.nothing)]


def questions(run: Run) -> list[Block]:
    out: list[Block] = []
    for p, pm in run.metrics.parties.items():
        facts = party_facts(run, p, pm)
        asked = [
            fill(q.text, facts | item)
            for q in run.t.questions
            for item in _asks(run, p, pm, q.when)
        ]
        out += [("h3", run.name(p)), ("p", run.loaded.cards[p].role), ("ul", asked)]
    return out


def party_facts(run: Run, party: str, pm: PartyMetrics) -> dict[str, object]:
    """Every placeholder a question may use about one party (debrief_texts.PARTY_KEYS)."""
    card = run.loaded.cards[party]
    first, last = pm.first_offer, pm.last_offer
    return {
        "name": card.name,
        "role": card.role,
        "stance": card.public_stance.strip(),
        "interest": (card.private_interests or [card.private_brief.strip()])[0],
        "score": run.na(pm.score),
        "threshold": pm.threshold,
        "margin": run.na(pm.margin),
        "margin_abs": run.na(None if pm.margin is None else abs(pm.margin)),
        "vote": run.votes.get(party) or run.t.labels.no_vote,
        "first_offer": run.na(first),
        "last_offer": run.na(last),
        "conceded": run.na(None if first is None or last is None else first - last),
        "offers": len(pm.offers),
        "position_consistency": _pct(run, pm.position_consistency),
        "inconsistent_votes": sum(not v.consistent for v in pm.votes),
        "wrong_deals": pm.wrong_deals,
        "backed": pm.backed,
        "messages": pm.messages,
        "talk_share": _pct(run, pm.talk_share),
        "failed_turns": pm.failed_turns,
        "outcome": run.values["kind"],
        "branch": run.values["branch"],
    }


def _asks(run: Run, party: str, pm: PartyMetrics, when: str) -> list[dict[str, object]]:
    """The extra placeholders for each time a question is put to the party: none, once
    (an empty dict), or once per red line or breach."""
    card, lim = run.loaded.cards[party], run.t.limits
    if when == "red_line":
        return [
            {"issue": run.issue(r.issue), "option": run.option(r.issue, r.option)}
            | {"why": r.why.strip().rstrip(".") or run.t.labels.no_reason}
            for r in card.red_lines
        ]
    if when == "red_line_breached":
        return [
            {"issue": run.issue(b.issue), "option": run.option(b.issue, b.option)}
            | {"seq": b.seq, "act": _act(run, b.act)}
            for b in pm.red_line_breaches
        ]
    m, offers = pm.margin, pm.offers
    tests: dict[str, Callable[[], bool]] = {
        "always": lambda: True,
        "veto": lambda: card.veto,
        "margin_comfortable": lambda: m is not None and m > lim.thin_margin,
        "margin_thin": lambda: m is not None and 0 <= m <= lim.thin_margin,
        "margin_below": lambda: m is not None and m < 0,
        "no_package": lambda: m is None,
        "conceded": lambda: len(offers) >= 2 and offers[0].score > offers[-1].score,
        "held_firm": lambda: len(offers) >= 2 and offers[0].score <= offers[-1].score,
        "no_offers": lambda: not offers,
        "low_position_consistency": lambda: _below(pm.position_consistency, lim.low_consistency),
        "inconsistent_votes": lambda: any(not v.consistent for v in pm.votes),
        "wrong_deals": lambda: pm.wrong_deals > 0,
        "failed_turns": lambda: pm.failed_turns > 0,
        "voted_against_deal": lambda: run.metrics.deal and run.votes.get(party) == "reject",
    }
    return [{}] if tests[when]() else []


def _below(value: float | None, limit: float) -> bool:
    return value is not None and value < limit


def _index(order: list[str], tag: str) -> int:
    return order.index(tag) if tag in order else len(order)


def _pct(run: Run, value: float | None) -> object:
    return run.na(None if value is None else f"{round(value * 100)}%")


def _tag(tag: str) -> str:
    return tag.replace("_", " ")


def _act(run: Run, act: str) -> str:
    return run.t.labels.proposal if act == "proposal" else run.t.labels.accept


def _clip(text: str, n: int) -> str:
    text = text.strip()
    return text if len(text) <= n else text[:n].rstrip() + "…"
