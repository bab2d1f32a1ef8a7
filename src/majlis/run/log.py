"""The run log: manifest.json, events.jsonl and outcome.json, one pydantic model each.

Field order is the file format. Any change to a field bumps SCHEMA_VERSION; readers accept
the versions listed in READABLE_VERSIONS and say why not for others.
"""

from __future__ import annotations

from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..model import RetryNote, RetryTotals, Usage

# 2: manifest parties record timeout, retries and concurrency
# 3: and their prompt profile; `narrated` players; no timeout for the embedded model
# 4: a failed turn's `error` event carries the usage of its attempts, so outcome.json's
#    tokens include them; a narrated vote (no model call) counts 0 attempts
#    and transport retries: on a call's first event, of the calls that stopped the run (in
#    the manifest), added up in the outcome; the structured-output dialect each party was
#    answered in
#    and a fork's manifest names its parent and its changes; an event a fork edited says so
SCHEMA_VERSION = 4
READABLE_VERSIONS = {1, 2, 3, 4}
# the model name of a party a person plays, and the call_id of the events of their moves
HUMAN = "human"

EventType = Literal[
    "round",  # the facilitator opens a round
    "inject",  # a scenario event announced to all
    "message",  # a party's public message and stated positions
    "side_message",  # a private message from one party to one other
    "proposal",  # a package put to the vote
    "private_note",  # a party's private reasoning: only that party sees it
    "vote",  # one party's vote on the standing proposal
    "tally",  # the result of a vote under the deal rule
    "error",  # a failed turn or call: seen by the facilitator only
    "outcome",  # the end of the session
]


class Event(BaseModel):
    """One line of events.jsonl."""

    model_config = ConfigDict(extra="forbid")
    seq: int = Field(description="0, 1, 2, ... with no gaps: the order of the session.")
    round: int = Field(description="Round number; 0 before the first round.")
    type: EventType
    speaker: str = Field(description="Party id, or 'facilitator'.")
    audience: list[str] | Literal["all"] = Field(
        description="'all', or the party ids allowed to see the event; [] means facilitator only."
    )
    content: dict[str, Any]
    call_id: str | None = Field(None, description="The model call that produced the event.")
    usage: Usage | None = Field(
        None,
        description="Tokens of the model call behind the event, on the call's first event; "
        "a failed turn's error event holds those of its attempts.",
    )
    latency_ms: float | None = None
    retries: list[RetryNote] | None = Field(
        None,
        description="On the first event of a call that met transport faults: each request "
        "sent again, why and after how long. Absent when there were none.",
    )
    ts: str = Field(description="UTC time the event was made, ISO 8601.")
    edited: bool | None = Field(
        None,
        description="True on a message whose words a fork replaced (`majlis fork --edit`): "
        "the facilitator wrote them, not the model. Never shown to the parties.",
    )


# What readers take from each type's content (metrics, checks, viewer, debrief, report):
# a line whose content lacks one of these, or holds the wrong kind of value, is damaged.
# Other keys are free. Strict: the readers use the line as written, so nothing is coerced.
class _Content(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


Package = dict[str, str | None]


class RoundContent(_Content):
    text: str
    order: list[str]


class InjectContent(_Content):
    id: str
    title: str
    text: str


class MessageContent(_Content):
    text: str
    positions: Package


class SideMessageContent(_Content):
    to: str
    text: str


class ProposalContent(_Content):
    package: Package


class NoteContent(_Content):
    reasoning: str = ""
    private_positions: Package | None = None


class VoteContent(_Content):
    vote: Literal["accept", "reject"]
    proposal_seq: int


class TallyContent(_Content):
    proposal_seq: int
    passed: bool
    accept: list[str]


class ErrorContent(_Content):
    party: str = ""
    task: str = ""
    error: str = ""
    attempts: int = 0


class OutcomeContent(_Content):
    kind: str
    branch: str
    package: Package


CONTENT: dict[str, type[_Content]] = {
    "round": RoundContent,
    "inject": InjectContent,
    "message": MessageContent,
    "side_message": SideMessageContent,
    "proposal": ProposalContent,
    "private_note": NoteContent,
    "vote": VoteContent,
    "tally": TallyContent,
    "error": ErrorContent,
    "outcome": OutcomeContent,
}


def check_event(data: object) -> dict[str, Any]:
    """One parsed line of events.jsonl, as written, if it is a whole event; else ValueError
    saying what is wrong. Every reader of a run takes its events through here, so none of
    them meets a list, a missing field or a package that is not one."""
    try:
        event = Event.model_validate(data, strict=True)
    except ValidationError as exc:
        raise ValueError(first_error(exc)) from None
    try:
        CONTENT[event.type].model_validate(event.content)
    except ValidationError as exc:
        raise ValueError(first_error(exc, "content")) from None
    return cast(dict[str, Any], data)


def first_error(exc: ValidationError, prefix: str = "") -> str:
    """A validation error in one line: where (dotted) and what, never the input itself."""
    err = exc.errors()[0]
    where = ".".join(str(p) for p in (prefix, *err["loc"]) if p != "")
    if err["type"] == "model_type" and not where:
        return f"not a JSON object ({_kind(err['input'])})"
    return f"{where}: {err['msg']}" if where else str(err["msg"])


def _kind(value: object) -> str:
    names = {list: "a list", str: "a string", bool: "true or false", type(None): "null"}
    return names.get(type(value), "a number")


class PartyModel(BaseModel):
    """How one party was played: never a key, only the name of the variable that holds it."""

    model_config = ConfigDict(extra="forbid")
    model: str
    base_url: str | None = None
    api_key_env: str | None = None
    temperature: float
    max_tokens: int
    seed: int | None = None
    structured: str
    structured_used: str | None = Field(
        None,
        description="The dialect the endpoint answered in (what `auto` found); null if no "
        "call reached an endpoint. Written when the run stops or ends.",
    )
    timeout: float | None = Field(
        120, description="Seconds per call; null for the embedded model, bounded by tokens."
    )
    max_retries: int = 5
    output_retries: int = 2
    concurrency: int = 8
    played_by: Literal["model", "human", "narrated"] = Field(
        "model",
        description="narrated: the scripted negotiator chose the moves and votes, the model "
        "wrote the words.",
    )
    profile: Literal["full", "compact"] = Field("full", description="The prompt profile.")


class ForkParent(BaseModel):
    """Where a fork comes from: the run, and the point its own events begin."""

    model_config = ConfigDict(extra="forbid")
    run_id: str
    path: str = Field(description="The parent's run folder when the fork was made.")
    seq: int = Field(
        description="The fork point: the child's events before this seq are the parent's, "
        "the same ones under the same numbers."
    )
    checkpoint_id: str = Field(description="The parent's langgraph checkpoint it started from.")


class EditedMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seq: int
    text: str


class AddedInject(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seq: int
    title: str
    text: str


class ForkChanges(BaseModel):
    """What a fork changed from its parent (the rest it plays as the parent did)."""

    model_config = ConfigDict(extra="forbid")
    models: dict[str, str] = Field(
        default_factory=dict, description="Party -> the model it plays now, for those changed."
    )
    variant: str | None = Field(None, description="The prompt variant, if changed.")
    seed: int | None = Field(None, description="The seed, if changed.")
    edit: EditedMessage | None = None
    inject: AddedInject | None = None


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    schema_version: int = SCHEMA_VERSION
    run_id: str
    status: Literal["running", "complete", "failed"] = "running"
    error: str | None = None
    failed_call_retries: list[RetryNote] = Field(
        default_factory=list,
        description="Transport retries of the calls that failed for good and stopped the "
        "run (no event records those calls), over every stop: kept on resume.",
    )
    created: str
    finished: str | None = None
    scenario: dict[str, str] = Field(description="id, source path and content hash.")
    prompts: dict[str, str] = Field(description="Template name -> sha256 of its text.")
    variant: str | None = None
    rounds: int
    seed: int | None = None
    context_policy: str = "full"
    parties: dict[str, PartyModel]
    versions: dict[str, str] = Field(description="Python and package versions.")
    git_revision: str | None = None
    command: list[str]
    parent: ForkParent | None = Field(None, description="Set on a fork (`majlis fork`).")
    changes: ForkChanges | None = Field(None, description="What a fork changed.")


class PartyResult(BaseModel):
    model_config = ConfigDict(extra="forbid")
    score: int
    threshold: int
    margin: int
    vote: Literal["accept", "reject"] | None = None


class Outcome(BaseModel):
    model_config = ConfigDict(extra="forbid")
    schema_version: int = SCHEMA_VERSION
    kind: Literal["deal", "partial", "none"]
    branch: str
    stopped: str | None = Field(
        None, description="Why the session ended early (a budget), if it did."
    )
    deal_round: int | None = None
    package: dict[str, str | None] = Field(
        description="Agreed options (deal) or issue-by-issue agreement."
    )
    last_proposal: dict[str, str] | None = None
    parties: dict[str, PartyResult] = Field(description="Each party's score of `package`.")
    rounds_used: int
    calls: int
    failed_turns: int
    usage: Usage
    transport_retries: RetryTotals = Field(
        default_factory=RetryTotals,
        description="Requests sent again after transport faults, by kind, and the seconds "
        "waited for them: the run's calls and the ones that stopped it.",
    )
