"""`majlis new`: start a scenario of your own, from a skeleton or a copy of another."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .core import Home, app, friendly, home_folder, out


@app.command()
@friendly
def new(
    name: Annotated[
        str,
        typer.Argument(help="The scenario's name, or a folder path whose last part is the name."),
    ],
    parties: Annotated[
        str | None,
        typer.Option(help="Party ids, separated by commas (a skeleton with these parties)."),
    ] = None,
    from_: Annotated[
        str | None,
        typer.Option("--from", help="Copy this scenario (a name or folder) instead."),
    ] = None,
    home: Home = None,
) -> None:
    """Write a new, runnable scenario folder: scenario.yaml, agents/ and prompts/."""
    from ..errors import UserError
    from ..scenario import (
        copy_scenario,
        is_home,
        load_scenario,
        prompt_dirs,
        write_skeleton,
    )

    if (parties is None) == (from_ is None):
        raise UserError("majlis new: give --parties a,b,c for a skeleton, or --from SCENARIO")
    target = Path(name)
    if len(target.parts) == 1 and is_home(Path.cwd()):  # a name in a home: scenarios/NAME
        target = Path("scenarios") / name
    if from_ is not None:
        root = home_folder(home)
        loaded = load_scenario(from_, root)
        written = copy_scenario(loaded, target, prompt_dirs(root, loaded.files[0]))
    else:
        written = write_skeleton(target, [p.strip() for p in str(parties).split(",") if p.strip()])
    out.print(f"wrote {target}/ ({len(written)} files)", soft_wrap=True)
    out.print(
        f"next: majlis validate {target} && majlis zone {target} && "
        f"majlis run --scenario {target} --model scripted",
        soft_wrap=True,
    )
