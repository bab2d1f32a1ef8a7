"""What `majlis.scenario` offers (read by lazy_loader and by type checkers)."""

from .load import (
    AgentCard as AgentCard,
    DealRule as DealRule,
    LoadedScenario as LoadedScenario,
    Scenario as Scenario,
    Slug as Slug,
    data_root as data_root,
    list_scenarios as list_scenarios,
    load_scenario as load_scenario,
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
