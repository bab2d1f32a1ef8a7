"""What `majlis.evals` offers (read by lazy_loader and by type checkers)."""

from .calibrate import (
    judge_agreement as judge_agreement,
)
from .calibrate import (
    load_set as load_set,
)
from .calibrate import (
    rule_agreement as rule_agreement,
)
from .evaluate import (
    eval_row as eval_row,
)
from .evaluate import (
    evaluate_run as evaluate_run,
)
from .evaluate import (
    find_runs as find_runs,
)
from .evaluate import (
    judge_setup as judge_setup,
)
from .judge import (
    Rubric as Rubric,
)
from .metrics import (
    PartyMetrics as PartyMetrics,
)
from .metrics import (
    RunMetrics as RunMetrics,
)
from .metrics import (
    compute_metrics as compute_metrics,
)
from .metrics import (
    summary_row as summary_row,
)
