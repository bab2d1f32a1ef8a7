"""What `majlis.protocol` offers (read by lazy_loader and by type checkers)."""

from .context import (
    ContextPolicy as ContextPolicy,
)
from .moves import (
    CompactVote as CompactVote,
)
from .moves import (
    Vote as Vote,
)
from .moves import (
    canonical_move as canonical_move,
)
from .moves import (
    canonical_vote as canonical_vote,
)
from .moves import (
    compact_move as compact_move,
)
from .moves import (
    compact_move_model as compact_move_model,
)
from .moves import (
    compact_vote as compact_vote,
)
from .moves import (
    move_model as move_model,
)
from .moves import (
    narration_model as narration_model,
)
from .moves import (
    strict_schema as strict_schema,
)
from .prompting import (
    MOVE as MOVE,
)
from .prompting import (
    PROFILES as PROFILES,
)
from .prompting import (
    SYSTEM as SYSTEM,
)
from .prompting import (
    VOTE as VOTE,
)
from .prompting import (
    PartyPrompter as PartyPrompter,
)
from .prompting import (
    RecordLines as RecordLines,
)
from .prompting import (
    Templates as Templates,
)
from .prompting import (
    quote as quote,
)
from .prompting import (
    record_entry as record_entry,
)
from .prompting import (
    visible as visible,
)
from .rules import (
    package_words as package_words,
)
from .rules import (
    score as score,
)
