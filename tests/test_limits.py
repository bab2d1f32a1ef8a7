"""Limits are checked where they are set, and each refusal is one line that says what is wrong
first (exit 2, nothing in runs/): rounds, seeds, agendas too large to enumerate, templates
too large or including themselves, broken card links, a broken scenario among good ones,
and the command line's own usage errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from majlis.cli import main


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str]]:
    code = main(list(args))
    captured = capsys.readouterr()
    lines = [x for x in (captured.err + captured.out).splitlines() if x.strip()]
    return code, lines


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["run", "--seed", "abc"], "majlis: error: Invalid value for '--seed'"),
        (["run", "--bogus"], "majlis: error: No such option: --bogus"),
        (["nosuch"], "majlis: error: No such command 'nosuch'"),
        (["eval"], "majlis: error: Missing argument"),
        (["run", "--rounds", "101"], "majlis: error: --rounds must be between 1 and 100"),
        (["run", "--rounds", "0"], "majlis: error: --rounds must be between 1 and 100"),
        (["run", "--seed", str(10**30)], "majlis: error: --seed must be between 0 and"),
    ],
)
def test_a_bad_command_line_says_what_is_wrong_first(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str], says: str
) -> None:
    runs = tmp_path / "runs"
    more = ["--model", "scripted", "--out", str(runs)] if args[:1] == ["run"] else []
    code, lines = run_main(capsys, *args, *more)
    assert code == 2
    assert len(lines) == 1 and lines[0].startswith(says), lines
    assert not runs.exists() or not any(runs.iterdir())


def _scenario(home: Path) -> Path:
    return home / "scenarios" / "cornered-in-iraq" / "scenario.yaml"


def test_an_agenda_too_large_to_enumerate_is_refused(
    home_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _scenario(home_copy)
    data = yaml.safe_load(path.read_text())
    options = [{"id": f"o{k}", "label": f"Option {k}"} for k in range(6)]
    data["agenda"] += [
        {"id": f"extra{n}", "title": f"Extra issue {n}", "options": options} for n in range(4)
    ]
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    code, lines = run_main(capsys, "validate", "--home", str(home_copy))
    assert code == 2 and len(lines) == 1
    assert "scenario.yaml" in lines[0] and "agenda" in lines[0]
    assert "2,985,984 packages" in lines[0] and "20,000" in lines[0]


def test_a_template_that_includes_itself_is_one_line(
    home_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    persona = home_copy / "prompts" / "personas" / "kurds.md.j2"
    persona.write_text("Again: {% include 'personas/kurds.md.j2' %}\n")
    code, lines = run_main(capsys, "validate", "--home", str(home_copy))
    assert code == 2 and len(lines) == 1
    assert "kurds.md.j2" in lines[0] and "includes itself" in lines[0]


def test_a_template_of_megabytes_is_refused(
    home_copy: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    persona = home_copy / "prompts" / "personas" / "kurds.md.j2"
    persona.write_text("You are the Kurdish parties. " * 200_000)
    runs = tmp_path / "runs"
    code, lines = run_main(
        capsys, "run", "--home", str(home_copy), "--model", "scripted", "--out", str(runs)
    )
    assert code == 2 and len(lines) == 1
    assert "kurds.md.j2" in lines[0] and "65,536" in lines[0]
    assert not runs.exists() or not any(runs.iterdir())


@pytest.mark.parametrize("kind", ["dangling", "loop"])
def test_a_broken_card_link_is_named_not_replaced(
    home_copy: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    """A scenario's own agents/ folder holds a broken link for a party that the top-level
    agents/ also has: the broken one is reported, never silently swapped for the other."""
    own = _scenario(home_copy).parent / "agents"
    own.mkdir()
    link = own / "tehran.yaml"
    if kind == "dangling":
        link.symlink_to(own / "nowhere.yaml")
    else:
        link.symlink_to(own / "other.yaml")
        (own / "other.yaml").symlink_to(link)
    code, lines = run_main(capsys, "agents", "--home", str(home_copy))
    assert code == 2 and len(lines) == 1
    assert "tehran.yaml" in lines[0]
    assert ("loops" if kind == "loop" else "does not exist") in lines[0]


def test_a_broken_scenario_does_not_hide_the_good_ones(
    home_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = home_copy / "scenarios" / "broken-one"
    broken.mkdir()
    (broken / "scenario.yaml").write_text("id: broken-one\ntitle: [unclosed\n")
    code = main(["scenarios", "--home", str(home_copy)])
    captured = capsys.readouterr()
    assert code == 2
    assert "cornered-in-iraq" in captured.out and "Cornered in Iraq" in captured.out
    assert "broken-one" in captured.out
    errors = [x for x in captured.err.splitlines() if x.strip()]
    assert len(errors) == 1 and "broken-one" in errors[0] and "scenario.yaml" in errors[0]


def test_validate_states_the_zone_of_agreement_and_its_split(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = run_main(capsys, "validate", "--home", str(home))
    assert code == 0
    zones = [x for x in lines if "zone of agreement" in x]
    assert zones == [
        "bell-time: zone of agreement 14 of 108 packages (later start 9, a small step 5)",
        "cornered-in-iraq: zone of agreement 32 of 2,304 packages (muddle through 30, rupture 2)",
    ]


def test_validate_warns_when_no_deal_is_possible(
    home_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for party in ("sudani", "washington"):  # each veto party will take only its very best
        path = home_copy / "agents" / f"{party}.yaml"
        card = yaml.safe_load(path.read_text())
        card["threshold"] = sum(max(t.values()) for t in card["scores"].values())
        path.write_text(yaml.safe_dump(card, sort_keys=False))
    code = main(["validate", "--home", str(home_copy)])
    captured = capsys.readouterr()
    assert code == 0, "a scenario without a zone is legal, but said"
    assert "zone of agreement 0 of 2,304 packages" in captured.out
    warnings = [x for x in captured.err.splitlines() if x.strip()]
    assert len(warnings) == 1 and warnings[0].startswith("majlis: warning: cornered-in-iraq")
    assert "no deal is possible" in warnings[0]
