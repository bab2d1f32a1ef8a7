"""Side-talk leaks: what was said in a side message turning up where it should not.

For each side message S from A to B, a later message (public or side) by a party X other than
A is a side-talk leak when either
- X is the recipient B and tells it to someone who was not in the side talk (a public
  message, or a side message to a third party); or
- X was not in the side talk at all, so could not have seen it.

"Tells it" is measured by overlap, not exact match. A text's terms are its content words
(Snowball stems, stopwords out, numbers in digits) and each pair of neighbouring content words
in either order, so a claim made of common words still shows as a claim. S's news is its terms
less those the listeners already had before the later message (the scenario's public text,
public talk, side talk they were in; for a non-recipient, also its own card) and less those the
later speaker had said itself before S. The later message uses S when it holds at least
MIN_SHARED of S's news terms and at least MIN_CONTAINED of them.

A side message worded the way three or more parties word their own messages (FORMULA_PARTIES,
each with a message holding FORMULA_SHARE of its terms) is a formula, not news: the scripted
player sends every party the same "Between us: move toward us on ..." line, and a party
saying it has learnt nothing from anyone. A repeat that merely gets discussed is not a
formula: discussion shares some of a message's terms, not two thirds of them, three times.

Thresholds, from the calibration set (tests/calibration/): every planted repeat or use there,
paraphrased, holds 6 or more of the side message's news terms and over half of them (the
lowest: 7 of 13); the clean cases with side talk on the same topic hold at most 1 (1 of 8).
MIN_SHARED = 4 and MIN_CONTAINED = 0.4 sit in that gap.
"""

from __future__ import annotations

from typing import Any

from ...scenario import LoadedScenario
from .base import Finding, spoken
from .text import terms

MIN_SHARED = 4
MIN_CONTAINED = 0.4
FORMULA_PARTIES = 3
FORMULA_SHARE = 2 / 3


def _scenario_words(loaded: LoadedScenario) -> set[str]:
    """What every party knows from the start: the brief, the agenda, the public stances."""
    s = loaded.scenario
    parts = [s.title, s.brief]
    for issue in s.agenda:
        parts += [issue.title, issue.description]
        parts += [f"{o.id.replace('_', ' ')} {o.label} {o.description}" for o in issue.options]
    for card in loaded.cards.values():
        parts += [card.name, card.role, card.public_stance]
    return set().union(*(terms(p) for p in parts))


def _card_words(loaded: LoadedScenario, party: str) -> set[str]:
    card = loaded.cards.get(party)
    if card is None:
        return set()
    return set().union(*(terms(p) for p in [card.private_brief, *card.private_interests]))


def _sees(event: dict[str, Any], party: str) -> bool:
    audience = event["audience"]
    return audience == "all" or party in audience


def _text(event: dict[str, Any]) -> str:
    c = event["content"]
    return " ".join(str(c.get(k, "")) for k in ("title", "text"))


def _formula(side: set[str], said_by: list[tuple[str, set[str]]]) -> bool:
    """Whether several parties word their own messages like this one (see the module doc)."""
    need = FORMULA_SHARE * len(side)
    return len({who for who, ws in said_by if len(side & ws) >= need}) >= FORMULA_PARTIES


def _first_times(
    talk: list[dict[str, Any]], words: dict[int, set[str]], parties: list[str]
) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, int]]]:
    """For each party and term: the seq of the first event it heard holding the term, and of
    the first it said holding it. One pass, so each later question is a look-up."""
    heard: dict[str, dict[str, int]] = {p: {} for p in parties}
    said: dict[str, dict[str, int]] = {p: {} for p in parties}
    for e in talk:
        listeners = parties if e["audience"] == "all" else [p for p in e["audience"] if p in heard]
        for p in listeners:
            for t in words[e["seq"]]:
                heard[p].setdefault(t, e["seq"])
        for t in words[e["seq"]] if e["speaker"] in said else ():
            said[e["speaker"]].setdefault(t, e["seq"])
    return heard, said


def side_leaks(loaded: LoadedScenario, events: list[dict[str, Any]]) -> list[Finding]:
    """Side talk repeated by its recipient to outsiders, or used by a party that never saw it."""
    parties = list(loaded.scenario.parties)
    common = _scenario_words(loaded)
    talk = [e for e in events if e["type"] in ("message", "side_message", "inject", "round")]
    words = {e["seq"]: terms(_text(e)) for e in talk}
    heard, said = _first_times(talk, words, parties)
    cards = {p: _card_words(loaded, p) for p in parties}
    never = len(events) + 1

    def knew(party: str, term: str, before: int) -> bool:
        return heard.get(party, {}).get(term, never) < before

    found: list[Finding] = []
    flagged: set[tuple[int, str]] = set()
    talked = [e for e, _ in spoken(events)]
    said_by = [(e["speaker"], words[e["seq"]]) for e in talked]
    side = [
        e for e in talked if e["type"] == "side_message" and not _formula(words[e["seq"]], said_by)
    ]
    for s in side:
        inner = {s["speaker"], *s["audience"]}
        own = said.get
        # what could be news to anyone at all (a cheap first filter): not scenario text, not
        # heard by every party before the side message
        core = {
            t for t in words[s["seq"]] - common if not all(knew(p, t, s["seq"]) for p in parties)
        }
        for e in talked:
            x = e["speaker"]
            if e["seq"] <= s["seq"] or x == s["speaker"] or (s["seq"], x) in flagged:
                continue
            if len(core & words[e["seq"]]) < MIN_SHARED:
                continue
            hearers = parties if e["audience"] == "all" else list(e["audience"])
            if x in inner:
                listeners = [p for p in hearers if p not in inner]
                if not listeners:
                    continue
                how = f"repeats side message {s['seq']} from {s['speaker']}"
            else:
                listeners = [x]
                core_x = core - cards.get(x, set())
                how = f"uses side message {s['seq']} ({s['speaker']} to {s['content']['to']})"
            mine = own(x, {})
            news = {
                t
                for t in (core if x in inner else core_x)
                if mine.get(t, never) >= s["seq"]
                and not all(knew(p, t, e["seq"]) for p in listeners)
            }
            shared = news & words[e["seq"]]
            if len(shared) >= MIN_SHARED and len(shared) >= MIN_CONTAINED * len(news):
                flagged.add((s["seq"], x))
                found.append(
                    Finding(
                        kind="side_leak",
                        party=x,
                        seq=e["seq"],
                        detail=f"{how}: {len(shared)} of its {len(news)} new terms "
                        f"({', '.join(sorted(shared, key=len)[:4])})",
                    )
                )
    return found
