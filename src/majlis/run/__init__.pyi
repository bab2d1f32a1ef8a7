"""What `majlis.run` offers (read by lazy_loader and by type checkers)."""

from .folder import (
    RunDir as RunDir,
)
from .folder import (
    read_json_object as read_json_object,
)
from .folder import (
    read_jsonl as read_jsonl,
)
from .folder import (
    write_json_atomic as write_json_atomic,
)
from .human import (
    HUMAN as HUMAN,
)
from .human import (
    Terminal as Terminal,
)
from .log import (
    Event as Event,
)
from .log import (
    Manifest as Manifest,
)
from .log import (
    Outcome as Outcome,
)
from .log import (
    check_event as check_event,
)
from .log import (
    first_error as first_error,
)
from .session import (
    RunOptions as RunOptions,
)
from .session import (
    check_templates as check_templates,
)
from .session import (
    load_snapshot as load_snapshot,
)
from .session import (
    party_configs as party_configs,
)
from .session import (
    resume_session as resume_session,
)
from .session import (
    run_session as run_session,
)
from .session import (
    with_rounds as with_rounds,
)
