"""`python -m benchmarks.tune`: the space, the folds, trials that never see test data, a search that
resumes after `kill -9`, the selected configuration's marked records, and bad input refused (exit 2)
before anything trains."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch

from benchmarks import leaderboard, tune
from benchmarks.core.config import RunConfig
from benchmarks.core.errors import CritBenchError
from benchmarks.core.metrics import binary_metrics
from benchmarks.engine import pipeline, resolve
from benchmarks.sweep import executors, search, tuning
from benchmarks.sweep.claims import claim_run
from benchmarks.sweep.tuning import OBJECTIVES, Fold, OfficialValidation, parse_space, selections
from datasets import BinaryDataset, Split, create_dataset
from tests.conftest import TINY_SUITE

REPO = Path(__file__).resolve().parents[2]

# 1 epoch on 64 tiny synthetic images per training.
TINY_BASE = ["--dataset", "synthetic2d", "--method", "alm", "--width", "0.125", "--size", "8", "--epochs", "1",
             "--max-train-samples", "64", "--device", "cpu", "--quiet"]
TINY_TUNE = [*TINY_BASE, "--space", "delta=0.1,0.25,0.5", "--space", "mu0=log:1e-7..1e-3"]
SEARCH = ["--trials", "5", "--cv", "3", "--search-sampler", "random"]


pytestmark = pytest.mark.usefixtures("one_thread")


def test_space_items_parse_to_optuna_dimensions():
    space = parse_space(["delta=0.1,0.25,0.5", "mu0=log:1e-7..1e-3", "lr=1e-4..1e-2", "rho=int:2..4"], "alm")
    assert space["delta"].values == (0.1, 0.25, 0.5)
    assert (space["mu0"].low, space["mu0"].high, space["mu0"].log) == (1e-7, 1e-3, True)
    assert (space["lr"].log, space["rho"].integer) == (False, True)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    values = {name: dimension.suggest(trial) for name, dimension in space.items()}
    assert values["delta"] in (0.1, 0.25, 0.5) and 1e-7 <= values["mu0"] <= 1e-3 and values["rho"] in (2, 3, 4)


def test_folds_partition_train_and_val_stratified_and_never_touch_test():
    dataset = create_dataset("synthetic2d", size=8, seed=0)
    pool = torch.cat([dataset.train.y, dataset.val.y])
    seen = []
    for fold in selections(3, seed=0):
        train, val = fold.splits(dataset)
        assert len(train) + len(val) == len(pool)
        assert abs(val.positives / len(val) - float(pool.float().mean())) < 0.05  # stratified
        seen.append({bytes(x.numpy()) for x in val.x})
    assert sum(map(len, seen)) == len(pool) and not seen[0] & seen[1]  # the folds' validation parts are disjoint
    test = {bytes(x.numpy()) for x in dataset.test.x}
    assert not test & set().union(*seen)
    assert OfficialValidation().splits(dataset) == (dataset.train, dataset.val)


def test_a_trial_training_never_reaches_the_test_split(monkeypatch):
    """run_benchmark with a selection: the trainer gets the validation split in place of test, and
    the record has no test result."""
    seen = {}
    real = pipeline.Trainer

    def spy(config, dataset, device, **kwargs):
        seen["dataset"] = dataset
        return real(config, dataset, device, **kwargs)

    monkeypatch.setattr(pipeline, "Trainer", spy)
    config = resolve.resolve_config(RunConfig(dataset="synthetic2d", method="bce", epochs=1, width=0.125, size=8,
                                              device="cpu", max_train_samples=64))
    record = pipeline.run_benchmark(config, progress=False, selection=Fold(3, 1, seed=0))
    assert seen["dataset"].test is seen["dataset"].val
    assert record["kind"] == "trial_fit" and record["run_id"].endswith("-gcv3s0-fold1")
    assert not {"test", "test_scores", "operating_points", "calibration"} & record.keys()
    assert "test" not in record["dataset"]["splits"] and "test" not in record["dataset"]["split_md5"]


def test_exact_copies_share_a_fold_and_count_once(capsys):
    """PneumoniaMNIST's train+val holds 26 exact copies; a copy on both sides of a fold would be
    validated on after being trained on. Copies are grouped (StratifiedGroupKFold), and a class whose
    distinct samples are fewer than K is refused."""
    x = torch.randint(0, 256, (40, 1, 4, 4), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    y = (torch.arange(40) % 4 == 0).to(torch.uint8)
    x[20:30] = x[0:10]  # ten copies, labels kept consistent
    y[20:30] = y[0:10]
    dataset = BinaryDataset(name="synthetic2d", dims=2, critical_class="positive", negative_class="negative",
                            train=Split(x[:32], y[:32]), val=Split(x[32:], y[32:]), test=Split(x[32:], y[32:]))
    groups = tuning.copy_groups(tuning.pooled(dataset))
    assert groups[25] == 5 and len(set(groups.tolist())) == 30
    for index in range(3):
        train, val = tuning.Fold(3, index, seed=0).splits(dataset)
        seen = {bytes(sample.numpy().tobytes()) for sample in train.x}
        assert not any(bytes(sample.numpy().tobytes()) in seen for sample in val.x)
        assert 0 < int(val.y.sum()) < len(val)  # stratified: each fold validates on both classes
    tuning.check_folds(dataset, 5)  # 7 distinct positives (10 with the copies)
    with pytest.raises(CritBenchError, match="--cv 8 needs at least 8 distinct samples of each class in train\\+val, "
                                             "which has 7 positives"):
        tuning.check_folds(dataset, 8)


def randomize_test_labels(monkeypatch):
    """Every load of the data gets random test labels (both classes kept)."""
    real = resolve.create_dataset

    def load(*args, **kwargs):
        dataset = real(*args, **kwargs)
        labels = torch.randint(0, 2, (len(dataset.test),), generator=torch.Generator().manual_seed(7))
        labels[:2] = torch.tensor([0, 1])
        dataset.test.y = labels.to(torch.uint8)
        return dataset

    monkeypatch.setattr(resolve, "create_dataset", load)


def test_random_test_labels_change_no_decision(tmp_path, monkeypatch, capsys):
    """The search's trials, their objectives and the selected trial are the same when the test split's
    labels are replaced by random ones: no decision reads test data. Only the final test score moves."""
    argv = [*TINY_TUNE, "--trials", "2", "--cv", "2", "--pruner", "none"]
    assert tune.main([*argv, "--out", str(tmp_path / "real")]) == 0
    randomize_test_labels(monkeypatch)
    assert tune.main([*argv, "--out", str(tmp_path / "random")]) == 0
    real, random = (json.loads((tmp_path / name / "search.json").read_text()) for name in ("real", "random"))
    assert [(t["params"], t["value"]) for t in real["trials"]] == [(t["params"], t["value"]) for t in random["trials"]]
    assert real["selected"] == random["selected"]
    tests = [json.loads((tmp_path / name / f"{s['final_runs'][0]}.json").read_text())["test_scores"]["y_true"]
             for name, s in (("real", real), ("random", random))]
    assert tests[0] != tests[1]  # the random labels did reach the final, selected run's test score


def test_search_resumes_after_kill_9_and_marks_the_selected_records(tmp_path):
    """A 5-trial, 3-fold search of alm on synthetic2d killed (SIGKILL) in its second trial, once that
    trial's first training is recorded, then rerun: the interrupted trial is asked again, the finished
    trainings are kept (not trained again), 5 trials count, and the selected configuration's run
    record says it was selected."""
    out = tmp_path / "search"
    argv = [*TINY_TUNE, *SEARCH, "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "benchmarks.tune", *argv], cwd=tmp_path, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while len(list((out / "trials" / "fits").glob("*.json"))) < 4 and time.monotonic() < deadline:
        assert process.poll() is None, "the search ended before it could be killed"
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (out / "search.json").exists()
    fits = {path: path.stat().st_mtime_ns for path in (out / "trials" / "fits").glob("*.json")}
    assert len(fits) >= 4
    assert tune.main(argv) == 0
    assert {path: path.stat().st_mtime_ns for path in fits} == fits  # finished trainings kept, not trained again
    summary = json.loads((out / "search.json").read_text())
    counted = [t for t in summary["trials"] if not t["interrupted"]]
    assert len(counted) == 5 and all(t["state"] == "complete" for t in counted)
    (interrupted,) = [t for t in summary["trials"] if t["interrupted"]]
    assert interrupted["params"] in [t["params"] for t in counted]  # asked again with its parameters
    assert summary["selected"]["trial"] in {t["number"] for t in counted}
    record = json.loads((out / f"{summary['final_runs'][0]}.json").read_text())
    assert record["tuning"]["selected"] is True and record["tuning"]["params"] == summary["selected"]["params"]
    assert record["config"]["params"]["delta"] == summary["selected"]["params"]["delta"]
    trial_records = [json.loads(path.read_text()) for path in (out / "trials").glob("*.json")]
    assert all("test" not in record for record in trial_records)
    assert tune.main(argv) == 0  # a third call trains nothing and selects the same
    assert json.loads((out / "search.json").read_text())["selected"] == summary["selected"]


@pytest.mark.parametrize("flags, message", [
    (["--space", "gamma=1,2"], "unknown parameter 'gamma'; valid: lr, weight_decay"),
    (["--space", "mu0=log:1e-3..1e-7"], "LOW < HIGH"),
    (["--space", "mu0=log:0..1e-3"], "a log range needs LOW > 0"),
    (["--space", "mu0=1e-7..x"], "the bounds must be numbers"),
    (["--space", "mu0=exp:1..2"], "unknown prefix exp"),
    (["--space", "delta"], "expects NAME=VALUES"),
    (["--space", "delta=0.1,,0.5"], "distinct values"),
    (["--space", "delta=0.1", "--space", "delta=0.2"], "delta given twice"),
    (["--space", "delta=-1,0.5"], "--space delta=-1: ALM needs delta >= 0"),
    (["--space", "delta=0.1", "--cv", "1"], "--cv must be an integer >= 2"),
    (["--space", "delta=0.1", "--trials", "0"], "--trials must be an integer >= 1"),
    (["--space", "delta=0.1", "--objective", "test_auc"], "unknown --objective 'test_auc'; valid: val_auc"),
    (["--space", "mu0=1e-7..1e-3", "--search-sampler", "grid"], "grid needs listed values"),
    (["--space", "delta=0.1", "--search-sampler", "bayes"], "unknown --search-sampler 'bayes'"),
    (["--space", "delta=0.1", "--seed", "3"], "--seed is not a tune option"),
    ([], "give at least one --space"),
])
def test_bad_input_is_one_line_exit_2_before_training(tmp_path, capsys, flags, message):
    out = tmp_path / "out"
    code = tune.main([*TINY_BASE, *flags, "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1, err
    assert not out.exists()  # refused before anything was created or trained


def test_a_flag_of_the_wrong_type_is_argparse_one_line_exit_2(capsys):
    with pytest.raises(SystemExit) as raised:
        tune.main([*TINY_TUNE, "--cv", "x"])
    err = capsys.readouterr().err.strip()
    assert raised.value.code == 2 and "--cv: invalid int value" in err and len(err.splitlines()) == 1


def test_cv_larger_than_a_class_is_refused_before_training(tmp_path, capsys):
    code = tune.main([*TINY_TUNE, "--cv", "40", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "--cv 40 needs at least 40 distinct samples of each class" in err
    assert not list((tmp_path / "out" / "trials").glob("*.json"))


# conftest's two-method suite, one seed, with alm tuned (its [[methods]] table is the last).
TUNED_SUITE = (TINY_SUITE.replace("seeds = [0, 1]", "seeds = [0]")
               .replace("epochs = 1\n", "epochs = 1\nmax_train_samples = 64\n")
               + 'tune = { trials = 2, cv = 2, sampler = "grid", space = { delta = [0.1, 0.5] } }\n')


def test_a_suite_tunes_its_tune_methods_before_their_seeds_run(tmp_path, capsys):
    """The leaderboard runs alm's search (2 trials, 2 folds), trains alm's seeds with the selected
    delta and bce with its defaults; the report shows the search and skips no trial record."""
    suite = tmp_path / "tuned.toml"
    suite.write_text(TUNED_SUITE)
    out = tmp_path / "out"
    assert leaderboard.main(["--suite", str(suite), "--out", str(out)]) == 0
    summary = json.loads((out / "tuning" / "synthetic2d-alm" / "search.json").read_text())
    assert len(summary["trials"]) == 2 and summary["budget"] == 2
    records = [json.loads(path.read_text()) for path in out.glob("*.json")]
    alm = [r for r in records if r["config"]["method"] == "alm"]
    bce = [r for r in records if r["config"]["method"] == "bce"]
    assert len(alm) == len(bce) == 1 and "tuning" not in bce[0]
    assert alm[0]["tuning"]["selected"] and alm[0]["config"]["params"]["delta"] == summary["selected"]["params"]["delta"]
    assert summary["final_runs"] == [alm[0]["run_id"]]
    html = (out / "report.html").read_text()
    assert "Hyperparameter searches" in html and "2 trials, 2-fold CV each" in html
    assert "skipped files: 0" in html


def test_a_suite_tune_table_is_checked_before_training(tmp_path, capsys):
    suite = tmp_path / "bad.toml"
    suite.write_text(TUNED_SUITE.replace("trials = 2", "trails = 2"))
    assert leaderboard.main(["--suite", str(suite), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown tune key(s) trails" in err and len(err.splitlines()) == 1
    assert not list((tmp_path / "out").glob("*.json"))


class AlwaysPrune(optuna.pruners.BasePruner):
    def prune(self, study, trial) -> bool:
        return True


def test_a_pruned_trial_stops_its_training_after_the_epoch_and_is_told_pruned(tmp_path, monkeypatch, capsys):
    """The pruner is asked after every epoch: once it says so, the training stops (no fit record, no
    checkpoint left), the trial's record says pruned, and the study has it as PRUNED; with no trial
    completed, nothing is selected (exit 1)."""
    monkeypatch.setattr(search, "make_pruner", lambda name: AlwaysPrune())
    out = tmp_path / "out"
    argv = list(TINY_TUNE)
    argv[argv.index("--epochs") + 1] = "3"
    code = tune.main([*argv, "--trials", "1", "--cv", "2", "--out", str(out)])
    assert code == 1 and "no trial of study synthetic2d-alm completed" in capsys.readouterr().err
    (record,) = [json.loads(path.read_text()) for path in (out / "trials").glob("*.json")]
    assert record["state"] == "pruned" and record["objective"]["value"] is None and record["fits"] == []
    assert not list((out / "trials" / "fits").rglob("*.json")) and not list((out / "trials" / "fits").rglob("*.pt"))
    study = optuna.load_study(study_name="synthetic2d-alm", storage=f"sqlite:///{out / 'tune.db'}")
    assert [trial.state for trial in study.trials] == [optuna.trial.TrialState.PRUNED]
    assert list(study.trials[0].intermediate_values) == [1]  # stopped after its first epoch


def test_a_search_that_selects_nothing_leaves_out_only_its_tuned_runs(tmp_path, monkeypatch, capsys):
    """Every alm trial pruned: the leaderboard still trains bce, says which search failed and how to
    resume it, writes no search.json and exits 1 (it aborted the whole suite before any run)."""
    monkeypatch.setattr(search, "make_pruner", lambda name: AlwaysPrune())
    suite = tmp_path / "tuned.toml"
    suite.write_text(TUNED_SUITE.replace("epochs = 1\n", "epochs = 2\n"))
    out = tmp_path / "out"
    assert leaderboard.main(["--suite", str(suite), "--out", str(out), "--no-report"]) == 1
    err = capsys.readouterr().err
    assert "search failed: synthetic2d / alm: no trial of study search completed" in err
    assert "rerun the same command to resume the search" in err and "1 run completed" in err
    records = [json.loads(path.read_text()) for path in out.glob("*.json")]
    assert [r["config"]["method"] for r in records] == ["bce"] and records[0]["status"] == "complete"
    assert not (out / "tuning" / "synthetic2d-alm" / "search.json").exists()


def test_tune_leaves_a_search_another_process_runs_in_one_line_exit_1(tmp_path, capsys):
    """A second `benchmarks.tune` on the folder while the first (here: this process's claim) searches."""
    out = tmp_path / "out"
    with claim_run(out / "trials", "study-synthetic2d-alm")[0]:
        code = tune.main([*TINY_TUNE, "--trials", "1", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 1 and "study synthetic2d-alm is being searched by another process (pid" in err, err
    assert len(err.splitlines()) == 1 and not list((out / "trials").rglob("*.json"))


def test_a_second_leaderboard_leaves_a_search_another_process_runs_and_goes_on(tmp_path, capsys):
    """alm's search claimed by another live process: this leaderboard says so, trains bce and exits 1,
    without taking the holder's running trials as interrupted."""
    suite = tmp_path / "tuned.toml"
    suite.write_text(TUNED_SUITE)
    out = tmp_path / "out"
    with claim_run(out / "tuning" / "synthetic2d-alm" / "trials", "study-search")[0]:
        assert leaderboard.main(["--suite", str(suite), "--out", str(out), "--no-report"]) == 1
    err = capsys.readouterr().err
    assert "tuning synthetic2d / alm selected nothing: study search is being searched by another process" in err
    records = [json.loads(path.read_text()) for path in out.glob("*.json")]
    assert [r["config"]["method"] for r in records] == ["bce"] and records[0]["status"] == "complete"


def test_without_cv_a_trial_trains_on_the_official_splits(tmp_path, capsys):
    """And the study it leaves in its folder refuses another search (one line, exit 2)."""
    out = tmp_path / "out"
    assert tune.main([*TINY_BASE, "--space", "delta=0.1", "--trials", "1", "--out", str(out)]) == 0
    (record,) = [json.loads(path.read_text()) for path in (out / "trials").glob("*.json")]
    assert record["selection"] == "val" and record["run_id"].endswith("-val") and len(record["fits"]) == 1
    fit = json.loads((out / "trials" / "fits" / f"{record['fits'][0]}.json").read_text())
    assert fit["selection"] == "val" and record["objective"]["value"] == fit["val"]["auc"]
    capsys.readouterr()
    assert tune.main([*TINY_BASE, "--space", "delta=0.5", "--trials", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "study 'synthetic2d-alm'" in err and "was made by another search" in err and len(err.splitlines()) == 1


def test_an_unusable_storage_is_one_line_exit_2(tmp_path, capsys):
    code = tune.main([*TINY_TUNE, "--storage", "nosuchdb://x", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "cannot open the Optuna storage nosuchdb://x" in err and len(err.splitlines()) == 1
    assert not list((tmp_path / "out" / "trials").rglob("*.json"))


@pytest.mark.parametrize("name, direction, value", [("val_auc", "maximize", 0.75),
                                                    ("val_fpr_at_tpr_0.95", "minimize", 0.5),
                                                    ("val_spauc_0.1", "maximize", "spauc_0.1"),
                                                    ("val_pauc_two_way", "maximize", "pauc_two_way"),
                                                    ("val_ap", "maximize", 0.5 * 1 + 0.5 * 2 / 3)])
def test_objectives_read_the_validation_metrics(name, direction, value):
    """AP by hand: ranked 0.9 (pos), 0.6, 0.4 (pos), 0.1: precision 1 at recall 0.5, 2/3 at recall 1."""
    metrics = binary_metrics(np.array([0, 0, 1, 1]), np.array([0.1, 0.6, 0.4, 0.9]))
    objective = OBJECTIVES[name]
    assert objective.direction == direction
    assert objective.of(metrics) == pytest.approx(metrics[value] if isinstance(value, str) else value)


def test_a_multiclass_search_folds_keep_the_class_labels(tmp_path):
    """--cv pools train and val with their class labels: a --task multiclass search trains K-way folds."""
    argv = ["--dataset", "synthetic2d_mc", "--task", "multiclass", "--method", "ce", "--width", "0.125", "--size", "8",
            "--epochs", "1", "--max-train-samples", "64", "--device", "cpu", "--quiet", "--space", "lr=1e-4..1e-2",
            "--trials", "1", "--cv", "2", "--out", str(tmp_path)]
    assert tune.main(argv) == 0
    search = json.loads((tmp_path / "search.json").read_text())
    record = json.loads((tmp_path / f"{search['final_runs'][0]}.json").read_text())
    assert record["config"]["task"] == "multiclass" and "confusion_matrix" in record["multiclass"]


def test_a_resumed_grid_search_still_visits_every_point_once():
    """A grid study stopped after 5 of its 12 points and resumed (the sampler made again with the
    study's trial count as offset, as open_study does) visits the 7 points it had not: the grid's
    order keeps its seed. With a reseeded order it visited 9 distinct points in 12 trials."""
    base = resolve.resolve_config(RunConfig(dataset="synthetic2d", method="alm", epochs=1, size=8, width=0.125,
                                            device="cpu"))
    found = tuning.Search(base, parse_space(["delta=0.1,0.25,0.5,1.0", "mu0=1e-5,1e-4,1e-3"], "alm"), "val_auc",
                          trials=12, sampler="grid")
    study = optuna.create_study(direction="maximize", sampler=found.make_sampler())

    def ask_and_tell(n: int) -> None:
        for _ in range(n):
            trial = study.ask()
            for name, dimension in found.space.items():
                trial.suggest_categorical(name, list(dimension.values))
            study.tell(trial, 0.5)

    ask_and_tell(5)
    study.sampler = found.make_sampler(offset=len(study.trials))
    ask_and_tell(7)
    assert len({tuple(sorted(trial.params.items())) for trial in study.trials}) == 12


def test_tune_exits_1_while_a_selected_run_is_left_to_another_process(tmp_path, monkeypatch, capsys):
    """The final run is claimed by another live process: no complete record, so not exit 0."""
    monkeypatch.setattr(executors, "claim_run", lambda *args, **kwargs: (None, {"pid": 7, "host": "elsewhere",
                                                                              "claimed_at": "now"}))
    code = tune.main([*TINY_TUNE, "--trials", "1", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 1 and "1 selected run without a complete record" in err and "rerun the same command" in err
