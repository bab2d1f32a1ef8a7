"""What `majlis.protocol` offers (read by lazy_loader and by type checkers)."""

from .briefing import (
    Briefing as Briefing,
    briefing as briefing,
    briefing_text as briefing_text,
    record_line as record_line,
)
from .context import (
    SIDE_KEPT as SIDE_KEPT,
    ContextPolicy as ContextPolicy,
    split as split,
    summary as summary,
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
    readable as readable,
    strict_schema as strict_schema,
)
from .prompting import (
    MOVE as MOVE,
    NARRATE as NARRATE,
    PROFILES as PROFILES,
    SYSTEM as SYSTEM,
    VOTE as VOTE,
    PartyPrompter as PartyPrompter,
    RecordLines as RecordLines,
    quote as quote,
    record_entry as record_entry,
    visible as visible,
)
from .rules import (
    package_words as package_words,
    score as score,
)
from .templates import (
    MAX_TEMPLATE_BYTES as MAX_TEMPLATE_BYTES,
    Templates as Templates,
)
from .zone import (
    BranchShare as BranchShare,
    PartyEnds as PartyEnds,
    Scored as Scored,
    Zone as Zone,
    zone_of as zone_of,
)
