"""Experiment files: the variants, model set-ups and seeds of a sweep, and how fast to run it.

`majlis validate` reads these files too, so this module stays light: the run layer (and
the SDKs behind it) is imported only when a sweep's models are resolved (`sweep_configs`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from ..errors import UserError
from ..files import parse_file
from ..model import Budget, ModelConfig, Price, PriceTable
from ..scenario import BASELINE, load_scenario, load_variant, prompt_dirs

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=60)]


class ModelSetup(BaseModel):
    """One entry of the models axis: a default model and per-party overrides."""

    model_config = ConfigDict(extra="forbid")
    name: Name
    default: ModelConfig = ModelConfig()
    parties: dict[str, ModelConfig] = {}


class Experiment(BaseModel):
    """An experiment file: what to run, how many times, how fast."""

    model_config = ConfigDict(extra="forbid")
    name: Name
    scenario: str | None = Field(
        None, description="A scenario name or path; none: the home's default scenario."
    )
    variants: list[Name] = Field([BASELINE], min_length=1)
    seeds: Annotated[int, Field(ge=1)] | Annotated[list[int], Field(min_length=1)] = Field(
        3, description="A count (seeds 1..N) or an explicit, non-empty list."
    )
    models: list[ModelSetup] = Field(
        default_factory=lambda: [ModelSetup(name="embedded")], min_length=1
    )
    rounds: int | None = Field(None, ge=1)
    context: str = Field("full", description="Context policy: full, or window:N.")
    concurrency: int = Field(4, ge=1, description="Sessions in flight at once.")
    workers: int = Field(
        1,
        ge=1,
        description="Processes the sessions are spread over. One is enough unless the sweep "
        "is CPU-bound: many sessions against a fast endpoint.",
    )
    rpm: int | None = Field(None, ge=1, description="Requests per minute, per endpoint.")
    tpm: int | None = Field(None, ge=1, description="Tokens per minute, per endpoint.")
    judge: ModelConfig | None = None
    prices: dict[str, Price] = {}
    budget: Budget = Field(default_factory=Budget, description="Limits for each session.")
    sweep_budget: Budget = Field(default_factory=Budget, description="Limits for the whole sweep.")

    def price_table(self) -> PriceTable:
        return PriceTable(prices=self.prices)

    def seed_list(self) -> list[int]:
        return list(range(1, self.seeds + 1)) if isinstance(self.seeds, int) else list(self.seeds)


@dataclass(frozen=True)
class Cell:
    variant: str
    setup: ModelSetup
    seed: int

    @property
    def run_id(self) -> str:
        return f"{self.variant}--{self.setup.name}--s{self.seed}"


def cells(exp: Experiment) -> list[Cell]:
    return [Cell(v, m, s) for v in exp.variants for m in exp.models for s in exp.seed_list()]


def load_experiment(path: Path, home: Path) -> Experiment:
    """An experiment file, checked against its scenario and variants. Its models are
    resolved (and a variant's bad override refused) by `sweep_configs`, which whoever runs
    it calls once, before any session."""
    exp = parse_file(path, Experiment)
    loaded = load_scenario(exp.scenario, home)  # a bad scenario: refused now
    scenario = loaded.scenario
    for v in exp.variants:
        load_variant(prompt_dirs(home, loaded.files[0]), v)
    for m in exp.models:
        unknown = set(m.parties) - set(scenario.parties)
        if unknown:
            raise UserError(
                f"{path}: models.{m.name}.parties: unknown party {sorted(unknown)[0]!r}"
            )
    if len({c.run_id for c in cells(exp)}) != len(cells(exp)):
        raise UserError(f"{path}: variants, model names and seeds must be unique")
    return exp


def sweep_configs(exp: Experiment, home: Path) -> list[ModelConfig]:
    """Every party's model in every variant and model set-up, resolved as its sessions will
    resolve it (a variant's overrides included). The per-endpoint limits, the worker count
    and the pre-flight all go by these, not by the experiment file's models alone."""
    from ..run import RunOptions, party_configs  # here, so that reading a file stays light

    loaded = load_scenario(exp.scenario, home)
    parties = list(loaded.scenario.parties)
    prompts = prompt_dirs(home, loaded.files[0])
    found: list[ModelConfig] = []
    for v in exp.variants:
        for m in exp.models:
            opts = RunOptions(
                model=m.default,
                party_models=m.parties,
                variant=None if v == BASELINE else v,
                home=home,
            )
            found += party_configs(opts, parties, prompts).values()
    return found
