"""What `majlis.evals` offers (read by lazy_loader and by type checkers)."""

from .agreement import (
    TOLERANCE as TOLERANCE,
    JudgeAgreement as JudgeAgreement,
    agreement as agreement,
)
from .calibrate import (
    CalibrationSet as CalibrationSet,
    JudgeCalibration as JudgeCalibration,
    judge_agreement as judge_agreement,
    load_set as load_set,
    rule_agreement as rule_agreement,
    set_scenario as set_scenario,
)
from .evaluate import (
    JudgeSetup as JudgeSetup,
    eval_row as eval_row,
    evaluate_run as evaluate_run,
    find_runs as find_runs,
    judge_setup as judge_setup,
)
from .judge import (
    PRESENTATIONS as PRESENTATIONS,
    Rubric as Rubric,
)
from .metrics import (
    PartyMetrics as PartyMetrics,
    RunMetrics as RunMetrics,
    backing as backing,
    compute_metrics as compute_metrics,
    summary_row as summary_row,
    wrong_deal_ratio as wrong_deal_ratio,
)
from .pareto import (
    frontier_of as frontier_of,
    pareto_frontier as pareto_frontier,
    pareto_position as pareto_position,
)
