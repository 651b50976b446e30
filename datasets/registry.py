"""The dataset registry: `@register_dataset`, `list_datasets()`, `get_dataset_entry()`."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from benchmarks.core.errors import CritBenchError
from benchmarks.core.registry import Registry
from datasets.base import BinaryDataset
from datasets.stand_in import StandIn


@dataclass(frozen=True)
class LoadRequest:
    """What an adapter gets: plain values, no CLI objects."""

    size: int
    data_dir: Path | None
    seed: int
    params: dict

    def number(self, key: str, default, kind=float, low: float | None = None, high: float | None = None):
        """Dataset parameter `key` as a finite `kind` (int or float) in [low, high], else `default`;
        CritBenchError naming `--param key` for anything else (`n_train=abc`, `val_fraction=nan`)."""
        if key not in self.params:
            return default
        text = self.params[key]
        try:
            value = kind(text) if not isinstance(text, bool) else None
            finite = value is not None and math.isfinite(value)
        except (TypeError, ValueError, OverflowError):
            finite = False
        span = (f" in [{low}, {high}]" if low is not None and high is not None else f" >= {low}" if low is not None
                else f" <= {high}" if high is not None else "")
        if not finite or (low is not None and value < low) or (high is not None and value > high):
            raise CritBenchError(f"--param {key}={text} is invalid; valid: {'an integer' if kind is int else 'a number'}{span}")
        return value


@dataclass(frozen=True)
class DatasetEntry:
    """A registered dataset: its loader and what can be checked without loading it (dims, sizes,
    `--param` keys, protocol defaults, stand-in, fingerprint)."""

    name: str
    loader: Callable[[LoadRequest], BinaryDataset]
    dims: int
    sizes: tuple[int, ...]
    description: str
    default_imbalance: float | None = None
    params: dict = field(default_factory=dict)  # accepted `--param` keys -> their help text
    size_range: tuple[int, int] | None = None  # any side in [low, high] is valid too; sizes[0] is the default
    stand_in: Callable[[Path], StandIn] | None = None  # writes a tiny copy in the real format (tests)
    fingerprint: Callable[[LoadRequest], str] | None = None  # the loader's source_md5, without loading
    patience: int = 0  # early-stopping patience of the dataset's protocol (0: never stop, MedMNIST v2)
    machine_params: frozenset[str] = frozenset()  # `params` naming paths on this machine: not in a run's identity
    check_params: Callable[[dict], dict] | None = None  # refuses bad `params` before any data is read; returns them canonical
    class_labels: str | None = None  # the labels --task multiclass trains: "multi-class", "multi-label" (None: binary only)
    preset: str | None = None  # the method preset of the dataset's protocol, for the methods that have it
    epochs: int | None = None  # the epochs of the dataset's protocol (None: RunConfig's default)
    augment: str | None = None  # the training augmentation its loader sets, what runs without --augment (None: none)

    def validate_params(self, params: dict) -> dict:
        """CritBenchError for `--param` keys this dataset does not read (a typo such as `val_fration`
        would silently keep the default and still change the run id) and values it cannot load
        (e.g. an unknown critical class), raised while a run is planned, before any data is read.
        Returns the params with values in their canonical form (`check_params`'s), which a run's
        identity is made of."""
        unknown = sorted(set(params) - set(self.params))
        if unknown:
            raise CritBenchError(f"dataset {self.name} has no --param {', '.join(unknown)}; valid: "
                                 f"{', '.join(sorted(self.params)) or 'none'}")
        return params if self.check_params is None else self.check_params(params)

    def accepts_size(self, size: int) -> bool:
        return size in self.sizes or (self.size_range is not None and self.size_range[0] <= size <= self.size_range[1])

    def valid_sizes(self) -> str:
        listed = ", ".join(map(str, self.sizes))
        return listed if self.size_range is None else f"{listed} or any side from {self.size_range[0]} to {self.size_range[1]}"

    def check_size(self, size: int | None) -> int:
        """`size`, or the default when None; CritBenchError naming --size for a side the data does not have."""
        size = self.sizes[0] if size is None else size
        if not self.accepts_size(size):
            raise CritBenchError(f"--size {size} is not available for {self.name}; valid: {self.valid_sizes()}")
        return size


DATASETS: Registry[DatasetEntry] = Registry("dataset")
CLASS_LABELS = ("multi-class", "multi-label")


def register_dataset(name: str, *, dims: int, sizes: tuple[int, ...], description: str,
                     default_imbalance: float | None = None, params: dict | None = None,
                     size_range: tuple[int, int] | None = None, stand_in: Callable[[Path], StandIn] | None = None,
                     fingerprint: Callable[[LoadRequest], str] | None = None, patience: int = 0,
                     machine_params: tuple[str, ...] = (), check_params: Callable[[dict], dict] | None = None,
                     class_labels: str | None = None, preset: str | None = None, epochs: int | None = None,
                     augment: str | None = None):
    """Decorator registering `loader(request) -> BinaryDataset` under `name`.

    `params` names the `--param` keys the adapter reads (key -> help text). `sizes[0]` is the
    default side; `size_range` (low, high) also accepts any side in between (adapters that resize).
    `dims` is the usual dimensionality (it picks the default batch size); an adapter may return
    a dataset of other dims when its files say so (2D NIfTI slices). `stand_in(folder)` writes a
    tiny copy of the data in the adapter's real on-disk format for the generic test;
    `fingerprint(request)` returns the `source_md5` the loader would record, without decoding
    (adapters without a source checksum give none). `patience` is the early stopping of the
    dataset's protocol, used when a run sets none (0: train every epoch, as MedMNIST v2).
    `machine_params` are the `params` that only say where files are on this machine (a cache
    folder, the labels file): they never change the tensors, whose content the fingerprint
    checks, so they stay out of a run's identity. `check_params(params)` raises CritBenchError for
    values the loader would refuse, so a run or suite refuses them before any data is read, and
    returns the params with each value in one canonical spelling (the run's identity).
    `class_labels` says what the splits' `classes` hold for `--task multiclass`: "multi-class"
    (one label per sample) or "multi-label" (several findings); None: the binary task only.
    `preset` names the method preset of the dataset's protocol (`--param preset`, applied to the
    methods whose `presets` have it when a run sets none); `epochs` its training length, which the
    command line uses when `--epochs` is not given. `augment` is the training augmentation the
    loader's datasets carry (`BinaryDataset.augment`), so a run can tell `--augment <it>` from
    another before loading (one training, one run id)."""
    if class_labels not in (None, *CLASS_LABELS):
        raise ValueError(f"dataset {name}: class_labels must be one of {CLASS_LABELS} or None, got {class_labels!r}")
    unknown = set(machine_params) - set(params or {})
    if unknown:
        raise ValueError(f"dataset {name}: machine_params {sorted(unknown)} are not among its params")

    def add(loader):
        DATASETS.register(name)(
            DatasetEntry(name, loader, dims, sizes, description, default_imbalance, dict(params or {}), size_range,
                         stand_in, fingerprint, patience, frozenset(machine_params), check_params, class_labels,
                         preset, epochs, augment)
        )
        return loader

    return add


def list_datasets() -> list[str]:
    """The registered dataset names, sorted."""
    return DATASETS.names()


def get_dataset_entry(name: str) -> DatasetEntry:
    """The registry entry of dataset `name`; CritBenchError listing the valid names for an unknown one."""
    return DATASETS.get(name)
