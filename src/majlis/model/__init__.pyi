"""What `majlis.model` offers (read by lazy_loader and by type checkers)."""

from .activity import (
    Activity as Activity,
    Snapshot as Snapshot,
)
from .budget import (
    Budget as Budget,
    Meter as Meter,
    Price as Price,
    PriceTable as PriceTable,
    SharedMeter as SharedMeter,
    Spending as Spending,
    load_prices as load_prices,
)
from .cache import (
    CacheStats as CacheStats,
    ResponseCache as ResponseCache,
    SampleCounter as SampleCounter,
)
from .client import (
    EMBEDDED_ROUNDS as EMBEDDED_ROUNDS,
    Answer as Answer,
    Backend as Backend,
    EndpointLimits as EndpointLimits,
    ModelClient as ModelClient,
    ModelConfig as ModelConfig,
    ModelsFile as ModelsFile,
    Reply as Reply,
    error_line as error_line,
    make_client as make_client,
    portion as portion,
    refusal as refusal,
)
from .embedded import (
    MODEL_NAME as MODEL_NAME,
    start_embedded as start_embedded,
)
from .loopback import (
    Completion as Completion,
    LoopbackServer as LoopbackServer,
    scripted_responder as scripted_responder,
)
from .usage import (
    Usage as Usage,
)
