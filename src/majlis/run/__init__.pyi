"""What `majlis.run` offers (read by lazy_loader and by type checkers)."""

from .folder import (
    RunDir as RunDir,
    Snapshot as Snapshot,
    load_snapshot as load_snapshot,
    read_json_object as read_json_object,
    read_jsonl as read_jsonl,
)
from .fork import (
    ForkOptions as ForkOptions,
    fork_session as fork_session,
    parse_inject as parse_inject,
)
from .human import (
    Terminal as Terminal,
    turn_block as turn_block,
)
from .lineage import (
    children_of as children_of,
)
from .live import (
    LIVE as LIVE,
    LiveSession as LiveSession,
    Risky as Risky,
)
from .log import (
    HUMAN as HUMAN,
    Event as Event,
    ForkChanges as ForkChanges,
    ForkParent as ForkParent,
    Manifest as Manifest,
    Outcome as Outcome,
    check_event as check_event,
    first_error as first_error,
)
from .preparation import (
    MAX_ROUNDS as MAX_ROUNDS,
    Prepared as Prepared,
    RunOptions as RunOptions,
    check_templates as check_templates,
    party_configs as party_configs,
    prepare as prepare,
    with_rounds as with_rounds,
)
from .provenance import (
    party_config as party_config,
    party_model as party_model,
)
from .session import (
    RunResult as RunResult,
    resume_session as resume_session,
    run_session as run_session,
)
