"""Prompt templates and each party's context.

A party's prompt holds the public record, its own brief, notes and side talk, and nothing
else: `visible` is the one gate every event passes. Other parties' words enter as JSON
lines inside <record>, with angle brackets escaped, so no message can pose as a tag, a
role marker or an instruction block.

Two profiles. `full` gives a capable model everything: the whole situation and agenda,
every stance, and the record. `compact` is for small local models: a short brief, the
party's score table as one JSON line, and only what happened since the party's last move
(the moves, proposals and votes since, side talk to it, the injects), so its prompt stays
a few hundred tokens and consecutive calls share the system prompt as their prefix.
"""

from __future__ import annotations

import functools
import hashlib
import json
from bisect import bisect_left
from pathlib import Path
from types import CodeType
from typing import Any

import jinja2
import jinja2.sandbox

from ..errors import ScenarioError
from ..scenario.load import LoadedScenario
from .context import ContextPolicy, split, summary
from .rules import package_words, score

SYSTEM, MOVE, VOTE, NARRATE = "system.md.j2", "move.md.j2", "vote.md.j2", "narrate.md.j2"
PROFILES = ("full", "compact")
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
    """Jinja templates from prompts/, overlaid by prompts/variants/NAME/ when a variant is set."""

    def __init__(self, root: Path, variant: str | None = None, folder: str = "prompts") -> None:
        base = root / folder
        search = [base]
        if variant:
            vdir = base / "variants" / variant
            if not vdir.is_dir():
                known = sorted(p.name for p in (base / "variants").glob("*") if p.is_dir())
                raise ScenarioError(
                    vdir, None, f"unknown variant {variant!r} (known: {', '.join(known) or 'none'})"
                )
            search.insert(0, vdir)
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


def visible(event: dict[str, Any], party: str) -> bool:
    """The privacy gate: may `party` see this event?"""
    audience = event["audience"]
    return audience == "all" or party in audience


def quote(obj: dict[str, Any]) -> str:
    """One compact JSON line whose angle brackets, ampersands and line separators are escaped."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    return text.translate(_ESCAPES)


# `<` `>` `&` could pose as tags; U+2028, U+2029 and U+0085 end a line for str.splitlines().
_ESCAPES = str.maketrans(
    {
        "<": "\\u003c",
        ">": "\\u003e",
        "&": "\\u0026",
        "\u2028": "\\u2028",
        "\u2029": "\\u2029",
        "\x85": "\\u0085",
    }
)


def record_entry(event: dict[str, Any]) -> dict[str, Any]:
    """How an event reads in a party's record."""
    entry: dict[str, Any] = {"seq": event["seq"], "round": event["round"], "type": event["type"]}
    if event["speaker"] != "facilitator":
        entry["from"] = event["speaker"]
    entry.update({k: v for k, v in event["content"].items() if k != "attempts"})
    return entry


class RecordLines:
    """Record lines shared by a session's prompters. An event reads the same in every record
    that may show it, so it is quoted once per session, not once per party. Keyed by the
    event object itself (the log's dicts are shared, never changed once made)."""

    def __init__(self) -> None:
        self._by_id: dict[int, tuple[dict[str, Any], str]] = {}

    def line(self, event: dict[str, Any]) -> str:
        hit = self._by_id.get(id(event))
        if hit is not None and hit[0] is event:
            return hit[1]
        text = quote(record_entry(event)) + "\n"
        self._by_id[id(event)] = (event, text)  # holding the event keeps its id unique
        return text


class PartyPrompter:
    """Builds one party's messages; the system prompt is rendered once and never changes.

    The record is kept incrementally: each event of the log is checked against the privacy
    gate and rendered as a record line once, when the party first reads past it, not again
    on every call (the log only grows). A log that is not the one read so far (a resumed
    run) is read again from the start.
    """

    def __init__(
        self,
        loaded: LoadedScenario,
        party: str,
        templates: Templates,
        policy: ContextPolicy | None = None,
        lines: RecordLines | None = None,
        profile: str = "full",
    ) -> None:
        self.loaded = loaded
        self.profile = profile
        self.folder = "compact/" if profile == "compact" else ""
        self.shared = lines or RecordLines()
        self.party = party
        self.policy = policy or ContextPolicy()
        self.card = loaded.cards[party]
        self.templates = templates
        self.system = self._system()
        self._read = 0  # how many events of the log have been read
        self._tail: dict[str, Any] | None = None  # the last of them: is it still the same log?
        self._rounds: list[int] = []  # round of each visible event, in log order
        self._lines: list[str] = []  # record line of each visible event
        self._visible: list[dict[str, Any]] = []  # the visible events themselves
        self._sorted = True  # rounds never go down along the log (so bisect finds the window)
        self._digest: tuple[int, str | None] = (0, None)  # (events summarised, summary line)

    def _system(self) -> str:
        s = self.loaded.scenario
        card = self.card
        cards = [self.loaded.cards[p] for p in s.parties]
        persona = self.templates.render(card.persona, party=card, scenario=s)
        rules = {
            "parties": list(s.parties),
            "veto": list(s.deal_rule.veto),
            "min_accept": s.deal_rule.min_accept,
            "max_rounds": s.deal_rule.max_rounds,
            "agenda": {i.id: i.option_ids() for i in s.agenda},
        }
        private = {
            "party": card.id,
            "threshold": card.threshold,
            "scores": card.scores,
            "red_lines": [[r.issue, r.option] for r in card.red_lines],
        }
        return self.templates.render(
            self.folder + SYSTEM,
            party=card,
            scenario=s,
            rule=s.deal_rule,
            parties=cards,
            veto_names=" and ".join(self.loaded.cards[v].name for v in s.deal_rule.veto),
            convener_name=self.loaded.cards[s.convener].name,
            rules_json=quote(rules),
            persona=persona.strip(),
            scores_json=quote(private),
        )

    def _catch_up(self, events: list[dict[str, Any]]) -> None:
        """Read the events added to the log since the last call."""
        start = self._read
        if start > len(events) or (start and events[start - 1] is not self._tail):
            start = 0  # not the log read so far: read it again from the start
            self._rounds, self._lines, self._visible = [], [], []
            self._sorted, self._digest = True, (0, None)
        for event in events[start:]:
            if visible(event, self.party):
                if self._rounds and event["round"] < self._rounds[-1]:
                    self._sorted = False
                self._rounds.append(event["round"])
                self._lines.append(self.shared.line(event))
                self._visible.append(event)
        self._read = len(events)
        self._tail = events[-1] if events else None

    def record(self, events: list[dict[str, Any]], round_no: int = 0) -> str:
        if self.profile == "compact":
            return self._since_last_move(events)
        self._catch_up(events)
        if self.policy.window is None:
            return "<record>\n" + "".join(self._lines) + "</record>\n"
        if not self._sorted:  # cannot happen in a session; kept exact all the same
            older, recent = split(self._visible, self.policy, round_no)
            digest = summary(self.party, older)
            lines = [quote(record_entry(e)) + "\n" for e in recent]
            head = "" if digest is None else quote(digest) + "\n"
            return "<record>\n" + head + "".join(lines) + "</record>\n"
        cut = bisect_left(self._rounds, round_no - self.policy.window + 1)
        if self._digest[0] != cut:
            digest = summary(self.party, self._visible[:cut])
            self._digest = (cut, None if digest is None else quote(digest) + "\n")
        head = self._digest[1] or ""
        return "<record>\n" + head + "".join(self._lines[cut:]) + "</record>\n"

    def _since_last_move(self, events: list[dict[str, Any]]) -> str:
        """The compact record: what the party may see of the events after its last move
        (its message, or its failed move), in short entries. Read from the log alone, so a
        resumed run rebuilds the very same prompt."""
        start = 0
        for i in range(len(events) - 1, -1, -1):
            e = events[i]
            if e["speaker"] == self.party and (
                e["type"] == "message" or (e["type"] == "error" and e["content"]["task"] == "move")
            ):
                start = i + 1
                break
        entries: list[dict[str, Any]] = []
        for e in events[start:]:
            entry = compact_entry(e, self.party)
            if entry is None or not visible(e, self.party):
                continue
            last = entries[-1] if entries else None
            if (  # a proposal of the positions just stated is one line: "proposed"
                entry["type"] == "proposal"
                and last is not None
                and last["type"] == "message"
                and last["from"] == entry["from"]
                and last["positions"] == entry["package"]
            ):
                last["proposed"] = True
                continue
            entries.append(entry)
        lines = [quote(x) + "\n" for x in entries]
        return "<record>\n" + "".join(lines) + "</record>\n"

    def _turn(self, task: str, round_no: int, standing: dict[str, Any] | None) -> str:
        s = self.loaded.scenario
        max_rounds = s.deal_rule.max_rounds
        turn: dict[str, Any] = {
            "task": task,
            "party": self.party,
            "round": round_no,
            "max_rounds": max_rounds,
            "rounds_left": max_rounds - round_no,
            "standing_proposal": standing["package"] if standing else None,
            "standing_by": standing["by"] if standing else None,
        }
        if self.profile != "full":
            turn["profile"] = self.profile  # the scripted player answers in this shape
        ctx: dict[str, Any] = {
            "turn_json": quote(turn),
            "round": round_no,
            "max_rounds": max_rounds,
            "rounds_left": max_rounds - round_no,
            "threshold": self.card.threshold,
            "standing": standing is not None,
            "standing_by": self.loaded.cards[standing["by"]].name if standing else "",
            "standing_text": package_words(s, standing["package"]) if standing else "",
            "standing_score": score(self.card.scores, standing["package"]) if standing else 0,
        }
        return self.templates.render(self.folder + (MOVE if task == "move" else VOTE), **ctx)

    def messages(
        self,
        task: str,
        events: list[dict[str, Any]],
        round_no: int,
        standing: dict[str, Any] | None,
    ) -> list[dict[str, str]]:
        user = self.record(events, round_no) + "\n" + self._turn(task, round_no, standing)
        return [{"role": "system", "content": self.system}, {"role": "user", "content": user}]

    def narration(
        self, messages: list[dict[str, str]], move: dict[str, Any]
    ) -> list[dict[str, str]]:
        """The messages that ask the model to put a decided move into words: the move's own
        system prompt and record (a shared prefix), then the decision instead of the task."""
        s = self.loaded.scenario
        turn = _turn_of(messages)
        user = messages[-1]["content"]
        record = user[: user.index("<turn>")] if "<turn>" in user else user
        side = move.get("side_message")
        ctx = {
            "turn_json": quote({**turn, "task": "narrate", "with_side": side is not None}),
            "round": turn["round"],
            "max_rounds": turn["max_rounds"],
            "decision": decision_text(s, self.loaded.cards, move, turn.get("standing_by")),
            "side_to": self.loaded.cards[side["to"]].name if side else "",
            "side_gist": side["text"] if side else "",
        }
        return [
            messages[0],
            {"role": "user", "content": record + self.templates.render(NARRATE, **ctx)},
        ]


def _turn_of(messages: list[dict[str, str]]) -> dict[str, Any]:
    user = messages[-1]["content"]
    start, end = user.index("<turn>") + len("<turn>"), user.index("</turn>")
    return json.loads(user[start:end])


def decision_text(
    scenario: Any, cards: dict[str, Any], move: dict[str, Any], standing_by: str | None
) -> str:
    """A decided move in words, for the model that narrates it."""
    if move.get("proposal"):
        return f"you propose this package to the room: {package_words(scenario, move['proposal'])}."
    if standing_by:
        by = cards[standing_by].name if standing_by in cards else standing_by
        return (
            f"you make no new proposal; you support these positions: "
            f"{package_words(scenario, move['positions'])} (the standing proposal is by {by})."
        )
    return f"you make no proposal yet; you state these positions: {package_words(scenario, move['positions'])}."


def terse(package: dict[str, str]) -> str:
    """A package as `issue=option` words: half the tokens of its JSON object."""
    return " ".join(f"{issue}={option}" for issue, option in package.items())


def compact_entry(event: dict[str, Any], party: str) -> dict[str, Any] | None:
    """How an event reads in a compact record, or None when it is left out: the round
    marker (the turn block says the round), each ballot (the tally sums them), notes and
    errors (never another party's), and the party's own side messages."""
    c, t = event["content"], event["type"]
    if t == "inject":
        return {"type": t, "title": c["title"], "text": c["text"]}
    if t == "message":
        positions = terse(c["positions"])
        return {"type": t, "from": event["speaker"], "text": c["text"], "positions": positions}
    if t == "proposal":
        return {"type": t, "from": event["speaker"], "package": terse(c["package"])}
    if t == "side_message" and event["speaker"] != party:
        return {"type": t, "from": event["speaker"], "text": c["text"]}
    if t == "tally":
        return {"type": t, "passed": c["passed"], "accept": c["accept"], "reject": c["reject"]}
    return None
