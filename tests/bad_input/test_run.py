"""Bad input and faults through `python -m benchmarks.run` (issue 13, items 1, 2, 3, 7, 9, 10): every
flag and parameter value that cannot train, would mislabel the run or contradicts another is
refused up front with exit code 2 and one line naming it, before anything trains and with the
finished record in `--out` untouched; interruptions and failing writes end with one line and
keep (or resume) what was done."""
from __future__ import annotations

import errno
import json
import os
import signal
from pathlib import Path

import pytest

from benchmarks.core import outputs
from benchmarks.engine.trainer import Trainer
from benchmarks.run import main
from tests.bad_input.conftest import assert_refused, invoke, snapshot  # and the `out` fixture

TINY = ["--epochs", "2", "--width", "0.125", "--size", "8", "--device", "cpu"]
BCE = ["--dataset", "synthetic2d", "--method", "bce"]
ALM = ["--dataset", "synthetic2d", "--method", "alm"]


def tiny(argv: list) -> list:
    """`argv` with TINY's small settings for every flag it does not set itself."""
    given = {str(item).split("=")[0] for item in argv}
    pairs = [TINY[i:i + 2] for i in range(0, len(TINY) - 1, 2)]
    return list(argv) + [item for pair in pairs if pair[0] not in given for item in pair] + (
        [] if "--quiet" in given else ["--quiet"])


# (argv, what the one line names)
REFUSED = [
    (BCE + ["--seed", "-1"], "--seed must be >= 0"),
    (BCE + ["--seed", str(2**32)], "--seed must be below 2**32"),
    (BCE + ["--seed", str(2**63)], "--seed must be below 2**32"),
    (BCE + ["--seed", str(10**23)], "--seed must be below 2**32"),
    (BCE + ["--seed", "1.5"], "argument --seed: invalid int value"),
    (BCE + ["--seed", "zero"], "argument --seed: invalid int value"),
    (BCE + ["--batch-size", "1"], "--batch-size must be >= 2, got 1"),
    (BCE + ["--batch-size", "0"], "--batch-size must be >= 2"),
    (BCE + ["--batch-size", "-8"], "--batch-size must be >= 2"),
    (BCE + ["--epochs", "0"], "--epochs must be >= 1"),
    (BCE + ["--epochs", "-3"], "--epochs must be >= 1"),
    (BCE + ["--epochs", "ten"], "argument --epochs: invalid int value"),
    (BCE + ["--size", "0"], "--size must be >= 1"),
    (BCE + ["--size", "7"], "--size 7 is not available for synthetic2d"),
    (BCE + ["--imbalance", "nan"], "--imbalance must be a positive finite number, got nan"),
    (BCE + ["--imbalance", "inf"], "--imbalance must be a positive finite number, got inf"),
    (BCE + ["--imbalance", "0"], "--imbalance must be a positive finite number"),
    (BCE + ["--imbalance", "-2"], "--imbalance must be a positive finite number"),
    (BCE + ["--imbalance", "many"], "argument --imbalance: invalid float value"),
    (BCE + ["--max-train-samples", "3"], "--max-train-samples must be >= 4"),
    (BCE + ["--max-train-samples", "0"], "--max-train-samples must be >= 4"),
    (BCE + ["--patience", "-1"], "--patience must be >= 0"),
    (BCE + ["--width", "0.001"], "--width must be between 0.015625"),
    (BCE + ["--width", "0"], "--width must be a positive finite number"),
    (BCE + ["--width", "nan"], "--width must be a positive finite number"),
    (BCE + ["--width", "inf"], "--width must be a positive finite number"),
    (BCE + ["--width", "100"], "--width must be between"),
    (BCE + ["--device", "tpu"], "unknown --device 'tpu'"),
    (BCE + ["--device", "cuda:x"], "unknown --device 'cuda:x'"),
    (BCE + ["--model", "resnet999"], "unknown --model 'resnet999'"),
    (BCE + ["--stem", "huge"], "unknown --stem 'huge'"),
    (BCE + ["--sampler", "magic"], "unknown --sampler 'magic'"),
    (BCE + ["--augment", "warp"], "warp"),
    (BCE + ["--lr", "nan"], "lr=nan is not a valid float (expected a finite number)"),
    (BCE + ["--lr", "inf"], "lr=inf is not a valid float (expected a finite number)"),
    (BCE + ["--lr", "0"], "lr must be positive"),
    (BCE + ["--lr", "-0.1"], "lr must be positive"),
    (BCE + ["--param", "lr=abc"], "lr='abc' is not a valid float"),
    (BCE + ["--param", "weight_decay=nan"], "weight_decay='nan' is not a valid float (expected a finite number)"),
    (BCE + ["--param", "weight_decay=-1"], "weight_decay must be >= 0"),
    (BCE + ["--param", "head_scale=inf"], "head_scale='inf' is not a valid float"),
    (BCE + ["--param", "max_norm=nan"], "max_norm='nan' is not a valid float"),
    (BCE + ["--param", "head=triangle"], "head must be linear or cosine"),
    (BCE + ["--param", "lr_decay=maybe"], "lr_decay='maybe' is not a valid bool (expected true or false)"),
    (ALM + ["--param", "delta=nan"], "delta='nan' is not a valid float (expected a finite number)"),
    (ALM + ["--param", "delta=inf"], "delta='inf' is not a valid float"),
    (ALM + ["--param", "delta=x"], "delta='x' is not a valid float"),
    (ALM + ["--param", "gamma=1"], "unknown parameter 'gamma'"),
    (ALM + ["--param", "delta"], "--param expects key=value, got 'delta'"),
    (ALM + ["--param", "=3"], "--param expects key=value, got '=3'"),
    (BCE + ["--param", "n_train=abc"], "--param n_train=abc is invalid; valid: an integer >= 4"),
    (BCE + ["--param", "n_train=0"], "--param n_train=0 is invalid"),
    (BCE + ["--param", "n_train=1e400"], "--param n_train=1e400 is invalid"),
    # a value given twice: argparse (and dicts) would silently keep the last
    (BCE + ["--param", "lr=0.1", "--param", "lr=0.2"], "--param lr given twice (lr=0.1 and lr=0.2)"),
    (BCE + ["--lr", "0.01", "--param", "lr=0.5"], "the learning rate is given twice (--lr 0.01 and --param lr=0.5)"),
    (BCE + ["--seed", "1", "--seed", "2"], "--seed given twice (--seed 1, then --seed 2)"),
    (BCE + ["--epochs=3", "--epochs", "4"], "--epochs given twice (--epochs 3, then --epochs 4)"),
    (BCE + ["--quiet", "--quiet"], "--quiet given twice"),
    (BCE + ["--dataset", "synthetic3d"], "--dataset given twice"),
    (BCE + ["--epoch", "3"], "unrecognized arguments: --epoch 3"),  # never abbreviated
    # a method name that says one base loss, a parameter that says another
    (["--dataset", "synthetic2d", "--method", "alm+s_fl", "--param", "base=focal"],
     "--method alm+s_fl trains base loss s_fl, but --param base=focal asks for focal"),
    (["--dataset", "synthetic2d", "--method", "focal", "--param", "base=bce"],
     "--method focal trains base loss focal, but --param base=bce"),
    (["--dataset", "synthetic2d", "--method", "bce+s_fl"], "method 'bce' does not wrap a base loss"),
    (["--dataset", "synthetic2d", "--method", "alm+nope"], "unknown base loss 'nope' in alm+nope"),
    (["--dataset", "synthetic2d", "--method", "svm"], "unknown method 'svm'"),
    (["--dataset", "mnist", "--method", "bce"], "unknown dataset 'mnist'"),
    (["--dataset", "synthetic2d"], "--dataset and --method are required"),
]


@pytest.mark.parametrize("argv,names", REFUSED, ids=[" ".join(argv[3:]) or " ".join(argv) for argv, _ in REFUSED])
def test_a_bad_value_is_refused_before_training(argv, names, out, capsys, trained):
    before = snapshot(out)
    outcome = invoke(main, tiny(argv) + ["--out", out], capsys)
    assert_refused(outcome, names)
    assert trained == [] and snapshot(out) == before


def a_file(tmp: Path) -> Path:
    (tmp / "file").write_text("x")
    return tmp / "file"


BAD_OUT = [
    ("a file", a_file, "is a file, not a folder"),
    ("under a file", lambda tmp: a_file(tmp) / "runs", "is a file, not a folder"),
    ("read-only", lambda tmp: Path("/sys/critbench-runs"), "cannot write in /sys"),
]


@pytest.mark.parametrize("make,names", [case[1:] for case in BAD_OUT], ids=[case[0] for case in BAD_OUT])
def test_an_unwritable_out_is_refused_before_training(make, names, tmp_path, capsys, trained):
    if not Path("/sys").is_dir():
        pytest.skip("no /sys here")
    outcome = invoke(main, tiny(BCE) + ["--out", make(tmp_path)], capsys)
    assert_refused(outcome, names)
    assert "--out" in outcome.err and trained == []


def test_a_full_disk_is_found_before_training(out, capsys, trained, monkeypatch):
    """A disk without room for a record (or a small `ulimit -f`) fails the probe, not the finished run."""
    real = os.fsync

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(outputs.os, "fsync", full)
    outcome = invoke(main, tiny(BCE) + ["--out", out], capsys)
    monkeypatch.setattr(outputs.os, "fsync", real)
    assert_refused(outcome, "cannot write into --out")
    assert "No space left on device" in outcome.err and trained == []


def test_a_record_the_folder_refuses_after_training_is_rescued(out, capsys, monkeypatch, tmp_path):
    """The disk fills up during training: the record goes to the rescue folder, and the line says where."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    real = outputs.save_record

    def refuse_out(record, folder):
        if Path(folder) == out.resolve():
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(record, folder)

    monkeypatch.setattr(outputs, "save_record", refuse_out)
    before = snapshot(out)
    outcome = invoke(main, tiny(BCE) + ["--out", out], capsys)
    rescued = tmp_path / "cache" / "critbench" / "rescued"
    [path] = rescued.glob("*.json")
    assert outcome.code == 1 and "Traceback" not in outcome.err
    assert f"it was saved to {path} instead" in outcome.err and outcome.out.strip() == str(path)
    records = {name: digest for name, digest in snapshot(out).items() if not name.startswith("checkpoints/")}
    assert json.loads(path.read_text())["status"] == "complete" and records == before  # the checkpoint stays


@pytest.mark.parametrize("how,code,says", [("sigint", 130, "interrupted: no record written; rerun the same command "
                                                             "to resume from the last finished epoch"),
                                           ("sigterm", 143, "terminated (SIGTERM): no record written")])
def test_an_interrupted_run_ends_in_one_line_and_resumes_from_its_last_epoch(how, code, says, out, capsys, monkeypatch):
    real = Trainer.train_epoch
    epochs = []

    def second_epoch_interrupted(self):
        epochs.append(1)
        if len(epochs) == 2:
            if how == "sigterm":
                os.kill(os.getpid(), signal.SIGTERM)
            raise KeyboardInterrupt
        return real(self)

    monkeypatch.setattr(Trainer, "train_epoch", second_epoch_interrupted)
    before = snapshot(out)
    outcome = invoke(main, tiny(BCE) + ["--out", out], capsys)
    assert outcome.code == code and "Traceback" not in outcome.err and says in outcome.err
    assert len(outcome.err.strip().splitlines()) == 1 and snapshot(out).keys() - before.keys() == {
        next(str(p.relative_to(out)) for p in (out / "checkpoints").glob("*.pt"))}
    monkeypatch.setattr(Trainer, "train_epoch", real)
    outcome = invoke(main, tiny(BCE) + ["--out", out], capsys)
    record = json.loads(Path(outcome.out.strip()).read_text())
    assert outcome.code == 0 and record["resumed_from_epoch"] == 1 and len(record["history"]) == 2
    assert not list((out / "checkpoints").glob("*.pt"))  # removed once the record is saved


def test_one_training_has_one_name_and_one_run_id(tmp_path, capsys):
    """alm+s_fl and alm --param base=s_fl train the same thing: one canonical name, one record."""
    paths = set()
    for argv in (["--method", "alm+s_fl"], ["--method", "alm", "--param", "base=s_fl"]):
        outcome = invoke(main, tiny(["--dataset", "synthetic2d", *argv, "--epochs", "1", "--out", tmp_path]), capsys)
        assert outcome.code == 0, outcome.err
        paths.add(outcome.out.strip())
    [path] = paths
    assert json.loads(Path(path).read_text())["config"]["method"] == "alm+s_fl"
