"""Outcome branches are scenario data (issue 16): names, words and the rule that files an
outcome under one of them.

A small water-sharing scenario with futures of its own is played by the scripted player and
its run read by every reader; the rule is checked case by case; broken branch lists are
refused naming the field; and the Iraq scenario, rewritten in the list form, files every
outcome exactly where the older mapping form did.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import chromium, events_of, scripted_options
from rich.console import Console
from typer.testing import CliRunner

from majlis.cli import app
from majlis.cli.live import LiveView
from majlis.compare import Comparison, RunRow, branch_counts
from majlis.compare.comparison import runs_csv, to_markdown
from majlis.errors import ScenarioError
from majlis.evals import compute_metrics, evaluate_run
from majlis.model import ModelConfig
from majlis.protocol import rules, zone_of
from majlis.run import RunDir, RunOptions, load_snapshot, prepare, run_session
from majlis.scenario import BranchRule, BranchWhen, Scenario, load_scenario
from majlis.workshop import render_debrief
from majlis.workshop.serve import run_summary
from majlis.workshop.viewer import build_data, render_html

KINDS: list[rules.OutcomeKind] = ["deal", "partial", "none"]
WATER = "water-sharing"
LABELS = {"water_compact": "Water compact", "dry_truce": "Dry truce", "water_war": "Water war"}


def water_scenario() -> dict[str, Any]:
    """Two riparian states (both with a veto) and the farmers, over a river's water.

    Only two packages clear both vetoes' walk-away points, fixed or seasonal shares with a
    jointly run dam: a deal on either is a water compact."""
    options = {
        "allocation": [("fixed_share", 1), ("seasonal", 2), ("upstream_first", -2)],
        "dam": [("joint_operation", 2), ("upstream_control", -1), ("moratorium", 0)],
    }
    return {
        "id": WATER,
        "title": "Sharing the river",
        "brief": "A drought year. Two states that share a river meet to divide its water.",
        "convener": "upstream",
        "parties": ["upstream", "downstream", "farmers"],
        "agenda": [
            {
                "id": issue,
                "title": issue.capitalize(),
                "options": [
                    {"id": o, "label": o.replace("_", " "), "lean": lean} for o, lean in opts
                ],
            }
            for issue, opts in options.items()
        ],
        "deal_rule": {"veto": ["upstream", "downstream"], "min_accept": 2, "max_rounds": 4},
        "branches": [
            {
                "id": "water_compact",
                "label": LABELS["water_compact"],
                "description": "A treaty that shares the river and runs the dam together.",
                "when": {"outcome": ["deal"], "agreed": {"dam": ["joint_operation"]}},
            },
            {
                "id": "dry_truce",
                "label": LABELS["dry_truce"],
                "description": "No treaty, but enough agreed to keep the water flowing.",
                "when": {"outcome": ["deal", "partial"], "lean_at_least": 1},
            },
            {
                "id": "water_war",
                "label": LABELS["water_war"],
                "description": "Each side takes what it can hold.",
            },
        ],
    }


WATER_CARDS = {
    # party: (allocation scores, dam scores, walk-away point)
    "upstream": ({"fixed_share": 10, "seasonal": 6, "upstream_first": 20}, (8, 20, 2), 14),
    "downstream": ({"fixed_share": 12, "seasonal": 18, "upstream_first": 0}, (15, 0, 10), 24),
    "farmers": ({"fixed_share": 10, "seasonal": 15, "upstream_first": 5}, (10, 5, 3), 15),
}


def write_water(home: Path) -> Path:
    """The water scenario, its cards and personas, under a copy of the data folder."""
    folder = home / "scenarios" / WATER
    (folder / "agents").mkdir(parents=True)
    (home / "prompts" / "personas").mkdir(parents=True, exist_ok=True)
    (folder / "scenario.yaml").write_text(yaml.safe_dump(water_scenario(), sort_keys=False))
    dams = ("joint_operation", "upstream_control", "moratorium")
    for pid, (allocation, dam, threshold) in WATER_CARDS.items():
        card = {
            "id": pid,
            "name": pid.capitalize(),
            "role": f"The {pid} delegation",
            "persona": f"personas/{pid}.md.j2",
            "public_stance": "We want our fair share of the river.",
            "private_brief": "Your harvest depends on this summer's water.",
            "scores": {"allocation": allocation, "dam": dict(zip(dams, dam, strict=True))},
            "threshold": threshold,
            "veto": pid != "farmers",
        }
        (folder / "agents" / f"{pid}.yaml").write_text(yaml.safe_dump(card))
        (home / "prompts" / "personas" / f"{pid}.md.j2").write_text(f"You speak for {pid}.\n")
    return folder / "scenario.yaml"


@pytest.fixture(scope="module")
def water_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("home")
    repo = Path(__file__).resolve().parents[1]
    for folder in ("agents", "prompts", "scenarios", "evals"):
        shutil.copytree(repo / folder, home / folder)
    write_water(home)
    return home


@pytest.fixture(scope="module")
def water_session(water_home: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One scripted session of the water scenario: its run folder, and the live view of it."""
    opts = RunOptions(
        scenario=WATER,
        model=ModelConfig(model="scripted"),
        home=water_home,
        runs_root=tmp_path_factory.mktemp("runs"),
        command=["test"],
    )
    prepared = prepare(opts)
    out = io.StringIO()
    view = LiveView(prepared.loaded, Console(file=out, width=200), progress=False)
    result = asyncio.run(run_session(prepared, sink=view))
    return result.run_dir.path, out.getvalue()


@pytest.fixture(scope="module")
def water_run(water_session: tuple[Path, str]) -> Path:
    return water_session[0]


# ---------------------------------------------------------------------------------------
# (1) A scenario's own branches, from outcome.json to the viewer


def test_a_scenario_with_its_own_branches_is_read_in_its_own_words(water_run: Path) -> None:
    outcome = json.loads((water_run / "outcome.json").read_text())
    assert (outcome["kind"], outcome["branch"]) == ("deal", "water_compact")
    assert outcome["package"] == {"allocation": "seasonal", "dam": "joint_operation"}
    [end] = [e for e in events_of(water_run) if e["type"] == "outcome"]
    assert end["content"]["branch"] == "water_compact"

    asyncio.run(evaluate_run(water_run))
    metrics = json.loads((water_run / "eval.json").read_text())["metrics"]
    assert (metrics["branch"], metrics["branch_label"]) == ("water_compact", "Water compact")

    pages = {a: render_html(water_run, a) for a in ("facilitator", "participant")}
    for audience, page in pages.items():
        data = build_data(water_run, audience)
        assert data["outcome"]["branch"] == "water_compact"
        assert [b["label"] for b in data["scenario"]["branches"]] == list(LABELS.values())
        assert "when" not in data["scenario"]["branches"][0], "the rule is not shown"
        assert "Water compact" in page and "runs the dam together" in page

    debrief, _ = render_debrief(water_run)
    assert "The scenario's future for this outcome: Water compact." in debrief
    assert "A treaty that shares the river and runs the dam together." in debrief

    written = [outcome, metrics, *pages.values(), debrief, (water_run / "events.jsonl").read_text()]
    for text in map(str, written):
        assert "muddl" not in text.lower() and "ruptur" not in text.lower()


def test_the_viewer_draws_the_branch_label(water_run: Path, tmp_path: Path) -> None:
    path = tmp_path / "view.html"
    path.write_text(render_html(water_run, "facilitator"), encoding="utf-8")
    with chromium() as browser:
        page = browser.new_page()
        page.goto(path.resolve().as_uri())
        page.wait_for_selector("html[data-ready]", timeout=10_000)
        shown = page.locator("#outcome .headline .branch")
        assert shown.inner_text() == "Water compact"
        assert shown.get_attribute("title") == (
            "A treaty that shares the river and runs the dam together."
        )
        assert "runs the dam together" in page.locator("#outcome .branch-description").inner_text()
        ended = page.locator('article[data-type="outcome"] .branch')
        assert ended.inner_text() == "Water compact"
        assert "muddle" not in page.locator("body").inner_text().lower()


def test_the_live_view_the_index_the_zone_and_the_cli_name_the_scenarios_branches(
    water_session: tuple[Path, str], water_home: Path
) -> None:
    water_run, live = water_session
    assert "Outcome: deal (Water compact)" in live
    assert run_summary(water_run)["outcome"] == "deal / Water compact"
    zone = zone_of(load_scenario(WATER, water_home)).line()
    assert zone == f"{WATER}: zone of agreement 2 of 9 packages (water compact 2)"
    out = water_run.parent / "cli"
    args = ["run", "--scenario", WATER, "--model", "scripted", "--home", str(water_home)]
    res = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "deal (Water compact) after 4 round(s)" in res.output
    assert "Outcome: deal (Water compact)" in res.output


# ---------------------------------------------------------------------------------------
# (2) The rule: each condition, the first branch that fits, the catch-all


def water() -> Scenario:
    return Scenario.model_validate(water_scenario())


@pytest.mark.parametrize(
    ("when", "kind", "agreed", "applies"),
    [
        # outcome: the kinds listed, and no other
        ({"outcome": ["deal"]}, "deal", {}, True),
        ({"outcome": ["deal"]}, "partial", {}, False),
        ({"outcome": ["partial", "none"]}, "none", {}, True),
        # lean_at_least: the sum of the agreed options' leans reaches it (seasonal 2, dam 0)
        ({"lean_at_least": 2}, "deal", {"allocation": "seasonal", "dam": "moratorium"}, True),
        ({"lean_at_least": 3}, "deal", {"allocation": "seasonal", "dam": "moratorium"}, False),
        ({"lean_at_least": 1}, "partial", {"allocation": "seasonal", "dam": None}, True),
        ({"lean_at_least": 1}, "none", {"allocation": None, "dam": None}, False),  # sum 0
        # lean_below: the sum stays under it (upstream_first -2, upstream_control -1)
        (
            {"lean_below": -2},
            "deal",
            {"allocation": "upstream_first", "dam": "upstream_control"},
            True,
        ),
        (
            {"lean_below": -3},
            "deal",
            {"allocation": "upstream_first", "dam": "upstream_control"},
            False,
        ),
        ({"lean_below": 0}, "none", {"allocation": None, "dam": None}, False),  # sum 0
        # agreed: the issue's agreed option is one of those listed; unagreed fails
        (
            {"agreed": {"dam": ["joint_operation", "moratorium"]}},
            "deal",
            {"dam": "moratorium"},
            True,
        ),
        ({"agreed": {"dam": ["joint_operation"]}}, "deal", {"dam": "moratorium"}, False),
        ({"agreed": {"dam": ["joint_operation"]}}, "partial", {"dam": None}, False),
        ({"agreed": {"dam": ["joint_operation"]}}, "partial", {"allocation": "seasonal"}, False),
        # every condition given must hold
        (
            {"outcome": ["deal"], "lean_at_least": 1, "lean_below": 4},
            "deal",
            {"allocation": "fixed_share", "dam": "joint_operation"},  # sum 3
            True,
        ),
        (
            {"outcome": ["deal"], "lean_at_least": 1, "lean_below": 3},
            "deal",
            {"allocation": "fixed_share", "dam": "joint_operation"},  # sum 3
            False,
        ),
        (
            {"outcome": ["partial"], "agreed": {"dam": ["joint_operation"]}},
            "deal",
            {"dam": "joint_operation"},
            False,
        ),
        (None, "none", {}, True),  # no `when`: the catch-all takes anything
    ],
)
def test_each_condition_of_a_branch(
    when: dict[str, Any] | None,
    kind: rules.OutcomeKind,
    agreed: dict[str, str | None],
    applies: bool,
) -> None:
    condition = None if when is None else BranchWhen.model_validate(when)
    assert rules.branch_applies(water(), condition, kind, agreed) is applies


@pytest.mark.parametrize(
    ("kind", "agreed", "branch"),
    [
        # a compact and a truce both fit (sum 4): the first listed wins
        ("deal", {"allocation": "seasonal", "dam": "joint_operation"}, "water_compact"),
        ("deal", {"allocation": "upstream_first", "dam": "joint_operation"}, "water_compact"),
        # the same dam, but no package passed: not a compact; sum 2 makes a truce
        ("partial", {"allocation": None, "dam": "joint_operation"}, "dry_truce"),
        ("deal", {"allocation": "fixed_share", "dam": "moratorium"}, "dry_truce"),  # sum 1
        # nothing before the last fits: the catch-all
        ("deal", {"allocation": "upstream_first", "dam": "moratorium"}, "water_war"),
        ("partial", {"allocation": "upstream_first", "dam": None}, "water_war"),
        ("none", {"allocation": None, "dam": None}, "water_war"),
    ],
)
def test_the_first_branch_that_fits_takes_the_outcome(
    kind: rules.OutcomeKind, agreed: dict[str, str | None], branch: str
) -> None:
    assert rules.classify_branch(water(), kind, agreed) == branch


def test_a_scenario_without_branches_files_deals_and_the_rest() -> None:
    plain = Scenario.model_validate({k: v for k, v in water_scenario().items() if k != "branches"})
    assert [(b.id, b.label) for b in plain.branches] == [
        ("agreement", "Agreement"),
        ("no_agreement", "No agreement"),
    ]
    package = {"allocation": "upstream_first", "dam": "moratorium"}  # leans toward war: no matter
    assert rules.classify_branch(plain, "deal", package) == "agreement"
    assert rules.classify_branch(plain, "partial", {"allocation": "seasonal"}) == "no_agreement"
    assert rules.classify_branch(plain, "none", {}) == "no_agreement"


def test_a_branch_the_scenario_does_not_define_is_shown_as_its_words() -> None:
    s = water()
    assert s.branch_label("dry_truce") == "Dry truce"
    assert s.branch_label("slow_burn") == "slow burn"  # a run recorded under other rules


# ---------------------------------------------------------------------------------------
# (3) Broken branch lists are refused, naming the field


BRANCH = {"id": "held", "label": "Held", "when": {"outcome": ["deal"]}}
LAST = {"id": "lost", "label": "Lost"}

BROKEN = [
    # (branches, field named, words in the message)
    ([BRANCH, BRANCH, LAST], "branches.1.id", "duplicate branch 'held'"),
    ([BRANCH, LAST | {"id": "held"}], "branches.1.id", "duplicate branch 'held'"),
    ([BRANCH, BRANCH | {"id": "lost"}], "branches.1.when", "has no `when`"),
    ([LAST, BRANCH], "branches.0.when", "only the last branch"),
    ([BRANCH | {"when": {}}, LAST], "branches.0.when", "names no condition"),
    (
        [BRANCH | {"when": {"lean_at_least": 2, "lean_below": 2}}, LAST],
        "branches.0.when",
        "nothing fits",
    ),
    (
        [BRANCH | {"when": {"agreed": {"river": ["shared"]}}}, LAST],
        "branches.0.when.agreed.river",
        "no such issue 'river'",
    ),
    (
        [BRANCH | {"when": {"agreed": {"dam": ["joint_operation", "sold"]}}}, LAST],
        "branches.0.when.agreed.dam.1",
        "no such option 'sold' for issue 'dam'",
    ),
    (
        [BRANCH | {"when": {"agreed": {"dam": []}}}, LAST],
        "branches.0.when",
        "lists no option",
    ),
    ([BRANCH | {"when": {"outcome": ["peace"]}}, LAST], "branches.0.when.outcome.0", "'deal'"),
    ([BRANCH | {"when": {"outcome": []}}, LAST], "branches.0.when.outcome", "at least 1"),
    ([BRANCH | {"colour": "blue"}, LAST], "branches.0.colour", "unknown key"),
    ([BRANCH | {"label": ""}, LAST], "branches.0.label", "at least 1"),
    ([BRANCH | {"id": "Held"}, LAST], "branches.0.id", "pattern"),
    ([], "branches", "at least 1"),
    ({"muddle_through_at": 4, "no_deal": "stalemate"}, "branches.no_deal", "'rupture'"),
]


@pytest.mark.parametrize(("branches", "field", "words"), BROKEN)
def test_broken_branches_name_the_file_and_field(
    tmp_path: Path, branches: Any, field: str, words: str
) -> None:
    path = write_water(tmp_path)
    path.write_text(yaml.safe_dump(water_scenario() | {"branches": branches}))
    with pytest.raises(ScenarioError) as info:
        load_scenario(WATER, tmp_path)
    assert info.value.path == str(path)
    assert info.value.field == field
    assert words in info.value.message


# ---------------------------------------------------------------------------------------
# (4) The Iraq scenario in the list form files every outcome where the older form did


def older_rule(
    s: Scenario, at: int, no_deal: str, otherwise: str, kind: str, agreed: Mapping[str, Any]
) -> str:
    """The branch rule as majlis had it before branches were data, word for word."""
    if kind == "none":
        return no_deal
    return "muddle_through" if rules.lean(s, agreed) >= at else otherwise


def settlements(s: Scenario, unsettled: bool) -> Iterator[dict[str, str | None]]:
    """Every package of the agenda; with `unsettled`, also every way of leaving issues open."""
    choices = [[*i.option_ids(), *([None] if unsettled else [])] for i in s.agenda]
    for combo in itertools.product(*choices):
        yield dict(zip([i.id for i in s.agenda], combo, strict=True))


def test_iraq_files_every_outcome_as_the_older_rule_did(home: Path) -> None:
    s = load_scenario("cornered-in-iraq", home).scenario
    assert [(b.id, b.label) for b in s.branches] == [
        ("muddle_through", "Muddle through"),
        ("rupture", "Rupture"),
    ]
    checked = 0
    for agreed in settlements(s, unsettled=True):  # 5^4 x 4^2 = 10,000 settlements
        for kind in KINDS:
            want = older_rule(s, 4, "rupture", "rupture", kind, agreed)
            assert rules.classify_branch(s, kind, agreed) == want, (kind, agreed)
            checked += 1
    assert checked == 30_000


@pytest.mark.parametrize(
    ("no_deal", "otherwise"), list(itertools.product(["muddle_through", "rupture"], repeat=2))
)
def test_the_older_form_means_what_it_meant(home: Path, no_deal: str, otherwise: str) -> None:
    iraq = load_scenario("cornered-in-iraq", home).scenario.model_dump()
    packages = [*settlements(load_scenario("cornered-in-iraq", home).scenario, False), {}]
    for at in (-3, 4, 9):
        rule = {"muddle_through_at": at, "no_deal": no_deal, "otherwise": otherwise}
        s = Scenario.model_validate(iraq | {"branches": rule})
        assert s.branches == BranchRule.model_validate(rule).branches()
        assert s.branches[-1].when is None and len({b.id for b in s.branches}) == len(s.branches)
        for agreed, kind in itertools.product(packages, KINDS):
            want = older_rule(s, at, no_deal, otherwise, kind, agreed)
            assert rules.classify_branch(s, kind, agreed) == want, (at, kind, agreed)


def test_a_scenario_file_in_the_older_form_loads_and_plays_unchanged(home_copy: Path) -> None:
    path = home_copy / "scenarios" / "cornered-in-iraq" / "scenario.yaml"
    text = path.read_text()
    older = "branches:\n  muddle_through_at: 4\n  no_deal: rupture\n  otherwise: rupture\n"
    path.write_text(text[: text.index("# The two futures of the seed article.")] + older)
    loaded = load_scenario("cornered-in-iraq", home_copy)
    now = load_scenario("cornered-in-iraq", Path(__file__).resolve().parents[1])
    assert [b.id for b in loaded.scenario.branches] == ["muddle_through", "rupture"]
    assert [b.when for b in loaded.scenario.branches] == [b.when for b in now.scenario.branches]
    zone = zone_of(loaded).line()
    assert zone.endswith("zone of agreement 32 of 2,304 packages (muddle through 30, rupture 2)")


# ---------------------------------------------------------------------------------------
# Old run folders, and the branch counts of a comparison


def test_a_run_recorded_under_the_older_form_still_reads(home: Path, tmp_path: Path) -> None:
    options = scripted_options(home, tmp_path, rounds=1, command=["test"])
    result = asyncio.run(run_session(options))
    run = result.run_dir.path
    snapshot = json.loads((run / "scenario.json").read_text())
    snapshot["scenario"]["branches"] = {"muddle_through_at": 4, "otherwise": "rupture"}
    (run / "scenario.json").write_text(json.dumps(snapshot))
    loaded = load_snapshot(RunDir(run))
    assert [b.label for b in loaded.scenario.branches] == ["Muddle through", "Rupture"]
    data = build_data(run, "participant")
    assert [b["label"] for b in data["scenario"]["branches"]] == ["Muddle through", "Rupture"]
    label = loaded.scenario.branch_label(result.outcome.branch)
    assert f"The scenario's future for this outcome: {label}." in render_debrief(run)[0]
    events = events_of(run)
    assert compute_metrics(loaded, events).branch == result.outcome.branch
    # an outcome filed under a branch the recorded scenario does not name: its id, in words
    outcome = json.loads((run / "outcome.json").read_text())
    (run / "outcome.json").write_text(json.dumps(outcome | {"branch": "slow_burn"}))
    assert run_summary(run)["outcome"].endswith(" / slow burn")
    assert "for this outcome: slow burn." in render_debrief(run)[0]


def test_a_comparison_counts_branches_by_id_and_shows_every_one(tmp_path: Path) -> None:
    def row(variant: str, seed: int, branch: str) -> RunRow:
        run_id = f"{variant}--scripted--s{seed}"
        return RunRow(run_id, variant, "scripted", seed, {"deal": 1.0}, tmp_path, branch, LABELS)

    rows = [row("baseline", 1, "water_compact"), row("baseline", 2, "water_compact")]
    rows += [row("dry", 1, "water_war"), row("dry", 2, "water_compact")]
    labels, counts = branch_counts(Comparison("variant", "baseline", rows))
    assert labels == LABELS  # in the scenario's order, a truce no run reached among them
    assert counts == {
        "baseline": {"water_compact": 2, "dry_truce": 0, "water_war": 0},
        "dry": {"water_compact": 1, "dry_truce": 0, "water_war": 1},
    }
    md = to_markdown(Comparison("variant", "baseline", rows))
    assert "| group | Water compact | Dry truce | Water war |" in md
    assert "| baseline | 2 | 0 | 0 |" in md and "| dry | 1 | 0 | 1 |" in md
    csv_rows = runs_csv(Comparison("variant", "baseline", rows)).splitlines()
    assert csv_rows[0].startswith("run_id,variant,model,seed,branch,branch_label,")
    assert csv_rows[3].startswith("dry--scripted--s1,dry,scripted,1,water_war,Water war,")
