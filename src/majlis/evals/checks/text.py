"""Reading a message's words: numbers written out, sentences, and content words for overlap.

Number words are read by text2num (`alpha2digit`), so "sixty-two", "sixty two" and "62" are
one number to every check; words are reduced to their stems by the Snowball English stemmer
("pressed", "presses" -> "press"), so a paraphrase that changes a word's form still overlaps.
Both are well-kept libraries; hand-written copies would be less tested.
"""

from __future__ import annotations

import re
from functools import lru_cache
from itertools import pairwise

import snowballstemmer
from text_to_num import alpha2digit

# Words that carry no content of their own: left out when two messages are compared.
_STOP = """a about above after again against all also am an and any are as at be because been
    before being below between both but by can cannot could did do does doing down during
    each either even ever every few for from further get gets got had has have having he her
    here hers him his how i if in into is it its itself just know let like make may me might
    more most much must my myself need no nor not now of off on once one only or other our
    ours ourselves out over own per really same say says she should so some such than that
    the their theirs them then there these they this those through to too under until up
    upon us very want was we well were what when where which while who whom why will with
    would yes yet you your yours"""
STOPWORDS = frozenset(_STOP.split())
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+|\n+")
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_STEMMER = snowballstemmer.stemmer("english")


@lru_cache(maxsize=4096)
def digits(text: str) -> str:
    """The text with every written-out number in digits ("sixty-two" -> "62", "zero" -> "0")."""
    # a lone surrogate is valid JSON but not UTF-8, and text2num takes only UTF-8
    return alpha2digit(text.encode("utf-8", "replace").decode("utf-8"), "en", threshold=0)


def sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE_END.split(text) if s.strip()]


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """The Snowball stem of a lower-case word ("salaries" and "salary" -> "salari")."""
    return _STEMMER.stemWord(word)


def content_words(text: str) -> list[str]:
    """The stemmed words of a text in order, numbers in digits, without stopwords."""
    words = (w.split("'")[0] for w in _WORD.findall(digits(text).lower().replace("\u2019", "'")))
    return [stem(w) for w in words if w not in STOPWORDS]


def terms(text: str) -> set[str]:
    """A text's content words and each pair of neighbouring content words, in either order:
    "keep paying the fighters" -> keep, pay, fighter, keep+pay, fighter+pay. Pairs let a
    claim built of common words ("pay" "fighter") count as said, whatever its word forms."""
    seq = content_words(text)
    pairs = {"+".join(sorted(p)) for p in pairwise(seq) if p[0] != p[1]}
    return set(seq) | pairs
