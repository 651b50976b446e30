"""The dataset registry: `@register_dataset`, `list_datasets()`, `create_dataset()`."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from benchmarks.core.errors import CritBenchError
from benchmarks.core.registry import Registry
from datasets.base import (
    BinaryDataset,
    check_splits,
    imbalance_index,
    seeded_generator,
    stratified_index,
)


@dataclass(frozen=True)
class LoadRequest:
    """What an adapter gets: plain values, no CLI objects."""

    size: int
    data_dir: Path | None
    seed: int
    params: dict


@dataclass(frozen=True)
class DatasetEntry:
    name: str
    loader: Callable[[LoadRequest], BinaryDataset]
    dims: int
    sizes: tuple[int, ...]
    description: str
    default_imbalance: float | None = None
    params: dict = field(default_factory=dict)  # accepted `--param` keys -> their help text
    size_range: tuple[int, int] | None = None  # any side in [low, high] is valid too; sizes[0] is the default

    def accepts_size(self, size: int) -> bool:
        return size in self.sizes or (self.size_range is not None and self.size_range[0] <= size <= self.size_range[1])

    def valid_sizes(self) -> str:
        listed = ", ".join(map(str, self.sizes))
        return listed if self.size_range is None else f"{listed} or any side from {self.size_range[0]} to {self.size_range[1]}"


DATASETS: Registry[DatasetEntry] = Registry("dataset")


def register_dataset(name: str, *, dims: int, sizes: tuple[int, ...], description: str,
                     default_imbalance: float | None = None, params: dict | None = None,
                     size_range: tuple[int, int] | None = None):
    """Decorator registering `loader(request) -> BinaryDataset` under `name`.

    `params` names the `--param` keys the adapter reads (key -> help text). `sizes[0]` is the
    default side; `size_range` (low, high) also accepts any side in between (adapters that resize).
    `dims` is the usual dimensionality (it picks the default batch size); an adapter may return
    a dataset of other dims when its files say so (2D NIfTI slices)."""

    def add(loader):
        DATASETS.register(name)(
            DatasetEntry(name, loader, dims, sizes, description, default_imbalance, dict(params or {}), size_range)
        )
        return loader

    return add


def list_datasets() -> list[str]:
    return DATASETS.names()


def get_dataset_entry(name: str) -> DatasetEntry:
    return DATASETS.get(name)


def resolve_data_dir(data_dir: str | os.PathLike | None) -> Path | None:
    """`--data-dir`, else `$CRITBENCH_DATA`, else None (each adapter's own default)."""
    chosen = data_dir or os.environ.get("CRITBENCH_DATA")
    return Path(chosen).expanduser() if chosen else None


def create_dataset(name: str, *, size: int | None = None, data_dir=None, seed: int = 0,
                   imbalance: float | None = None, max_train_samples: int | None = None,
                   params: dict | None = None) -> BinaryDataset:
    """Load `name`, then apply train-only imbalance injection and stratified subsetting (seeded)."""
    entry = get_dataset_entry(name)
    size = entry.sizes[0] if size is None else size
    if not entry.accepts_size(size):
        raise CritBenchError(f"--size {size} is not available for {name}; valid: {entry.valid_sizes()}")
    request = LoadRequest(size=size, data_dir=resolve_data_dir(data_dir), seed=seed, params=dict(params or {}))
    dataset = entry.loader(request)
    gen = seeded_generator(seed)
    ratio = imbalance if imbalance is not None else entry.default_imbalance
    if ratio is not None:
        loaded, keep = dataset.train, imbalance_index(dataset.train.y, ratio, gen)
        kept_positives = keep[loaded.y[keep] == 1]
        dataset.train = loaded.take(keep)
        dataset.notes["imbalance"] = ratio
        # Which training positives survived: indices into the adapter's train split, before any subsetting.
        dataset.notes["imbalance_positives"] = {"available": loaded.positives, "kept": len(kept_positives),
                                                "kept_index": kept_positives.tolist()}
    if max_train_samples is not None:
        if max_train_samples < 4:
            raise CritBenchError(f"--max-train-samples must be at least 4, got {max_train_samples}")
        dataset.train = dataset.train.take(stratified_index(dataset.train.y, max_train_samples, gen))
        dataset.notes["max_train_samples"] = max_train_samples
    return check_splits(dataset)
