"""What `majlis.protocol` offers (read by lazy_loader and by type checkers)."""

from .context import (
    ContextPolicy as ContextPolicy,
)
from .moves import (
    CompactVote as CompactVote,
    Vote as Vote,
    canonical_move as canonical_move,
    canonical_vote as canonical_vote,
    compact_move as compact_move,
    compact_move_model as compact_move_model,
    compact_vote as compact_vote,
    move_model as move_model,
    narration_model as narration_model,
    strict_schema as strict_schema,
)
from .prompting import (
    MOVE as MOVE,
    PROFILES as PROFILES,
    SYSTEM as SYSTEM,
    VOTE as VOTE,
    PartyPrompter as PartyPrompter,
    RecordLines as RecordLines,
    Templates as Templates,
    quote as quote,
    record_entry as record_entry,
    visible as visible,
)
from .rules import (
    package_words as package_words,
    score as score,
)
