"""majlis: a multi-agent LLM negotiation harness.

The Python API (`from majlis import load_scenario, run_session, evaluate_run, ...`) is listed
in `__init__.pyi`. Each name is imported on first use, so `import majlis` costs nothing and
the command line starts without the model SDK or langgraph.
"""

import lazy_loader

__version__ = "0.1.0"

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
