"""Experiment files: the variants, model set-ups and seeds of a sweep, and how fast to run it.

Or, in place of model set-ups, a population: named models that take the seats against each
other (cross-play), in every seating or in a balanced sample of them (`seating.py`).

`majlis validate` reads these files too, so this module stays light: the run layer (and
the SDKs behind it) is imported only when a sweep's models are resolved (`sweep_configs`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..errors import ScenarioError, UserError
from ..files import parse_file
from ..model import Budget, ModelConfig, Price, PriceTable
from ..scenario import BASELINE, data_root, load_scenario, load_variant, prompt_dirs
from .seating import Design, Seating, design, seating_id, sessions_within

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=60)]
# a member's name stands for its seat in a run id, between dots: so no dot of its own
MemberName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$", max_length=24)]


MAX_RUN_ID = 200


class ModelSetup(BaseModel):
    """One entry of the models axis: a default model and per-party overrides."""

    model_config = ConfigDict(extra="forbid")
    name: Name
    default: ModelConfig = ModelConfig()
    parties: dict[str, ModelConfig] = {}


class Member(BaseModel):
    """One member of a cross-play population: a model that can take any seat."""

    model_config = ConfigDict(extra="forbid")
    name: MemberName
    model: ModelConfig


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
    population: list[Member] | None = Field(
        None,
        min_length=2,
        description="Cross-play, in place of `models`: each session seats one member in "
        "every party's seat, and the members are rated against each other.",
    )
    seating: Literal["all", "sample"] = Field(
        "all",
        description="all: every mixed seating (up to 500 sessions); sample: `samples` "
        "seatings, each member in each seat about equally often.",
    )
    samples: int | None = Field(None, ge=1, description="Seatings to draw with `sample`.")
    seating_seed: int = Field(0, description="Which balanced sample `sample` draws.")
    rounds: int | None = Field(None, ge=1)
    context: str = Field("full", description="Context policy: full, or window:N.")
    concurrency: Annotated[int, Field(ge=1)] | Literal["auto"] = Field(
        4,
        description="Sessions in flight at once; or auto: each endpoint's calls in flight "
        "are found as the sweep runs (start at 4, one more after each window of clean "
        "replies, cut to three quarters when the endpoint has too much: a 429, 503 or 504, "
        "a Retry-After, a timeout), up to max_concurrency, "
        "and the models' own concurrency is not used.",
    )
    max_concurrency: int = Field(
        64,
        ge=1,
        description="With concurrency auto: the most sessions, and calls to any "
        "one endpoint, in flight at once.",
    )
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

    @model_validator(mode="after")
    def _population_fits(self) -> Experiment:
        given = self.model_fields_set
        if self.population is None:
            if given & {"seating", "samples", "seating_seed"}:
                raise ValueError("seating and samples go with a population")
            return self
        if "models" in given:
            raise ValueError("give models or a population, not both: members take the seats")
        names = [m.name for m in self.population]
        if len(set(names)) != len(names):
            raise ValueError("population: member names must be unique")
        if (self.seating == "sample") != (self.samples is not None):
            raise ValueError("samples: N goes with `seating: sample`, and it needs one")
        return self

    @property
    def adaptive(self) -> int | None:
        """The ceiling of the adaptive limits, or None when the concurrency is fixed."""
        return self.max_concurrency if self.concurrency == "auto" else None

    @property
    def sessions_at_once(self) -> int:
        """Sessions in flight: the fixed number, or under `auto` the ceiling (a session
        past what the endpoint takes just waits for a slot there)."""
        return self.max_concurrency if self.concurrency == "auto" else self.concurrency

    def price_table(self) -> PriceTable:
        return PriceTable(prices=self.prices)

    def seed_list(self) -> list[int]:
        return list(range(1, self.seeds + 1)) if isinstance(self.seeds, int) else list(self.seeds)


@dataclass(frozen=True)
class Cell:
    variant: str
    setup: ModelSetup
    seed: int
    seating: Seating = ()  # cross-play: the member in each seat, in the scenario's order

    @property
    def run_id(self) -> str:
        middle = seating_id(self.seating) if self.seating else self.setup.name
        return f"{self.variant}--{middle}--s{self.seed}"


def cells(exp: Experiment, home: Path | None = None) -> list[Cell]:
    """Every session of the sweep. A population's seatings depend on the scenario's seats,
    read from `home` (only then)."""
    if exp.population is None:
        setups = [(m, ()) for m in exp.models]
    else:
        parties = list(load_scenario(exp.scenario, data_root(home)).scenario.parties)
        setups = [(seated(exp, parties, s), s) for s in seating_design(exp, parties).seatings]
    return [Cell(v, m, s, st) for v in exp.variants for m, st in setups for s in exp.seed_list()]


def seating_design(exp: Experiment, parties: list[str]) -> Design:
    """The seatings a population plays in these seats; a UserError if `all` is too many."""
    assert exp.population is not None
    names = [m.name for m in exp.population]
    found = design(names, len(parties), exp.seating, exp.samples, exp.seating_seed)
    sessions_within(found, len(exp.seed_list()), len(exp.variants))
    return found


def seated(exp: Experiment, parties: list[str], seating: Seating) -> ModelSetup:
    """A seating as the model set-up its sessions run: each party on its member's model."""
    assert exp.population is not None
    models = {m.name: m.model for m in exp.population}
    by_party = {p: models[name] for p, name in zip(parties, seating, strict=True)}
    return ModelSetup(name="cross-play", default=by_party[parties[0]], parties=by_party)


def load_experiment(path: Path, home: Path) -> Experiment:
    """An experiment file, checked against its scenario and variants. Its models are
    resolved (and a variant's bad override refused) by `sweep_configs`, which whoever runs
    it calls once, before any session."""
    exp = parse_file(path, Experiment)
    loaded = load_scenario(exp.scenario, home)  # a bad scenario: refused now
    scenario = loaded.scenario
    for v in exp.variants:
        variant = load_variant(prompt_dirs(home, loaded.files[0]), v)
        if exp.population is not None and variant.models:
            raise ScenarioError(
                path,
                "variants",
                f"variant {v!r} sets models per party, which would take the population's "
                "seats: a cross-play sweep takes prompt-only variants",
            )
    if exp.population is not None:
        try:
            seating_design(exp, list(scenario.parties))
        except UserError as exc:
            raise ScenarioError(path, "seating", str(exc)) from None
    for m in exp.models if exp.population is None else []:
        unknown = set(m.parties) - set(scenario.parties)
        if unknown:
            raise UserError(
                f"{path}: models.{m.name}.parties: unknown party {sorted(unknown)[0]!r}"
            )
    every = cells(exp, home)
    if len({c.run_id for c in every}) != len(every):
        raise UserError(f"{path}: variants, model names and seeds must be unique")
    longest = max(len(c.run_id) for c in every)
    if longest > MAX_RUN_ID:  # a folder name, which file systems cap at 255 bytes
        raise ScenarioError(
            path, "population", f"run ids would be {longest} characters: shorten member names"
        )
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
    seen: set[tuple[str, str]] = set()
    for cell in cells(exp, home):
        key = (cell.variant, cell.run_id.split("--")[1])  # each variant and set-up once
        if key in seen:
            continue
        seen.add(key)
        opts = RunOptions(
            model=cell.setup.default,
            party_models=cell.setup.parties,
            variant=None if cell.variant == BASELINE else cell.variant,
            home=home,
        )
        found += party_configs(opts, parties, prompts).values()
    return found
