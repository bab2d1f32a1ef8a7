"""What `import majlis` offers: the Python API (read by lazy_loader and by type checkers)."""

from .compare import collect as collect
from .compare import compare as compare
from .compare import load_experiment as load_experiment
from .compare import run_sweep as run_sweep
from .errors import MajlisError as MajlisError
from .errors import UserError as UserError
from .evals import compute_metrics as compute_metrics
from .evals import evaluate_run as evaluate_run
from .model import ModelConfig as ModelConfig
from .run import RunDir as RunDir
from .run import RunOptions as RunOptions
from .run import load_snapshot as load_snapshot
from .run import resume_session as resume_session
from .run import run_session as run_session
from .scenario import LoadedScenario as LoadedScenario
from .scenario import list_scenarios as list_scenarios
from .scenario import load_scenario as load_scenario
from .workshop import write_debrief as write_debrief
from .workshop import write_html as write_html

__version__: str
