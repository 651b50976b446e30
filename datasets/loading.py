"""`create_dataset` (load, then the seeded train-only subsampling and the split check) and
`dataset_fingerprint` (the checksum a load would record, without loading)."""
from __future__ import annotations

import os
from pathlib import Path

from benchmarks.core.errors import CritBenchError
from datasets.base import BinaryDataset, check_splits, seeded_generator
from datasets.registry import DatasetEntry, LoadRequest, get_dataset_entry
from datasets.subsample import inject_imbalance, subset_train


def resolve_data_dir(data_dir: str | os.PathLike | None) -> Path | None:
    """`--data-dir`, else `$CRITBENCH_DATA`, else None (each adapter's own default)."""
    chosen = data_dir or os.environ.get("CRITBENCH_DATA")
    if not chosen:
        return None
    path = Path(chosen).expanduser()
    origin = "--data-dir" if data_dir else "CRITBENCH_DATA"
    if path.is_symlink() and not path.exists():
        raise CritBenchError(f"{origin} {path} is a broken or looping symbolic link; point it at the folder that holds the data")
    if path.exists() and not path.is_dir():
        raise CritBenchError(f"{origin} {path} is a file, not a folder; point it at the folder that holds the data")
    return path


def load_request(name: str, *, size: int | None = None, data_dir=None, seed: int = 0,
                 params: dict | None = None) -> tuple[DatasetEntry, LoadRequest]:
    """`name`'s registry entry and the request its adapter gets (default size, size validated)."""
    entry = get_dataset_entry(name)
    size = entry.check_size(size)
    entry.validate_params(dict(params or {}))  # every load (a run, an export, a fingerprint) checks its --params
    return entry, LoadRequest(size=size, data_dir=resolve_data_dir(data_dir), seed=seed, params=dict(params or {}))


def create_dataset(name: str, *, size: int | None = None, data_dir=None, seed: int = 0,
                   imbalance: float | None = None, max_train_samples: int | None = None,
                   params: dict | None = None, task: str = "binary") -> BinaryDataset:
    """Load `name` in the `task` framing (`BinaryDataset.framed`: binary drops the class labels), then
    apply train-only imbalance injection and stratified subsetting (seeded)."""
    entry, request = load_request(name, size=size, data_dir=data_dir, seed=seed, params=params)
    dataset = entry.loader(request).framed(task)
    gen = seeded_generator(seed)
    ratio = imbalance if imbalance is not None else entry.default_imbalance
    if ratio is not None:
        inject_imbalance(dataset, ratio, gen)
    if max_train_samples is not None:
        subset_train(dataset, max_train_samples, gen)
    return check_splits(dataset)


def dataset_fingerprint(name: str, *, size: int | None = None, data_dir=None, seed: int = 0,
                        params: dict | None = None) -> str | None:
    """The `source_md5` that `create_dataset` with these arguments would record, from the source
    files' bytes without decoding them; None for adapters without a source checksum (synthetic).
    Missing or corrupt sources raise the loader's errors."""
    entry, request = load_request(name, size=size, data_dir=data_dir, seed=seed, params=params)
    return None if entry.fingerprint is None else entry.fingerprint(request)
