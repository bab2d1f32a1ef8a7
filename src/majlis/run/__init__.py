"""One session: preparing it, the langgraph graph that plays it, the players that wrap a model
(a person, a narrated script), and the run folder it writes and others read.

The names this package offers are listed in `__init__.pyi`; each is imported on first use,
so importing one name does not import the rest of the layer (or the SDKs behind it).
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
