"""The command line: `majlis` and its commands, one module per group of commands.

Importing a command module registers its commands on the one typer app; each command
imports the layers it needs when it runs, so starting the CLI costs only typer and rich.
"""

from . import authoring, evaluation, experiments, forks, library, sessions, workshop
from .core import app, main

__all__ = [
    "app",
    "authoring",
    "evaluation",
    "experiments",
    "forks",
    "library",
    "main",
    "sessions",
    "workshop",
]
