"""What `majlis.scenario` offers (read by lazy_loader and by type checkers)."""

from .load import (
    AgentCard as AgentCard,
)
from .load import (
    DealRule as DealRule,
)
from .load import (
    LoadedScenario as LoadedScenario,
)
from .load import (
    Scenario as Scenario,
)
from .load import (
    Slug as Slug,
)
from .load import (
    data_root as data_root,
)
from .load import (
    list_scenarios as list_scenarios,
)
from .load import (
    load_scenario as load_scenario,
)
from .load import (
    package_count as package_count,
)
from .load import (
    parse_file as parse_file,
)
from .variants import (
    BASELINE as BASELINE,
)
from .variants import (
    Variant as Variant,
)
from .variants import (
    list_variants as list_variants,
)
from .variants import (
    load_variant as load_variant,
)
from .variants import (
    template_files as template_files,
)
from .variants import (
    variants_dir as variants_dir,
)
