"""The files majlis reads: `scenarios`, `agents`, `variants`, `validate`, `zone`, `schema`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from ..errors import UserError
from .core import Home, app, fail, friendly, home_folder, out

if TYPE_CHECKING:
    from ..protocol import Scored, Zone


@app.command()
@friendly
def scenarios(home: Home = None) -> None:
    """List the scenarios."""
    from ..scenario import list_scenarios, load_scenario

    root = home_folder(home)
    table = Table("name", "title", "parties", "issues", "rounds")
    broken: list[str] = []
    for name in list_scenarios(root):
        try:
            s = load_scenario(name, root).scenario
        except UserError as exc:  # the good ones are listed all the same; this one is named
            broken.append(str(exc))
            table.add_row(name, "[red]broken: see below[/]", "", "", "")
            continue
        table.add_row(
            name, s.title, ", ".join(s.parties), str(len(s.agenda)), str(s.deal_rule.max_rounds)
        )
    out.print(table)
    for line in broken:
        fail(f"majlis: error: {line}")
    if broken:
        raise typer.Exit(2)


@app.command()
@friendly
def agents(
    scenario: Annotated[
        str | None,
        typer.Option(help="Scenario whose parties to list (default: the home's default)."),
    ] = None,
    home: Home = None,
) -> None:
    """List the stakeholder cards of a scenario."""
    from ..scenario import load_scenario

    loaded = load_scenario(scenario, home_folder(home))
    table = Table("id", "name", "role", "veto", "persona")
    for pid in loaded.scenario.parties:
        c = loaded.cards[pid]
        table.add_row(
            pid,
            f"[{c.color}]{escape(c.name)}[/]",
            escape(c.role),
            "yes" if c.veto else "",
            c.persona,
        )
    out.print(table)


@app.command()
@friendly
def validate(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Scenario, agent card or template files; default: all."),
    ] = None,
    home: Home = None,
) -> None:
    """Check scenario, agent and prompt files; one line per problem, exit 2 if any."""
    from .validate import validate_paths

    root = home_folder(home)
    problems, checked, zones = validate_paths(root, paths or [])
    for p in problems:
        fail(f"majlis: error: {p}")
    for zone in zones:
        typer.echo(zone.line())
        if not zone.passing:
            fail(
                f"majlis: warning: {zone.scenario}: no package clears every veto party and "
                "enough others at their walk-away points: no deal is possible"
            )
    if problems:
        raise typer.Exit(2)
    out.print(f"ok: {checked} file(s) valid")


@app.command()
@friendly
def zone(
    scenario: Annotated[
        str | None,
        typer.Argument(help="Scenario name or path; default: the home's only scenario."),
    ] = None,
    home: Home = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Show a scenario's zone of agreement: its split by branch, and each party's best and
    worst packages over all packages and inside the zone."""
    from ..protocol import zone_of
    from ..scenario import default_scenario, load_scenario

    root = home_folder(home)
    report = zone_of(load_scenario(scenario or default_scenario(root), root))
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
    else:
        typer.echo(report.line())
        _zone_tables(report)
    warning = report.warning()
    if warning:
        fail(f"majlis: warning: {warning}")


def _score(scored: Scored | None) -> str:
    return "-" if scored is None else f"{scored.score} ({scored.margin:+d})"


def _zone_tables(report: Zone) -> None:
    """The split by branch; each party's scores at its ends; then the packages themselves."""
    if report.branches:
        split = Table("branch", "packages", "share of the zone")
        for b in report.branches:
            split.add_row(escape(b.label), f"{b.packages:,}", f"{b.packages / report.passing:.0%}")
        out.print(split)
    ends = ("best", "worst", "best_in_zone", "worst_in_zone")
    scores = Table(
        "party",
        "threshold",
        *(e.replace("_", " ") for e in ends),
        "accepts in zone",
        "margin in zone min / median",
        caption="score (margin over the party's threshold); accepts: the zone's packages "
        "that clear its threshold",
    )
    packages = Table("party", "end", "score", "package: one option per issue")
    for p in report.parties:
        margins = "-" if p.min_margin is None else f"{p.min_margin:+d} / {p.median_margin:+g}"
        name = p.party + (" (veto)" if p.veto else "")
        row = [getattr(p, e) for e in ends]
        scores.add_row(name, str(p.threshold), *map(_score, row), f"{p.accepts:,}", margins)
        for end, scored in zip(ends, row, strict=True):
            if scored is not None:
                text = " ".join(f"{i}={o}" for i, o in scored.package.items())
                packages.add_row(p.party, end.replace("_", " "), str(scored.score), text)
    out.print(scores)
    out.print(packages)


@app.command()
@friendly
def schema(
    out_dir: Annotated[Path, typer.Option("--out", help="Where to write the JSON schemas.")] = Path(
        "schemas"
    ),
) -> None:
    """Export JSON schemas of every file format, for editors."""
    from .schemas import export

    for path in export(out_dir):
        out.print(f"wrote {path}")


@app.command()
@friendly
def variants(home: Home = None) -> None:
    """List the prompt variants under prompts/variants/."""
    from ..scenario import list_variants, load_variant, prompt_dirs, template_files

    prompts = prompt_dirs(home_folder(home))
    table = Table("name", "description", "templates", "model settings")
    for name in list_variants(prompts):
        v = load_variant(prompts, name)
        models = "; ".join(f"{p}: {cfg}" for p, cfg in v.models.items())
        table.add_row(
            name, escape(v.description), ", ".join(template_files(prompts, name)), escape(models)
        )
    out.print(table)
