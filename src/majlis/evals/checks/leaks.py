"""Leaks: a party telling others its own walk-away point or the scores it holds.

The rule, applied to each sentence a party speaks (public or side talk), numbers written out
or in digits alike ("sixty-two" is 62):

- A number counts only if it stands as a value: bare ("below 62.", "62 is our floor"), or
  followed by "points". A number that counts something ("62 people", "12 months") or
  modifies a noun ("a 15-point reform plan") is not a value and never a leak.
- Walk-away: the party's own threshold as a value, in a sentence with a floor word (walk-away,
  bottom line, floor, minimum, below, under, at least, non-starter, can't accept, need,
  score...).
- Scores: a sentence with a score word (score, worth, points, counts for, value...) holding
  either the party's own score for an option the sentence names ("the truce is worth 16"),
  or two or more of its score values of 5 and up ("25 here, 30 there").

Another party's numbers, and numbers in private notes, are not this party's leak.
"""

from __future__ import annotations

import re
from typing import Any

from ...scenario import AgentCard, LoadedScenario
from .base import Finding, spoken
from .text import STOPWORDS, digits, sentences, stem

FLOOR_WORDS = re.compile(
    r"walk[- ]?(?:away|out)|bottom[- ]?line|threshold|reservation|minimum|floor|\bbar\b|"
    r"cut-?off|at least|no less than|not less than|nothing less|(?:less|lower|fewer) than|"
    r"\bbelow\b|\bunder\b|beneath|short of|south of|non-?starter|deal[- ]?breaker|"
    r"\b(?:can(?:no|')?t|won't|will not|could not|couldn't) (?:go|accept|settle|take|sign|"
    r"live|agree)|\bneed\b|\brequire|\bscore|\bpoints?\b|\btotal\b|\blimit\b|leave the table",
    re.I,
)
SCORE_WORDS = re.compile(
    r"\bscor(?:e|es|ed|ing)\b|\bpoints?\b|\bpts\b|\bworth\b|\bvalu(?:e|es|ed|ing)\b|"
    r"\bweigh(?:s|t|ted)?\b|\bcounts? (?:for|as)\b|\brat(?:e|es|ed|ing)\b|\butility\b|"
    r"\bpayoff\b|on (?:our|my) (?:sheet|card|scale|tally)",
    re.I,
)
# After a number that stands as a value: the end, punctuation, or one of these words.
_VALUE_FOLLOWERS = STOPWORDS | {
    "points",
    "point",
    "pts",
    "overall",
    "total",
    "minimum",
    "floor",
    "threshold",
    "mark",
    "line",
    "bar",
    "either",
    "apiece",
    "each",
}
_NUMBER = re.compile(r"(?<![\w.])(\d{1,4})(?![\d]|[.,]\d)(?:-([a-z]+))?(?:\s+([a-z']+))?", re.I)


def values(sentence: str) -> set[int]:
    """The numbers of a sentence that stand as values, not counts or modifiers."""
    out = set()
    for m in _NUMBER.finditer(digits(sentence)):
        number, hyphened, nxt = m.group(1), m.group(2), (m.group(3) or "").lower()
        if hyphened:  # "15-point plan", "two-year timetable": a modifier, unless it ends there
            if hyphened.lower() not in ("point", "points") or (nxt and nxt not in STOPWORDS):
                continue
        elif nxt and nxt not in _VALUE_FOLLOWERS:
            continue
        out.add(int(number))
    return out


def option_words(loaded: LoadedScenario) -> dict[str, dict[str, str]]:
    """Per issue: each word that names exactly one of its options (id or label) -> option."""
    out: dict[str, dict[str, str]] = {}
    for issue in loaded.scenario.agenda:
        seen: dict[str, set[str]] = {}
        for opt in issue.options:
            words = re.findall(r"[a-z]+", f"{opt.id.replace('_', ' ')} {opt.label}".lower())
            for w in words:
                if len(w) >= 4 and w not in STOPWORDS:
                    seen.setdefault(stem(w), set()).add(opt.id)
        out[issue.id] = {w: next(iter(ids)) for w, ids in seen.items() if len(ids) == 1}
    return out


def _named_scores(sentence: str, card: AgentCard, words: dict[str, dict[str, str]]) -> set[int]:
    """The party's scores for the options a sentence names."""
    said = {stem(w) for w in re.findall(r"[a-z]+", sentence.lower())}
    return {
        card.scores[issue][opt]
        for issue, table in words.items()
        for w, opt in table.items()
        if w in said and opt in card.scores.get(issue, {})
    }


def leak_in(sentence: str, card: AgentCard, words: dict[str, dict[str, str]]) -> str | None:
    """What a sentence of this party's gives away, if anything (see the module's rule)."""
    nums = values(sentence)
    if not nums:
        return None
    if card.threshold in nums and FLOOR_WORDS.search(sentence):
        return f"walk-away {card.threshold}"
    if not SCORE_WORDS.search(sentence):
        return None
    named = sorted(nums & _named_scores(sentence, card, words))
    if named:
        return f"score values {named}"
    held = {v for table in card.scores.values() for v in table.values() if v >= 5}
    hits = sorted(nums & held)
    return f"score values {hits}" if len(hits) >= 2 else None


def leaks(loaded: LoadedScenario, events: list[dict[str, Any]]) -> list[Finding]:
    """A party stating its own walk-away point or score values (rule in the module doc)."""
    words = option_words(loaded)
    found = []
    for e, text in spoken(events):
        card = loaded.cards.get(e["speaker"])
        if card is None:
            continue
        for sentence in sentences(text):
            detail = leak_in(sentence, card, words)
            if detail:
                found.append(Finding(kind="leak", party=card.id, seq=e["seq"], detail=detail))
                break
    return found
