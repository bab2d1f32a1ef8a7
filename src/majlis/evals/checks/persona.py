"""Persona breaks: a party talking as an AI, or as another party.

AI talk: calling itself an AI, a chatbot, a bot, an assistant or a language model ("I'm only
a chatbot", "as a large language model"); naming its prompt, training or instructions;
stepping out of character or role-play; calling the talks a simulation or "just a game".

Another party: a claim of identity naming another party (its id, its card name, or the
name's distinctive word: "Tehran", "Kurdish"): "Tehran: ..." as a speaker label at the
start, "speaking as / for / on behalf of Tehran", "I speak for the Kurds", "as Tehran's
envoy, I ...", "I am Tehran's envoy", "we in Tehran". Addressing a party ("Washington, we
hear you") or citing one ("as Tehran's envoy said") is not a claim.
"""

from __future__ import annotations

import re
from typing import Any

from ...scenario import AgentCard, LoadedScenario
from .base import Finding, spoken

AI_TALK = re.compile(
    r"\bas an? (?:ai|a\.i\.|artificial intelligence|(?:large )?language model|llm|chatbot|"
    r"chat bot|bot|ai assistant|assistant)\b"
    r"|\blanguage model\b|\bchatgpt\b|\bllm\b"
    r"|\b(?:i am|i'm|im)\s+(?:only |just |merely |simply |really |actually |nothing but )?"
    r"(?:an? )?(?:ai|a\.i\.|chatbot|chat bot|bot|language model|virtual assistant|"
    r"ai assistant|assistant|computer program|program|simulation)\b"
    r"|\b(?:my|the) (?:training data|system prompt|programming)\b|\bmy prompt\b"
    r"|\b(?:stay|staying|break|breaking|out of|step(?:ping)? out of|drop(?:ping)?) "
    r"(?:in )?(?:my |the )?(?:character|role-?play|persona)\b"
    r"|\bi (?:cannot|can't|can not|won't|will not) (?:role-?play|pretend|keep pretending|"
    r"play (?:this|the|a) (?:role|part|character))\b"
    r"|\bi(?:'m| am) (?:only |just |merely )?(?:pretending to be|role-?playing|"
    r"playing (?:the|a) (?:role|part|character))\b"
    r"|\b(?:this|it)(?:'s| is) (?:just |only |merely |all )(?:a |an )?"
    r"(?:simulation|role-?play|game|exercise|fiction|story)\b"
    r"|\b(?:this|it)(?:'s| is) (?:a |an )?(?:simulation|role-?play)\b"
    r"|\b(?:simulated|fictional) (?:negotiation|scenario|talks|setting)\b",
    re.I,
)
_ROLE = r"(?:envoy|representative|delegate|delegation|negotiator|spokes\w+|leader\w*|side|team)"
_GENERIC = {"prime", "minister", "parties", "leadership"}
_CLAIMS = (
    r"^\s*(?:the\s+)?{n}\s*:",
    r"^\s*(?:as|speaking (?:as|for)|on behalf of)\s+(?:the\s+)?{n}\s*,",
    r"\b(?:speaking|talking|writing|negotiating) (?:as|for|on behalf of) (?:the )?{n}\b",
    r"\b(?:i|we) (?:speak|negotiate|talk|act|am here|are here) (?:for|on behalf of) (?:the )?{n}\b",
    r"\b(?:i|we)\b,? as (?:the )?{n}(?:'s)? " + _ROLE,
    r"\bas (?:the )?{n}(?:'s)? " + _ROLE + r"\s*,?\s*(?:i|we)\b",
    r"\b(?:i am|i'm|we are|we're) (?:the )?{n}(?:'s)?(?:\s*[.,;!]|\s*$| " + _ROLE + ")",
    r"\b(?:we|us) (?:here )?in {n}\b",
)


def labels(card: AgentCard) -> list[str]:
    """How a party may be named: its id, its card name, the name's last distinctive word
    ("Prime Minister Sudani" -> "Sudani"), and its first word ("Kurdish parties" -> "Kurdish")."""
    words = card.name.split()
    out = {card.id, card.name, words[-1], words[0]}
    return sorted(
        (x for x in out if len(x) >= 4 and x.lower() not in _GENERIC), key=len, reverse=True
    )


def claims_to_be(text: str, card: AgentCard) -> bool:
    names = "(?:{})".format("|".join(re.escape(x) for x in labels(card)))
    text = text.replace("\u2019", "'")
    return any(re.search(p.format(n=names), text, re.I | re.M) for p in _CLAIMS)


def persona_breaks(loaded: LoadedScenario, events: list[dict[str, Any]]) -> list[Finding]:
    """Talking as an AI, or speaking as another party (rule in the module doc)."""
    found = []
    for e, text in spoken(events):
        speaker = e["speaker"]
        if AI_TALK.search(text.replace("\u2019", "'")):
            found.append(
                Finding(kind="persona_break", party=speaker, seq=e["seq"], detail="speaks as an AI")
            )
            continue
        other = next(
            (
                pid
                for pid, card in loaded.cards.items()
                if pid != speaker and claims_to_be(text, card)
            ),
            None,
        )
        if other:
            found.append(
                Finding(
                    kind="persona_break", party=speaker, seq=e["seq"], detail=f"speaks as {other}"
                )
            )
    return found
