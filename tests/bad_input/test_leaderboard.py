"""Bad input and faults through `python -m benchmarks.leaderboard` (issue 13, items 1, 5, 7, 9): a
suite value or flag that cannot train is refused up front with one line naming the suite key or
flag, before anything trains and with the finished records in `--out` untouched; two leaderboards
on one folder train each run once; a record its folder refuses is rescued and the suite goes on;
the exit code says whether everything planned is complete."""
from __future__ import annotations

import errno
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks import leaderboard
from benchmarks.core import outputs
from benchmarks.engine.trainer import Trainer
from benchmarks.leaderboard import main
from benchmarks.sweep.claims import claim_path
from benchmarks.sweep.plan import make_plan
from benchmarks.sweep.suite import expand, load_suite
from tests.bad_input.conftest import assert_refused, invoke, snapshot  # and the `out` fixture
from tests.conftest import TINY_SUITE, write_suite

REPO = Path(__file__).resolve().parents[2]


def edit(old: str, new: str) -> str:
    assert old in TINY_SUITE
    return TINY_SUITE.replace(old, new, 1)


# (suite text, what the one line names)
BAD_SUITES = [
    (edit("epochs = 1", 'epochs = "1"'), "suite tiny [run] epochs must be an integer, got '1'"),
    (edit("epochs = 1", "epochs = 1.5"), "suite tiny [run] epochs must be an integer, got 1.5"),
    (edit("epochs = 1", "epochs = 0"), "suite tiny [run] epochs must be >= 1"),
    (edit("epochs = 1", "epochs = true"), "suite tiny [run] epochs must be an integer, got True"),
    (edit("width = 0.125", 'width = "x"'), "suite tiny [run] width must be a number, got 'x'"),
    (edit("width = 0.125", "width = nan"), "suite tiny [run] width must be a positive finite number, got nan"),
    (edit("width = 0.125", "width = 0.001"), "suite tiny, synthetic2d / bce: --width must be between"),
    (edit("patience = 0", "patience = -1"), "suite tiny [run] patience must be >= 0"),
    (edit("epochs = 1", "epochs = 1\nbatch_size = 1"), "suite tiny [run] batch_size must be >= 2, got 1"),
    (edit("epochs = 1", "epochs = 1\nimbalance = nan"), "suite tiny [run] imbalance must be a positive finite number"),
    (edit("epochs = 1", "epochs = 1\namp = \"yes\""), "suite tiny [run] amp must be true or false"),
    (edit('device = "cpu"', "device = 3"), "suite tiny [run] device must be a string, got 3"),
    (edit('device = "cpu"', 'device = "tpu"'), "unknown --device 'tpu'"),
    (edit("epochs = 1", "epochs = 1\nseed = 3"), "suite tiny [run]: unknown key(s) seed"),
    (edit("epochs = 1", "epochs = 1\nmax_train_samples = 3"), "suite tiny [run] max_train_samples must be >= 4"),
    (edit("seeds = [0, 1]", "seeds = [-1]"), "seeds must be non-negative integers"),
    (edit("seeds = [0, 1]", "seeds = 3"), 'suite tiny: seeds = 3 is ambiguous; write seeds = [3] for seed index 3 '
                                          'alone, or seeds = "0-2" for 3 seeds'),
    (edit('name = "synthetic2d"', 'name = "synthetic2d"\nseeds = 1'), "dataset #1: seeds = 1 is ambiguous"),
    (edit("seeds = [0, 1]", "seeds = [true]"), "seeds must be non-negative integers"),
    (edit("seeds = [0, 1]", 'seeds = "a-b"'), "seeds must look like 0-2 or 0,1,4; got 'a-b'"),
    (edit("seeds = [0, 1]", 'seeds = "0-100000"'), "at most 1000 per suite"),
    (edit("size = 8", 'size = "8"'), "suite tiny dataset #1 size must be an integer, got '8'"),
    (edit("size = 8", "size = 7"), "--size 7 is not available for synthetic2d"),
    (edit('name = "synthetic2d"', "name = 3"), "suite tiny dataset #1 needs a name (a string)"),
    (edit('name = "synthetic2d"', 'name = "mnist"'), "unknown dataset 'mnist'"),
    (edit('name = "synthetic2d"', 'name = "synthetic2d"\nparams = 3'), "suite tiny dataset #1: params must be a table"),
    (edit('name = "synthetic2d"', 'name = "synthetic2d"\nrecipes = 3'), "suite tiny dataset #1: recipes must be a table"),
    (edit('name = "synthetic2d"', 'name = "synthetic2d"\nmethods = "bce"'), "methods must be a non-empty list of method names"),
    (edit('name = "synthetic2d"', 'name = "synthetic2d"\nmethods = ["svm"]'), "methods svm are not among the suite's"),
    (edit('name = "alm"', 'name = "alm"\nparams = { delta = "x" }'), "suite tiny, synthetic2d / alm: parameter delta='x'"),
    (edit('name = "alm"', 'name = "alm"\nparams = { delta = nan }'), "delta=nan is not a valid float (expected a finite"),
    (edit('name = "alm"', 'name = "alm"\nparams = { delta = inf }'), "delta=inf is not a valid float"),
    (edit('name = "alm"', 'name = "alm"\nparams = { gamma = 1 }'), "unknown parameter 'gamma'"),
    (edit('name = "alm"', 'name = "alm"\nparams = 3'), "suite tiny method #2: params must be a table"),
    (edit('name = "alm"', 'name = "alm"\nsweep = { delta = [] }'), "sweep.delta must be a non-empty list"),
    (edit('name = "alm"', 'name = "alm"\nsweep = { delta = 0.5 }'), "sweep.delta must be a non-empty list"),
    (edit('name = "alm"', 'name = "svm"'), "unknown method 'svm'"),
    (edit('name = "alm"', 'name = "alm+s_fl"\n[[methods]]\nname = "alm"\nparams = { base = "s_fl" }'),
     "the suite lists the same run twice"),
    (edit('name = "alm"', 'name = "alm+s_fl"\nparams = { base = "focal" }'), "--method alm+s_fl trains base loss s_fl"),
    (edit('name = "bce"', "name = 7"), "suite tiny method #1 needs a name (a string)"),
    (TINY_SUITE + "\n[run2]\n", "unknown key(s) run2"),
    (TINY_SUITE.replace("[run]\n", "run = 3\n[ray]\n", 1), "suite tiny: [run] must be a table, got 3"),
    ("seeds = [0]\n[[methods]]\nname = 'bce'\n", "needs at least one [[datasets]]"),
    (TINY_SUITE + "\nepochs = [\n", "is not valid TOML"),
    (TINY_SUITE.replace("patience = 0", "patience = 0  # caf\xe9"), "is not UTF-8 text (byte 0xe9"),
]


@pytest.mark.parametrize("text,names", BAD_SUITES, ids=[f"suite{index}" for index in range(len(BAD_SUITES))])
def test_a_bad_suite_value_is_refused_before_training(text, names, tmp_path, out, capsys, trained):
    suite = tmp_path / "tiny.toml"
    suite.write_bytes(text.encode("latin-1") if "\xe9" in text else text.encode())
    before = snapshot(out)
    assert_refused(invoke(main, ["--suite", suite, "--out", out], capsys), names)
    assert trained == [] and snapshot(out) == before


def a_file(tmp: Path) -> Path:
    (tmp / "file").write_text("x")
    return tmp / "file"


# (extra flags, given the tmp folder; what the one line names)
BAD_FLAGS = [
    (lambda tmp: ["--seeds", "x"], "seeds must look like 0-2"),
    (lambda tmp: ["--seeds", "-1"], "seeds must look like 0-2"),
    (lambda tmp: ["--seeds", "5-2"], "seeds must be non-negative integers"),
    (lambda tmp: ["--seeds", "0-5000"], "at most 1000 per suite"),
    (lambda tmp: ["--epochs", "0"], "--epochs must be >= 1"),
    (lambda tmp: ["--epochs", "1.5"], "argument --epochs: invalid int value"),
    (lambda tmp: ["--epochs", "1", "--epochs", "2"], "--epochs given twice"),
    (lambda tmp: ["--datasets", "mnist"], "unknown dataset(s) mnist"),
    (lambda tmp: ["--methods", "svm"], "unknown method(s) svm"),
    (lambda tmp: ["--executor", "spark"], "argument --executor: invalid choice"),
    (lambda tmp: ["--device", "tpu"], "unknown --device 'tpu'"),
    (lambda tmp: ["--suite", "nonexistent"], "unknown suite 'nonexistent'"),
    (lambda tmp: ["--suite", str(tmp / "missing.toml")], "does not exist"),
    (lambda tmp: ["--report", str(tmp)], "cannot write --report"),
    (lambda tmp: ["--report", str(a_file(tmp) / "r.html")], "is a file, not a folder"),
    (lambda tmp: ["--out", str(a_file(tmp))], "--out"),
    (lambda tmp: ["--out", str(a_file(tmp) / "runs")], "--out"),
    (lambda tmp: ["--out", "/sys/critbench-runs"], "cannot write into --out /sys/critbench-runs"),
    (lambda tmp: ["--report", "/sys/critbench/r.html"], "cannot write --report"),
    (lambda tmp: ["--slurm-parallel", "x"], "argument --slurm-parallel: invalid int value"),
]


@pytest.mark.parametrize("flags,names", BAD_FLAGS, ids=[f"flags{index}" for index in range(len(BAD_FLAGS))])
def test_a_bad_flag_is_refused_before_training(flags, names, tmp_path, out, capsys, trained):
    suite = write_suite(tmp_path)
    argv = ["--suite", suite, "--out", out, *flags(tmp_path)]
    if argv.count("--suite") == 2:  # the case names its own suite
        argv = argv[2:]
    if argv.count("--out") == 2:
        argv = argv[:2] + argv[4:]
    before = snapshot(out)
    assert_refused(invoke(main, argv, capsys), names)
    assert trained == [] and snapshot(out) == before


def test_data_that_cannot_be_had_is_skipped_by_name_and_the_exit_code_says_so(tmp_path, out, capsys, trained):
    """A dataset parameter its adapter refuses when loading: the setting is skipped with one line
    naming the parameter, nothing trains, and the leaderboard exits 1 (not everything is complete)."""
    suite = write_suite(tmp_path, edit('name = "synthetic2d"', 'name = "synthetic2d"\nparams = { n_train = "abc" }'))
    outcome = invoke(main, ["--suite", suite, "--out", out, "--no-report"], capsys)
    assert outcome.code == 1 and "Traceback" not in outcome.err and trained == []
    assert "skipping synthetic2d (4 runs), cannot load the data: --param n_train=abc is invalid" in outcome.err
    assert "4 skipped (data unavailable)" in outcome.err


def test_cuda_without_cuda_is_refused_once_up_front(tmp_path, out, capsys, trained, monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    outcome = invoke(main, ["--suite", write_suite(tmp_path), "--out", out, "--device", "cuda"], capsys)
    assert_refused(outcome, "--device cuda requested but CUDA is not available")
    assert trained == []


def test_a_record_the_folder_refuses_is_rescued_and_the_suite_goes_on(tmp_path, out, capsys, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    real, refused = outputs.save_record, []

    def first_refused(record, folder):
        if Path(folder) == out.resolve() and not refused:
            refused.append(record["run_id"])
            raise OSError(errno.EFBIG, "File too large")
        return real(record, folder)

    monkeypatch.setattr(outputs, "save_record", first_refused)
    outcome = invoke(main, ["--suite", write_suite(tmp_path), "--out", out, "--no-report"], capsys)
    rescued = list((tmp_path / "cache" / "critbench" / "rescued").glob("*.json"))
    assert outcome.code == 1 and "Traceback" not in outcome.err
    assert [path.stem for path in rescued] == refused and f"rescued: " in outcome.err and "File too large" in outcome.err
    assert "3 runs completed, 0 failed, 1 rescued" in outcome.err
    assert len(list(out.glob("synthetic2d-*.json"))) == 1 + 3  # the finished one and the three others


def test_sigterm_ends_the_suite_in_one_line_and_keeps_finished_records(tmp_path, out, capsys, monkeypatch):
    real, epochs = Trainer.train_epoch, []

    def terminated_in_the_third_run(self):
        epochs.append(1)
        if len(epochs) == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return real(self)

    monkeypatch.setattr(Trainer, "train_epoch", terminated_in_the_third_run)
    outcome = invoke(main, ["--suite", write_suite(tmp_path), "--out", out, "--no-report"], capsys)
    assert outcome.code == 143 and "Traceback" not in outcome.err
    assert outcome.err.strip().splitlines()[-1] == (f"error: terminated (SIGTERM): every finished record is kept in "
                                                    f"{out}; rerun the same command to resume")
    assert len(list(out.glob("synthetic2d-*.json"))) == 1 + 2
    monkeypatch.setattr(Trainer, "train_epoch", real)
    outcome = invoke(main, ["--suite", write_suite(tmp_path), "--out", out, "--no-report"], capsys)
    assert outcome.code == 0 and "2 complete already; 2 to run" in outcome.err


def test_a_run_claimed_by_a_live_process_is_skipped_and_a_stale_claim_taken_over(tmp_path, out, capsys, trained):
    suite = write_suite(tmp_path)
    tasks = make_plan(expand(load_suite(str(suite))), out, retry_failed=True).tasks
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        claim = claim_path(out, tasks[0].run_id)
        claim.parent.mkdir(parents=True)
        claim.write_text(json.dumps({"host": os.uname().nodename, "pid": sleeper.pid, "claimed_at": "now"}))
        outcome = invoke(main, ["--suite", suite, "--out", out, "--no-report"], capsys)
        assert outcome.code == 1 and f"skipped, being trained by another process (pid {sleeper.pid}" in outcome.err
        assert "1 left to another process" in outcome.err and len(trained) == 3
        assert tasks[0].run_id not in {config_run for config_run in map(str, out.glob("*.json"))}
    finally:
        sleeper.kill()
        sleeper.wait()
    outcome = invoke(main, ["--suite", suite, "--out", out, "--no-report"], capsys)  # its process is gone: stale
    assert outcome.code == 0 and "3 complete already; 1 to run" in outcome.err and len(trained) == 4
    assert not claim.exists()


def test_two_leaderboards_on_one_folder_train_each_run_exactly_once(tmp_path):
    """Two real processes at once on the same --out: every run is trained by one of them, never both."""
    suite = write_suite(tmp_path, TINY_SUITE.replace("seeds = [0, 1]", "seeds = [0, 1, 2]"))
    out = tmp_path / "runs"
    command = [sys.executable, "-m", "benchmarks.leaderboard", "--suite", str(suite), "--out", str(out), "--no-report"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen(command, cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    second = subprocess.Popen(command, cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
    errs = [process.communicate(timeout=400)[1] for process in (first, second)]
    trained = [label for err in errs for label in re.findall(r"\] done: (.+?)  elapsed", err)]
    assert sorted(trained) == sorted(set(trained)) and len(trained) == 6, errs  # 3 seeds x 2 methods, once each
    assert len(list(out.glob("*.json"))) == 6 and not list((out / ".claims").glob("*.json"))
    assert all(process.returncode in (0, 1) for process in (first, second))
