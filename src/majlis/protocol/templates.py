"""Prompt templates: where they are found, and the sandbox they are rendered in.

Templates come from prompts/ (a scenario's own, the home's, the shipped ones, first match
wins), overlaid by variants/NAME/ when a variant is set.
They ship with scenario packs that teams share, so they run in Jinja's immutable sandbox
with a few more guards: a size limit per file, no huge powers or repetitions, and
interpolated text that cannot open or close a tag of the prompt.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from pathlib import Path
from types import CodeType
from typing import Any

import jinja2
import jinja2.sandbox

from ..errors import ScenarioError

MAX_TEMPLATE_BYTES = 64 * 1024


class _CompiledTemplates(jinja2.BytecodeCache):
    """Compiled templates shared by every Templates of the process, keyed by name and file and
    checked against the source's checksum: a session (or a sweep's hundred) compiles each
    template once, and an edited file is compiled afresh."""

    def __init__(self) -> None:
        self._code: dict[str, tuple[str, CodeType]] = {}

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        hit = self._code.get(bucket.key)
        if hit is not None and hit[0] == bucket.checksum:
            bucket.code = hit[1]

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        if bucket.code is not None:
            self._code[bucket.key] = (bucket.checksum, bucket.code)


_COMPILED = _CompiledTemplates()


# What `{{ ... }}` may not put into a prompt: the angle brackets of its tags. Card and scenario
# text (a stance, a brief, an option's label) is data, and must never open or close a block
# such as <rules> or <record>, whatever it says; the templates' own tags are literal text,
# which this does not touch.
_DATA_ESCAPES = str.maketrans({"<": "\u2039", ">": "\u203a"})


def _as_data(value: Any) -> Any:
    """Jinja's finalize: every interpolated string loses its power to open or close a tag."""
    return value.translate(_DATA_ESCAPES) if isinstance(value, str) else value


class _Sandbox(jinja2.sandbox.ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, and no arithmetic that could stall a run for minutes or
    fill its memory (`9**9**9`, `'x' * 10**9`)."""

    intercepted_binops = frozenset({"**", "*"})
    LIMIT = 100_000

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int) and abs(right) > 64:
            raise jinja2.sandbox.SecurityError(f"a power of {right}, over the limit of 64")
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                sized = isinstance(seq, str | list | tuple) and isinstance(n, int)
                if sized and len(seq) * n > self.LIMIT:
                    raise jinja2.sandbox.SecurityError(f"a repetition over {self.LIMIT:,} items")
        return super().call_binop(context, operator, left, right)


@functools.lru_cache(maxsize=64)
def _environment(search: tuple[str, ...]) -> jinja2.Environment:
    """One environment per search path, shared by the sessions of a process: it keeps its
    loaded templates, and checks each file's modification time when asked for it again.

    Templates come with scenario packs that teams share, so they are rendered in Jinja's
    immutable sandbox: no attribute that starts with an underscore (the way from a string
    to Python's internals, `os` and the shell), no method that changes a value, and only
    files under the search path can be included."""
    return _Sandbox(
        finalize=_as_data,
        loader=jinja2.FileSystemLoader(list(search)),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        bytecode_cache=_COMPILED,
        auto_reload=True,
    )


class Templates:
    """Jinja templates looked up along a list of folders, first match wins (a scenario's own
    prompts/, the home's, the shipped ones), with NAME's overlay in front when a variant is
    set: the first of those folders holding variants/NAME."""

    def __init__(self, bases: Path | Sequence[Path], variant: str | None = None) -> None:
        search = [bases] if isinstance(bases, Path) else list(bases)
        if variant:
            found = [
                b / "variants" / variant for b in search if (b / "variants" / variant).is_dir()
            ]
            if not found:
                known = sorted(
                    {p.name for b in search for p in (b / "variants").glob("*") if p.is_dir()}
                )
                raise ScenarioError(
                    search[0] / "variants" / variant,
                    None,
                    f"unknown variant {variant!r} (known: {', '.join(known) or 'none'})",
                )
            search.insert(0, found[0])
        self.search = search
        self.env = _environment(tuple(str(p) for p in search))
        self.used: dict[str, str] = {}  # template name -> sha256 of the file it was read from
        # each template is looked up once per session: the session renders the text it hashed
        # in `used`, even if the file changes mid-run, and skips a file check per prompt
        self._loaded: dict[str, jinja2.Template] = {}

    def _check_size(self, name: str) -> None:
        """A prompt template is a page or two; one of megabytes is a mistake that would
        fill every prompt (and no model's window holds it)."""
        path = self.path_of(name)
        try:
            size = path.stat().st_size
        except OSError:
            return  # missing or unreadable: get_template says which
        if size > MAX_TEMPLATE_BYTES:
            raise ScenarioError(
                path,
                None,
                f"the template is {size:,} bytes, more than the {MAX_TEMPLATE_BYTES:,} a prompt "
                "template may be",
            )

    def path_of(self, name: str) -> Path:
        for base in self.search:
            if (base / name).exists():
                return base / name
        return self.search[-1] / name

    def render(self, name: str, **ctx: Any) -> str:
        if name not in self._loaded:
            self._check_size(name)
        try:
            template = self._loaded.get(name) or self.env.get_template(name)
            self._loaded[name] = template
            text = template.render(**ctx)
        except jinja2.TemplateNotFound:
            raise ScenarioError(self.path_of(name), None, "prompt template not found") from None
        except jinja2.TemplateSyntaxError as exc:
            raise ScenarioError(
                self.path_of(name), f"line {exc.lineno}", f"template syntax error: {exc.message}"
            ) from None
        except jinja2.UndefinedError as exc:
            raise ScenarioError(
                self.path_of(name), None, f"unknown template variable: {exc.message}"
            ) from None
        except jinja2.sandbox.SecurityError as exc:
            raise ScenarioError(
                self.path_of(name), None, f"refused by the sandbox: {exc}"
            ) from None
        except jinja2.TemplateError as exc:
            raise ScenarioError(self.path_of(name), None, f"template error: {exc}") from None
        except RecursionError:
            raise ScenarioError(
                self.path_of(name), None, "the template includes itself, directly or in a loop"
            ) from None
        except (ArithmeticError, TypeError, ValueError, LookupError) as exc:
            why = " ".join(str(exc).split())[:200]
            raise ScenarioError(
                self.path_of(name), None, f"template failed: {type(exc).__name__}: {why}"
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ScenarioError(self.path_of(name), None, f"cannot read: {exc}") from None
        if name not in self.used:  # hashed once per session, on first use
            self.used[name] = hashlib.sha256(self.path_of(name).read_bytes()).hexdigest()
        return text
