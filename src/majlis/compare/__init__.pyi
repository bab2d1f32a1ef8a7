"""What `majlis.compare` offers (read by lazy_loader and by type checkers)."""

from .comparison import (
    collect as collect,
)
from .comparison import (
    compare as compare,
)
from .report import (
    write_report as write_report,
)
from .sweep import (
    Experiment as Experiment,
)
from .sweep import (
    cells as cells,
)
from .sweep import (
    load_experiment as load_experiment,
)
from .sweep import (
    preflight as preflight,
)
from .sweep import (
    run_sweep as run_sweep,
)
from .sweep import (
    sweep_configs as sweep_configs,
)
