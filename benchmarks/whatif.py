"""`--what-if`: measure two proposed changes to files this work may not edit, before anyone
makes them. Both are applied by patching the libraries in this benchmark process only.

- shared-ssl-context (proposed for src/majlis/client.py): every OpenAIBackend builds an
  AsyncOpenAI client whose httpx client loads the system CA bundle into a fresh SSL context
  (~33 ms of CPU and ~1 MB each, six per session). One context per process, passed as
  `http_client=openai.DefaultAsyncHttpxClient(verify=shared_context)`, or one AsyncOpenAI
  per endpoint shared by the parties, removes that. Emulated here by caching httpcore2's
  default SSL context.
- libyaml (proposed for src/majlis/scenario.py): its `_UniqueKeyLoader` derives from the
  pure-Python `yaml.SafeLoader`; deriving it from `yaml.CSafeLoader` when PyYAML has it
  (the same duplicate-key constructor works there) parses the scenario and cards ~10x
  faster. Error messages must then be checked against tests/test_bad_inputs.py.
"""

from __future__ import annotations

import functools

PATCHES = ("shared-ssl-context", "libyaml")


def apply() -> list[str]:
    applied = []
    try:
        import httpcore2

        httpcore2.default_ssl_context = functools.cache(httpcore2.default_ssl_context)
        applied.append("shared-ssl-context")
    except (ImportError, AttributeError):
        pass
    import yaml

    from majlis import scenario

    c_loader = getattr(yaml, "CSafeLoader", None)
    if c_loader is not None and hasattr(scenario, "_UniqueKeyLoader"):

        class CUniqueKeyLoader(c_loader):  # the same duplicate-key check, on the C parser
            pass

        CUniqueKeyLoader.add_constructor(
            yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
            scenario._mapping_without_duplicates,
        )
        scenario._UniqueKeyLoader = CUniqueKeyLoader
        applied.append("libyaml")
    return applied
