"""A whole benchmark run from a config: load data, train, and write the JSON record."""
from __future__ import annotations

import platform
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

from benchmarks.core.config import RunConfig, resolve_config
from benchmarks.core.records import environment, git_revision, package_versions, stable_hash, write_json_atomic
from benchmarks.engine.trainer import Trainer
from datasets import create_dataset

RECORD_VERSION = 1


def load_dataset(config: RunConfig):
    return create_dataset(config.dataset, size=config.size, data_dir=config.data_dir, seed=config.seed,
                          imbalance=config.imbalance, max_train_samples=config.max_train_samples,
                          params=config.dataset_params)


def run_id(config: RunConfig, dataset_md5: str) -> str:
    """Readable, stable name: dataset, method, seed and a hash of the config identity and data."""
    digest = stable_hash({"config": config.identity(), "dataset_md5": dataset_md5})
    return f"{config.dataset}-{config.method}-s{config.seed}-{digest}"


def run_benchmark(config: RunConfig, progress: bool = True) -> dict:
    """Train and score one run; returns the complete record (not yet written)."""
    started = time.perf_counter()
    config = resolve_config(config)
    dataset = load_dataset(config)
    dataset_record = dataset.record()
    identity = run_id(config, dataset_record["source_md5"] or dataset_record["tensor_md5"])
    try:
        trainer = Trainer(config, dataset, progress=progress)
        result = trainer.fit()
    except Exception as error:  # the run's identity is known: callers may save this failure record
        error.failure_record = failure_record(config, identity, error, time.perf_counter() - started,
                                              dataset_record)
        raise
    return {
        "record_version": RECORD_VERSION,
        "run_id": identity,
        "status": "complete",
        "config": config.to_dict(),
        "dataset": dataset_record,
        "env": {**environment(trainer.device), "precision": trainer.precision},
        **result,
        "seconds": time.perf_counter() - started,
    }


def failure_record(config: RunConfig, identity: str, error: BaseException, seconds: float | None,
                   dataset: dict | None = None) -> dict:
    """The record of a run that crashed or diverged: status "failed", reason and traceback."""
    return {
        "record_version": RECORD_VERSION,
        "run_id": identity,
        "status": "failed",
        "reason": f"{type(error).__name__}: {error}",
        "traceback": "".join(traceback.format_exception(error)),
        "config": config.to_dict(),
        "dataset": dataset,
        "env": {**package_versions(), "platform": platform.platform(), "host": platform.node(),
                "git_revision": git_revision()},
        "failed_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "seconds": seconds,
    }


def record_path(out_dir, identity: str, failed: bool = False) -> Path:
    """`<out>/<run_id>.json` for a complete record, `<out>/<run_id>.failed.json` for a failure."""
    return Path(out_dir) / f"{identity}{'.failed' if failed else ''}.json"


def save_record(record: dict, out_dir) -> Path:
    """Write a complete or failure record atomically; a complete one removes the run's old failure."""
    failed = record["status"] != "complete"
    path = write_json_atomic(record_path(out_dir, record["run_id"], failed), record)
    if not failed:
        record_path(out_dir, record["run_id"], failed=True).unlink(missing_ok=True)
    return path
