"""What `majlis.model` offers (read by lazy_loader and by type checkers)."""

from .activity import (
    Activity as Activity,
    Snapshot as Snapshot,
)
from .adaptive import (
    AdaptiveLimit as AdaptiveLimit,
    Aimd as Aimd,
)
from .backend import (
    Backend as Backend,
    Reply as Reply,
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
    Answer as Answer,
    ModelClient as ModelClient,
    extract_json as extract_json,
    make_client as make_client,
)
from .config import (
    EMBEDDED_ROUNDS as EMBEDDED_ROUNDS,
    JUDGE_SETTINGS as JUDGE_SETTINGS,
    JudgesFile as JudgesFile,
    ModelConfig as ModelConfig,
    ModelsFile as ModelsFile,
)
from .embedded import (
    MODEL_NAME as MODEL_NAME,
    ConversationStates as ConversationStates,
    gguf_path as gguf_path,
    start_embedded as start_embedded,
)
from .failures import (
    error_line as error_line,
    refusal as refusal,
    server_fault as server_fault,
)
from .faults import (
    KINDS as KINDS,
    OUTPUT as OUTPUT,
    TRANSPORT as TRANSPORT,
    FaultPlan as FaultPlan,
    TokenBucket as TokenBucket,
    party_of as party_of,
)
from .loopback import (
    Completion as Completion,
    LoopbackServer as LoopbackServer,
    llama_cpp_python as llama_cpp_python,
    scripted_responder as scripted_responder,
)
from .retries import (
    RetryNote as RetryNote,
    RetryTotals as RetryTotals,
    noting_retries as noting_retries,
    retries_of as retries_of,
)
from .transport import (
    EndpointLimits as EndpointLimits,
    http_client as http_client,
    portion as portion,
)
from .usage import (
    Usage as Usage,
)
from .wire import (
    BadResponseError as BadResponseError,
)
