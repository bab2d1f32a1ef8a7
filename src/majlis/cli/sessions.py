"""`majlis run` and `majlis resume`: one session, with the live view."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from ..errors import UserError
from ..model import EMBEDDED_ROUNDS

if TYPE_CHECKING:
    from ..model import Budget

from .app import Home, app, err, friendly, home_folder, open_cache, out


@app.command()
@friendly
def run(
    scenario: Annotated[
        str, typer.Option(help="Scenario name (scenarios/NAME) or path.")
    ] = "cornered-in-iraq",
    rounds: Annotated[
        int | None,
        typer.Option(
            help="Override the scenario's maximum rounds. Default: the scenario's, or "
            f"{EMBEDDED_ROUNDS} when every party plays the embedded model."
        ),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed passed to every model call.")] = None,
    model: Annotated[
        str, typer.Option(help="embedded, scripted[:firm|:soft], or a model name at --base-url.")
    ] = "embedded",
    base_url: Annotated[
        str | None, typer.Option(help="OpenAI-compatible endpoint, e.g. http://localhost:11434/v1.")
    ] = None,
    api_key_env: Annotated[
        str | None, typer.Option(help="Environment variable holding the API key.")
    ] = None,
    temperature: Annotated[float, typer.Option(help="Sampling temperature.")] = 0.7,
    max_tokens: Annotated[int, typer.Option(help="Maximum tokens per reply.")] = 700,
    timeout: Annotated[float, typer.Option(help="Seconds before a model call times out.")] = 120,
    structured: Annotated[
        str, typer.Option(help="auto, json_schema, json_object or prompt.")
    ] = "auto",
    models: Annotated[Path | None, typer.Option(help="YAML file with per-party models.")] = None,
    variant: Annotated[
        str | None, typer.Option(help="Prompt variant under prompts/variants/.")
    ] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Runs folder (default: runs/).")
    ] = None,
    show_private: Annotated[
        bool, typer.Option(help="Show private reasoning in the live view.")
    ] = False,
    human: Annotated[
        list[str] | None,
        typer.Option(help="Party a person plays from this terminal (trainee play)."),
    ] = None,
    context: Annotated[
        str | None,
        typer.Option(
            help="full record, or window:N (last N rounds plus a rolling summary). Default: "
            "full, or window:2 when every party plays the embedded model (its context window "
            "is 8192 tokens, which the full record outgrows by round 4)."
        ),
    ] = None,
    max_calls: Annotated[
        int | None, typer.Option(help="Stop cleanly after this many model calls.")
    ] = None,
    max_tokens_total: Annotated[
        int | None, typer.Option("--max-total-tokens", help="Stop cleanly after this many tokens.")
    ] = None,
    max_cost: Annotated[
        float | None,
        typer.Option(help="Stop cleanly at this estimated cost (USD, evals/prices.yaml)."),
    ] = None,
    quiet: Annotated[bool, typer.Option(help="No live view; print only the run folder.")] = False,
    cache: Annotated[
        bool | None,
        typer.Option(
            "--cache/--no-cache", help="Replay cached replies (default: on when --seed is set)."
        ),
    ] = None,
    profile: Annotated[
        str,
        typer.Option(
            help="Prompt profile: full, compact (for small local models: short brief, "
            "score table, what happened since the party's last move, plain-sentence "
            "replies), or auto (compact on the embedded model, full elsewhere)."
        ),
    ] = "auto",
    narrate: Annotated[
        list[str] | None,
        typer.Option(
            help="Party (or 'all') whose moves the scripted negotiator decides while the "
            "model writes its words; repeat for more parties."
        ),
    ] = None,
    home: Home = None,
) -> None:
    """Run a whole negotiation session and record it under runs/."""
    from pydantic import ValidationError

    from ..files import parse_file
    from ..model import Activity, ModelConfig, ModelsFile, Spending, load_prices
    from ..run import RunOptions, Terminal, party_configs, run_session
    from ..scenario import load_scenario

    try:
        default = ModelConfig(
            model=model,
            base_url=base_url,
            api_key_env=api_key_env,
            temperature=temperature,
            max_tokens=max_tokens,
            timeout=timeout,
            structured=structured,
            profile=profile,
        )  # type: ignore[arg-type]
    except ValidationError as exc:
        e = exc.errors()[0]
        raise UserError(f"--{str(e['loc'][0]).replace('_', '-')}: {e['msg']}") from None
    party_models: dict[str, ModelConfig] = {}
    if models is not None:
        spec = parse_file(models, ModelsFile)
        default = spec.default or default
        party_models = spec.parties
    if seed is not None and not 0 <= seed < 2**63:
        raise UserError(f"--seed must be between 0 and {2**63 - 1}, not {seed}")
    runs_root = out_dir or home_folder(home) / "runs"
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
            _budget(max_calls, max_tokens_total, max_cost),
            load_prices(home_folder(home) / "evals" / "prices.yaml"),
        ),
    )
    # every party on the embedded model (after the variant's and --human's say): a bounded
    # context, should the full profile be asked for, and a short session that shows the arc
    whole = load_scenario(scenario, home_folder(home))
    configs = party_configs(opts, list(whole.scenario.parties), home_folder(home))
    all_embedded = all(c.is_embedded for c in configs.values())
    full = whole.scenario.deal_rule.max_rounds
    if context is None and all_embedded:
        opts.context = "window:2"
    if rounds is None and all_embedded:
        opts.rounds = min(EMBEDDED_ROUNDS, full)
    ask = Terminal() if human else None
    if quiet:
        result = asyncio.run(run_session(opts, ask_human=ask))
    else:
        from ..run import with_rounds
        from .live import LiveView

        loaded = with_rounds(whole, opts.rounds)
        if all_embedded:
            err.print(
                "[dim]Using the embedded SmolLM2-135M model: a tiny model for trying majlis "
                f"offline, {loaded.scenario.deal_rule.max_rounds} of the scenario's {full} rounds "
                "(--rounds N for more). Point --base-url/--model at a real one for real "
                "negotiations.[/]"
            )
        opts.activity = Activity()
        with LiveView(
            loaded, out, show_private, progress=not human, activity=opts.activity
        ) as view:
            result = asyncio.run(run_session(opts, sink=view, ask_human=ask))
    _summary(result)
    if store is not None:
        out.print(str(store.stats))


@app.command()
@friendly
def resume(
    run_dir: Annotated[Path, typer.Argument(help="The run folder, or its id under runs/.")],
    quiet: Annotated[bool, typer.Option(help="No live view.")] = False,
    home: Home = None,
) -> None:
    """Finish an interrupted run from its last checkpoint (a person's party asks here again)."""
    from ..model import Activity
    from ..run import RunDir, Terminal, load_snapshot, resume_session
    from .live import LiveView

    path = run_dir if run_dir.exists() else home_folder(home) / "runs" / str(run_dir)
    rd = RunDir.open(path)
    people = [p for p, m in rd.read_manifest().parties.items() if m.played_by == "human"]
    ask = Terminal() if people else None
    if quiet:
        result = asyncio.run(resume_session(path, ask_human=ask))
    else:
        activity = Activity()
        with LiveView(load_snapshot(rd), out, progress=not people, activity=activity) as view:
            result = asyncio.run(resume_session(path, sink=view, ask_human=ask, activity=activity))
    _summary(result)


def _budget(calls: int | None, tokens: int | None, cost: float | None) -> Budget:
    from pydantic import ValidationError

    from ..model import Budget

    try:
        return Budget(max_calls=calls, max_tokens=tokens, max_cost=cost)
    except ValidationError as exc:
        e = exc.errors()[0]
        raise UserError(f"--{str(e['loc'][0]).replace('_', '-')}: {e['msg']}") from None


def _summary(result: Any) -> None:
    o = result.outcome
    table = Table(title=f"{o.kind} ({o.branch.replace('_', ' ')}) after {o.rounds_used} round(s)")
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
    out.print(
        f"calls {o.calls}, tokens {o.usage.prompt_tokens}+{o.usage.completion_tokens}, "
        f"failed turns {o.failed_turns}"
    )
    out.print(f"run folder: {result.run_dir.path}")
