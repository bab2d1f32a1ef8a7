"""Rule-based checks over a transcript: what can be caught without a judge model.

Each check says its rule in its module: leaks (a party's own walk-away or scores, numbers
written out or not), side_talk (side messages repeated or used where they should not be),
persona (AI talk, speaking as another party) and red_lines. They are the floor a judge model
must at least match on the calibration set in tests/calibration/, where `majlis calibrate`
gives each one's precision and recall.
"""

from __future__ import annotations

from typing import Any

from ...scenario import LoadedScenario
from .base import KINDS, Finding, Kind
from .leaks import leaks
from .persona import persona_breaks
from .red_lines import red_lines
from .side_talk import side_leaks

__all__ = [
    "KINDS",
    "Finding",
    "Kind",
    "leaks",
    "persona_breaks",
    "red_lines",
    "run_checks",
    "side_leaks",
]


def run_checks(loaded: LoadedScenario, events: list[dict[str, Any]]) -> list[Finding]:
    return [
        *leaks(loaded, events),
        *side_leaks(loaded, events),
        *persona_breaks(loaded, events),
        *red_lines(loaded, events),
    ]
