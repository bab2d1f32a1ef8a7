"""What `majlis.model` offers (read by lazy_loader and by type checkers)."""

from .activity import (
    Activity as Activity,
)
from .activity import (
    Snapshot as Snapshot,
)
from .budget import (
    Budget as Budget,
)
from .budget import (
    Meter as Meter,
)
from .budget import (
    Price as Price,
)
from .budget import (
    PriceTable as PriceTable,
)
from .budget import (
    SharedMeter as SharedMeter,
)
from .budget import (
    Spending as Spending,
)
from .budget import (
    load_prices as load_prices,
)
from .cache import (
    CacheStats as CacheStats,
)
from .cache import (
    ResponseCache as ResponseCache,
)
from .cache import (
    SampleCounter as SampleCounter,
)
from .client import (
    EMBEDDED_ROUNDS as EMBEDDED_ROUNDS,
)
from .client import (
    Answer as Answer,
)
from .client import (
    Backend as Backend,
)
from .client import (
    EndpointLimits as EndpointLimits,
)
from .client import (
    ModelClient as ModelClient,
)
from .client import (
    ModelConfig as ModelConfig,
)
from .client import (
    ModelsFile as ModelsFile,
)
from .client import (
    Reply as Reply,
)
from .client import (
    error_line as error_line,
)
from .client import (
    make_client as make_client,
)
from .client import (
    portion as portion,
)
from .client import (
    refusal as refusal,
)
from .embedded import (
    MODEL_NAME as MODEL_NAME,
)
from .embedded import (
    start_embedded as start_embedded,
)
from .loopback import (
    Completion as Completion,
)
from .loopback import (
    LoopbackServer as LoopbackServer,
)
from .loopback import (
    scripted_responder as scripted_responder,
)
from .usage import (
    Usage as Usage,
)
