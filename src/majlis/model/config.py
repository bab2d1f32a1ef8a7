"""How a party's model is reached: `ModelConfig`, the models file that names one per party,
and the few constants that go with them (the structured-output dialects, the embedded
model's default rounds).

Kept apart from everything that talks to a model because `majlis validate` and the
command line's help read these settings and must start without the openai SDK or an HTTP
library: this module imports pydantic and nothing else outside the standard library.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Dialect = Literal["json_schema", "json_object", "prompt"]
DIALECTS: tuple[Dialect, ...] = ("json_schema", "json_object", "prompt")
# `majlis run` on the embedded model plays this many rounds unless told otherwise: enough
# for the whole arc (injects, proposals, votes, an outcome) in a few minutes on two cores
EMBEDDED_ROUNDS = 3


class ModelConfig(BaseModel):
    """How one party's model is reached. The key itself is never stored, only its variable."""

    model_config = ConfigDict(extra="forbid")
    model: str = "embedded"
    base_url: str | None = None
    api_key_env: str | None = None
    temperature: float = Field(0.7, ge=0, le=2)
    max_tokens: int = Field(700, ge=16)
    seed: int | None = None
    timeout: float = Field(120, gt=0)
    max_retries: int = Field(
        5,
        ge=0,
        description="Transport retries per call (connection errors, timeouts, 408, 409, 429, "
        "5xx, cut replies), each recorded in the run.",
    )
    output_retries: int = Field(
        2, ge=0, description="Re-asks after a reply that does not validate."
    )
    structured: Literal["auto", "json_schema", "json_object", "prompt"] = "auto"
    concurrency: int = Field(8, ge=1, description="Calls in flight at once to this endpoint.")
    profile: Literal["auto", "full", "compact"] = Field(
        "auto",
        description="Prompt profile: full, or compact for small local models (short brief, "
        "score table, what happened since the party's last move, plain-sentence replies). "
        "auto: compact on the embedded model, full elsewhere.",
    )
    narrated: bool = Field(
        False,
        description="The scripted negotiator decides the move from the party's scores; the "
        "model only writes the public and side messages in the persona's voice.",
    )

    @property
    def prompt_profile(self) -> Literal["full", "compact"]:
        if self.profile == "auto":
            return "compact" if self.is_embedded else "full"
        return self.profile

    @property
    def is_scripted(self) -> bool:
        return self.model == "scripted" or self.model.startswith("scripted:")

    @property
    def is_embedded(self) -> bool:
        """The embedded model, which majlis runs itself (no endpoint given)."""
        return self.model == "embedded" and self.base_url is None

    @property
    def reaches_endpoint(self) -> bool:
        """Called over HTTP: not played in process, by a person, or by the embedded model."""
        local = self.is_scripted or self.model in ("embedded", "human")
        return self.base_url is not None or not local

    @property
    def endpoint(self) -> str:
        """The key its limits and connection pool are shared under."""
        return self.base_url or "openai"


class ModelsFile(BaseModel):
    """A models file (`majlis run --models FILE`): a default model and per-party overrides."""

    model_config = ConfigDict(extra="forbid")
    default: ModelConfig | None = None
    parties: dict[str, ModelConfig] = {}


# what a judge is asked with unless its entry says otherwise: the same answer twice (no
# sampling, a fixed seed), and room for a verdict on every rubric dimension
JUDGE_SETTINGS = {"temperature": 0.0, "seed": 0, "max_tokens": 1500}


class JudgesFile(BaseModel):
    """A judges file (`majlis eval --judges FILE`, `majlis calibrate --judges FILE`): a
    panel whose judges may each sit at an endpoint of their own, with a key of their own
    (models of other families judge each other's players with less bias, and they are
    seldom served from one place). Each judge is known by its model name, so a name comes
    once; temperature, seed and max_tokens default to a judge's (`JUDGE_SETTINGS`)."""

    model_config = ConfigDict(extra="forbid")
    judges: list[ModelConfig] = Field(min_length=1)

    def configs(self) -> list[ModelConfig]:
        """The judges, with a judge's settings wherever their entries leave them out."""
        return [
            j.model_copy(
                update={k: v for k, v in JUDGE_SETTINGS.items() if k not in j.model_fields_set}
            )
            for j in self.judges
        ]
