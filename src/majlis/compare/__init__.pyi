"""What `majlis.compare` offers (read by lazy_loader and by type checkers)."""

from .comparison import (
    Comparison as Comparison,
    RunRow as RunRow,
    branch_counts as branch_counts,
    collect as collect,
    compare as compare,
)
from .experiment import (
    Cell as Cell,
    Experiment as Experiment,
    ModelSetup as ModelSetup,
    cells as cells,
    load_experiment as load_experiment,
    sweep_configs as sweep_configs,
)
from .forks import (
    ForkPair as ForkPair,
    PartyDiff as PartyDiff,
    describe as describe,
    fork_pairs as fork_pairs,
    forks_markdown as forks_markdown,
    outcome_line as outcome_line,
)
from .report import (
    side_by_side_page as side_by_side_page,
    write_report as write_report,
)
from .stats import (
    bootstrap_ci as bootstrap_ci,
    sign_flip_test as sign_flip_test,
)
from .sweep import (
    preflight as preflight,
    run_sweep as run_sweep,
)
from .workers import (
    SweepResult as SweepResult,
    session_status as session_status,
    worker_count as worker_count,
)
