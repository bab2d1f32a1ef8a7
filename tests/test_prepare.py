"""A run is prepared once (the scenario loaded, the models resolved) and played from that;
a party's model goes into the manifest and comes back out of it unchanged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import stable

from majlis.model import EMBEDDED_ROUNDS, ModelConfig
from majlis.run import (
    Manifest,
    RunOptions,
    party_config,
    party_model,
    preparation,
    prepare,
    resume_session,
    run_session,
)
from majlis.run.log import PartyModel
from majlis.run.provenance import SHARED


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every scenario the run layer loads from disk, by name."""
    seen: list[str] = []
    real = preparation.load_scenario

    def counting(name: str, *args: Any, **kwargs: Any) -> Any:
        seen.append(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(preparation, "load_scenario", counting)
    return seen


def scripted(home: Path, runs: Path, **more: Any) -> RunOptions:
    return RunOptions(
        scenario="cornered-in-iraq",
        model=ModelConfig(model="scripted"),
        home=home,
        runs_root=runs,
        command=["t"],
        **more,
    )


async def test_a_prepared_run_does_not_load_its_scenario_again(
    home: Path, tmp_path: Path, loads: list[str]
) -> None:
    prepared = prepare(scripted(home, tmp_path, rounds=2))
    assert loads == ["cornered-in-iraq"]
    assert prepared.loaded.scenario.deal_rule.max_rounds == 2
    assert prepared.scenario_rounds == prepared.whole.scenario.deal_rule.max_rounds > 2
    result = await run_session(prepared)
    assert loads == ["cornered-in-iraq"]
    assert result.manifest.status == "complete" and result.manifest.rounds == 2


async def test_run_session_given_options_prepares_them_itself(
    home: Path, tmp_path: Path, loads: list[str]
) -> None:
    """The options alone still run a whole session, loading the scenario once, and play it
    exactly as a run prepared beforehand does."""
    by_options = await run_session(scripted(home, tmp_path / "a", rounds=2, seed=3))
    assert loads == ["cornered-in-iraq"]
    by_prepared = await run_session(prepare(scripted(home, tmp_path / "b", rounds=2, seed=3)))
    assert by_options.manifest.status == "complete"
    assert by_options.outcome == by_prepared.outcome
    events = [r.run_dir.read_events()[0] for r in (by_options, by_prepared)]
    assert stable(events[0]) == stable(events[1])


def test_embedded_defaults_fill_only_what_the_user_left_unset(home: Path) -> None:
    opts = RunOptions(home=home)  # every party on the embedded model
    prepared = prepare(opts)
    assert prepared.all_embedded
    short = prepared.with_embedded_defaults()
    assert short.opts.rounds == min(EMBEDDED_ROUNDS, prepared.scenario_rounds)
    assert short.loaded.scenario.deal_rule.max_rounds == short.opts.rounds
    assert short.opts.context == "window:2"
    assert short.whole is prepared.whole and short.configs == prepared.configs
    assert opts.rounds is None and opts.context == "full"  # the caller's options untouched
    given = prepare(RunOptions(home=home, rounds=5, context="full"))
    kept = given.with_embedded_defaults(context_given=True)
    assert (kept.opts.rounds, kept.opts.context) == (5, "full")
    assert kept.loaded.scenario.deal_rule.max_rounds == 5


def test_embedded_defaults_leave_other_models_alone(home: Path) -> None:
    for opts in (
        RunOptions(home=home, model=ModelConfig(model="scripted")),
        RunOptions(home=home, humans=["kurds"]),  # a person is not the embedded model
    ):
        prepared = prepare(opts)
        assert not prepared.all_embedded
        assert prepared.with_embedded_defaults() is prepared


def through_manifest(config: ModelConfig) -> ModelConfig:
    """A config written into manifest.json and read back, as a resume reads it."""
    manifest = Manifest(
        run_id="r",
        created="now",
        scenario={},
        prompts={},
        rounds=1,
        parties={"p": party_model(config)},
        versions={},
        command=[],
    )
    return party_config(Manifest.model_validate_json(manifest.model_dump_json()).parties["p"])


@pytest.mark.parametrize(
    "config",
    [
        ModelConfig(
            model="some-model",
            base_url="http://127.0.0.1:9/v1",
            api_key_env="SOME_KEY",
            temperature=0.2,
            max_tokens=321,
            seed=9,
            timeout=33.5,
            max_retries=1,
            output_retries=4,
            structured="prompt",
            concurrency=3,
            profile="compact",
            narrated=True,
        ),
        ModelConfig(model="scripted:firm", profile="full"),
        ModelConfig(model="human", temperature=0, profile="full"),
    ],
)
def test_a_config_survives_the_round_trip_through_the_manifest(config: ModelConfig) -> None:
    assert through_manifest(config) == config


def test_the_embedded_model_comes_back_with_its_profile_and_the_default_timeout() -> None:
    """The manifest records the resolved profile and no timeout for the embedded model."""
    config = ModelConfig(model="embedded", timeout=0.5, seed=2, narrated=True)
    recorded = party_model(config)
    assert (recorded.timeout, recorded.profile, recorded.played_by) == (None, "compact", "narrated")
    back = through_manifest(config)
    assert back.timeout == ModelConfig().timeout and back.profile == "compact"
    same = {"timeout", "profile"}
    assert back.model_dump(exclude=same) == config.model_dump(exclude=same)


def test_every_field_the_manifest_records_is_mapped() -> None:
    """A field added to PartyModel must be shared by name with ModelConfig, or said in the
    mapping, as played_by is; structured_used is no setting but what the run found (a
    resume begins `auto` there)."""
    assert set(PartyModel.model_fields) - SHARED == {"played_by", "structured_used"}
    assert set(ModelConfig.model_fields) - SHARED == {"narrated"}


async def test_a_resumed_run_plays_each_party_with_its_recorded_model(
    home: Path, tmp_path: Path
) -> None:
    """The manifest's parties, read back through the mapping, are what the resume plays."""
    opts = scripted(home, tmp_path, rounds=1, run_id="r", narrate=["kurds"])
    first = await run_session(opts)
    manifest = first.manifest.model_copy(update={"status": "failed"})
    first.run_dir.write_manifest(manifest)
    again = await resume_session(first.run_dir.path)
    assert again.manifest.parties == first.manifest.parties
    assert again.outcome == first.outcome
