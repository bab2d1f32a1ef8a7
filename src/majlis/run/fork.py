"""`majlis fork`: a new run that starts from the state of another just before one of its
events, with changes: other models, another variant or seed, an edited message, an inject.

It is built on langgraph's checkpoint history, not on a replay. The parent's history
(`aget_state_history`) says which step made each event and which checkpoint that step ran
from. The child gets a folder of its own beside the parent; the checkpoint it starts from
and that checkpoint's ancestors are copied into its checkpoint.sqlite under its own thread
(`copy_lineage`); the changes to the state are written as langgraph updates
(`aupdate_state`): an edited message as the output of the turn that said it, an inject as
one more event from the node that made the checkpoint, so the graph goes on to the same
next step. Then the child plays on from there with its own players, as a resume would
(`session.drive`). The part before the fork is never run again: it costs no model call.

Where a fork may start. A checkpoint falls between two steps (a round's opening, a turn,
a vote, an adjudication), so a fork restarts a whole step: `--at` names an event that
stands for one, a round's opening or one of its injects (the child starts right after
that opening, which the scenario fixes), or a turn's message or a vote (the child plays
that turn or that vote again; its private reasoning comes from the same call and is made
again with it). An edit is the exception: its fork point is the edited message itself,
and the rest of that turn stands as the parent had it.
"""

from __future__ import annotations

import itertools
import shutil
import sqlite3
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import RunError, UserError
from ..model import ModelConfig, ModelsFile
from ..scenario import BASELINE, LoadedScenario, prompt_dirs
from .checkpoints import copy_lineage, open_checkpoints
from .folder import RunDir, load_snapshot
from .graph import build_graph
from .log import AddedInject, EditedMessage, ForkChanges, ForkParent, Manifest, PartyModel
from .players import Players
from .preparation import RunOptions, party_configs
from .provenance import git_revision, new_run_id, now, party_config, party_model, versions
from .session import AskHuman, EventSink, RunResult, drive

if TYPE_CHECKING:
    from ..model import Activity, EndpointLimits, ResponseCache, Spending

# the events that stand for a step a fork can start at (besides a step's first event)
LEADS = ("round", "inject", "message", "vote", "error")
EDITABLE = ("message", "side_message")
INJECT_ID = "fork-inject"


@dataclass
class ForkOptions:
    parent: Path  # the parent's run folder
    at: int | None = None  # the event to fork at (with `edit`: the message edited)
    edit: str | None = None  # the new words of the message at `at`
    inject: tuple[str, str] | None = None  # (title, text), announced at the fork point
    model: str | None = None  # every party's model name
    party_models: dict[str, str] = field(default_factory=dict)  # party -> model name
    models: ModelsFile | None = None  # a models file, as `majlis run --models` takes
    variant: str | None = None  # None: the parent's; "baseline": none
    seed: int | None = None
    runs_root: Path | None = None  # default: the parent's runs folder
    run_id: str | None = None
    command: list[str] = field(default_factory=lambda: list(sys.argv))
    cache: ResponseCache | None = None
    limits: EndpointLimits | None = None
    spending: Spending | None = None
    activity: Activity | None = None


@dataclass(frozen=True)
class Step:
    """One step of a run as its checkpoints record it: the node run from `before`, which
    made the events start..end-1 and led to `after`; `writer` made `before`."""

    node: str
    start: int
    end: int
    before: Any  # langgraph StateSnapshot
    after: Any
    writer: str

    def events(self) -> list[dict[str, Any]]:
        return list(self.after.values["events"][self.start : self.end])


@dataclass(frozen=True)
class Plan:
    """Where the child starts (a checkpoint of the parent, and the seq from which its events
    are its own) and the state updates that carry the changes, applied in order."""

    point: int
    start: Any  # the parent's StateSnapshot
    updates: list[tuple[dict[str, Any], str]]  # (values, as_node)
    inject: AddedInject | None = None


async def fork_session(
    opts: ForkOptions, sink: EventSink | None = None, ask_human: AskHuman | None = None
) -> RunResult:
    """Fork a run and play the child to its end. Everything the user may have got wrong
    (the run, the seq, a model, a variant) is refused before the child's folder is made."""
    parent = RunDir.open(opts.parent)
    pm = parent.read_manifest()
    loaded = load_snapshot(parent)
    plan = plan_fork(pm.run_id, await read_steps(parent, pm.run_id), opts)
    variant = pm.variant if opts.variant is None else opts.variant
    variant = None if variant == BASELINE else variant
    configs = child_configs(pm, opts, loaded, variant)
    players = Players(
        loaded,
        variant,
        configs,
        opts.cache,
        opts.limits,
        opts.spending,
        pm.context_policy,
        opts.activity,
        # a party on the parent's endpoint and model begins where the parent's `auto` ended
        dialects={
            p: m.structured_used
            for p, m in pm.parties.items()
            if m.structured_used
            and (configs[p].base_url, configs[p].model) == (m.base_url, m.model)
        },
    )
    async with players:
        run_id = opts.run_id or new_run_id(loaded.scenario.id)
        rd = RunDir.create(opts.runs_root or parent.path.parent, run_id)
        try:
            shutil.copyfile(parent.scenario_path, rd.scenario_path)
            manifest = child_manifest(pm, parent, run_id, players, plan, opts, variant)
            rd.write_manifest(manifest)
            await plant(rd, parent.checkpoint_path, pm.run_id, plan, run_id)
        except BaseException:  # a child that never started is not kept
            shutil.rmtree(rd.path, ignore_errors=True)
            raise
        return await drive(rd, manifest, players, fresh=False, sink=sink, ask_human=ask_human)


async def read_steps(parent: RunDir, thread: str) -> list[Step]:
    """The steps of a run along its latest checkpoint's lineage, oldest first, from
    langgraph's state history (which rebuilds each checkpoint's events)."""
    if not parent.checkpoint_path.is_file():
        raise RunError(f"{parent.path} has no checkpoint.sqlite: a fork starts from one")
    config: Any = {"configurable": {"thread_id": thread}}
    with open_checkpoints(parent.checkpoint_path) as saver:
        try:
            history = [s async for s in build_graph(saver).aget_state_history(config)]
        except (sqlite3.DatabaseError, ValueError) as exc:
            raise RunError(
                f"{parent.checkpoint_path}: cannot read the checkpoints: {exc}"
            ) from None
    by_id = {s.config["configurable"]["checkpoint_id"]: s for s in history}
    chain: list[Any] = []
    snap = history[0] if history else None
    while snap is not None:  # newest to oldest along the parents, then turned round
        chain.append(snap)
        above = (snap.parent_config or {}).get("configurable", {}).get("checkpoint_id")
        snap = by_id.get(above)
    chain.reverse()
    steps = []
    for i, (before, after) in enumerate(itertools.pairwise(chain)):
        start, end = len(before.values.get("events", [])), len(after.values.get("events", []))
        if end > start and before.next:
            writer = chain[i - 1].next[0] if i and chain[i - 1].next else "__start__"
            steps.append(Step(before.next[0], start, end, before, after, writer))
    return steps


def plan_fork(run_id: str, steps: list[Step], opts: ForkOptions) -> Plan:
    """Where the child starts and what it changes; a UserError for a seq it cannot start at."""
    total = steps[-1].end if steps else 0
    at = opts.at
    if at is None:
        raise UserError("--at SEQ: say which event to fork at")
    if not 0 <= at < total:
        last = f"0 to {total - 1}" if total else "none"
        raise UserError(f"--at {at}: run {run_id} has no event {at} (its events: {last})")
    step = next(s for s in steps if s.start <= at < s.end)
    event = step.events()[at - step.start]
    if opts.edit is not None:
        plan = _edit_plan(steps, step, event, opts.edit)
    elif step.node == "facilitator" and event["type"] in LEADS:
        # a round's opening is the scenario's, the same in any fork: start right after it
        plan = Plan(step.end, step.after, [])
    elif step.node in ("turn", "vote") and (at == step.start or event["type"] in LEADS):
        plan = Plan(step.start, step.before, [])
    else:
        near = _nearest(at, [s for s in _allowed(steps) if s != at])
        raise UserError(
            f"--at {at} is {_who(event)}, which no fork starts at (a fork starts at a round's "
            f"opening, a turn or a vote); nearest: {near}"
        )
    if opts.inject is None:
        return plan
    return _with_inject(plan, step, opts.inject)


def _edit_plan(steps: list[Step], step: Step, event: dict[str, Any], text: str) -> Plan:
    """The turn that said the message, written again with the new words: the child starts
    from the checkpoint before that turn and takes it as the turn's output."""
    at = event["seq"]
    if event["type"] not in EDITABLE:
        near = _nearest(at, [e["seq"] for s in steps for e in s.events() if e["type"] in EDITABLE])
        raise UserError(f"--edit: seq {at} is {_who(event)}, not a message; nearest: {near}")
    if not text.strip():
        raise UserError("--edit: the new words are empty")
    made = step.events()
    made[at - step.start] = {**event, "content": {**event["content"], "text": text}, "edited": True}
    values = {k: v for k, v in step.after.values.items() if k != "events"}
    return Plan(at, step.before, [({**values, "events": made}, step.node)])


def _with_inject(plan: Plan, step: Step, inject: tuple[str, str]) -> Plan:
    """The plan with an inject announced where the child's own events begin (after an
    edited turn, when a message was edited), written by the node that made that state."""
    title, text = inject
    if plan.start is step.before and not plan.updates:  # before the step: as its writer
        writer, state = step.writer, step.before.values
    else:  # after the step (a round's opening, an edited turn): as the step's node
        writer, state = step.node, step.after.values
    seq, rnd = len(state["events"]), state["round"]
    added = AddedInject(seq=seq, title=title, text=text)
    event = {
        "seq": seq,
        "round": rnd,
        "type": "inject",
        "speaker": "facilitator",
        "audience": "all",
        "content": {"id": INJECT_ID, "title": title, "text": text},
        "call_id": None,
        "usage": None,
        "latency_ms": None,
        "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
    }
    return Plan(plan.point, plan.start, [*plan.updates, ({"events": [event]}, writer)], added)


def _allowed(steps: list[Step]) -> list[int]:
    """Every seq a fork can start at."""
    out = []
    for s in steps:
        for e in s.events():
            lead = e["type"] in LEADS
            if (s.node == "facilitator" and lead) or (
                s.node in ("turn", "vote") and (lead or e["seq"] == s.start)
            ):
                out.append(e["seq"])
    return out


def _nearest(at: int, seqs: list[int]) -> str:
    below = [s for s in seqs if s < at]
    above = [s for s in seqs if s > at]
    near = ([max(below)] if below else []) + ([min(above)] if above else [])
    return ", ".join(str(s) for s in near) or "none"


def _who(event: dict[str, Any]) -> str:
    kind = event["type"].replace("_", " ")
    speaker = event["speaker"]
    return f"the {kind}" if speaker == "facilitator" else f"{speaker}'s {kind}"


def child_configs(
    pm: Manifest, opts: ForkOptions, loaded: LoadedScenario, variant: str | None
) -> dict[str, ModelConfig]:
    """Each party's model in the child: the parent's, then the models file, then --model
    and --party-model (a name alone: the rest of the party's settings stay), then the new
    variant's model settings if the variant changed, then the new seed."""
    parties = list(loaded.scenario.parties)
    configs = {p: party_config(m) for p, m in pm.parties.items()}
    if opts.models is not None:
        for p in parties:
            configs[p] = opts.models.parties.get(p) or opts.models.default or configs[p]
    names = dict.fromkeys(parties, opts.model) if opts.model else {}
    for p, name in opts.party_models.items():
        if p not in parties:
            raise UserError(f"--party-model: unknown party {p!r} (parties: {', '.join(parties)})")
        names[p] = name
    for p, name in names.items():
        if name and name != configs[p].model:  # another model: its own prompt profile
            configs[p] = ModelConfig.model_validate(
                {**configs[p].model_dump(), "model": name, "profile": "auto"}
            )
    if variant != (None if pm.variant == BASELINE else pm.variant):
        opts_ = RunOptions(party_models=configs, variant=variant)
        configs = party_configs(opts_, parties, prompt_dirs(loaded.root, loaded.files[0]))
    if opts.seed is not None:
        configs = {p: c.model_copy(update={"seed": opts.seed}) for p, c in configs.items()}
    return configs


def _changed(child: PartyModel, parent: PartyModel | None) -> bool:
    """Whether a party plays with other settings than in the parent (the dialect the
    parent's endpoint was found to answer in is a record, not a setting)."""
    if parent is None:
        return True
    found = {"structured_used"}
    return child.model_dump(exclude=found) != parent.model_dump(exclude=found)


def child_manifest(
    pm: Manifest,
    parent: RunDir,
    run_id: str,
    players: Players,
    plan: Plan,
    opts: ForkOptions,
    variant: str | None,
) -> Manifest:
    """The child's manifest: the parent's scenario and rounds, its own players, and where
    it comes from and what it changed."""
    parties = {p: party_model(c) for p, c in players.configs.items()}
    for p, m in parties.items():  # the shared part was answered in the parent's dialect
        was = pm.parties.get(p)
        if was is not None and was.structured_used and not _changed(m, was):
            parties[p] = m.model_copy(update={"structured_used": was.structured_used})
    edit = EditedMessage(seq=plan.point, text=opts.edit) if opts.edit is not None else None
    changes = ForkChanges(
        models={p: m.model for p, m in parties.items() if _changed(m, pm.parties.get(p))},
        variant=opts.variant,
        seed=opts.seed,
        edit=edit,
        inject=plan.inject,
    )
    return Manifest(
        run_id=run_id,
        created=now(),
        scenario=pm.scenario,
        prompts=dict(sorted(players.templates.used.items())),
        variant=variant,
        rounds=pm.rounds,
        seed=pm.seed if opts.seed is None else opts.seed,
        context_policy=pm.context_policy,
        parties=parties,
        versions=dict(versions()),
        git_revision=git_revision(players.loaded.root),
        command=opts.command,
        parent=ForkParent(
            run_id=pm.run_id,
            path=str(parent.path),
            seq=plan.point,
            checkpoint_id=plan.start.config["configurable"]["checkpoint_id"],
        ),
        changes=changes,
    )


async def plant(rd: RunDir, source: Path, thread: str, plan: Plan, new_thread: str) -> None:
    """The child's checkpoint.sqlite: the parent's checkpoint and its ancestors under the
    child's thread, then the changes as state updates (each a checkpoint of its own)."""
    checkpoint_id = plan.start.config["configurable"]["checkpoint_id"]
    with open_checkpoints(rd.checkpoint_path) as saver:
        copy_lineage(source, thread, checkpoint_id, saver, new_thread)
        graph = build_graph(saver)
        config: Any = {"configurable": {"thread_id": new_thread}}
        for values, node in plan.updates:
            await graph.aupdate_state(config, values, as_node=node)


def parse_inject(spec: str) -> tuple[str, str]:
    """`--inject "TITLE: TEXT"` as (title, text); a UserError if either part is missing."""
    title, colon, text = spec.partition(":")
    if not colon or not title.strip() or not text.strip():
        raise UserError(f'--inject must read "TITLE: TEXT", got {spec[:60]!r}')
    return title.strip(), text.strip()
