"""What every command shares: the typer app, the consoles, the `--home` option, and the
wrapper that turns an error into one line and an exit code.

Only typer, rich and majlis.errors are imported here, and each command module imports what
it needs inside its command, so `majlis --help` (and `validate`, `scenarios`, `agents`,
`zone`, `view`, `tags`) start without the model SDK or langgraph.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from ..errors import EndpointFailed, MajlisError, UserError, kept

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode=None,
    help="majlis: multi-agent LLM negotiation sessions.",
)
out = Console()
err = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])

Trace = Annotated[
    bool,
    typer.Option(
        help="Send OpenTelemetry traces (OTLP over HTTP; OTEL_* variables configure it, and "
        "turn it on without the flag). Needs majlis[otel]."
    ),
]
Home = Annotated[
    Path | None,
    typer.Option(
        "--home",
        help="Folder holding scenarios/ (and agents/, prompts/, evals/); also $MAJLIS_HOME. "
        "Default: this folder if it has scenarios/, else the shipped one.",
    ),
]


def home_folder(home: Path | None) -> Path:
    """The folder holding scenarios/ (and agents/, prompts/, evals/): `--home`, else
    $MAJLIS_HOME, else this folder if it is one, else the shipped one."""
    from ..scenario import data_root

    return data_root(home)


def runs_folder(home: Path | None) -> Path:
    """runs/ in the chosen home, else in the current folder (never in the shipped one for
    a scenario played from a folder of its own)."""
    from ..scenario import runs_home

    return runs_home(home) / "runs"


def fail(message: str) -> None:
    """One plain line on stderr, never wrapped, so scripts and people read it the same way."""
    typer.echo(" ".join(message.split()), err=True)


def _kept(exc: BaseException) -> str:
    """Where a stopped run is kept, to end its one line with; empty if none was."""
    note = kept(exc)
    return f"; {note}" if note else ""


def _leave_if_asking(code: int) -> None:
    """Exit at once if a person's question still waits for a line in its thread (named by
    `run.session._ask_aside`): that read cannot be called off, and Python's own exit would
    abort on the stdin it holds."""
    import threading

    if any(t.name == "majlis-ask" and t.is_alive() for t in threading.enumerate()):
        traces = sys.modules.get("majlis.tracing")  # exit handlers will not run: send spans now
        if traces is not None:
            traces.flush()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def friendly(fn: F) -> F:
    """Turn known errors into one line on stderr: exit 2 for the user's errors, 1 otherwise."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            fail(f"majlis: error: {exc}{_kept(exc)}")
            raise typer.Exit(2) from None
        except KeyboardInterrupt as exc:
            fail(f"majlis: interrupted{_kept(exc)}")
            _leave_if_asking(130)
            raise typer.Exit(130) from None
        except Exception as exc:
            sdk = sys.modules.get("openai")  # loaded only by commands that call a model
            if sdk is not None and isinstance(exc, sdk.AuthenticationError):
                err.print(
                    f"majlis: error: the endpoint refused the API key: {escape(str(exc))}",
                    highlight=False,
                )
                raise typer.Exit(2) from None
            if isinstance(exc, EndpointFailed):  # says what failed in its own words
                fail(f"majlis: stopped: {exc}")
                raise typer.Exit(1) from None
            if isinstance(exc, MajlisError) or (sdk is not None and isinstance(exc, sdk.APIError)):
                from ..model import error_line

                fail(f"majlis: stopped: {error_line(exc)}{_kept(exc)}")
                raise typer.Exit(1) from None
            raise

    return wrapper  # type: ignore[return-value]


def open_cache(path: Path) -> Any:
    """The response cache at `path`, or a UserError saying why it cannot be opened."""
    from ..model import ResponseCache

    try:
        return ResponseCache(path)
    except (OSError, sqlite3.Error) as exc:
        raise UserError(f"cannot open the response cache {path}: {exc}") from None


def main(argv: list[str] | None = None) -> int:
    """The `majlis` command. A usage error (an unknown option, `--seed abc`) is one line that
    says what is wrong first, then where to read more, and exit 2; Click would put its
    `Usage:` line first and the error last."""
    try:  # Typer 0.2x carries its own copy of Click; earlier ones use Click itself
        from typer._click import exceptions as click_errors
    except ImportError:  # pragma: no cover - depends on the installed Typer
        from click import exceptions as click_errors  # type: ignore[no-redef]

    args = sys.argv[1:] if argv is None else argv
    try:
        code = app(args=args, prog_name="majlis", standalone_mode=False)
    except click_errors.UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # `majlis` alone: the help, as asked
            typer.echo(exc.format_message(), err=True)
            return 2
        where = exc.ctx.command_path if exc.ctx is not None else "majlis"
        fail(f"majlis: error: {exc.format_message()} (see '{where} --help')")
        return 2
    except typer.Abort:  # end of input at a prompt (Typer's own Abort, not Click's)
        fail("majlis: interrupted")
        return 130
    except click_errors.ClickException as exc:
        fail(f"majlis: error: {exc.format_message()}")
        return exc.exit_code
    return code if isinstance(code, int) else 0
