"""One run, one way through: resolve the config, load the data, train, score, and return the record.

A failure while training is returned as a failure record (status "failed"), not raised; only
problems found before training (bad input, data that cannot be loaded) raise CritBenchError, and
KeyboardInterrupt passes through. With a checkpoint folder, a run killed mid-training resumes from
its last epoch (`benchmarks.engine.checkpoint`).
"""
from __future__ import annotations

import time

import torch

from benchmarks.core.config import RunConfig
from benchmarks.core.phases import timed
from benchmarks.core.records import (RECORD_VERSION, base_environment, cpu_model, data_fingerprint, failure_record, run_id,
                                     utc_now)
from benchmarks.engine.checkpoint import RunCheckpoint, prepare_checkpoint_dir
from benchmarks.engine.resolve import load_dataset, resolve_config
from benchmarks.engine.trainer import Trainer, resolve_device


def device_environment(device: torch.device) -> dict:
    """The record's description of the device a run trained on."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = f"cpu ({cpu_model()}, {torch.get_num_threads()} threads)"
    return {"device": str(device), "device_name": name, "cuda": torch.version.cuda if device.type == "cuda" else None}


def run_benchmark(config: RunConfig, progress: bool = True, checkpoint_dir=None) -> dict:
    """Train and score one run; returns its complete or failure record (not yet written).

    With `checkpoint_dir`, the run saves `<checkpoint_dir>/<run_id>.pt` after every epoch and
    starts from that file when it holds this run's state (the record says `resumed_from_epoch`).
    The file is left in place: the caller deletes it (`checkpoint.remove_checkpoint`) once the
    record is saved."""
    started = time.perf_counter()
    env = base_environment()  # the code as it is when the run starts, not when it ends
    config = resolve_config(config)
    device = resolve_device(config.device)  # a device that is not there is refused before any data is loaded
    if checkpoint_dir is not None:
        prepare_checkpoint_dir(checkpoint_dir)
    with timed("load"):
        dataset = load_dataset(config)
        dataset_record = dataset.record()
    identity = run_id(config, data_fingerprint(dataset_record))
    checkpoint = RunCheckpoint(checkpoint_dir, identity, config.identity(), device) if checkpoint_dir is not None else None
    try:
        with timed("setup"):
            trainer = Trainer(config, dataset, progress=progress)
        result = trainer.fit(checkpoint)
    except Exception as error:  # crashed or diverged while training: the run's identity is known
        return failure_record(config, identity, error, time.perf_counter() - started, dataset_record, env)
    return {
        "record_version": RECORD_VERSION,
        "run_id": identity,
        "status": "complete",
        "config": config.to_dict(),
        "dataset": dataset_record,
        "env": {**env, **device_environment(trainer.device), "precision": trainer.precision},
        **result,
        "seconds": time.perf_counter() - started,
        "finished_at": utc_now(),
    }
