"""The command line: `majlis` and its commands."""

from .app import app, main

__all__ = ["app", "main"]
