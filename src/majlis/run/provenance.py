"""What a run records about itself when it starts: the manifest, with the versions, the git
revision, the time, a fresh run id, and how each party was played.

A party's `ModelConfig` goes into the manifest as a `PartyModel` and comes back out of it on
resume through one mapping (`party_model`, `party_config`): the fields the two share by name
are copied as they are, and the three that differ are said once, here. One field is no
setting: `structured_used`, the dialect each party's endpoint answered in, is filled in as
the run stops or ends (`answered_in`), and a resume begins `auto` there.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import platform
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from ..model import ModelConfig
from .log import HUMAN, Manifest, PartyModel

if TYPE_CHECKING:
    from .players import Players
    from .preparation import Prepared

# the fields a manifest's PartyModel and a ModelConfig share by name (model, base_url, ...,
# timeout, profile); played_by stands in the manifest for the config's `narrated` and HUMAN
SHARED = frozenset(PartyModel.model_fields) & frozenset(ModelConfig.model_fields)


def party_model(config: ModelConfig) -> PartyModel:
    """How the manifest records a party's model: its profile as resolved ("auto" is not
    recorded), and no timeout for the embedded model, whose calls are bounded by tokens."""
    return PartyModel.model_validate(
        {
            **config.model_dump(include=SHARED),
            "timeout": None if config.is_embedded else config.timeout,
            "profile": config.prompt_profile,
            "played_by": played_by(config),
        }
    )


def party_config(recorded: PartyModel) -> ModelConfig:
    """The model a resumed run plays a party with, from its manifest entry; a timeout the
    manifest leaves out (the embedded model's) is the default."""
    data = recorded.model_dump(include=SHARED)
    if data["timeout"] is None:
        del data["timeout"]
    return ModelConfig.model_validate({**data, "narrated": recorded.played_by == "narrated"})


def answered_in(manifest: Manifest, players: Players) -> dict[str, PartyModel]:
    """The manifest's parties, each with the structured-output dialect its endpoint last
    answered in this stretch of the run (as recorded, if no call reached one)."""
    out = {}
    for party, recorded in manifest.parties.items():
        client = players.clients.get(party)
        used = client.backend.structured_used if client is not None else None
        out[party] = recorded.model_copy(update={"structured_used": used}) if used else recorded
    return out


def played_by(config: ModelConfig) -> Literal["model", "human", "narrated"]:
    if config.model == HUMAN:
        return "human"
    return "narrated" if config.narrated else "model"


def new_manifest(run_id: str, prepared: Prepared, players: Players) -> Manifest:
    """manifest.json as a run starts: status "running"."""
    loaded, opts = prepared.loaded, prepared.opts
    return Manifest(
        run_id=run_id,
        created=now(),
        scenario={
            "id": loaded.scenario.id,
            "source": str(loaded.files[0]),
            "home": str(prepared.home),
            "content_hash": loaded.content_hash,
        },
        prompts=dict(sorted(players.templates.used.items())),
        variant=opts.variant,
        context_policy=str(players.policy),
        rounds=loaded.scenario.deal_rule.max_rounds,
        seed=opts.seed,
        parties={p: party_model(c) for p, c in players.configs.items()},
        versions=dict(versions()),
        git_revision=git_revision(prepared.home),
        command=opts.command,
    )


@functools.cache
def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in (
        "majlis",
        "openai",
        "langgraph",
        "langgraph-checkpoint-sqlite",
        "pydantic",
        "tenacity",
        "llama-cpp-python",
    ):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            out[pkg] = importlib.metadata.version(pkg)
    return out


@functools.cache
def git_revision(home: Path) -> str | None:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=home, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return rev.stdout.strip() or None if rev.returncode == 0 else None


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def new_run_id(scenario_id: str) -> str:
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{scenario_id}-{uuid.uuid4().hex[:6]}"
