"""What `majlis.compare` offers (read by lazy_loader and by type checkers)."""

from .comparison import (
    Comparison as Comparison,
    RunRow as RunRow,
    branch_counts as branch_counts,
    collect as collect,
    compare as compare,
    cross_play_csv as cross_play_csv,
    to_csv as to_csv,
    to_json as to_json,
    to_markdown as to_markdown,
)
from .crossplay import (
    CrossPlay as CrossPlay,
    Rating as Rating,
    cross_play as cross_play,
    seat_results as seat_results,
)
from .experiment import (
    Cell as Cell,
    Experiment as Experiment,
    Member as Member,
    ModelSetup as ModelSetup,
    cells as cells,
    load_experiment as load_experiment,
    seating_design as seating_design,
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
from .seating import (
    Design as Design,
    all_seatings as all_seatings,
    sample_seatings as sample_seatings,
)
from .stats import (
    bootstrap as bootstrap,
    bootstrap_ci as bootstrap_ci,
    sign_flip_test as sign_flip_test,
)
from .sweep import (
    cross_play_design as cross_play_design,
    preflight as preflight,
    run_sweep as run_sweep,
)
from .workers import (
    SweepResult as SweepResult,
    session_status as session_status,
    worker_count as worker_count,
)
