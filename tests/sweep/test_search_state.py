"""A search's state across drivers and resumes (benchmarks/sweep/search.py): the claim that keeps a
second driver off a running search, a lost race to tell a trial, the selection marks a resumed
search rewrites or withdraws, and the metric a reused fit reports to the pruner."""
from __future__ import annotations

import json

import optuna
import pytest

from benchmarks.core.config import RunConfig
from benchmarks.core.storage import record_path, write_json_atomic
from benchmarks.engine.resolve import resolve_config
from benchmarks.sweep import search
from benchmarks.sweep.claims import claim_run
from benchmarks.sweep.executors import TaskResult
from benchmarks.sweep.tuning import Search, default_storage, open_study, parse_space
from reports.tuning import selected_mark
from tests.reports.record_fixture import current_record

RUNNING, FAIL = optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.FAIL


def alm_search() -> Search:
    config = resolve_config(RunConfig(dataset="synthetic2d", method="alm", epochs=1, size=8, width=0.125,
                                      device="cpu", max_train_samples=64))
    return Search(config, parse_space(["delta=0.1,0.5"], "alm"), "val_auc", trials=2, sampler="grid")


class NoTraining:
    """An executor that must not be asked to train anything."""

    def run(self, tasks, progress, work=None):
        raise AssertionError(f"trained {len(tasks)} trials")


def test_a_second_driver_leaves_a_claimed_search_and_its_running_trials_alone(tmp_path):
    """The first driver (here: this process's claim) runs trial 0; a second driver on the same folder
    refuses the search (SearchFailed, exit 1) instead of failing trial 0 as interrupted and asking it again."""
    found, storage, trials = alm_search(), default_storage(tmp_path), tmp_path / "trials"
    open_study(found, storage, "search").ask()
    first, _ = claim_run(trials, "study-search")
    with first, pytest.raises(search.SearchFailed, match="study search is being searched by another process"):
        search.select_configuration(found, storage, "search", NoTraining(), trials, lambda config: "run")
    study = optuna.load_study(study_name="search", storage=storage)
    assert [trial.state for trial in study.trials] == [RUNNING]


@pytest.mark.parametrize("record", [{"kind": "trial", "state": "complete", "objective": {"value": 0.7}},
                                    {"kind": "trial", "state": "pruned", "objective": {"value": None}},
                                    {"status": "failed", "reason": "crashed"}])
def test_telling_a_trial_another_driver_already_finished_is_no_crash(tmp_path, record):
    """Another driver took the trial as interrupted (FAIL) while it ran: telling its outcome leaves it
    as it is ("Cannot tell a FAIL trial" crashed the driver with a traceback)."""
    study = optuna.create_study(direction="maximize")
    trial = study.ask()
    study.tell(trial.number, state=FAIL)
    path = write_json_atomic(tmp_path / "trial.json", record)
    search.tell(study, trial, TaskResult("trial-run", "trial 0", "complete", str(path), "crashed"))
    assert [trial.state for trial in study.trials] == [FAIL]


def tell_trial(study: optuna.Study, delta: float, value: float) -> None:
    study.enqueue_trial({"delta": delta})
    trial = study.ask()
    trial.suggest_categorical("delta", [0.1, 0.5])
    study.tell(trial, value)


def marks(out) -> dict:
    return {path.stem: json.loads(path.read_text()).get("tuning") for path in out.glob("*.json")}


def test_a_resumed_search_rewrites_its_marks_and_withdraws_those_of_values_it_no_longer_selects(tmp_path):
    """Delta 0.1 selected after 1 trial (runs a0, a1: two seeds marked by two invocations); resumed
    to 2 trials, delta 0.5 (run b0) wins: a0 and a1 are withdrawn (the report shows them untuned),
    b0 is marked, and resumed to 3 trials its mark says 3. Another search's marks are left alone."""
    out, found = tmp_path / "out", alm_search()
    for identity in ("a0", "a1", "b0", "c0"):
        write_json_atomic(record_path(out, identity), current_record(identity))
    study = optuna.create_study(direction="maximize")
    tell_trial(study, 0.1, 0.6)
    search.record_search(found, study, "memory", out / "tuning" / "x", out, ["a0"])
    search.record_search(found, study, "memory", out / "tuning" / "x", out, ["a1"])
    search.record_search(found, study, "memory", out / "tuning" / "y", out, ["c0"])
    first = marks(out)
    assert first["a0"] == first["a1"] and first["a0"]["folder"] == "tuning/x" and first["c0"]["folder"] == "tuning/y"
    assert first["a0"]["params"] == {"delta": 0.1} and first["a0"]["search_key"] and first["b0"] is None
    tell_trial(study, 0.5, 0.9)
    search.record_search(found, study, "memory", out / "tuning" / "x", out, ["b0"])
    second = marks(out)
    assert second["a0"] == second["a1"] == {**first["a0"], "selected": False}
    assert selected_mark(current_record("a0") | {"tuning": second["a0"]}) is None  # a plain run in the report
    assert second["b0"]["selected"] and second["b0"]["params"] == {"delta": 0.5} and second["b0"]["trials"] == 2
    assert second["c0"] == first["c0"]
    tell_trial(study, 0.1, 0.1)
    search.record_search(found, study, "memory", out / "tuning" / "x", out, ["b0"])
    assert marks(out)["b0"] == {**second["b0"], "trials": 3}


def test_a_reused_fit_reports_the_metric_the_trainer_selects_on(tmp_path):
    """Under select_on all_classes a live training reports val_class_auc to the pruner; a trial that
    reuses its finished fit reports the same, not the critical-class val_auc."""
    config = resolve_config(RunConfig(dataset="synthetic2d_mc", task="multiclass", select_on="all_classes",
                                      method="ce", epochs=1, size=8, width=0.125, device="cpu"))
    storage = default_storage(tmp_path)
    study = optuna.create_study(storage=storage, study_name="s", direction="maximize")
    trial = study.ask()
    write_json_atomic(tmp_path / "fits" / "base-val.json",
                      {"status": "complete", "val": {"auc": 0.5},
                       "history": [{"epoch": 1, "val_auc": 0.5, "val_class_auc": 0.9}]})
    task = search.TrialTask(config, "base-val", "trial 0", str(tmp_path), storage=storage, study="s",
                            trial_id=trial._trial_id, number=trial.number, pruner="none", base_id="base")
    assert search.run_trial(task).status == "complete"
    assert optuna.load_study(study_name="s", storage=storage).trials[0].intermediate_values == {1: 0.9}
