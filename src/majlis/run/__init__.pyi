"""What `majlis.run` offers (read by lazy_loader and by type checkers)."""

from .folder import (
    RunDir as RunDir,
    read_json_object as read_json_object,
    read_jsonl as read_jsonl,
)
from .human import (
    HUMAN as HUMAN,
    Terminal as Terminal,
)
from .log import (
    Event as Event,
    Manifest as Manifest,
    Outcome as Outcome,
    check_event as check_event,
    first_error as first_error,
)
from .session import (
    RunOptions as RunOptions,
    check_templates as check_templates,
    load_snapshot as load_snapshot,
    party_configs as party_configs,
    resume_session as resume_session,
    run_session as run_session,
    with_rounds as with_rounds,
)
