"""The rules of the game, without calling a model: deal rules and scores, the shapes of moves
and votes, what each party sees, the prompts and the sandboxed templates they are made from,
and a scenario's zone of agreement.

The names this package offers are listed in `__init__.pyi`; each is imported on first use,
so importing one name does not import the rest of the layer (or the SDKs behind it).
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
