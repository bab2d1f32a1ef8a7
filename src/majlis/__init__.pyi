"""What `import majlis` offers: the Python API (read by lazy_loader and by type checkers)."""

from .compare import (
    load_experiment as load_experiment,
    run_sweep as run_sweep,
)
from .errors import MajlisError as MajlisError, UserError as UserError
from .evals import compute_metrics as compute_metrics, evaluate_run as evaluate_run
from .model import ModelConfig as ModelConfig
from .run import (
    ForkOptions as ForkOptions,
    Prepared as Prepared,
    RunDir as RunDir,
    RunOptions as RunOptions,
    fork_session as fork_session,
    load_snapshot as load_snapshot,
    prepare as prepare,
    resume_session as resume_session,
    run_session as run_session,
)
from .scenario import (
    LoadedScenario as LoadedScenario,
    list_scenarios as list_scenarios,
    load_scenario as load_scenario,
)
from .workshop import write_debrief as write_debrief, write_html as write_html

__version__: str
