"""`python -m majlis` is the command line."""

from .cli import main

main()
