"""Scenarios of one's own: self-contained folders, homes, defaults, `majlis new`, schema lines."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import REPO, majlis_process

from majlis.scenario import SHIPPED, load_scenario, prompt_dirs

NO_HOME = {"MAJLIS_HOME": ""}


def iraq_folder(where: Path, with_prompts: bool = True) -> Path:
    """The Iraq scenario as a folder of its own: scenario.yaml, agents/ and, if asked, its
    personas under prompts/."""
    folder = where / "iraq-copy"
    (folder / "agents").mkdir(parents=True)
    shutil.copy(REPO / "scenarios/cornered-in-iraq/scenario.yaml", folder / "scenario.yaml")
    for card in (REPO / "agents").glob("*.yaml"):
        shutil.copy(card, folder / "agents" / card.name)
    if with_prompts:
        shutil.copytree(REPO / "prompts/personas", folder / "prompts/personas")
    return folder


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_scenario_folder_brings_its_own_templates_and_falls_back_to_the_shipped_ones(
    tmp_path: Path,
) -> None:
    folder = iraq_folder(tmp_path)
    own = folder / "prompts" / "personas" / "kurds.md.j2"
    own.write_text("You speak for the Region's two ruling parties, and you are wary.\n")
    work = tmp_path / "work"
    work.mkdir()
    res = majlis_process(
        "run", "--scenario", str(folder), "--model", "scripted", "--rounds", "1", "--quiet",
        cwd=work, env=NO_HOME,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    run = Path(res.stdout.strip().splitlines()[-1])
    assert run.parent == work / "runs"  # no home chosen: runs/ beside the user, not the checkout
    used = json.loads((run / "manifest.json").read_text())["prompts"]
    assert used["personas/kurds.md.j2"] == sha(own)
    assert used["system.md.j2"] == sha(SHIPPED / "prompts" / "system.md.j2")
    assert not (REPO / "runs" / run.name).exists()


def test_prompt_lookup_order_is_scenario_then_home_then_shipped(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "scenarios").mkdir(parents=True)
    (home / "prompts").mkdir()
    folder = iraq_folder(home / "scenarios", with_prompts=False)
    loaded = load_scenario(str(folder), home)
    assert prompt_dirs(home, loaded.files[0]) == [home / "prompts", SHIPPED / "prompts"]
    (folder / "prompts").mkdir()
    assert prompt_dirs(home, loaded.files[0])[0] == folder / "prompts"


def test_a_home_that_is_not_one_is_an_error_not_passed_over(tmp_path: Path) -> None:
    res = majlis_process("scenarios", "--home", str(tmp_path))
    assert res.returncode == 2
    assert f"{tmp_path}: --home: not a majlis home (no scenarios/ folder)" in res.stderr
    res = majlis_process("scenarios", env={"MAJLIS_HOME": str(tmp_path)})
    assert res.returncode == 2 and "MAJLIS_HOME: not a majlis home" in res.stderr


def test_commands_default_to_the_homes_own_scenario(tmp_path: Path) -> None:
    home = tmp_path / "home"
    folder = iraq_folder(home / "scenarios")
    res = majlis_process("agents", "--home", str(home), env={"COLUMNS": "200"})
    assert res.returncode == 0, res.stderr
    assert "Prime Minister Sudani" in res.stdout
    shutil.copytree(folder, home / "scenarios" / "another")
    res = majlis_process("agents", "--home", str(home), env={"COLUMNS": "200"})
    assert res.returncode == 2
    assert "several scenarios here, name one (known: another, iraq-copy)" in res.stderr


def test_a_scenario_name_not_in_the_home_is_found_among_the_shipped_ones(tmp_path: Path) -> None:
    home = tmp_path / "home"
    iraq_folder(home / "scenarios")
    res = majlis_process("agents", "--home", str(home), "--scenario", "cornered-in-iraq")
    assert res.returncode == 0, res.stderr
    res = majlis_process("agents", "--home", str(home), "--scenario", "atlantis")
    assert res.returncode == 2
    assert (
        "unknown scenario 'atlantis' (known: iraq-copy; shipped: bell-time, cornered-in-iraq)"
        in res.stderr
    )


def test_calibrate_reads_the_scenario_its_set_names(tmp_path: Path) -> None:
    calibration = tmp_path / "set"
    shutil.copytree(REPO / "tests" / "calibration", calibration)
    folder = iraq_folder(tmp_path)
    (calibration / "set.yaml").write_text(f"scenario: {folder}\n")
    for card in (folder / "agents").glob("*.yaml"):  # the set's scenario, not the shipped one
        card.write_text(card.read_text().replace("name: ", "name: Renamed ", 1))
    res = majlis_process("calibrate", "--set", str(calibration), env={"COLUMNS": "200"})
    assert res.returncode == 0, res.stderr
    (calibration / "set.yaml").write_text("scenario: atlantis\n")
    res = majlis_process("calibrate", "--set", str(calibration))
    assert res.returncode == 2 and "unknown scenario 'atlantis'" in res.stderr


SHIPPED_YAML = {
    "scenarios/*/scenario.yaml": "scenario",
    "scenarios/*/agents/*.yaml": "agent-card",
    "agents/*.yaml": "agent-card",
    "evals/rubrics/*.yaml": "rubric",
    "evals/debrief.yaml": "debrief-texts",
    "evals/prices.yaml": "prices",
    "prompts/variants/*/variant.yaml": "variant",
    "experiments/*.yaml": "experiment",
    "tests/calibration/set.yaml": "calibration-set",
}


@pytest.mark.parametrize("pattern", sorted(SHIPPED_YAML))
def test_every_shipped_yaml_file_names_its_schema_for_editors(pattern: str) -> None:
    files = sorted(REPO.glob(pattern))
    assert files or pattern.startswith("scenarios/*/agents")
    for path in files:
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first.startswith("# yaml-language-server: $schema="), path
        schema = (path.parent / first.split("$schema=", 1)[1]).resolve()
        assert schema == REPO / "schemas" / f"{SHIPPED_YAML[pattern]}.schema.json", path
        assert schema.is_file()
        assert yaml.safe_load(path.read_text(encoding="utf-8"))  # a comment, not data


def test_a_new_scenario_outside_the_repo_goes_through_every_command(tmp_path: Path) -> None:
    """From nothing to a debrief with no home and no file of the checkout's own scenario:
    the skeleton `majlis new` writes plays as it is, and every command reads it."""

    def majlis(*args: str) -> str:
        res = majlis_process(*args, cwd=tmp_path, env={**NO_HOME, "COLUMNS": "200"})
        assert res.returncode == 0, (args, res.stdout, res.stderr)
        return res.stdout

    wrote = majlis("new", "water", "--parties", "city,farms,river,fishers")
    assert "wrote water/ (9 files)" in wrote
    first = (tmp_path / "water" / "scenario.yaml").read_text().splitlines()[0]
    assert first.startswith("# yaml-language-server: $schema=") and first.endswith(
        "schemas/scenario.schema.json"
    )
    assert "water: zone of agreement" in majlis("validate", "water")
    assert "Settled" in majlis("zone", "water")
    run = Path(majlis("run", "--scenario", "water", "--model", "scripted", "--quiet").strip())
    assert run.parent == tmp_path / "runs"
    majlis("eval", str(run))
    outcome = json.loads((run / "outcome.json").read_text())
    metrics = json.loads((run / "eval.json").read_text())["metrics"]
    assert outcome["kind"] == "deal" and outcome["branch"] == "settled"
    assert (metrics["branch"], metrics["branch_label"]) == ("settled", "Settled")
    majlis("view", str(run), "--out", str(tmp_path / "water.html"))
    assert "Settled" in (tmp_path / "water.html").read_text()
    majlis("debrief", str(run))
    assert "Settled" in (run / "debrief.md").read_text()
    used = json.loads((run / "manifest.json").read_text())["prompts"]
    assert used["personas/city.md.j2"] == sha(tmp_path / "water/prompts/personas/city.md.j2")


def test_new_refuses_what_it_cannot_write_and_leaves_nothing(tmp_path: Path) -> None:
    cases = [
        (("new", "water"), "give --parties a,b,c for a skeleton, or --from SCENARIO"),
        (("new", "water", "--parties", "city"), "at least two parties"),
        (("new", "water", "--parties", "city,City"), "'City' is not a party id"),
        (("new", "water", "--parties", "city,city"), "a party is named twice"),
        (("new", "Water", "--parties", "a,b"), "scenario name 'Water'"),
        (("new", "water", "--from", "atlantis"), "unknown scenario 'atlantis'"),
    ]
    for args, message in cases:
        res = majlis_process(*args, cwd=tmp_path, env=NO_HOME)
        assert res.returncode == 2 and message in res.stderr, (args, res.stderr)
        assert list(tmp_path.iterdir()) == [], args
    (tmp_path / "water").mkdir()
    res = majlis_process("new", "water", "--parties", "a,b", cwd=tmp_path, env=NO_HOME)
    assert res.returncode == 2 and "water: already exists" in res.stderr
    assert list((tmp_path / "water").iterdir()) == []


def test_new_from_copies_a_scenario_into_a_folder_of_its_own(tmp_path: Path) -> None:
    res = majlis_process("new", "room", "--from", "cornered-in-iraq", cwd=tmp_path, env=NO_HOME)
    assert res.returncode == 0, res.stderr
    room = tmp_path / "room"
    assert sorted(p.name for p in (room / "agents").iterdir()) == sorted(
        p.name for p in (REPO / "agents").glob("*.yaml")
    )
    assert (room / "prompts/personas/sudani.md.j2").read_bytes() == (
        REPO / "prompts/personas/sudani.md.j2"
    ).read_bytes()
    copy = load_scenario(str(room), tmp_path)
    original = load_scenario("cornered-in-iraq", REPO)
    assert copy.scenario.id == "room"
    assert copy.scenario.agenda == original.scenario.agenda and copy.cards == original.cards
    assert all(f.is_relative_to(room) for f in copy.files)  # its own cards, not the home's


def test_a_persona_path_out_of_prompts_is_refused_and_never_copied(tmp_path: Path) -> None:
    folder = iraq_folder(tmp_path)
    card = folder / "agents" / "kurds.yaml"
    card.write_text(
        card.read_text().replace("persona: personas/kurds.md.j2", "persona: ../../escaped.md.j2")
    )
    (tmp_path / "escaped.md.j2").write_text("You speak plainly.\n")
    res = majlis_process("validate", str(folder), cwd=tmp_path, env=NO_HOME)
    assert res.returncode == 2 and "kurds.yaml: persona" in res.stderr
    assert "must be a path inside prompts/" in res.stderr
    work = tmp_path / "work"
    work.mkdir()
    res = majlis_process("new", "copy", "--from", str(folder), cwd=work, env=NO_HOME)
    assert res.returncode == 2 and not (work / "copy").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["escaped.md.j2", "iraq-copy", "work"]
