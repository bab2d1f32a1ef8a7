"""Pure negotiation rules: turn order, the deal rule, scoring, agreement and branches.

Nothing here does I/O or calls a model, so every rule is tested with a table of cases.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping

from ..scenario import BranchWhen, DealRule, LoadedScenario, OutcomeKind, Scenario

Package = dict[str, str]


def turn_order(scenario: Scenario, round_no: int) -> list[str]:
    """Who speaks in which order in a round (rounds count from 1).

    `convener_first`: the convener, then the others as listed, every round.
    `rotate`: the convener opens round 1; each later round starts one seat further on.
    """
    parties = list(scenario.parties)
    start = parties.index(scenario.convener)
    if scenario.turn_order == "rotate":
        start = (start + round_no - 1) % len(parties)
        return parties[start:] + parties[:start]
    return [scenario.convener] + [p for p in parties if p != scenario.convener]


def deal_passes(votes: Mapping[str, bool], rule: DealRule) -> bool:
    """A package passes with enough acceptances, every veto party among them."""
    accepts = {p for p, ok in votes.items() if ok}
    return len(accepts) >= rule.min_accept and all(v in accepts for v in rule.veto)


def score(scores: Mapping[str, Mapping[str, int]], package: Mapping[str, str]) -> int:
    """A party's hidden score of a package: the sum of its option scores; unsettled issues score 0."""
    return sum(scores[issue].get(option, 0) for issue, option in package.items() if issue in scores)


def all_packages(scenario: Scenario) -> Iterator[Package]:
    ids = [i.id for i in scenario.agenda]
    for combo in itertools.product(*(i.option_ids() for i in scenario.agenda)):
        yield dict(zip(ids, combo, strict=True))


def acceptable_to(loaded: LoadedScenario, package: Mapping[str, str]) -> dict[str, bool]:
    """Whether each party's score of the package reaches its walk-away threshold."""
    return {
        pid: score(card.scores, package) >= card.threshold for pid, card in loaded.cards.items()
    }


def zone_of_agreement(loaded: LoadedScenario) -> list[Package]:
    """Every package that would pass if each party accepted exactly what clears its threshold."""
    rule = loaded.scenario.deal_rule
    return [p for p in all_packages(loaded.scenario) if deal_passes(acceptable_to(loaded, p), rule)]


def issue_agreement(
    positions: Mapping[str, Mapping[str, str]], scenario: Scenario
) -> dict[str, str | None]:
    """Per issue, the option that enough parties (vetoes included) publicly support, if any."""
    rule = scenario.deal_rule
    agreed: dict[str, str | None] = {}
    for issue in scenario.agenda:
        agreed[issue.id] = None
        for option in issue.option_ids():
            support = {p: pos.get(issue.id) == option for p, pos in positions.items()}
            if deal_passes(support, rule):
                agreed[issue.id] = option
                break
    return agreed


def outcome_kind(deal: bool, agreed: Mapping[str, str | None]) -> OutcomeKind:
    if deal:
        return "deal"
    return "partial" if any(v is not None for v in agreed.values()) else "none"


def lean(scenario: Scenario, agreed: Mapping[str, str | None]) -> int:
    total = 0
    for issue in scenario.agenda:
        chosen = agreed.get(issue.id)
        for option in issue.options:
            if option.id == chosen:
                total += option.lean
    return total


def branch_applies(
    scenario: Scenario, when: BranchWhen | None, kind: OutcomeKind, agreed: Mapping[str, str | None]
) -> bool:
    """Whether an outcome meets every condition of a branch's `when` (none: the catch-all)."""
    if when is None:
        return True
    if when.outcome is not None and kind not in when.outcome:
        return False
    total = lean(scenario, agreed)
    if when.lean_at_least is not None and total < when.lean_at_least:
        return False
    if when.lean_below is not None and total >= when.lean_below:
        return False
    return all(agreed.get(issue) in options for issue, options in (when.agreed or {}).items())


def classify_branch(scenario: Scenario, kind: OutcomeKind, agreed: Mapping[str, str | None]) -> str:
    """The id of the scenario's first branch whose conditions the outcome meets.

    Loading checks that the last branch has no conditions, so one always applies; a
    scenario built in code without such a catch-all gets its last branch all the same.
    """
    for branch in scenario.branches:
        if branch_applies(scenario, branch.when, kind, agreed):
            return branch.id
    return scenario.branches[-1].id


def red_line_hits(
    red_lines: list[tuple[str, str]], package: Mapping[str, str | None]
) -> list[tuple[str, str]]:
    return [(i, o) for i, o in red_lines if package.get(i) == o]


def package_words(scenario: Scenario, package: Mapping[str, str | None]) -> str:
    """A package in words, for prompts and the live view."""
    parts = []
    for issue in scenario.agenda:
        opt = package.get(issue.id)
        label = next((o.label for o in issue.options if o.id == opt), "unsettled")
        parts.append(f"{issue.id}={opt} ({label})")
    return "; ".join(parts)
