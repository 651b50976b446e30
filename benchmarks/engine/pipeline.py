"""One run, one way through: from a resolved config, load the data, train, score, and return the record.

A failure while training is returned as a failure record (status "failed"), not raised; only
problems found before training (bad input, data that cannot be loaded) raise CritBenchError, and
KeyboardInterrupt passes through. With a checkpoint folder, a run killed mid-training resumes from
its last epoch (`benchmarks.engine.checkpoint`). With a `Selection`, the run is a tuning trial on
validation data alone: the test split never reaches the trainer and its record has no test result.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Protocol

import torch

from benchmarks.core.config import RunConfig
from benchmarks.core.phases import timed
from benchmarks.core.identity import data_fingerprint, run_id
from benchmarks.core.machine import available_cpus, base_environment, utc_now
from benchmarks.core.records import RECORD_VERSION, FailureRecord, RunRecord, failure_record
from benchmarks.engine.checkpoint import RunCheckpoint, prepare_checkpoint_dir
from benchmarks.engine.device import check_precision_here, device_environment, precision_reason, resolve_device
from benchmarks.engine.resolve import is_resolved, load_dataset
from benchmarks.engine.trainer import Trainer
from datasets import BinaryDataset, Split

VALIDATION_RESULTS = ("history", "best_epoch", "best_stage", "stopped_early", "resumed_from_epoch", "val")


class Selection(Protocol):
    """Where a tuning trial trains and validates: a fold of train+val, or the official splits."""

    name: str  # the end of the trial's run id, e.g. "cv5s0-fold2" (fold 2 of 5, shuffled with seed 0) or "val"

    def splits(self, dataset: BinaryDataset) -> tuple[Split, Split]:
        """(train, val) drawn from `dataset`'s train and val splits only."""
        ...


def validation_only(dataset: BinaryDataset, selection: Selection) -> BinaryDataset:
    """The dataset a trial trains on: the selection's train and val, with val standing in for test, so
    that nothing the trainer reads or scores comes from the test split."""
    train, val = selection.splits(dataset)
    return dataclasses.replace(dataset, train=train, val=val, test=val)


def validation_record(record: dict, selection: Selection) -> dict:
    """A trial's record: the run record without anything the trainer computed on its stand-in test
    split (test metrics, scores, operating points, calibration, the method's report) or said about it;
    the command line that ran it, when the record has one."""
    dataset = {**record["dataset"], "splits": {k: v for k, v in record["dataset"]["splits"].items() if k != "test"},
               "split_md5": {k: v for k, v in record["dataset"]["split_md5"].items() if k != "test"}}
    kept = {key: record[key] for key in ("record_version", "run_id", "status", "config", "env", "seconds",
                                         "finished_at", *VALIDATION_RESULTS)}
    trial_fit = {**kept, "kind": "trial_fit", "selection": selection.name, "dataset": dataset}
    if "command" in record:
        trial_fit["command"] = record["command"]
    return trial_fit


def run_benchmark(config: RunConfig, progress: bool = True, checkpoint_dir=None, selection: Selection | None = None,
                  on_epoch=None, command: str | None = None) -> RunRecord | FailureRecord:
    """Train and score one run of a resolved `config` (`resolve.resolve_config`); returns its complete
    or failure record (not yet written), with `command`, the command line that ran it, when given.

    With `selection`, the run is a tuning trial (`validation_only`, `validation_record`): its run id
    ends with the selection's name and its record holds validation results only. `on_epoch(epoch,
    val_auc)` is called after every epoch (a pruner; what it raises ends the run as a failure).

    With `checkpoint_dir`, the run saves `<checkpoint_dir>/<run_id>.pt` after every epoch and
    starts from that file when it holds this run's state (the record says `resumed_from_epoch`).
    The file is left in place: the caller deletes it (`checkpoint.remove_checkpoint`) once the
    record is saved."""
    if not is_resolved(config):
        raise ValueError("run_benchmark takes a resolved config: pass it through resolve_config first")
    started = time.perf_counter()
    # torch starts one thread per core of the machine, blind to cgroup quotas: in a 2-CPU container
    # on a 64-core node, 64 threads would wait on each other. Never more threads than CPUs we may use
    # (OMP_NUM_THREADS and an executor's share, both lower, are kept).
    torch.set_num_threads(min(torch.get_num_threads(), available_cpus()))
    env = base_environment()  # the code as it is when the run starts, not when it ends
    device = resolve_device(config.device)  # a device that is not there is refused before any data is loaded
    check_precision_here(config, device)
    if checkpoint_dir is not None:
        prepare_checkpoint_dir(checkpoint_dir)
    with timed("load"):
        dataset = load_dataset(config)
        dataset_record = dataset.record()
    identity = run_id(config, data_fingerprint(dataset_record))
    if selection is not None:
        dataset, identity = validation_only(dataset, selection), f"{identity}-{selection.name}"
        dataset_record = dataset.record()
    checkpoint = RunCheckpoint(checkpoint_dir, identity, config.identity(), device) if checkpoint_dir is not None else None
    try:
        with timed("setup"):
            trainer = Trainer(config, dataset, device, progress=progress, on_epoch=on_epoch)
        result = trainer.fit(checkpoint)
    except Exception as error:  # crashed or diverged while training: the run's identity is known
        return failure_record(config, identity, error, time.perf_counter() - started, dataset_record, env, command)
    record = RunRecord(
        record_version=RECORD_VERSION,
        run_id=identity,
        status="complete",
        config=config.to_dict(),
        dataset=dataset_record,
        env={**env, **device_environment(device), "precision": config.precision,
             "precision_reason": precision_reason(config)},
        **result,
        seconds=time.perf_counter() - started,
        finished_at=utc_now(),
    )
    if command is not None:
        record["command"] = command
    return record if selection is None else validation_record(record, selection)
