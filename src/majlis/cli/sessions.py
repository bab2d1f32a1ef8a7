"""`majlis run` and `majlis resume`: one session, with the live view."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from ..errors import UserError
from ..model import EMBEDDED_ROUNDS
from .core import Home, Trace, app, err, friendly, home_folder, open_cache, out, runs_folder

# The options of `majlis run`, each with its help text.
Scenario = Annotated[
    str | None,
    typer.Option(
        help="Scenario name (scenarios/NAME) or folder. Default: the home's only scenario, "
        "or cornered-in-iraq where it is one of several."
    ),
]
Rounds = Annotated[
    int | None,
    typer.Option(
        help="Override the scenario's maximum rounds. Default: the scenario's, or "
        f"{EMBEDDED_ROUNDS} when every party plays the embedded model."
    ),
]
Seed = Annotated[int | None, typer.Option(help="Seed passed to every model call.")]
Model = Annotated[
    str, typer.Option(help="embedded, scripted[:firm|:soft], or a model name at --base-url.")
]
BaseURL = Annotated[
    str | None, typer.Option(help="OpenAI-compatible endpoint, e.g. http://localhost:11434/v1.")
]
KeyEnv = Annotated[str | None, typer.Option(help="Environment variable holding the API key.")]
Temperature = Annotated[float, typer.Option(help="Sampling temperature.")]
MaxTokens = Annotated[int, typer.Option(help="Maximum tokens per reply.")]
Timeout = Annotated[float, typer.Option(help="Seconds before a model call times out.")]
Structured = Annotated[str, typer.Option(help="auto, json_schema, json_object or prompt.")]
Models = Annotated[Path | None, typer.Option(help="YAML file with per-party models.")]
VariantName = Annotated[str | None, typer.Option(help="Prompt variant under prompts/variants/.")]
RunsFolder = Annotated[Path | None, typer.Option("--out", help="Runs folder (default: runs/).")]
ShowPrivate = Annotated[bool, typer.Option(help="Show private reasoning in the live view.")]
Humans = Annotated[
    list[str] | None,
    typer.Option(help="Party a person plays from this terminal (trainee play)."),
]
Context = Annotated[
    str | None,
    typer.Option(
        help="full record, or window:N (last N rounds plus a rolling summary). Default: "
        "full, or window:2 when every party plays the embedded model (its context window "
        "is 8192 tokens, which the full record outgrows by round 4)."
    ),
]
MaxCalls = Annotated[int | None, typer.Option(help="Stop cleanly after this many model calls.")]
MaxTotalTokens = Annotated[
    int | None, typer.Option("--max-total-tokens", help="Stop cleanly after this many tokens.")
]
MaxCost = Annotated[
    float | None,
    typer.Option(help="Stop cleanly at this estimated cost (USD, evals/prices.yaml)."),
]
Quiet = Annotated[bool, typer.Option(help="No live view; print only the run folder.")]
Cache = Annotated[
    bool | None,
    typer.Option(
        "--cache/--no-cache", help="Replay cached replies (default: on when --seed is set)."
    ),
]
Profile = Annotated[
    str,
    typer.Option(
        help="Prompt profile: full, compact (for small local models: short brief, "
        "score table, what happened since the party's last move, plain-sentence "
        "replies), or auto (compact on the embedded model, full elsewhere)."
    ),
]
Narrate = Annotated[
    list[str] | None,
    typer.Option(
        help="Party (or 'all') whose moves the scripted negotiator decides while the "
        "model writes its words; repeat for more parties."
    ),
]


# run's options that set the default model (each names a ModelConfig field)
MODEL_OPTIONS = ("model", "base_url", "api_key_env", "temperature", "max_tokens", "timeout")
MODEL_OPTIONS += ("structured", "profile")


@app.command()
@friendly
def run(
    scenario: Scenario = None,
    rounds: Rounds = None,
    seed: Seed = None,
    model: Model = "embedded",
    base_url: BaseURL = None,
    api_key_env: KeyEnv = None,
    temperature: Temperature = 0.7,
    max_tokens: MaxTokens = 700,
    timeout: Timeout = 120,
    structured: Structured = "auto",
    models: Models = None,
    variant: VariantName = None,
    out_dir: RunsFolder = None,
    show_private: ShowPrivate = False,
    human: Humans = None,
    context: Context = None,
    max_calls: MaxCalls = None,
    max_tokens_total: MaxTotalTokens = None,
    max_cost: MaxCost = None,
    quiet: Quiet = False,
    cache: Cache = None,
    profile: Profile = "auto",
    narrate: Narrate = None,
    trace: Trace = False,
    home: Home = None,
) -> None:
    """Run a whole negotiation session and record it under runs/."""
    from .. import tracing
    from ..model import Activity, Budget, ModelConfig, Spending, load_prices
    from ..run import RunOptions, Terminal, prepare
    from ..scenario import shipped_file

    tracing.setup(trace)
    given = locals()  # the options as typed, by name
    default = _option_model(ModelConfig, **{name: given[name] for name in MODEL_OPTIONS})
    default, party_models = _models_file(models, default)
    if seed is not None and not 0 <= seed < 2**63:
        raise UserError(f"--seed must be between 0 and {2**63 - 1}, not {seed}")
    runs_root = out_dir or runs_folder(home)
    use_cache = seed is not None if cache is None else cache
    store = open_cache(runs_root / "cache.sqlite") if use_cache else None
    opts = RunOptions(
        scenario=scenario,
        rounds=rounds,
        seed=seed,
        model=default,
        party_models=party_models,
        variant=variant,
        runs_root=runs_root,
        home=home,
        command=sys.argv,
        cache=store,
        humans=human or [],
        context=context or "full",
        narrate=narrate or [],
        spending=Spending(
            _option_model(
                Budget, max_calls=max_calls, max_tokens=max_tokens_total, max_cost=max_cost
            ),
            load_prices(shipped_file(home_folder(home), "evals/prices.yaml")),
        ),
        activity=None if quiet else Activity(),
    )
    # every party on the embedded model (after the variant's and --human's say): a bounded
    # context, should the full profile be asked for, and a short session that shows the arc
    prepared = prepare(opts).with_embedded_defaults(context_given=context is not None)
    ask = Terminal() if human else None
    result = _play(prepared, quiet, show_private, ask)
    if quiet:  # the folder alone, whole on one line, for scripts: RUN=$(majlis run --quiet)
        typer.echo(str(result.run_dir.path))
        return
    summary(result)
    if store is not None:
        out.print(str(store.stats))


def _play(prepared: Any, quiet: bool, show_private: bool, ask: Any) -> Any:
    """Play a prepared session, under the live view unless quiet; before the view, say so if
    it is the tiny embedded model."""
    from ..run import run_session
    from .live import LiveView

    if quiet:
        return asyncio.run(run_session(prepared, ask_human=ask))
    if prepared.all_embedded:
        played = prepared.loaded.scenario.deal_rule.max_rounds
        err.print(
            "[dim]Using the embedded SmolLM2-135M model: a tiny model for trying majlis "
            f"offline, {played} of the scenario's {prepared.scenario_rounds} rounds "
            "(--rounds N for more). Point --base-url/--model at a real one for real "
            "negotiations.[/]"
        )
    activity = prepared.opts.activity
    with LiveView(
        prepared.loaded, out, show_private, progress=ask is None, activity=activity
    ) as view:
        return asyncio.run(run_session(prepared, sink=view, ask_human=ask))


def _option_model(settings: Any, /, **fields: Any) -> Any:
    """A settings model built from command-line options; a bad value is one line naming
    its option (`--max-cost: ...`)."""
    from pydantic import ValidationError

    try:
        return settings(**fields)
    except ValidationError as exc:
        e = exc.errors()[0]
        raise UserError(f"--{str(e['loc'][0]).replace('_', '-')}: {e['msg']}") from None


def _models_file(path: Path | None, default: Any) -> tuple[Any, dict[str, Any]]:
    """The default model and each party's, from --models (when given) over the options."""
    if path is None:
        return default, {}
    from ..files import parse_file
    from ..model import ModelsFile

    spec = parse_file(path, ModelsFile)
    return spec.default or default, spec.parties


@app.command()
@friendly
def resume(
    run_dir: Annotated[Path, typer.Argument(help="The run folder, or its id under runs/.")],
    quiet: Annotated[bool, typer.Option(help="No live view.")] = False,
    trace: Trace = False,
    home: Home = None,
) -> None:
    """Finish an interrupted run from its last checkpoint (a person's party asks here again)."""
    from .. import tracing
    from ..model import Activity
    from ..run import RunDir, Terminal, load_snapshot, resume_session
    from .live import LiveView

    tracing.setup(trace)
    path = run_dir if run_dir.exists() else runs_folder(home) / str(run_dir)
    rd = RunDir.open(path)
    people = [p for p, m in rd.read_manifest().parties.items() if m.played_by == "human"]
    ask = Terminal() if people else None
    if quiet:
        result = asyncio.run(resume_session(path, ask_human=ask))
    else:
        activity = Activity()
        with LiveView(load_snapshot(rd), out, progress=not people, activity=activity) as view:
            result = asyncio.run(resume_session(path, sink=view, ask_human=ask, activity=activity))
    summary(result)


def summary(result: Any) -> None:
    from ..run import load_snapshot

    o = result.outcome
    branch = load_snapshot(result.run_dir).scenario.branch_label(o.branch)
    table = Table(title=f"{o.kind} ({escape(branch)}) after {o.rounds_used} round(s)")
    for col in ("party", "score", "walk-away", "margin", "last vote"):
        table.add_column(col)
    for pid, r in o.parties.items():
        colour = "green" if r.margin >= 0 else "red"
        table.add_row(
            pid, str(r.score), str(r.threshold), f"[{colour}]{r.margin:+d}[/]", r.vote or "-"
        )
    out.print(table)
    if o.stopped:
        out.print(f"[yellow]stopped early: {escape(o.stopped)}[/]")
    retried = o.transport_retries
    out.print(
        f"calls {o.calls}, tokens {o.usage.prompt_tokens}+{o.usage.completion_tokens}, "
        f"failed turns {o.failed_turns}"
        + (f", transport retries {retried.line()}" if retried.count else "")
    )
    out.print(f"run folder: {result.run_dir.path}", soft_wrap=True)
