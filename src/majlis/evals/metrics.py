"""Objective negotiation metrics from a transcript: outcome, welfare, Pareto, behaviour.

Pure functions of a LoadedScenario and the event dicts of events.jsonl: no I/O, no model,
no text matching (only structured fields are read). A cut transcript (no outcome event)
still yields metrics, flagged `incomplete`: they describe the run as far as it got.
The Pareto frontier that welfare is measured against is computed in `pareto.py`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from statistics import fmean
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict

from ..protocol import rules
from ..scenario import AgentCard, LoadedScenario
from .pareto import Package, pareto_frontier, pareto_position, score_vector

Ev = Mapping[str, Any]
Scored = Literal["deal", "last_proposal"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Offer(_Model):
    """One of a party's proposals, scored by that party's own card."""

    seq: int
    round: int
    score: int


class RedLineBreach(_Model):
    seq: int  # the proposal or accept-vote event
    round: int
    act: Literal["proposal", "accept"]
    issue: str
    option: str


class VoteCheck(_Model):
    seq: int
    vote: Literal["accept", "reject"]
    match: float  # share of agenda issues where the package equals the voter's positions
    consistent: bool


class InjectResponse(_Model):
    seq: int
    round: int
    id: str
    changed: dict[str, int | None]  # party -> issues changed; None: no message before/after


class Welfare(_Model):
    sum: int  # of every party's score
    nash: int  # product of margins over thresholds; 0 when any margin is negative
    min_margin: int
    pareto_efficient: bool
    pareto_distance: float  # see pareto_position


class PartyMetrics(_Model):
    score: int | None  # own score of the scored package
    threshold: int
    margin: int | None  # score - threshold
    wrong_deal_ratio: float | None
    wrong_deals: int  # backed proposals scoring below its own threshold
    backed: int  # distinct proposals it made or voted to accept
    offers: list[Offer]
    first_offer: int | None
    last_offer: int | None
    concession_rate: float | None
    red_line_breaches: list[RedLineBreach]
    position_consistency: float | None
    votes: list[VoteCheck]
    vote_consistency: float | None
    messages: int
    message_chars: int
    talk_share: float | None
    failed_turns: int


class RunMetrics(_Model):
    scenario_id: str
    incomplete: bool  # no outcome event: the transcript was cut
    rounds: int  # rounds begun
    max_rounds: int
    deal: bool
    deal_round: int | None  # = rounds taken to reach the deal (rounds count from 1)
    deal_in_final_round: bool
    kind: rules.OutcomeKind
    branch: str  # the id of the scenario's branch the outcome is filed under
    branch_label: str = ""  # its words (reports before eval schema 4 have none)
    agreement: dict[str, str | None]  # issue by issue, on the latest public positions
    scored: Scored | None  # which package the scores are of
    package: dict[str, str] | None
    welfare: Welfare | None  # of the scored package; None when nothing was proposed
    parties: dict[str, PartyMetrics]
    side_talk: dict[str, dict[str, int]]  # sender -> recipient -> side messages
    injects: list[InjectResponse]
    failed_turns: int


def proposals(events: Iterable[Ev]) -> dict[int, Package]:
    return {e["seq"]: e["content"]["package"] for e in events if e["type"] == "proposal"}


def deal_tally(events: Iterable[Ev]) -> tuple[int | None, int | None]:
    """(round, proposal seq) of the tally that passed, read from tallies so a cut log counts."""
    for e in events:
        if e["type"] == "tally" and e["content"].get("passed"):
            return e["round"], e["content"]["proposal_seq"]
    return None, None


def scored_package(events: Sequence[Ev]) -> tuple[Scored | None, Package | None]:
    """The agreed package on a deal, else the last standing proposal, else nothing."""
    props = proposals(events)
    _, seq = deal_tally(events)
    if seq is not None and seq in props:
        return "deal", props[seq]
    return ("last_proposal", props[max(props)]) if props else (None, None)


def latest_positions(events: Iterable[Ev]) -> dict[str, dict[str, str]]:
    """Each party's latest public positions (later messages override earlier ones)."""
    msgs = (e for e in events if e["type"] == "message")
    return {e["speaker"]: dict(e["content"].get("positions") or {}) for e in msgs}


def margins(loaded: LoadedScenario, package: Package) -> dict[str, int]:
    c = loaded.cards
    return {p: rules.score(c[p].scores, package) - c[p].threshold for p in loaded.scenario.parties}


def nash_product(margins: Iterable[int]) -> int:
    """Product of the margins over thresholds, defined as 0 when any margin is negative:
    otherwise two parties below their walk-away points would multiply into a 'good' deal."""
    ms = list(margins)
    return 0 if any(m < 0 for m in ms) else math.prod(ms)


def welfare(loaded: LoadedScenario, package: Package) -> Welfare:
    """How good `package` is for the room as a whole, and whether any package beats it."""
    ms = margins(loaded, package)
    vector = score_vector(loaded, package)
    efficient, distance = pareto_position(vector, pareto_frontier(loaded))
    return Welfare(
        sum=sum(vector),
        nash=nash_product(ms.values()),
        min_margin=min(ms.values()),
        pareto_efficient=efficient,
        pareto_distance=distance,
    )


class Act(NamedTuple):
    """A party backing a package: proposing it, or voting to accept it."""

    seq: int
    round: int
    act: Literal["proposal", "accept"]
    proposal_seq: int
    package: Package


def backing(events: Sequence[Ev], party: str) -> list[Act]:
    """Every time the party put its name to a package: the input of wrong deals and red lines."""
    props = proposals(events)
    acts = []
    for e in events:
        c = e["content"]
        if e["speaker"] != party:
            continue
        if e["type"] == "proposal":
            acts.append(Act(e["seq"], e["round"], "proposal", e["seq"], c["package"]))
        elif e["type"] == "vote" and c.get("vote") == "accept" and c["proposal_seq"] in props:
            pkg = props[c["proposal_seq"]]
            acts.append(Act(e["seq"], e["round"], "accept", c["proposal_seq"], pkg))
    return acts


def wrong_deal_ratio(card: AgentCard, acts: Iterable[Act]) -> tuple[float | None, int, int]:
    """(ratio, wrong, backed): of the distinct proposal events the party made or accepted
    (each counted once), the share scoring below its own threshold; None if it backed none."""
    backed = {a.proposal_seq: a.package for a in acts}
    wrong = sum(rules.score(card.scores, p) < card.threshold for p in backed.values())
    return (wrong / len(backed) if backed else None), wrong, len(backed)


def red_line_breaches(card: AgentCard, acts: Iterable[Act]) -> list[RedLineBreach]:
    """One entry per (proposal or accept vote, red-line option in its package)."""
    lines = [(r.issue, r.option) for r in card.red_lines]
    return [
        RedLineBreach(seq=a.seq, round=a.round, act=a.act, issue=i, option=o)
        for a in acts
        for i, o in rules.red_line_hits(lines, dict(a.package))
    ]


def offers(card: AgentCard, events: Iterable[Ev], party: str) -> list[Offer]:
    """The party's proposals in order, each scored by its own card: its concession path."""
    mine = (e for e in events if e["type"] == "proposal" and e["speaker"] == party)
    return [
        Offer(
            seq=e["seq"], round=e["round"], score=rules.score(card.scores, e["content"]["package"])
        )
        for e in mine
    ]


def concession_rate(offers: Sequence[Offer]) -> float | None:
    """Own score given up per round: (first offer - last offer) / (last round - first round).
    Positive concedes, negative hardens; None without offers in two different rounds."""
    if len(offers) < 2 or offers[-1].round == offers[0].round:
        return None
    return (offers[0].score - offers[-1].score) / (offers[-1].round - offers[0].round)


def share_equal(a: Mapping[str, Any], b: Mapping[str, Any], issues: Sequence[str]) -> float:
    """Share of the agenda issues on which both name the same option."""
    return sum(a.get(i) is not None and a.get(i) == b.get(i) for i in issues) / len(issues)


def position_consistency(events: Iterable[Ev], party: str, issues: Sequence[str]) -> float | None:
    """Per move, the share of issues where public = private positions; the mean over moves."""
    shares, private = [], None
    for e in events:
        if e["speaker"] != party:
            continue
        if e["type"] == "private_note" and "private_positions" in e["content"]:
            private = e["content"]["private_positions"]
        elif e["type"] == "message" and private is not None:
            shares.append(share_equal(e["content"].get("positions") or {}, private, issues))
            private = None
    return fmean(shares) if shares else None


def vote_checks(events: Sequence[Ev], party: str, issues: Sequence[str]) -> list[VoteCheck]:
    """Each vote against the voter's latest public positions before it: an accept is
    consistent when the package matches at least half the issues, a reject when it matches
    fewer than half. Votes cast before the party stated any position are not judged."""
    props, positions, out = proposals(events), None, []
    for e in events:
        c = e["content"]
        if e["speaker"] != party:
            continue
        if e["type"] == "message":
            positions = c.get("positions") or {}
        elif e["type"] == "vote" and positions is not None and c["proposal_seq"] in props:
            match = share_equal(props[c["proposal_seq"]], positions, issues)
            ok = (match >= 0.5) == (c["vote"] == "accept")
            out.append(VoteCheck(seq=e["seq"], vote=c["vote"], match=match, consistent=ok))
    return out


def talk(events: Iterable[Ev]) -> dict[str, tuple[int, int]]:
    """Each speaker's (public messages, characters of their text)."""
    out: dict[str, tuple[int, int]] = {}
    for e in events:
        if e["type"] == "message":
            n, chars = out.get(e["speaker"], (0, 0))
            out[e["speaker"]] = (n + 1, chars + len(e["content"].get("text") or ""))
    return out


def side_talk(events: Iterable[Ev]) -> dict[str, dict[str, int]]:
    """The side-talk graph: sender -> recipient -> number of side messages."""
    graph: dict[str, dict[str, int]] = {}
    for e in events:
        if e["type"] == "side_message":
            edges = graph.setdefault(e["speaker"], {})
            edges[e["content"]["to"]] = edges.get(e["content"]["to"], 0) + 1
    return graph


def inject_responses(
    events: Sequence[Ev], parties: Sequence[str], issues: Sequence[str]
) -> list[InjectResponse]:
    """Per inject and party: issues changed between its last message before the inject and
    its first message after it."""
    msgs = [e for e in events if e["type"] == "message"]
    out = []
    for inj in (e for e in events if e["type"] == "inject"):
        changed: dict[str, int | None] = {}
        for p in parties:
            before = [m for m in msgs if m["speaker"] == p and m["seq"] < inj["seq"]]
            after = next((m for m in msgs if m["speaker"] == p and m["seq"] > inj["seq"]), None)
            if not before or after is None:
                changed[p] = None
                continue
            a, b = before[-1]["content"]["positions"], after["content"]["positions"]
            changed[p] = sum(a.get(i) != b.get(i) for i in issues)
        c = inj["content"]
        out.append(InjectResponse(seq=inj["seq"], round=inj["round"], id=c["id"], changed=changed))
    return out


def failed_turns(events: Iterable[Ev]) -> Counter[str]:
    return Counter(e["content"].get("party", e["speaker"]) for e in events if e["type"] == "error")


def party_metrics(
    loaded: LoadedScenario, events: Sequence[Ev], party: str, package: Package | None
) -> PartyMetrics:
    """Everything about one party: its score of `package` and how it behaved."""
    card, issues = loaded.cards[party], [i.id for i in loaded.scenario.agenda]
    score = None if package is None else rules.score(card.scores, package)
    acts = backing(events, party)
    ratio, wrong, backed = wrong_deal_ratio(card, acts)
    own = offers(card, events, party)
    checks = vote_checks(events, party, issues)
    spoken = talk(events)
    n_msgs, chars = spoken.get(party, (0, 0))
    total_chars = sum(c for _, c in spoken.values())
    return PartyMetrics(
        score=score,
        threshold=card.threshold,
        margin=None if score is None else score - card.threshold,
        wrong_deal_ratio=ratio,
        wrong_deals=wrong,
        backed=backed,
        offers=own,
        first_offer=own[0].score if own else None,
        last_offer=own[-1].score if own else None,
        concession_rate=concession_rate(own),
        red_line_breaches=red_line_breaches(card, acts),
        position_consistency=position_consistency(events, party, issues),
        votes=checks,
        vote_consistency=fmean(v.consistent for v in checks) if checks else None,
        messages=n_msgs,
        message_chars=chars,
        talk_share=chars / total_chars if total_chars else None,
        failed_turns=failed_turns(events)[party],
    )


def compute_metrics(loaded: LoadedScenario, events: Iterable[Ev]) -> RunMetrics:
    """Every metric of one run. The deal is read from the tallies and the branch re-derived
    by the scenario's rule, so a cut transcript still gets (provisional) answers."""
    s = loaded.scenario
    evs = sorted(events, key=lambda e: e["seq"])
    d_round, _ = deal_tally(evs)
    deal = d_round is not None
    scored, package = scored_package(evs)
    agreed = rules.issue_agreement(latest_positions(evs), s)
    settled: dict[str, str | None] = dict(package) if deal and package else agreed
    kind = rules.outcome_kind(deal, settled)
    return RunMetrics(
        scenario_id=s.id,
        incomplete=not any(e["type"] == "outcome" for e in evs),
        rounds=max((e["round"] for e in evs), default=0),
        max_rounds=s.deal_rule.max_rounds,
        deal=deal,
        deal_round=d_round,
        deal_in_final_round=deal and d_round == s.deal_rule.max_rounds,
        kind=kind,
        branch=(branch := rules.classify_branch(s, kind, settled)),
        branch_label=s.branch_label(branch),
        agreement=agreed,
        scored=scored,
        package=None if package is None else dict(package),
        welfare=None if package is None else welfare(loaded, package),
        parties={p: party_metrics(loaded, evs, p, package) for p in s.parties},
        side_talk=side_talk(evs),
        injects=inject_responses(evs, s.parties, [i.id for i in s.agenda]),
        failed_turns=sum(failed_turns(evs).values()),
    )


_SUMMARY = ("scenario_id", "incomplete", "deal", "deal_round", "rounds", "kind", "branch")
_SUMMARY += ("branch_label", "scored")


def summary_row(m: RunMetrics) -> dict[str, float | int | str | None]:
    """One flat CSV row per run (booleans as 0/1); per-party columns like `score.washington`."""
    w = m.welfare.model_dump() if m.welfare else dict.fromkeys(Welfare.model_fields)
    row = {k: getattr(m, k) for k in _SUMMARY} | {
        "welfare_sum": w["sum"],
        "nash": w["nash"],
        "min_margin": w["min_margin"],
        "pareto_efficient": w["pareto_efficient"],
        "pareto_distance": w["pareto_distance"],
        "failed_turns": m.failed_turns,
    }
    for p, pm in m.parties.items():
        row[f"score.{p}"] = pm.score
        row[f"margin.{p}"] = pm.margin
        row[f"wrong_deal_ratio.{p}"] = pm.wrong_deal_ratio
        row[f"red_line_breaches.{p}"] = len(pm.red_line_breaches)
    return {k: int(v) if isinstance(v, bool) else v for k, v in row.items()}
