"""What majlis reads of a chat completion's body, and the `Reply` it makes of it.

Apart from the HTTP backend, which sends the request and retries its faults, because this
is the other half of the job: a body read straight from its JSON, checked in one pass. A
body that is no completion is a `BadResponseError`, which the backend retries like any
other transport fault.
"""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ValidationError

from ..errors import MajlisError
from .backend import Reply
from .failures import brief_error
from .usage import Usage


class BadResponseError(MajlisError):
    """The endpoint answered 200 with a body that is not a chat completion: `kind` says
    whether it was no JSON at all (cut off, or malformed: `cut_body`) or JSON that is not a
    completion (`bad_body`)."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


class _Message(BaseModel):
    content: str | None = None
    refusal: str | None = None


class _Choice(BaseModel):
    message: _Message
    finish_reason: str | None = None


class _PromptDetails(BaseModel):
    cached_tokens: int | None = None


class _CompletionUsage(BaseModel):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    prompt_tokens_details: _PromptDetails | None = None


class WireCompletion(BaseModel):
    """What majlis reads of a chat completion, validated: a 200 whose body is anything else
    is a transport fault, retried. Read straight from the JSON, which costs a fraction of
    building the SDK's full ChatCompletion (every field, every nested model) for each call."""

    id: str | None = None
    model: str | None = None
    system_fingerprint: str | None = None
    choices: list[_Choice]
    usage: _CompletionUsage | None = None


def read_reply(text: bytes, ms: float, where: str) -> Reply:
    """The reply in a completion's body from `where`, parsed and checked in one pass."""
    try:
        return _reply(WireCompletion.model_validate_json(text), ms)
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "json_invalid":  # a cut or malformed body
            why = first["msg"].removeprefix("Invalid JSON: ")
            raise BadResponseError(
                f"{where} sent a reply that is not valid JSON ({why})", "cut_body"
            ) from None
        raise BadResponseError(
            f"{where} sent a reply that is not a chat completion ({brief_error(exc)})", "bad_body"
        ) from None


def _reply(resp: WireCompletion, ms: float) -> Reply:
    """A Reply from a completion; no choices is an empty reply, re-asked like any other."""
    choice = resp.choices[0] if resp.choices else None
    message = choice.message if choice else None
    text = (message.content or "") if message else ""
    if message and not text and message.refusal:
        text = f"(refusal) {message.refusal}"
    u = resp.usage
    details = u.prompt_tokens_details if u else None
    usage = Usage(
        prompt_tokens=(u.prompt_tokens if u else 0) or 0,
        completion_tokens=(u.completion_tokens if u else 0) or 0,
        cached_tokens=(details.cached_tokens if details else 0) or 0,
    )
    reply = Reply(text, usage, resp.id or uuid.uuid4().hex, ms, resp.model, resp.system_fingerprint)
    reply.finish_reason = choice.finish_reason if choice else None
    return reply
