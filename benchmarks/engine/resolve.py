"""From a config to what a run trains: the recipe's defaults filled in and every name checked
against its registry (before any data is loaded), then the dataset."""
from __future__ import annotations

import dataclasses

from benchmarks.core.config import BATCH_SIZE, RunConfig, check_values
from benchmarks.core.errors import CritBenchError
from benchmarks.engine.augment import create_augmentation
from benchmarks.engine.trainer import resolve_device
from benchmarks.methods import resolve_params
from benchmarks.methods.sampling import SAMPLERS
from datasets import BinaryDataset, create_dataset, get_dataset_entry
from models3d import STEMS, list_models


def resolve_config(config: RunConfig) -> RunConfig:
    """Fill every default (batch size, size, hyperparameters) and validate, so the record is complete.

    `params` may mix dataset and method keys (one `--param` flag); the dataset's keys are moved to
    `dataset_params` here, the only place they are told apart."""
    check_values(config)
    resolve_device(config.device)  # a device that is not there is refused before any data is loaded
    entry = get_dataset_entry(config.dataset)
    if config.model not in list_models():
        raise CritBenchError(f"unknown --model {config.model!r}; valid: {', '.join(list_models())}")
    if config.stem not in STEMS:
        raise CritBenchError(f"unknown --stem {config.stem!r}; valid: {', '.join(STEMS)}")
    if config.sampler not in SAMPLERS:
        raise CritBenchError(f"unknown --sampler {config.sampler!r}; valid: {', '.join(SAMPLERS)}")
    create_augmentation(config.augment, entry.dims)  # validates the name
    dataset_params = {**config.dataset_params, **{k: v for k, v in config.params.items() if k in entry.params}}
    method_params = {k: v for k, v in config.params.items() if k not in entry.params}
    return dataclasses.replace(
        config,
        batch_size=config.batch_size or BATCH_SIZE[entry.dims],
        size=config.size or entry.sizes[0],
        params=resolve_params(config.method, method_params),
        dataset_params=dataset_params,
    )


def load_dataset(config: RunConfig) -> BinaryDataset:
    """The dataset of a resolved config, with its train-only imbalance and subsetting applied."""
    return create_dataset(config.dataset, size=config.size, data_dir=config.data_dir, seed=config.seed,
                          imbalance=config.imbalance, max_train_samples=config.max_train_samples,
                          params=config.dataset_params)
