"""What `majlis.scenario` offers (read by lazy_loader and by type checkers)."""

from .load import (
    DEFAULT_SCENARIO as DEFAULT_SCENARIO,
    MAX_PACKAGES as MAX_PACKAGES,
    SHIPPED as SHIPPED,
    card_path as card_path,
    data_root as data_root,
    default_scenario as default_scenario,
    eval_dirs as eval_dirs,
    given_home as given_home,
    is_home as is_home,
    list_scenarios as list_scenarios,
    load_scenario as load_scenario,
    prompt_dirs as prompt_dirs,
    runs_home as runs_home,
    scenario_path as scenario_path,
    shipped_file as shipped_file,
)
from .schema import (
    DEFAULT_BRANCHES as DEFAULT_BRANCHES,
    AgentCard as AgentCard,
    Branch as Branch,
    BranchRule as BranchRule,
    BranchWhen as BranchWhen,
    DealRule as DealRule,
    Inject as Inject,
    InjectWhen as InjectWhen,
    Issue as Issue,
    LoadedScenario as LoadedScenario,
    MarginBelow as MarginBelow,
    Option as Option,
    OutcomeKind as OutcomeKind,
    RedLine as RedLine,
    Scenario as Scenario,
    Slug as Slug,
    in_words as in_words,
    package_count as package_count,
)
from .skeleton import (
    copy_scenario as copy_scenario,
    modeline as modeline,
    write_skeleton as write_skeleton,
)
from .variants import (
    BASELINE as BASELINE,
    Variant as Variant,
    list_variants as list_variants,
    load_variant as load_variant,
    template_files as template_files,
    variant_folder as variant_folder,
)
