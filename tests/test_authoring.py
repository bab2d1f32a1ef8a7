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
    assert "holds several scenarios: name one (another, iraq-copy)" in res.stderr


def test_a_scenario_name_not_in_the_home_is_found_among_the_shipped_ones(tmp_path: Path) -> None:
    home = tmp_path / "home"
    iraq_folder(home / "scenarios")
    res = majlis_process("agents", "--home", str(home), "--scenario", "cornered-in-iraq")
    assert res.returncode == 0, res.stderr
    res = majlis_process("agents", "--home", str(home), "--scenario", "atlantis")
    assert res.returncode == 2
    assert "unknown scenario 'atlantis' (known: iraq-copy, " in res.stderr


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
