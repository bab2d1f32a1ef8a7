"""What `majlis.scenario` offers (read by lazy_loader and by type checkers)."""

from .load import (
    MAX_PACKAGES as MAX_PACKAGES,
    card_path as card_path,
    data_root as data_root,
    list_scenarios as list_scenarios,
    load_scenario as load_scenario,
    scenario_path as scenario_path,
)
from .schema import (
    AgentCard as AgentCard,
    Branch as Branch,
    BranchRule as BranchRule,
    DealRule as DealRule,
    Inject as Inject,
    Issue as Issue,
    LoadedScenario as LoadedScenario,
    Option as Option,
    RedLine as RedLine,
    Scenario as Scenario,
    Slug as Slug,
    package_count as package_count,
)
from .variants import (
    BASELINE as BASELINE,
    Variant as Variant,
    list_variants as list_variants,
    load_variant as load_variant,
    template_files as template_files,
    variants_dir as variants_dir,
)
