"""Preemption: a run killed after an epoch resumes from its checkpoint to the record an
uninterrupted run writes; checkpoints of other runs, unreadable ones and failed writes never
end a run."""
import io
import itertools
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from benchmarks.core.config import RunConfig
from benchmarks.core.errors import CritBenchError
from benchmarks.engine import checkpoint as checkpoint_module
from benchmarks.engine import pipeline
from benchmarks.engine.checkpoint import RunCheckpoint, checkpoint_path, remove_checkpoint, restored
from benchmarks.engine.device import resolve_device
from benchmarks.engine.pipeline import run_benchmark
from benchmarks.engine.resolve import load_dataset, resolve_config
from benchmarks.engine.trainer import EarlyStopping, Trainer, TrainingCursor
from benchmarks.methods import get_method, list_methods
from benchmarks.methods.loss_methods import LossMethod
from tests.conftest import TINY

REPO = Path(__file__).resolve().parents[2]
EPOCHS, KILLED_AFTER = 4, 2
KILLED = ("bce", "alm", "aucm_ce")  # killed by SIGKILL: ALM's multipliers and mu schedule, a second stage
# Interrupted in-process: one method per other kind of state (the other loss methods hold what bce
# holds: Adam, MultiStepLR, a stateless loss function), and every method that is not a loss method.
STATES = {"ldam": {"drw": True, "drw_start": 0.5}}  # a loss object with a flag: DRW from epoch 3
INTERRUPTED = sorted(({m for m in list_methods() if not issubclass(get_method(m), LossMethod)} | STATES.keys())
                     - set(KILLED))
TIMING = ("seconds", "finished_at", "env", "resumed_from_epoch")  # what may differ from an uninterrupted run
# Imports once, then forks a process per `method folder` pair of argv, which kills itself with
# SIGKILL once its 2nd checkpoint is written; prints each method and its process' exit code.
DRIVER = """
import os, signal, sys
from benchmarks.engine.checkpoint import RunCheckpoint
from benchmarks.engine.pipeline import run_benchmark
from tests.engine.test_resume import KILLED_AFTER, config, stopping_save
RunCheckpoint.save = stopping_save(KILLED_AFTER, lambda: os.kill(os.getpid(), signal.SIGKILL))
for method, folder in zip(sys.argv[1::2], sys.argv[2::2]):
    child = os.fork()
    if child == 0:
        run_benchmark(config(method), progress=False, checkpoint_dir=folder)
        os._exit(0)
    print(method, os.waitstatus_to_exitcode(os.waitpid(child, 0)[1]), flush=True)
"""


class Preempted(BaseException):
    """Stands for the end of the process (not an Exception: the pipeline records those as failures)."""


def config(method: str, **changes) -> RunConfig:
    """A multi-class method runs on synthetic2d_mc with --task multiclass."""
    task = get_method(method).tasks[0]
    return resolve_config(RunConfig(dataset="synthetic2d_mc" if task == "multiclass" else "synthetic2d", method=method,
                                    task=task, **{**TINY, "epochs": EPOCHS, "params": STATES.get(method, {}), **changes}))


# Patience 1 with a learning rate too small to improve: stops after epoch 3, one stale epoch after the kill.
EARLY_STOPPING = config("bce", patience=1, params={"lr": 1e-9})


def stopping_save(saves: int, stop):
    """A `RunCheckpoint.save` that calls `stop()` once it has written its `saves`-th checkpoint."""
    original, count = RunCheckpoint.save, itertools.count(1)

    def save(self, state):
        original(self, state)
        if next(count) == saves:
            stop()
    return save


def raise_preempted():
    raise Preempted


def result_of(record: dict) -> str:
    """The record without its timing, as text (so NaN compares equal to NaN)."""
    kept = {key: value for key, value in record.items() if key not in TIMING}
    kept["history"] = [{key: value for key, value in entry.items() if key != "seconds"} for entry in record["history"]]
    return json.dumps(kept, sort_keys=True)


@pytest.fixture(scope="module")
def uninterrupted():
    """config -> the record of its uninterrupted run, trained on first use."""
    records = {}

    def get(run: RunConfig) -> dict:
        key = json.dumps(run.to_dict(), sort_keys=True)
        if key not in records:
            records[key] = run_benchmark(run, progress=False)
        return records[key]
    return get


@pytest.fixture(scope="module")
def killed(tmp_path_factory):
    """method -> the checkpoint folder of its run, killed by SIGKILL after epoch 2."""
    folders = {method: tmp_path_factory.mktemp(f"killed-{method}") for method in KILLED}
    arguments = [str(item) for pair in folders.items() for item in pair]
    driver = subprocess.run([sys.executable, "-c", DRIVER, *arguments], cwd=REPO, capture_output=True, text=True,
                            timeout=600)
    assert driver.stdout.split() == [item for method in KILLED for item in (method, str(-signal.SIGKILL))], driver.stderr
    return folders


@pytest.mark.parametrize("method", KILLED)
def test_a_run_killed_after_epoch_2_resumes_to_the_same_record(method, killed, uninterrupted):
    folder = killed[method]
    umask = os.umask(0)
    os.umask(umask)
    path = checkpoint_path(folder, uninterrupted(config(method))["run_id"])
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask, "readable like the records, not 0600"
    resumed = run_benchmark(config(method), progress=False, checkpoint_dir=folder)
    assert resumed["status"] == "complete" and resumed["resumed_from_epoch"] == KILLED_AFTER
    assert uninterrupted(config(method))["resumed_from_epoch"] is None
    assert result_of(resumed) == result_of(uninterrupted(config(method)))
    assert path.is_file(), "the caller removes it once the record is saved"
    remove_checkpoint(folder, resumed["run_id"])
    assert not folder.exists(), "the emptied checkpoints folder goes too"


@pytest.mark.parametrize("run", [config(method) for method in INTERRUPTED] + [EARLY_STOPPING],
                         ids=INTERRUPTED + ["early-stopping"])
def test_each_kind_of_state_resumes_to_the_same_record(run, tmp_path, monkeypatch, uninterrupted):
    with monkeypatch.context() as patch:
        patch.setattr(RunCheckpoint, "save", stopping_save(KILLED_AFTER, raise_preempted))
        with pytest.raises(Preempted):
            run_benchmark(run, progress=False, checkpoint_dir=tmp_path)
    resumed = run_benchmark(run, progress=False, checkpoint_dir=tmp_path)
    assert resumed["resumed_from_epoch"] == KILLED_AFTER
    assert result_of(resumed) == result_of(uninterrupted(run))


def test_resuming_restores_the_random_generators():
    tiny = config("bce")
    trainer = Trainer(tiny, load_dataset(tiny), resolve_device(tiny.device), progress=False)
    buffer = io.BytesIO()
    torch.save(trainer.checkpoint_state(TrainingCursor(EarlyStopping(0), EarlyStopping(0))), buffer)
    draws = torch.rand(3), torch.rand(3, generator=trainer.gen)
    buffer.seek(0)
    trainer.load_checkpoint_state(torch.load(buffer, weights_only=True), "buffer")
    assert all(torch.equal(a, b) for a, b in zip(draws, (torch.rand(3), torch.rand(3, generator=trainer.gen))))


def write_other_runs_checkpoint(path: Path, run_id: str) -> None:
    RunCheckpoint(path.parent, run_id, {"another": "config"}, torch.device("cpu")).save({"progress": {}})


@pytest.mark.parametrize("write, why", [
    (lambda path, run_id: path.write_bytes(b"\x80not a checkpoint"), "cannot be read"),
    (lambda path, run_id: path.write_bytes(b""), "cannot be read"),
    (write_other_runs_checkpoint, "differs in: identity"),
], ids=["corrupt", "empty", "another-config"])
def test_a_checkpoint_that_is_not_this_runs_is_ignored_with_a_message(write, why, tmp_path, capsys, uninterrupted):
    expected = uninterrupted(config("bce"))
    path = checkpoint_path(tmp_path, expected["run_id"])
    write(path, expected["run_id"])
    record = run_benchmark(config("bce"), progress=False, checkpoint_dir=tmp_path)
    message = [line for line in capsys.readouterr().err.splitlines() if "ignoring checkpoint" in line]
    assert len(message) == 1 and why in message[0] and str(path) in message[0]
    assert record["resumed_from_epoch"] is None and result_of(record) == result_of(expected)
    assert torch.load(path, weights_only=True)["run_id"] == expected["run_id"], "overwritten by this run's"


def test_a_failed_checkpoint_write_warns_once_and_the_run_goes_on(tmp_path, capsys, monkeypatch, uninterrupted):
    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint_module.torch, "save", full_disk)
    record = run_benchmark(config("bce"), progress=False, checkpoint_dir=tmp_path)
    warnings = [line for line in capsys.readouterr().err.splitlines() if "cannot write checkpoint" in line]
    assert len(warnings) == 1 and "No space left on device" in warnings[0]
    assert result_of(record) == result_of(uninterrupted(config("bce"))) and not list(tmp_path.iterdir())


@pytest.mark.parametrize("make", ["file", "read-only"])
def test_an_unwritable_checkpoint_folder_is_refused_before_the_data_is_loaded(make, tmp_path, monkeypatch):
    folder = tmp_path / "checkpoints"
    if make == "file":
        folder.write_text("a file")
    else:
        folder.mkdir(mode=0o500)
        if os.access(folder, os.W_OK):
            pytest.skip("this user writes into read-only folders (root)")
    monkeypatch.setattr(pipeline, "load_dataset", lambda config: pytest.fail("data loaded before the refusal"))
    with pytest.raises(CritBenchError, match=f"the checkpoint folder {folder}"):
        run_benchmark(config("bce"), progress=False, checkpoint_dir=folder)


def test_a_restored_tensor_that_a_fresh_method_holds_as_none_goes_to_the_runs_device():
    """Checkpoints load on the CPU. A tensor that a fresh method holds as None (pdsca's
    `alpha_grad`), or in a container whose length changed, goes back to the run's device ("meta"
    stands in for CUDA here); a tensor the method already holds keeps that tensor's device."""
    meta = torch.device("meta")
    assert restored(None, torch.ones(2), meta).device == meta
    assert [t.device for t in restored([], [torch.ones(1), torch.ones(1)], meta)] == [meta, meta]
    held = torch.zeros(2)
    assert restored(held, torch.ones(2), meta) is held and held.device.type == "cpu" and held.sum() == 2
    assert restored(None, torch.ones(2)).device.type == "cpu"  # no device given: as saved
