"""A whole benchmark run from a config: load data, train, and write the JSON record."""
from __future__ import annotations

import time
from pathlib import Path

from benchmarks.config import RunConfig, resolve_config
from benchmarks.record import environment, stable_hash, write_json_atomic
from benchmarks.train import Trainer
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
    trainer = Trainer(config, dataset, progress=progress)
    result = trainer.fit()
    return {
        "record_version": RECORD_VERSION,
        "run_id": run_id(config, dataset_record["source_md5"] or dataset_record["tensor_md5"]),
        "status": "complete",
        "config": config.to_dict(),
        "dataset": dataset_record,
        "env": environment(trainer.device),
        **result,
        "seconds": time.perf_counter() - started,
    }


def save_record(record: dict, out_dir) -> Path:
    return write_json_atomic(Path(out_dir) / f"{record['run_id']}.json", record)
