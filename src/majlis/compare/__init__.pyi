"""What `majlis.compare` offers (read by lazy_loader and by type checkers)."""

from .comparison import (
    collect as collect,
    compare as compare,
)
from .report import (
    write_report as write_report,
)
from .sweep import (
    Experiment as Experiment,
    cells as cells,
    load_experiment as load_experiment,
    preflight as preflight,
    run_sweep as run_sweep,
    sweep_configs as sweep_configs,
)
