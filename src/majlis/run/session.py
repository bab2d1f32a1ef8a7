"""Running and resuming a session: prepare, check, record, drive the graph, write the outcome.

Everything that can fail because of the user's input (files, flags, endpoints) is checked
before the run folder is made, so a refused run leaves nothing behind in runs/.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib.metadata
import json
import platform
import shutil
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from langgraph.types import Command
from pydantic import BaseModel, ValidationError

from ..errors import KEPT, BudgetExceeded, EndpointError, RunError, ScenarioError, UserError
from ..files import write_json_atomic
from ..model import (
    Activity,
    EndpointLimits,
    ModelClient,
    ModelConfig,
    ResponseCache,
    SampleCounter,
    Spending,
    Usage,
    error_line,
    make_client,
    refusal,
)
from ..protocol import rules
from ..protocol.context import ContextPolicy
from ..protocol.prompting import MOVE, PROFILES, SYSTEM, VOTE, PartyPrompter, RecordLines, Templates
from ..scenario.load import AgentCard, LoadedScenario, Scenario, data_root, load_scenario
from ..scenario.variants import load_variant, variants_dir
from .checkpoints import open_checkpoints
from .folder import RunDir, read_json_object
from .graph import Deps, build_graph, initial_state
from .human import HUMAN, HumanClient
from .log import Manifest, Outcome, PartyModel, PartyResult, first_error
from .narrated import NarratedClient

EventSink = Callable[[dict[str, Any]], None]
AskHuman = Callable[
    [dict[str, Any]], dict[str, Any]
]  # an interrupt's payload -> the person's answer


@dataclass
class RunOptions:
    scenario: str = "cornered-in-iraq"
    rounds: int | None = None
    seed: int | None = None
    model: ModelConfig = field(default_factory=ModelConfig)
    party_models: dict[str, ModelConfig] = field(default_factory=dict)
    variant: str | None = None
    runs_root: Path | None = None
    run_id: str | None = None
    home: Path | None = None
    command: list[str] = field(default_factory=lambda: list(sys.argv))
    cache: ResponseCache | None = None  # replies replayed by request and sample index
    limits: EndpointLimits | None = None  # shared by the sessions of a sweep
    humans: list[str] = field(default_factory=list)  # parties a person plays (trainee play)
    spending: Spending | None = None  # budgets: calls, tokens, cost
    context: str = "full"  # context policy: full, or window:N with a rolling summary
    narrate: list[str] = field(default_factory=list)  # parties played narrated ("all": every one)
    activity: Activity | None = None  # the embedded model reports its tokens here, as they come


@dataclass
class RunResult:
    run_dir: RunDir
    manifest: Manifest
    outcome: Outcome


MAX_ROUNDS = 100


def with_rounds(loaded: LoadedScenario, rounds: int | None) -> LoadedScenario:
    """The scenario with its round limit overridden; injects after the last round drop out."""
    if rounds is None:
        return loaded
    if not 1 <= rounds <= MAX_ROUNDS:  # the run log's own limit: readers refuse past it
        raise UserError(f"--rounds must be between 1 and {MAX_ROUNDS}, got {rounds}")
    s = loaded.scenario
    new = s.model_copy(
        update={
            "deal_rule": s.deal_rule.model_copy(update={"max_rounds": rounds}),
            "injects": [i for i in s.injects if i.round <= rounds],
        }
    )
    return loaded.model_copy(update={"scenario": new})


class _Prepared:
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
    ) -> None:
        self.loaded = loaded
        unknown = set(configs) - set(loaded.scenario.parties)
        if unknown:
            raise UserError(
                f"model given for unknown party {sorted(unknown)[0]!r} (parties: {', '.join(loaded.scenario.parties)})"
            )
        self.configs = configs
        self.templates = Templates(loaded.root, variant)
        self.policy = ContextPolicy.parse(context)
        lines = RecordLines()
        self.prompters = {
            p: PartyPrompter(
                loaded, p, self.templates, self.policy, lines, configs[p].prompt_profile
            )
            for p in loaded.scenario.parties
        }
        _variant_fits(self.templates, variant, {p.profile for p in self.prompters.values()})
        self._render_every_template()
        self.activity = activity
        self.server = None
        self.clients: dict[str, ModelClient] = {}
        self._own_limits = limits is None
        self.limits = limits or EndpointLimits()
        self.limits.declare(configs.values())
        self.cache = cache
        self.counter = SampleCounter()
        self.meters = (spending or Spending()).meters()

    def _render_every_template(self) -> None:
        narrated = {p for p, c in self.configs.items() if c.narrated}
        render_all(self.loaded, self.prompters.values(), narrated)

    async def open(self) -> None:
        if any(c.is_embedded for c in self.configs.values()):
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
                self.clients[party] = HumanClient(party)  # type: ignore[assignment]
                continue
            embedded = cfg.is_embedded
            if embedded:
                cfg = cfg.model_copy(update={**live, "max_tokens": min(cfg.max_tokens, 500)})
            client = make_client(cfg, self.limits, self.cache, self.counter, self.meters, embedded)
            if cfg.narrated:  # a scripted party keeps its own style (firm, soft) as the decider
                style = cfg.model if cfg.is_scripted else "scripted"
                client = NarratedClient(client, self.prompters[party].narration, style)  # type: ignore[assignment]
            self.clients[party] = client
        # each endpoint is reached once before the run folder is made; in a sweep, once for
        # all its sessions (the limits are shared)
        for client in self.clients.values():
            key = (client.config.base_url, client.config.model, client.config.api_key_env)
            if key not in self.limits.checked:
                await client.backend.check()
                self.limits.checked.add(key)

    async def close(self) -> None:
        for client in self.clients.values():
            await client.backend.aclose()
        if self._own_limits:
            await self.limits.aclose()
        if self.server is not None:
            self.server.stop()

    def deps(self) -> Deps:
        return Deps(loaded=self.loaded, prompters=self.prompters, clients=self.clients)


def _variant_fits(templates: Templates, variant: str | None, profiles: set[str]) -> None:
    """A variant that rewrites the move prompt for one profile and not for the other would
    change nothing for parties on the other one, and a comparison would measure nothing:
    refused, saying what to add."""
    if not variant:
        return
    root = templates.search[0]
    for name in (SYSTEM, MOVE, VOTE):
        has = {"full": (root / name).is_file(), "compact": (root / "compact" / name).is_file()}
        for profile in profiles:
            other = "compact" if profile == "full" else "full"
            if has[other] and not has[profile]:
                given = name if other == "full" else f"compact/{name}"
                wanted = name if profile == "full" else f"compact/{name}"
                raise UserError(
                    f"variant {variant!r} changes {given}, which the {profile} prompt profile "
                    f"does not read: add {wanted} to the variant, or run with --profile {other}"
                )


def render_all(
    loaded: LoadedScenario, prompters: Iterable[PartyPrompter], narrated: Collection[str]
) -> None:
    """Render each prompter's templates once, so a broken one fails before a run starts."""
    any_package = next(rules.all_packages(loaded.scenario))
    for prompter in prompters:
        move = prompter.messages("move", [], 1, None)
        standing = {"by": prompter.party, "package": any_package, "seq": 0}
        prompter.messages("vote", [], 1, standing)
        if prompter.party in narrated:
            decided = {"positions": any_package, "proposal": any_package, "side_message": None}
            prompter.narration(move, decided)


def check_templates(loaded: LoadedScenario, variant: str | None = None) -> None:
    """Render every template of a scenario, for every party, in every prompt profile and for
    narrated play: what `majlis validate` checks."""
    templates = Templates(loaded.root, variant)
    for profile in PROFILES:
        prompters = [
            PartyPrompter(loaded, p, templates, profile=profile) for p in loaded.scenario.parties
        ]
        render_all(loaded, prompters, loaded.scenario.parties)


def party_configs(opts: RunOptions, parties: list[str], root: Path) -> dict[str, ModelConfig]:
    """Each party's model: the default, its own entry, then the variant's overrides, then the seed."""
    variant = load_variant(root, opts.variant)
    spec = variants_dir(root) / str(opts.variant) / "variant.yaml"
    configs = {p: opts.party_models.get(p, opts.model) for p in parties}
    for p in opts.party_models:
        configs.setdefault(p, opts.party_models[p])
    for p, override in variant.models.items():
        if p not in parties:
            raise ScenarioError(spec, f"models.{p}", f"unknown party {p!r}")
        try:
            configs[p] = ModelConfig.model_validate({**configs[p].model_dump(), **override})
        except ValidationError as exc:
            err = exc.errors()[0]
            raise ScenarioError(
                spec, f"models.{p}.{'.'.join(map(str, err['loc']))}", err["msg"]
            ) from None
    narrate = list(parties) if "all" in opts.narrate else opts.narrate
    for p in narrate:
        if p not in parties:
            raise UserError(f"--narrate: unknown party {p!r} (parties: {', '.join(parties)}, all)")
        configs[p] = configs[p].model_copy(update={"narrated": True})
    for p in opts.humans:
        if p not in parties:
            raise UserError(f"--human: unknown party {p!r} (parties: {', '.join(parties)})")
        configs[p] = ModelConfig(model=HUMAN, temperature=0)
    if opts.seed is not None:
        configs = {
            p: c if c.seed is not None else c.model_copy(update={"seed": opts.seed})
            for p, c in configs.items()
        }
    return configs


def _played_by(config: ModelConfig) -> Literal["model", "human", "narrated"]:
    if config.model == HUMAN:
        return "human"
    return "narrated" if config.narrated else "model"


@functools.cache
def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in (
        "majlis",
        "openai",
        "langgraph",
        "langgraph-checkpoint-sqlite",
        "pydantic",
        "tenacity",
        "llama-cpp-python",
    ):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            out[pkg] = importlib.metadata.version(pkg)
    return out


@functools.cache
def _git_revision(home: Path) -> str | None:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=home, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return rev.stdout.strip() or None if rev.returncode == 0 else None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _new_run_id(scenario_id: str) -> str:
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{scenario_id}-{uuid.uuid4().hex[:6]}"


async def run_session(
    opts: RunOptions, sink: EventSink | None = None, ask_human: AskHuman | None = None
) -> RunResult:
    """Run one negotiation from the first round to its outcome."""
    home = data_root(opts.home)
    loaded = with_rounds(load_scenario(opts.scenario, home), opts.rounds)
    prepared = _Prepared(
        loaded,
        opts.variant,
        party_configs(opts, list(loaded.scenario.parties), home),
        opts.cache,
        opts.limits,
        opts.spending,
        opts.context,
        opts.activity,
    )
    try:
        await prepared.open()
        run_id = opts.run_id or _new_run_id(loaded.scenario.id)
        rd = RunDir.create(opts.runs_root or home / "runs", run_id)
        write_json_atomic(
            rd.scenario_path,
            {
                "home": str(home),
                "source": str(loaded.files[0]),
                "scenario": loaded.scenario.model_dump(),
                "cards": {k: v.model_dump() for k, v in loaded.cards.items()},
            },
        )
        manifest = Manifest(
            run_id=run_id,
            created=_now(),
            scenario={
                "id": loaded.scenario.id,
                "source": str(loaded.files[0]),
                "home": str(home),
                "content_hash": loaded.content_hash,
            },
            prompts=dict(sorted(prepared.templates.used.items())),
            variant=opts.variant,
            context_policy=str(prepared.policy),
            rounds=loaded.scenario.deal_rule.max_rounds,
            seed=opts.seed,
            parties={
                p: PartyModel(
                    model=c.model,
                    base_url=c.base_url,
                    api_key_env=c.api_key_env,
                    temperature=c.temperature,
                    max_tokens=c.max_tokens,
                    seed=c.seed,
                    structured=c.structured,
                    timeout=None if c.is_embedded else c.timeout,
                    max_retries=c.max_retries,
                    output_retries=c.output_retries,
                    concurrency=c.concurrency,
                    profile=c.prompt_profile,
                    played_by=_played_by(c),
                )
                for p, c in prepared.configs.items()
            },
            versions=dict(_versions()),
            git_revision=_git_revision(home),
            command=opts.command,
        )
        rd.write_manifest(manifest)
        return await _drive(rd, manifest, prepared, fresh=True, sink=sink, ask_human=ask_human)
    finally:
        await prepared.close()


class Snapshot(BaseModel):
    """scenario.json: the scenario and cards exactly as the run used them."""

    home: str
    source: str
    scenario: Scenario
    cards: dict[str, AgentCard]


def load_snapshot(rd: RunDir) -> LoadedScenario:
    """The scenario exactly as the run used it, from the run folder; a RunError naming the
    file and field if it is not one (every reader scores the run against it)."""
    try:
        snap = Snapshot.model_validate(read_json_object(rd.scenario_path))
    except ValidationError as exc:
        raise RunError(f"{rd.scenario_path}: {first_error(exc)}") from None
    missing = [p for p in snap.scenario.parties if p not in snap.cards]
    if missing:
        raise RunError(f"{rd.scenario_path}: cards: no card for party {missing[0]!r}")
    return LoadedScenario(
        scenario=snap.scenario, cards=snap.cards, root=Path(snap.home), files=[Path(snap.source)]
    )


async def resume_session(
    path: Path,
    sink: EventSink | None = None,
    cache: ResponseCache | None = None,
    limits: EndpointLimits | None = None,
    ask_human: AskHuman | None = None,
    spending: Spending | None = None,
    activity: Activity | None = None,
) -> RunResult:
    """Finish an interrupted run from its last checkpoint."""
    rd = RunDir.open(path)
    manifest = rd.read_manifest()
    if manifest.status == "complete":
        raise RunError(f"run {rd.run_id} is already complete")
    loaded = load_snapshot(rd)
    configs = {
        p: ModelConfig(
            model=m.model,
            base_url=m.base_url,
            api_key_env=m.api_key_env,
            temperature=m.temperature,
            max_tokens=m.max_tokens,
            seed=m.seed,
            structured=m.structured,  # type: ignore[arg-type]
            timeout=m.timeout if m.timeout is not None else ModelConfig().timeout,
            max_retries=m.max_retries,
            output_retries=m.output_retries,
            concurrency=m.concurrency,
            profile=m.profile,  # type: ignore[arg-type]
            narrated=m.played_by == "narrated",
        )
        for p, m in manifest.parties.items()
    }
    prepared = _Prepared(
        loaded,
        manifest.variant,
        configs,
        cache,
        limits,
        spending,
        manifest.context_policy,
        activity,
    )
    changed = [
        n for n, h in prepared.templates.used.items() if manifest.prompts.get(n) not in (None, h)
    ]
    if changed:
        raise RunError(
            f"prompt template {changed[0]} changed since run {rd.run_id} started; cannot resume it exactly"
        )
    try:
        await prepared.open()
        manifest = manifest.model_copy(update={"status": "running", "error": None})
        rd.write_manifest(manifest)
        return await _drive(rd, manifest, prepared, fresh=False, sink=sink, ask_human=ask_human)
    finally:
        await prepared.close()


async def _drive(
    rd: RunDir,
    manifest: Manifest,
    prepared: _Prepared,
    fresh: bool,
    sink: EventSink | None,
    ask_human: AskHuman | None = None,
) -> RunResult:
    config = {"configurable": {"thread_id": manifest.run_id}}
    deps = prepared.deps()
    try:
        with open_checkpoints(rd.checkpoint_path) as saver:
            graph = build_graph(saver)
            inp: Any = initial_state()
            # events.jsonl holds seq 0..written-1. On resume the checkpoint may already hold
            # the writes of a step cut before its checkpoint, which the stream replays: an
            # event is appended only if the file does not hold it yet.
            written = 0
            if not fresh:
                snap = await _saved_state(graph, config, rd)
                events = snap.values.get("events", []) if snap.values else []
                rd.rewrite_events(events)
                written = len(events)
                inp = None if snap.values else inp
            while True:  # one pass per stretch between a person's moves
                asked = final = None
                try:
                    # durability="async": a step's checkpoint is written while the next
                    # step waits on its model call, not before it starts. A kill can lose
                    # the last step's checkpoint; resume then runs that step again. The
                    # state's values come along with each update, so the final state need
                    # not be read back from the checkpoints (and the log rebuilt).
                    async for mode, update in graph.astream(
                        inp,
                        config,
                        context=deps,
                        durability="async",
                        stream_mode=["updates", "values"],
                    ):
                        if mode == "values":
                            final = None if "__interrupt__" in update else update
                            continue
                        if "__interrupt__" in update:
                            asked = update["__interrupt__"][0].value
                            continue
                        for delta in update.values():
                            new = delta.get("events") if isinstance(delta, dict) else None
                            new = [e for e in new or [] if e["seq"] >= written]
                            if new:
                                rd.append_events(new)
                                written = new[-1]["seq"] + 1
                                for event in new:
                                    if sink:
                                        sink(event)
                except BudgetExceeded as exc:  # end cleanly: the graph's own end node records it
                    events = (await graph.aget_state(config)).values.get("events", [])
                    rd.rewrite_events(events)
                    written = len(events)
                    stop = {"done": True, "stopped": str(exc)}
                    await graph.aupdate_state(config, stop, as_node="adjudicate")
                    inp = None
                    continue
                if asked is None:
                    break
                if ask_human is None:
                    raise RunError(f"run {rd.run_id} waits for a person to play {asked['party']}")
                inp = Command(resume=await asyncio.to_thread(ask_human, asked))
            if final is None:  # nothing ran: a resume of a session that had ended
                final = (await graph.aget_state(config)).values
        rd.sync_events()
    except BaseException as exc:
        refused = refusal(exc)
        if fresh and refused and not _any_reply(rd):
            # turned away at the first call (a wrong model name, a base URL without the
            # chat route): the user's error, and nothing in the folder worth keeping
            shutil.rmtree(rd.path, ignore_errors=True)
            raise EndpointError(
                f"the first model call was refused, no run recorded: {refused}"
            ) from None
        reason = (
            "interrupted"
            if isinstance(exc, KeyboardInterrupt | GeneratorExit | asyncio.CancelledError)
            else error_line(exc)
        )
        exc.add_note(f"{KEPT} {rd.path}")  # for the one line the command line prints
        rd.write_manifest(
            manifest.model_copy(
                update={"status": "failed", "error": reason[:500], "finished": _now()}
            )
        )
        raise
    outcome = build_outcome(prepared.loaded, final)
    rd.write_outcome(outcome)
    manifest = manifest.model_copy(update={"status": "complete", "finished": _now()})
    rd.write_manifest(manifest)
    return RunResult(rd, manifest, outcome)


async def _saved_state(graph: Any, config: Any, rd: RunDir) -> Any:
    """The state a resume starts from; a RunError naming checkpoint.sqlite if a damaged
    page or record keeps it from being read (nothing has run yet: nothing is lost)."""
    try:
        return await graph.aget_state(config)
    except (sqlite3.DatabaseError, ValueError) as exc:
        raise RunError(f"{rd.checkpoint_path}: cannot read the checkpoints: {exc}") from None


def _any_reply(rd: RunDir) -> bool:
    """Whether any model call of the run was answered (its event carries usage). When the
    log cannot be read, the answer is yes: the folder is kept rather than lost."""
    try:
        lines = rd.events_path.read_text(encoding="utf-8").splitlines()
        return any(json.loads(x).get("usage") for x in lines if x.strip())
    except FileNotFoundError:
        return False
    except (OSError, ValueError):
        return True


def build_outcome(loaded: LoadedScenario, state: dict[str, Any]) -> Outcome:
    """outcome.json from the final graph state and its events."""
    events = state["events"]
    final = next(e for e in reversed(events) if e["type"] == "outcome")["content"]
    standing = state.get("standing")
    last_proposal = dict(standing["package"]) if standing else None
    package = final["package"]
    scored = {k: v for k, v in package.items() if v is not None}
    if final["kind"] != "deal" and last_proposal:
        scored = last_proposal
    ballots = (state.get("votes") or {}).get("ballots", {})
    parties = {}
    for pid, card in loaded.cards.items():
        sc = rules.score(card.scores, scored)
        parties[pid] = PartyResult(
            score=sc, threshold=card.threshold, margin=sc - card.threshold, vote=ballots.get(pid)
        )
    spent = [e for e in events if e.get("usage") and e.get("call_id") != HUMAN]
    usage = Usage.total(e["usage"] for e in spent)
    failed = [e for e in events if e["type"] == "error" and not any(e is s for s in spent)]
    calls = sum(e["content"].get("attempts", 1) for e in spent + failed)
    return Outcome(
        kind=final["kind"],
        stopped=final.get("stopped"),
        branch=final["branch"],
        deal_round=final["deal_round"],
        package=package,
        last_proposal=last_proposal,
        parties=parties,
        rounds_used=state["round"],
        calls=calls,
        failed_turns=sum(e["type"] == "error" for e in events),
        usage=usage,
    )
