"""Suites: TOML parsing, grid expansion, run identity and seed derivation; the leaderboard's resume
after a killed run, failure records (crash, NaN), missing data, and the report hand-off."""
from __future__ import annotations

import dataclasses
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from medmnist import INFO

from benchmarks import leaderboard, run
from benchmarks.core.config import RunConfig
from benchmarks.core.errors import CritBenchError
from benchmarks.core.identity import run_id
from benchmarks.core.storage import record_path, record_state
from benchmarks.sweep.executors import RunTask, TaskResult
from benchmarks.sweep.progress import SuiteProgress
from benchmarks.sweep.suite import derive_seed, expand, load_suite, parse_seeds, parse_suite, select
from tests.reports.record_fixture import current_record
from tests.conftest import TINY_SUITE, write_suite

def records(folder: Path) -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}


# --- suite files, grid, identity, seeds -------------------------------------------------------

def test_parse_seeds():
    assert parse_seeds("0-2") == (0, 1, 2)
    assert parse_seeds("0,3, 5") == (0, 3, 5)
    assert parse_seeds("1-2,2,4") == (1, 2, 4)
    assert parse_seeds([2, 0]) == (2, 0)
    for bad in ("a", "2-x", "-1", ""):
        with pytest.raises(CritBenchError, match="seeds"):
            parse_seeds(bad)


def test_full_suite_grid():
    suite = load_suite("full")
    runs = expand(suite)
    labels = [d.label for d in suite.datasets]
    assert labels == ["pneumoniamnist", "breastmnist", "nodulemnist3d", "adrenalmnist3d", "vesselmnist3d",
                      "synapsemnist3d", "cifar10 1:100", "cifar10 1:200", "cifar100 1:100", "cifar100 1:200"]
    assert [m.name for m in suite.methods] == ["bce", "aucm", "alm"]
    assert len(runs) == 10 * 3 * 3
    alm = {(r.dataset_label, r.config.params["mu0"], r.config.params["delta"]) for r in runs if r.config.method == "alm"}
    assert ("cifar10 1:100", 1e-7, 0.25) in alm and ("cifar10 1:200", 1e-5, 0.5) in alm  # recipes.md presets
    assert ("cifar100 1:200", 1e-3, 0.1) in alm and ("pneumoniamnist", 1e-4, 0.25) in alm  # method default
    assert all(r.config.epochs == 100 for r in runs)
    # MedMNIST v2 trains every epoch (no early stopping); CIFAR stops as the ALM paper (patience 30)
    assert {r.config.patience for r in runs if not r.config.dataset.startswith("cifar")} == {0}
    assert {r.config.patience for r in runs if r.config.dataset.startswith("cifar")} == {30}
    cifar = [r.config for r in runs if r.config.dataset.startswith("cifar")]
    assert {c.imbalance for c in cifar} == {100.0, 200.0} and {c.model for c in cifar} == {"resnet10"}
    sgd = {(c.dataset, c.params["lr"]) for c in cifar if c.method in ("bce", "alm")}  # the ALM paper's recipe
    assert sgd == {("cifar10", 1e-2), ("cifar100", 1e-3)}
    assert all(c.params["optimizer"] == "sgd" for c in cifar if c.method in ("bce", "alm"))


def test_quick_suite_is_the_full_grid_in_miniature():
    full, quick = expand(load_suite("full")), expand(load_suite("quick"))
    full_methods = {r.config.method for r in full}  # quick adds LibAUC's pAUC/AP methods (issue 24)
    assert [(r.label, r.config.params) for r in full] == [(r.label, r.config.params) for r in quick
                                                          if r.config.method in full_methods]
    assert all(r.config.epochs == 2 and r.config.max_train_samples == 256 for r in quick)
    assert load_suite("quick").slurm["time_min"] == 20 and load_suite("quick").slurm["mem_gb"] == 32  # merged


def test_seed_is_shared_by_methods_and_independent_of_the_rest_of_the_grid():
    suite = load_suite("full")
    runs = expand(suite)
    by_cell = {}
    for r in runs:
        by_cell.setdefault((r.dataset_label, r.seed_index), set()).add(r.config.seed)
    assert all(len(seeds) == 1 for seeds in by_cell.values())  # paired: every method, same seed
    assert len({next(iter(s)) for s in by_cell.values()}) == len(by_cell)  # distinct across cells
    fewer = expand(select(suite, datasets=["cifar10"], methods=["bce"], seeds=(2,)))
    same = {r.label: r.config for r in runs}
    assert all(same[r.label] == r.config for r in fewer)  # removing methods, datasets, seeds changes nothing
    config = fewer[0].config
    assert derive_seed(config, 2) == config.seed and derive_seed(config, 3) != config.seed
    assert derive_seed(dataclasses.replace(config, method="alm", epochs=7), 2) == config.seed


def test_seed_ignores_where_the_files_live():
    """cache_dir and csv (config.MACHINE_PARAMS) say where files are, not what the data is: a suite
    run with the cache off (benchmarks.speed --no-cache) or another csv path trains the same seeds;
    a real dataset parameter still changes them."""
    config = expand(parse_suite("t", {"datasets": [{"name": "synthetic2d"}], "methods": [{"name": "bce"}]}))[0].config
    for machine in ({"cache_dir": "none"}, {"csv": "/elsewhere/labels.csv"}):
        moved = dataclasses.replace(config, dataset_params={**config.dataset_params, **machine})
        assert derive_seed(moved, 0) == derive_seed(config, 0)
    changed = dataclasses.replace(config, dataset_params={**config.dataset_params, "positive": 2})
    assert derive_seed(changed, 0) != derive_seed(config, 0)


def test_run_identity_is_the_normalized_config_and_data_checksum():
    base = expand(parse_suite("t", {"datasets": [{"name": "synthetic2d"}], "methods": [{"name": "bce"}],
                                    "run": {"width": 1}}))[0].config
    cli = run.config_from_args(run.build_parser().parse_args(
        ["--dataset", "synthetic2d", "--method", "bce", "--seed", str(base.seed), "--width", "1"]))
    from benchmarks.engine.resolve import resolve_config
    assert run_id(resolve_config(cli), "m") == run_id(base, "m")  # TOML int 1 == CLI float 1.0
    assert run_id(dataclasses.replace(base, device="cuda", data_dir="/x"), "m") == run_id(base, "m")
    for changed in (dataclasses.replace(base, epochs=3), dataclasses.replace(base, params={**base.params, "lr": 0.5})):
        assert run_id(changed, "m") != run_id(base, "m")
    assert run_id(base, "other-md5") != run_id(base, "m")


def test_sweeps_recipes_and_overrides():
    suite = parse_suite("s", {
        "seeds": "0-1",
        "datasets": [{"name": "synthetic2d", "size": 8, "recipes": {"alm": {"delta": 0.9, "mu0": 1e-3}}},
                     {"name": "synthetic3d", "size": 8}],
        "methods": [{"name": "alm", "params": {"mu0": 1e-2}, "sweep": {"delta": [0.1, 0.5]}}, {"name": "bce"}],
    })
    runs = expand(suite)
    assert len(runs) == 2 * 2 * 3
    first = [r for r in runs if r.config.dataset == "synthetic2d" and r.seed_index == 0]
    assert [(r.config.method, r.config.params.get("delta"), r.config.params.get("mu0")) for r in first] == [
        ("alm", 0.1, 1e-3), ("alm", 0.5, 1e-3), ("bce", None, None)]  # sweep > recipe > method params
    assert first[0].label == "synthetic2d / alm delta=0.1 / seed 0"
    assert all(r.config.params["mu0"] == 1e-2 for r in runs if r.config.dataset == "synthetic3d" and r.config.method == "alm")
    added = select(suite, datasets=["synthetic3d", "pneumoniamnist"], methods=["aucm"], seeds=(4,), run={"epochs": 3})
    runs = expand(added)
    assert [(r.config.dataset, r.config.method, r.seed_index, r.config.epochs) for r in runs] == [
        ("synthetic3d", "aucm", 4, 3), ("pneumoniamnist", "aucm", 4, 3)]


@pytest.mark.parametrize("data, message", [
    ({"datasets": [{"name": "synthetic2d"}], "methods": [{"name": "bce"}], "epochz": 3}, "unknown key.*epochz"),
    ({"datasets": [{"name": "synthetic2d", "widht": 1}], "methods": [{"name": "bce"}]}, "unknown key.*widht"),
    ({"datasets": [{"name": "synthetic2d"}], "methods": [{"name": "bce", "params": {"lrr": 1}}]}, "unknown parameter 'lrr'"),
    ({"datasets": [{"name": "nope"}], "methods": [{"name": "bce"}]}, "unknown dataset 'nope'"),
    ({"datasets": [{"name": "synthetic2d"}], "methods": [{"name": "bce"}, {"name": "bce"}]}, "same run twice"),
    ({"datasets": [{"name": "synthetic2d"}], "methods": [{"name": "alm", "sweep": {"delta": 1}}]}, "non-empty list"),
    ({"datasets": [{"name": "synthetic2d"}], "methods": []}, "at least one"),
])
def test_bad_suites_are_clear_errors(data, message):
    with pytest.raises(CritBenchError, match=message):
        expand(parse_suite("bad", data))


def test_suite_files_and_cli_errors(tmp_path, capsys):
    with pytest.raises(CritBenchError, match="built-in: alm_dose, alm_paired, full, pauc_cifar, quick"):
        load_suite("nonexistent")
    bad = write_suite(tmp_path, "seeds = [0\n", "broken")
    with pytest.raises(CritBenchError, match="not valid TOML"):
        load_suite(str(bad))
    child = write_suite(tmp_path, 'extends = "tiny.toml"\n[run]\nepochs = 5\n', "child")
    write_suite(tmp_path)
    suite = load_suite(str(child))
    assert suite.run["epochs"] == 5 and suite.run["width"] == 0.125 and suite.seeds == (0, 1)
    assert leaderboard.main(["--suite", "quick", "--datasets", "nope", "--out", str(tmp_path)]) == 2
    assert "unknown dataset(s) nope" in capsys.readouterr().err


# --- single-run CLI failure records ------------------------------------------------------------

TINY_ARGS = ["--dataset", "synthetic2d", "--epochs", "1", "--width", "0.125", "--size", "8",
             "--patience", "0", "--device", "cpu", "--quiet"]


def test_run_cli_writes_a_failure_record_on_divergence(tmp_path, capsys):
    assert run.main(TINY_ARGS + ["--method", "bce", "--lr", "1e30", "--out", str(tmp_path)]) == 1
    out = capsys.readouterr()
    path = Path(out.out.strip().splitlines()[-1])
    assert path.name.endswith(".failed.json") and path.parent == tmp_path
    record = json.loads(path.read_text())
    assert record["status"] == "failed" and record["reason"].startswith("DivergedError: training loss became nan")
    assert "Traceback" in record["traceback"] and record["config"]["params"]["lr"] == 1e30
    assert record["dataset"]["name"] == "synthetic2d" and "diverged" in out.err
    assert not list(tmp_path.glob(f"{record['run_id']}.json"))


def test_run_cli_writes_a_failure_record_on_a_crash_and_a_success_replaces_it(tmp_path, capsys, monkeypatch):
    def crash(self, *args, **kwargs):
        raise RuntimeError("out of memory (simulated)")

    monkeypatch.setattr("benchmarks.engine.trainer.Trainer.fit", crash)
    assert run.main(TINY_ARGS + ["--method", "bce", "--out", str(tmp_path)]) == 1
    failed = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert json.loads(failed.read_text())["reason"] == "RuntimeError: out of memory (simulated)"
    monkeypatch.undo()
    assert run.main(TINY_ARGS + ["--method", "bce", "--out", str(tmp_path)]) == 0
    complete = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert complete.name == failed.name.replace(".failed.json", ".json")
    assert not failed.exists()  # the success removed the stale failure


# --- leaderboard: failures, resume, missing data, report --------------------------------------

def test_failed_and_nan_runs_are_recorded_and_retried(tmp_path, capsys, monkeypatch):
    suite = write_suite(tmp_path, TINY_SUITE.replace('name = "bce"', 'name = "bce"\nparams = { lr = 1e30 }'))
    out = tmp_path / "runs"
    from benchmarks.engine.trainer import Trainer

    real_fit = Trainer.fit
    crashing_seed = expand(load_suite(str(suite)))[-1].config.seed  # alm, seed index 1

    def fit(self, *args, **kwargs):
        if self.config.method == "alm" and self.config.seed == crashing_seed:
            raise RuntimeError("simulated crash")
        return real_fit(self, *args, **kwargs)

    monkeypatch.setattr("benchmarks.engine.trainer.Trainer.fit", fit)
    args = ["--suite", str(suite), "--out", str(out), "--no-report"]
    assert leaderboard.main(args) == 1
    err = capsys.readouterr().err
    found = records(out)
    failed = {k: v for k, v in found.items() if k.endswith(".failed.json")}
    assert len(found) == 4 and len(failed) == 3  # bce diverges twice, one alm crashes
    assert sorted(v["reason"].split(":")[0] for v in failed.values()) == ["DivergedError", "DivergedError", "RuntimeError"]
    assert all(v["status"] == "failed" and "Traceback" in v["traceback"] for v in failed.values())
    assert "1 run completed, 3 failed" in err and "FAILED (DivergedError" in err

    assert leaderboard.main(args + ["--no-retry-failed"]) == 1  # the failed runs are still not complete
    assert "1 complete already, 3 failed before and not retried" in capsys.readouterr().err
    monkeypatch.setattr("benchmarks.engine.trainer.Trainer.fit", real_fit)
    assert leaderboard.main(args + ["--methods", "alm"]) == 0  # the crashed run is retried and succeeds
    assert "1 complete already; 1 to run (1 of them failed before)" in capsys.readouterr().err
    found = records(out)
    assert sum(k.endswith(".failed.json") for k in found) == 2 and len(found) == 4


def test_missing_data_is_reported_once_and_skipped(tmp_path, capsys, monkeypatch):
    import datasets.medmnist_binary as medmnist

    real = medmnist.locate_npz
    monkeypatch.setattr(medmnist, "locate_npz", lambda flag, size, data_dir, download=True: real(flag, size, data_dir, False))
    suite = write_suite(tmp_path, TINY_SUITE.replace("[[methods]]", '[[datasets]]\nname = "breastmnist"\n[[methods]]', 1))
    out = tmp_path / "runs"
    assert leaderboard.main(["--suite", str(suite), "--data-dir", str(tmp_path / "empty"), "--out", str(out),
                             "--seeds", "0", "--no-report"]) == 1  # not everything planned is complete
    err = capsys.readouterr().err
    assert err.count("needs breastmnist.npz") == 1 and "skipping breastmnist (2 runs), cannot load the data" in err
    assert "2 skipped (data unavailable)" in err
    assert len(records(out)) == 2 and all(name.startswith("synthetic2d") for name in records(out))


def test_leaderboard_builds_the_report_at_the_end(tmp_path, capsys, monkeypatch):
    calls = []
    monkeypatch.setattr(leaderboard, "build_report",
                        lambda runs_dir, out_html, **options: calls.append((runs_dir, out_html)) or out_html)
    suite, out = write_suite(tmp_path), tmp_path / "runs"
    args = ["--suite", str(suite), "--out", str(out), "--seeds", "0", "--methods", "bce"]
    assert leaderboard.main(args + ["--report", str(tmp_path / "r.html")]) == 0
    assert calls == [(out, tmp_path / "r.html")]
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(tmp_path / "r.html")

    def broken(runs_dir, out_html, **options):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(leaderboard, "build_report", broken)
    assert leaderboard.main(args) == 1
    err = capsys.readouterr().err
    assert "building the report failed (OSError: disk full (simulated))" in err and "0 runs completed" in err
    assert f"python -m reports.build --runs {out}" in err and len(records(out)) == 1  # the record is kept


def test_resume_after_kill_keeps_finished_records_and_reruns_only_the_rest(tmp_path, capsys):
    suite = write_suite(tmp_path)
    out = tmp_path / "runs"
    args = ["--suite", str(suite), "--out", str(out), "--no-report"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "benchmarks.leaderboard", *args], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not list(out.glob("*.json")) and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    finished = {p.name: p.read_bytes() for p in out.glob("*.json")}
    assert 1 <= len(finished) < 4, "the kill should land mid-suite"
    assert all(json.loads(data)["status"] == "complete" for data in finished.values())  # never half-written

    assert leaderboard.main(args) == 0
    err = capsys.readouterr().err
    assert f"{len(finished)} complete already; {4 - len(finished)} to run" in err
    after = {p.name: p.read_bytes() for p in out.glob("*.json")}
    assert len(after) == 4 and all(after[name] == data for name, data in finished.items())  # untouched
    # the killed process and this one planned the same run ids (identity is stable across processes)
    assert leaderboard.main(args) == 0 and "4 complete already; 0 to run" in capsys.readouterr().err


def test_complete_records_are_recognized_by_content(tmp_path):
    path = record_path(tmp_path, "x")
    path.write_text("{not json")
    assert record_state(tmp_path, "x") is None
    path.write_text(json.dumps({"status": "complete", "run_id": "x"}))  # no metrics: not a usable record
    assert record_state(tmp_path, "x") is None
    path.write_text(json.dumps(current_record("x")))
    assert record_state(tmp_path, "x") == "complete"
    path.unlink()
    record_path(tmp_path, "x", failed=True).write_text(json.dumps({"status": "failed"}))
    assert record_state(tmp_path, "x") == "failed"


def test_progress_counts_and_eta():
    stream = io.StringIO()
    progress = SuiteProgress(4, stream=stream)
    progress.start -= 60
    progress.started(RunTask(RunConfig("synthetic2d", "bce"), "id1", "synthetic2d / bce / seed 0", "/tmp"))
    progress.finished(TaskResult("id1", "synthetic2d / bce / seed 0", "complete", "/tmp/id1.json"))
    progress.finished(TaskResult("id2", "synthetic2d / alm / seed 0", "failed", "/tmp/id2.failed.json", "boom"))
    lines = stream.getvalue().splitlines()
    assert lines[0] == "[1/4] running synthetic2d / bce / seed 0  (id1)"
    assert lines[1].startswith("[1/4] done: synthetic2d / bce / seed 0  elapsed 1m00s, ETA 3m00s")
    assert lines[2].startswith("[2/4] FAILED (boom): synthetic2d / alm / seed 0  elapsed 1m00s, ETA 1m00s")


def test_validation_suite_is_exactly_the_published_protocols(tmp_path):
    """`--suite validation` plans MedMNIST v2's bce on the six binary flags (28 px, 100 epochs, no
    early stopping, 3 seeds) and the ALM paper's CIFAR-10 1:100 / 1:200 bce and bce+ALM with its
    presets (recipes.md: ResNet10, batch 64, SGD lr 1e-2, ALM_17/0.25 and ALM_15/0.5), 10 seeds, and
    MedMNIST v2's K-way ce on the 12 other flags (--task multiclass, the same recipe, 3 seeds), and
    long-tailed CIFAR-10 (rho 100) ce and LDAM-DRW at Cao et al.'s recipe, 200 epochs, 3 seeds."""
    runs = expand(load_suite("validation"))
    assert len(runs) == 6 * 3 + 2 * 2 * 10 + 12 * 3 + 2 * 3
    long_tailed = [r.config for r in runs if r.config.dataset == "cifar10_lt"]
    assert {(c.method, c.params.get("drw", False), c.epochs, c.patience, c.model, c.batch_size, c.params["preset"])
            for c in long_tailed} == {(method, drw, 200, 0, "resnet32", 128, "cifar_lt")
                                      for method, drw in (("ce", False), ("ldam_ce", True))}
    multiclass = [r.config for r in runs if r.config.task == "multiclass" and r.config.dataset != "cifar10_lt"]
    assert {c.dataset for c in multiclass} == set(INFO) - {"pneumoniamnist", "breastmnist", "nodulemnist3d",
                                                           "adrenalmnist3d", "vesselmnist3d", "synapsemnist3d"}
    assert {(c.method, c.size, c.epochs, c.patience, c.model, c.stem) for c in multiclass} == {
        ("ce", 28, 100, 0, "resnet18", "medmnist")}
    medmnist = [r.config for r in runs if not r.config.dataset.startswith("cifar") and r.config.task == "binary"]
    assert {c.dataset for c in medmnist} == {"pneumoniamnist", "breastmnist", "nodulemnist3d", "adrenalmnist3d",
                                             "vesselmnist3d", "synapsemnist3d"}
    assert {(c.method, c.size, c.epochs, c.patience, c.model, c.stem) for c in medmnist} == {
        ("bce", 28, 100, 0, "resnet18", "medmnist")}
    assert {(c.dataset, c.batch_size) for c in medmnist if c.dataset.endswith("3d")} == {
        (name, 32) for name in ("nodulemnist3d", "adrenalmnist3d", "vesselmnist3d", "synapsemnist3d")}
    assert {c.params["lr"] for c in medmnist} == {1e-3} and all(c.params["optimizer"] == "adam" for c in medmnist)
    cifar = [r for r in runs if r.config.dataset == "cifar10"]
    assert {(r.dataset_label, r.config.method) for r in cifar} == {
        (f"cifar10 1:{ratio}", method) for ratio in (100, 200) for method in ("bce", "alm")}
    assert {r.seed_index for r in cifar} == set(range(10))
    assert {(c.model, c.batch_size, c.patience, c.params["lr"], c.params["optimizer"], c.params["lr_decay"])
            for c in (r.config for r in cifar)} == {("resnet10", 64, 30, 1e-2, "sgd", False)}
    alm = {(r.dataset_label, r.config.params["mu0"], r.config.params["delta"]) for r in cifar if r.config.method == "alm"}
    assert alm == {("cifar10 1:100", 1e-7, 0.25), ("cifar10 1:200", 1e-5, 0.5)}
    assert len({r.config.seed for r in cifar if r.dataset_label == "cifar10 1:100"}) == 10  # paired across methods


def test_dataset_settings_may_name_their_methods_and_seeds_and_the_cli_narrows_them():
    suite = parse_suite("t", {"seeds": [0], "methods": [{"name": "bce"}, {"name": "alm"}], "datasets": [
        {"name": "synthetic2d", "methods": ["bce"]}, {"name": "synthetic3d", "seeds": "0-2"}]})
    runs = expand(suite)
    assert len(runs) == 1 + 2 * 3
    assert {(r.config.dataset, r.config.method, r.seed_index) for r in runs} == {
        ("synthetic2d", "bce", 0), *{("synthetic3d", m, i) for m in ("bce", "alm") for i in range(3)}}
    narrowed = expand(select(suite, methods=["alm"], seeds=(4,)))  # synthetic2d lists bce only: it keeps to that
    assert {(r.config.dataset, r.config.method, r.seed_index) for r in narrowed} == {("synthetic3d", "alm", 4)}
    added = expand(select(suite, methods=["bce", "focal"], seeds=(0,)))  # a method new to the suite: everywhere
    assert {(r.config.dataset, r.config.method) for r in added} == {
        (d, m) for d in ("synthetic2d", "synthetic3d") for m in ("bce", "focal")}
    with pytest.raises(CritBenchError, match="dataset #1: methods focal are not among the suite's"):
        parse_suite("t", {"methods": [{"name": "bce"}], "datasets": [{"name": "synthetic2d", "methods": ["focal"]}]})


@pytest.mark.parametrize("recipes, message", [
    # a misspelt method would leave alm on its defaults, silently, instead of the dataset's preset
    ({"aml": {"preset": "c10_1to100"}}, r"dataset #1: recipes for aml are not among the suite's \[\[methods\]\] \(bce, alm\)"),
    ({"alm": 5}, r"dataset #1: recipes.alm must be a table of that method's params, got 5"),
])
def test_a_recipe_for_no_method_of_the_suite_or_not_a_table_is_refused(recipes, message):
    with pytest.raises(CritBenchError, match=message):
        parse_suite("t", {"methods": [{"name": "bce"}, {"name": "alm"}],
                          "datasets": [{"name": "cifar10", "recipes": recipes}]})


def test_a_suite_without_epochs_trains_the_dataset_protocols(tmp_path):
    """Long-tailed CIFAR's protocol is 200 epochs (`DatasetEntry.epochs`): a suite that sets no epochs
    trains them there, as `benchmarks.run` does, and its [run] or dataset epochs still win."""
    text = '[[datasets]]\nname = "cifar10_lt"\ntask = "multiclass"\n[[datasets]]\nname = "synthetic2d"\n' \
           '[[datasets]]\nname = "cifar10_lt"\nepochs = 3\ntask = "multiclass"\n[[methods]]\nname = "ce"\n'
    path = tmp_path / "suite.toml"
    path.write_text(text.replace('name = "synthetic2d"\n', 'name = "synthetic2d_mc"\ntask = "multiclass"\n'))
    epochs = [(run.config.dataset, run.config.epochs) for run in expand(load_suite(str(path)))]
    assert epochs == [("cifar10_lt", 200), ("synthetic2d_mc", 100), ("cifar10_lt", 3)]
    # the command line's --epochs is every run's, a dataset setting's own epochs included
    path.write_text('[[datasets]]\nname = "cifar10_lt"\nepochs = 3\ntask = "multiclass"\n[[datasets]]\n'
                    'name = "synthetic2d_mc"\ntask = "multiclass"\n[[methods]]\nname = "ce"\n')
    quick = [run.config.epochs for run in expand(select(load_suite(str(path)), run={"epochs": 2}))]
    assert quick == [2, 2]


def test_a_binary_name_and_its_multiclass_variant_are_one_run(tmp_path):
    """With --task multiclass `bce` trains `ce` (its multiclass_variant): listing both is one run twice."""
    path = tmp_path / "suite.toml"
    path.write_text('[[datasets]]\nname = "synthetic2d_mc"\ntask = "multiclass"\n[[methods]]\nname = "bce"\n'
                    '[[methods]]\nname = "ce"\n')
    with pytest.raises(CritBenchError, match="the suite lists the same run twice: .* bce is ce, alm is alm_ce"):
        expand(load_suite(str(path)))
