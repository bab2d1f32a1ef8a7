"""The parties at the table: each one's prompter and the client that plays it (a model, a
person, a narrated script), with the limits, cache and budgets they share.

Building `Players` renders every template and checks the variant against the prompt
profiles; opening it (`async with`) starts the embedded model if a party plays it and
reaches each endpoint once. All of it happens before the run folder is made, so a refused
run leaves nothing behind.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import UserError
from ..model import EndpointLimits, ModelClient, SampleCounter, Spending, make_client
from ..protocol import ContextPolicy, PartyPrompter, RecordLines, Templates, briefing
from ..scenario import prompt_dirs
from .human import HumanClient
from .log import HUMAN
from .narrated import NarratedClient
from .preparation import render_all, variant_fits
from .state import Deps

if TYPE_CHECKING:
    from ..model import Activity, ModelConfig, ResponseCache
    from ..scenario import LoadedScenario


class Players:
    """Validated inputs and live clients; the embedded server runs while this is open."""

    def __init__(
        self,
        loaded: LoadedScenario,
        variant: str | None,
        configs: dict[str, ModelConfig],
        cache: ResponseCache | None = None,
        limits: EndpointLimits | None = None,
        spending: Spending | None = None,
        context: str = "full",
        activity: Activity | None = None,
        dialects: dict[str, str] | None = None,
    ) -> None:
        """`dialects`: party -> the structured-output dialect an earlier stretch of the run
        was answered in, where `auto` begins on resume."""
        self.loaded = loaded
        unknown = set(configs) - set(loaded.scenario.parties)
        if unknown:
            raise UserError(
                f"model given for unknown party {sorted(unknown)[0]!r} (parties: {', '.join(loaded.scenario.parties)})"
            )
        self.configs = configs
        self.templates = Templates(prompt_dirs(loaded.root, loaded.files[0]), variant)
        self.policy = ContextPolicy.parse(context)
        lines = RecordLines()
        self.prompters = {
            p: PartyPrompter(
                loaded, p, self.templates, self.policy, lines, configs[p].prompt_profile
            )
            for p in loaded.scenario.parties
        }
        variant_fits(self.templates, variant, {p.profile for p in self.prompters.values()})
        self._render_every_template()
        self.activity = activity
        self.server = None
        self.clients: dict[str, ModelClient] = {}
        self._own_limits = limits is None
        self.limits = limits or EndpointLimits()
        self.limits.declare(configs.values())
        self.cache = cache
        self.dialects = dialects or {}
        self.counter = SampleCounter()
        self.meters = (spending or Spending()).meters()

    def _render_every_template(self) -> None:
        narrated = {p for p, c in self.configs.items() if c.narrated}
        render_all(self.loaded, self.prompters.values(), narrated)

    async def open(self) -> None:
        if any(c.is_embedded for c in self.configs.values()):
            # the module itself, at call time: it brings llama.cpp, wanted only here
            from ..model import MODEL_NAME, start_embedded

            seed = next((c.seed for c in self.configs.values() if c.seed is not None), 0)
            self.server = start_embedded(seed=seed or 0, activity=self.activity)
            live = {
                "base_url": self.server.base_url,
                "model": MODEL_NAME,
                "structured": "json_object",
            }
        for party, cfg in self.configs.items():
            if cfg.model == HUMAN:
                brief = briefing(self.loaded, party)
                self.clients[party] = HumanClient(party, brief)  # type: ignore[assignment]
                continue
            embedded = cfg.is_embedded
            if embedded:
                cfg = cfg.model_copy(update={**live, "max_tokens": min(cfg.max_tokens, 500)})
            client = make_client(cfg, self.limits, self.cache, self.counter, self.meters, embedded)
            if cfg.narrated:  # a scripted party keeps its own style (firm, soft) as the decider
                style = cfg.model if cfg.is_scripted else "scripted"
                client = NarratedClient(client, self.prompters[party].narration, style)  # type: ignore[assignment]
            if party in self.dialects:
                client.backend.start_at(self.dialects[party])
            self.clients[party] = client
        # each endpoint is reached once before the run folder is made; in a sweep, once for
        # all its sessions (the limits are shared)
        for client in self.clients.values():
            key = (client.config.base_url, client.config.model, client.config.api_key_env)
            if key not in self.limits.checked:
                await client.backend.check()
                self.limits.checked.add(key)

    async def __aenter__(self) -> Players:
        """Open (`open`); closed on leaving, or at once if opening fails part way."""
        try:
            await self.open()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        for client in self.clients.values():
            await client.backend.aclose()
        if self._own_limits:
            await self.limits.aclose()
        if self.server is not None:
            self.server.stop()

    def deps(self) -> Deps:
        return Deps(loaded=self.loaded, prompters=self.prompters, clients=self.clients)
