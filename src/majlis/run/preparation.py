"""Before a session: its options, the scenario loaded once, each party's model resolved once,
and the templates rendered once so that a broken one is refused before anything runs.

`prepare(opts)` does the loading and resolving and returns a `Prepared` run, which the
command line can look at (is every party on the embedded model? how many rounds has the
scenario?) and hand to `run_session` as it is. Nothing here starts a model or imports the
SDKs or langgraph: `majlis validate` uses `check_templates` from here.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from ..errors import ScenarioError, UserError
from ..model import EMBEDDED_ROUNDS, ModelConfig
from ..protocol import MOVE, PROFILES, SYSTEM, VOTE, PartyPrompter, Templates, rules
from ..scenario import (
    LoadedScenario,
    data_root,
    load_scenario,
    load_variant,
    prompt_dirs,
    variant_folder,
)
from .log import HUMAN

if TYPE_CHECKING:
    from ..model import Activity, EndpointLimits, ResponseCache, Spending

MAX_ROUNDS = 100
# every party on the embedded model: its context window is 8192 tokens, which the full
# record outgrows by round 4, so the record is bounded to the last two rounds and a summary
EMBEDDED_CONTEXT = "window:2"


@dataclass
class RunOptions:
    scenario: str | None = None  # a name or path; None: the home's default scenario
    rounds: int | None = None
    seed: int | None = None
    model: ModelConfig = field(default_factory=ModelConfig)
    party_models: dict[str, ModelConfig] = field(default_factory=dict)
    variant: str | None = None
    runs_root: Path | None = None
    run_id: str | None = None
    home: Path | None = None
    command: list[str] = field(default_factory=lambda: list(sys.argv))
    cache: ResponseCache | None = None  # replies replayed by request and sample index
    limits: EndpointLimits | None = None  # shared by the sessions of a sweep
    humans: list[str] = field(default_factory=list)  # parties a person plays (trainee play)
    spending: Spending | None = None  # budgets: calls, tokens, cost
    context: str = "full"  # context policy: full, or window:N with a rolling summary
    narrate: list[str] = field(default_factory=list)  # parties played narrated ("all": every one)
    activity: Activity | None = None  # the embedded model reports its tokens here, as they come


@dataclass(frozen=True)
class Prepared:
    """A run ready to start: its options, its scenario as loaded (`whole`) and as played
    (`loaded`: the rounds of `opts.rounds` applied), and each party's model.

    Made by `prepare`; `run_session` takes it as it is and loads nothing again."""

    opts: RunOptions
    home: Path  # the data folder: scenarios, prompts, variants
    whole: LoadedScenario
    loaded: LoadedScenario
    configs: dict[str, ModelConfig]

    @property
    def all_embedded(self) -> bool:
        """Every party on the embedded model (after the variant's and --human's say)."""
        return all(c.is_embedded for c in self.configs.values())

    @property
    def scenario_rounds(self) -> int:
        """The scenario's own round limit, whatever `opts.rounds` says."""
        return self.whole.scenario.deal_rule.max_rounds

    def with_embedded_defaults(self, context_given: bool = False) -> Prepared:
        """When every party plays the embedded model, the short session that shows the whole
        arc (EMBEDDED_ROUNDS, or fewer if the scenario has fewer) unless `opts.rounds` is
        set, and the bounded context unless `context_given` (RunOptions cannot tell a
        `context` of "full" asked for from its default). Otherwise this run unchanged."""
        if not self.all_embedded:
            return self
        changes: dict[str, object] = {}
        if self.opts.rounds is None:
            changes["rounds"] = min(EMBEDDED_ROUNDS, self.scenario_rounds)
        if not context_given:
            changes["context"] = EMBEDDED_CONTEXT
        opts = dataclasses.replace(self.opts, **changes)
        return dataclasses.replace(self, opts=opts, loaded=with_rounds(self.whole, opts.rounds))


def prepare(opts: RunOptions) -> Prepared:
    """Load the scenario and resolve every party's model, once: a UserError (or a
    ScenarioError naming file and field) for anything the user must fix."""
    home = data_root(opts.home)
    whole = load_scenario(opts.scenario, home)
    loaded = with_rounds(whole, opts.rounds)
    configs = party_configs(opts, list(whole.scenario.parties), prompt_dirs(home, whole.files[0]))
    return Prepared(opts, home, whole, loaded, configs)


def with_rounds(loaded: LoadedScenario, rounds: int | None) -> LoadedScenario:
    """The scenario with its round limit overridden; injects after the last round drop out."""
    if rounds is None:
        return loaded
    if not 1 <= rounds <= MAX_ROUNDS:  # the run log's own limit: readers refuse past it
        raise UserError(f"--rounds must be between 1 and {MAX_ROUNDS}, got {rounds}")
    s = loaded.scenario
    new = s.model_copy(
        update={
            "deal_rule": s.deal_rule.model_copy(update={"max_rounds": rounds}),
            "injects": [i for i in s.injects if i.round is None or i.round <= rounds],
        }
    )
    return loaded.model_copy(update={"scenario": new})


def party_configs(
    opts: RunOptions, parties: list[str], prompts: list[Path]
) -> dict[str, ModelConfig]:
    """Each party's model: the default, its own entry, then the variant's overrides, then the seed.
    `prompts`: the folders the variant is looked up in (see `prompt_dirs`)."""
    variant = load_variant(prompts, opts.variant)
    if variant.models:  # the file that set them, for errors
        spec = variant_folder(prompts, str(opts.variant)) / "variant.yaml"
    configs = {p: opts.party_models.get(p, opts.model) for p in parties}
    for p in opts.party_models:
        configs.setdefault(p, opts.party_models[p])
    for p, override in variant.models.items():
        if p not in parties:
            raise ScenarioError(spec, f"models.{p}", f"unknown party {p!r}")
        try:
            configs[p] = ModelConfig.model_validate({**configs[p].model_dump(), **override})
        except ValidationError as exc:
            err = exc.errors()[0]
            raise ScenarioError(
                spec, f"models.{p}.{'.'.join(map(str, err['loc']))}", err["msg"]
            ) from None
    narrate = list(parties) if "all" in opts.narrate else opts.narrate
    for p in narrate:
        if p not in parties:
            raise UserError(f"--narrate: unknown party {p!r} (parties: {', '.join(parties)}, all)")
        configs[p] = configs[p].model_copy(update={"narrated": True})
    for p in opts.humans:
        if p not in parties:
            raise UserError(f"--human: unknown party {p!r} (parties: {', '.join(parties)})")
        configs[p] = ModelConfig(model=HUMAN, temperature=0)
    if opts.seed is not None:
        configs = {
            p: c if c.seed is not None else c.model_copy(update={"seed": opts.seed})
            for p, c in configs.items()
        }
    return configs


def variant_fits(templates: Templates, variant: str | None, profiles: set[str]) -> None:
    """A variant that rewrites the move prompt for one profile and not for the other would
    change nothing for parties on the other one, and a comparison would measure nothing:
    refused, saying what to add."""
    if not variant:
        return
    root = templates.search[0]
    for name in (SYSTEM, MOVE, VOTE):
        has = {"full": (root / name).is_file(), "compact": (root / "compact" / name).is_file()}
        for profile in profiles:
            other = "compact" if profile == "full" else "full"
            if has[other] and not has[profile]:
                given = name if other == "full" else f"compact/{name}"
                wanted = name if profile == "full" else f"compact/{name}"
                raise UserError(
                    f"variant {variant!r} changes {given}, which the {profile} prompt profile "
                    f"does not read: add {wanted} to the variant, or run with --profile {other}"
                )


def render_all(
    loaded: LoadedScenario, prompters: Iterable[PartyPrompter], narrated: Collection[str]
) -> None:
    """Render each prompter's templates once, so a broken one fails before a run starts."""
    any_package = next(rules.all_packages(loaded.scenario))
    for prompter in prompters:
        move = prompter.messages("move", [], 1, None)
        standing = {"by": prompter.party, "package": any_package, "seq": 0}
        prompter.messages("vote", [], 1, standing)
        if prompter.party in narrated:
            decided = {"positions": any_package, "proposal": any_package, "side_message": None}
            prompter.narration(move, decided)


def check_templates(loaded: LoadedScenario, variant: str | None = None) -> None:
    """Render every template of a scenario, for every party, in every prompt profile and for
    narrated play: what `majlis validate` checks."""
    templates = Templates(prompt_dirs(loaded.root, loaded.files[0]), variant)
    for profile in PROFILES:
        prompters = [
            PartyPrompter(loaded, p, templates, profile=profile) for p in loaded.scenario.parties
        ]
        render_all(loaded, prompters, loaded.scenario.parties)
