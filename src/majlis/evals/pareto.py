"""The Pareto frontier of a scenario's package space, and where a package stands against it.

A package is scored as a vector, every party's score in `scenario.parties` order; the
frontier is the set of distinct vectors no other package weakly beats for every party.
It is enumerated once per scenario content and kept for the process.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable, Mapping

from ..protocol import rules
from ..scenario import LoadedScenario

Package = Mapping[str, str]
Vector = tuple[int, ...]


def _weakly_above(a: Vector, b: Vector) -> bool:
    return all(map(operator.ge, a, b))


def frontier_of(vectors: Iterable[Vector]) -> list[Vector]:
    """The distinct non-dominated score vectors. Visited by descending sum, a vector can only
    be dominated by one visited earlier, and then by one already on the frontier."""
    front: list[Vector] = []
    for v in sorted(set(vectors), key=sum, reverse=True):
        if not any(_weakly_above(f, v) for f in front):  # distinct, so >= everywhere is >
            front.append(v)
    return front


def score_vector(loaded: LoadedScenario, package: Package) -> Vector:
    """Every party's score of a package, in scenario.parties order."""
    return tuple(rules.score(loaded.cards[p].scores, package) for p in loaded.scenario.parties)


_FRONTIERS: dict[str, list[Vector]] = {}


def pareto_frontier(loaded: LoadedScenario) -> list[Vector]:
    """The frontier over the whole package space, enumerated once per scenario content."""
    key = loaded.content_hash
    if key not in _FRONTIERS:
        space = rules.all_packages(loaded.scenario)
        _FRONTIERS[key] = frontier_of(score_vector(loaded, p) for p in space)
    return _FRONTIERS[key]


def pareto_position(vector: Vector, frontier: Iterable[Vector]) -> tuple[bool, float]:
    """(efficient, distance): the smallest Euclidean distance in score space to a frontier
    vector that weakly dominates `vector`. It is 0 exactly when no package dominates it."""
    dist = min((math.dist(f, vector) for f in frontier if _weakly_above(f, vector)), default=0.0)
    return dist == 0.0, dist
