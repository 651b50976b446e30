"""A suite's equal-budget tuning (`tune = { mode = "equal", ... }`): every method declares its search
space with its source, every method gets the same trials and epochs per trial on validation only,
its preset and tuned runs both run, and the report shows them side by side with the budget and the
chosen values; a bad tune table is refused before anything trains."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from libauc.trainer.config.spaces import AUCMLossSpace

from benchmarks import leaderboard
from benchmarks.methods import get_method, list_methods, resolve_params
from benchmarks.methods.losses import get_loss, list_losses, loss_hyperparameters
from benchmarks.sweep.search import suite_searches
from benchmarks.sweep.suite import expand, load_suite, select
from benchmarks.sweep.tuning import parse_space, space_items, tunable_params
from reports.leaderboard import RowKey, build_leaderboard
from reports.runs import load_runs
from tests.conftest import TINY_SUITE, write_suite

pytestmark = pytest.mark.usefixtures("one_thread")

DOCS = Path(__file__).resolve().parents[2] / "docs" / "tuning.md"
# conftest's bce + alm suite (width 0.125, size 8, cpu, 1 epoch), one seed, 64 train samples, with
# the equal budget: 2 trials of 1 epoch each on the validation split.
EQUAL_SUITE = ('tune = { mode = "equal", trials = 2, epochs = 1 }\n'
               + TINY_SUITE.replace("seeds = [0, 1]", "seeds = [0]").replace("epochs = 1\n",
                                                                              "epochs = 1\nmax_train_samples = 64\n"))


@pytest.mark.parametrize("method", list_methods())
def test_every_method_declares_a_search_space_of_its_own_params_with_a_source(method):
    """Keys are tunable parameters (resolve_params has them) and every listed value and both ends of
    every range resolve."""
    cls = get_method(method)
    assert cls.search_space and cls.search_space_source.strip()
    space = parse_space(space_items(cls.search_space), method)
    assert set(space) <= set(tunable_params(method))
    for dimension in space.values():
        for value in dimension.values or (dimension.low, dimension.high):
            assert resolve_params(method, {dimension.name: value})[dimension.name] == value


@pytest.mark.parametrize("loss", [name for name in list_losses() if loss_hyperparameters(name)])
def test_a_base_loss_with_hyperparameters_declares_their_grid(loss):
    assert set(get_loss(loss).search_space) <= set(loss_hyperparameters(loss)) and get_loss(loss).search_space
    assert set(get_loss(loss).search_space) <= set(get_method(loss).search_space)


def test_alm_space_is_the_alm_paper_grid():
    """salusanga/alm-dnn configs/ALM/ALM_12_beg.json: `"mu": 1e-2` ... ALM_19_beg.json: `"mu": 1e-9`;
    readme.md's tables use delta 0.0, 0.1, 0.25, 0.5 and 1.0: 8 mu0 x 5 delta."""
    space = get_method("alm").search_space
    assert space["mu0"] == [10.0 ** -k for k in range(2, 10)]
    assert space["delta"] == [0.0, 0.1, 0.25, 0.5, 1.0]
    assert get_method("alm+s_fl").search_space == space


def test_aucm_space_is_libauc_own():
    """libauc 2.0.1 trainer/config/spaces.py, AUCMLossSpace: `"lr" : {"val": (0.0001, 0.1), ... "log": True}`,
    `"epoch_decay" : {"val" : (0.0, 0.01)`, `"weight_decay" : {"val" : (0.0, 0.0002)`, `"momentum" :
    {"val" : (0.8, 0.99)`, `"margin" : {"val" : [0.6, 0.8, 1.0]`."""
    reference = {**AUCMLossSpace.optimizer["space"], **AUCMLossSpace.loss["space"]}
    space = parse_space(space_items(get_method("aucm").search_space), "aucm")
    assert set(space) == set(reference)
    for name, dimension in space.items():
        wanted = reference[name]["val"]
        if isinstance(wanted, list):
            assert list(dimension.values) == wanted
        else:
            assert (dimension.low, dimension.high, dimension.log) == (*wanted, bool(reference[name].get("log")))


def test_the_docs_list_every_method_space():
    """docs/tuning.md's table has a row per registered method naming each parameter of its space."""
    rows = {line.split("|")[1].strip(" `"): line for line in DOCS.read_text().splitlines() if line.startswith("| `")}
    for method in list_methods():
        assert method in rows, f"docs/tuning.md lists no search space of {method}"
        assert all(f"`{name}`" in rows[method] for name in get_method(method).search_space), rows[method]


def test_a_selected_preset_is_one_run_in_the_tuned_row(tmp_path):
    """When the search selects exactly the preset's values, the preset run is the tuned run (one
    training, one record); other methods keep their preset run beside the tuned one."""
    suite = load_suite(str(write_suite(tmp_path, EQUAL_SUITE)))
    preset = resolve_params("bce", {})
    runs = expand(suite, tuned={("synthetic2d", "bce"): {"lr": preset["lr"], "weight_decay": preset["weight_decay"]},
                                ("synthetic2d", "alm"): {"mu0": 1e-7}})
    assert [(run.config.method, run.tuned) for run in runs] == [("bce", True), ("alm", False), ("alm", True)]
    assert [run.tuned for run in expand(suite, tuned={("synthetic2d", "bce"): None})] == [False, False]


@pytest.mark.parametrize("tune, message", [
    ('{ mode = "best", trials = 2 }', "unknown tune mode 'best'; valid: equal"),
    ('{ trials = 2 }', "unknown tune mode None; valid: equal"),
    ('{ mode = "equal", trials = 0 }', "tune.trials must be an integer >= 1, got 0"),
    ('{ mode = "equal", epochs = 0 }', "tune.epochs must be an integer >= 1, got 0"),
    ('{ mode = "equal", trails = 2 }', "unknown tune key(s) trails"),
    ('{ mode = "equal", objective = "test_auc" }', "unknown --objective 'test_auc'"),
    ('"equal"', "tune must be a table"),
])
def test_a_bad_suite_tune_is_one_line_exit_2_before_training(tmp_path, capsys, tune, message):
    suite = write_suite(tmp_path, EQUAL_SUITE.replace('{ mode = "equal", trials = 2, epochs = 1 }', tune))
    assert leaderboard.main(["--suite", str(suite), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not list((tmp_path / "out").rglob("*.json"))


def test_the_suite_tune_and_a_method_tune_are_not_given_together(tmp_path, capsys):
    suite = write_suite(tmp_path, EQUAL_SUITE + 'tune = { trials = 2, space = { delta = [0.1, 0.5] } }\n')
    assert leaderboard.main(["--suite", str(suite), "--out", str(tmp_path / "out")]) == 2
    assert "remove the own tune table of alm" in capsys.readouterr().err


def test_an_equal_budget_suite_runs_end_to_end_and_reports_preset_and_tuned_rows(tmp_path, capsys):
    """bce and alm each get 2 trials of 1 epoch over their declared spaces on validation, then run
    their seed with the chosen values beside their preset run; HTML, Markdown and CSV show both rows,
    the budget and the chosen values, and only the tuned rows are ranked."""
    out = tmp_path / "out"
    assert leaderboard.main(["--suite", str(write_suite(tmp_path, EQUAL_SUITE)), "--out", str(out)]) == 0
    summaries = {method: json.loads((out / "tuning" / f"synthetic2d-{method}" / "search.json").read_text())
                 for method in ("bce", "alm")}
    for method, summary in summaries.items():
        assert len(summary["trials"]) == summary["budget"] == 2 and summary["search"]["config"]["epochs"] == 1
        assert set(summary["search"]["space"]) == set(get_method(method).search_space)
    records = [json.loads(path.read_text()) for path in out.glob("*.json")]
    tuned = {r["config"]["method"]: r for r in records if "tuning" in r}
    assert len(records) == 4 and set(tuned) == {"bce", "alm"}
    for method, record in tuned.items():
        assert record["tuning"]["params"] == summaries[method]["selected"]["params"]
        assert (record["tuning"]["budget"], record["tuning"]["epochs"], record["tuning"]["folds"]) == (2, 1, None)
    markdown = (out / "leaderboard.md").read_text()
    for row in ("bce", "bce (tuned)", "alm", "alm (tuned)"):
        assert f"| {row} |" in markdown
    assert "budget 2 trials of 1 epoch, validation split, each" in markdown
    html = (out / "report.html").read_text()
    assert "alm (tuned)" in html and "2 trials of 1 epoch" in html and "Hyperparameter searches" in html
    lines = [line for line in csv.DictReader((out / "leaderboard.csv").open()) if line["kind"] == "seeds"]
    ranks = {line["method"]: line["rank"] for line in lines}
    assert ranks["bce"] == ranks["alm"] == "" and {ranks["bce (tuned)"], ranks["alm (tuned)"]} <= {"1", "1.5", "2"}
    (dataset,) = build_leaderboard(load_runs(out)).datasets
    assert dataset.baseline == RowKey("bce", tuned=True)  # the paired tests compare with the tuned bce
    assert dataset.cells[RowKey("bce")].vs_baseline is not None
    chosen = {line["method"]: line["tuned_values"] for line in lines}
    assert chosen["bce"] == "" and "mu0=" in chosen["alm (tuned)"] and "2 trials of 1 epoch" in chosen["alm (tuned)"]


def test_a_trial_never_trains_longer_than_the_runs_it_selects_for(tmp_path):
    """The budget's epochs per trial, capped by the run's own: `--epochs 1` on a suite whose
    budget says 3 makes a quick check of the searches too."""
    suite = load_suite(str(write_suite(tmp_path, EQUAL_SUITE.replace("epochs = 1 }", "epochs = 3 }"))))
    assert {found.search.config.epochs for found in suite_searches(suite, None, tmp_path)} == {1}  # [run] epochs = 1
    longer = select(suite, run={"epochs": 5})
    assert {found.search.config.epochs for found in suite_searches(longer, None, tmp_path)} == {3}
