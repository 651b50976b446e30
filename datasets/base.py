"""The in-memory binary dataset every adapter produces, and the seeded subsampling helpers."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import torch

from benchmarks.errors import CritBenchError

SPLITS = ("train", "val", "test")


@dataclass
class Split:
    """Images as uint8 `(N, C, *spatial)` and labels as uint8 `(N,)`, 1 = the critical class."""

    x: torch.Tensor
    y: torch.Tensor

    def __post_init__(self):
        if self.x.dtype != torch.uint8 or self.y.dtype != torch.uint8:
            raise TypeError("Split tensors must be uint8")
        if self.x.shape[0] != self.y.shape[0] or self.y.ndim != 1:
            raise ValueError(f"images {tuple(self.x.shape)} and labels {tuple(self.y.shape)} disagree")

    def __len__(self) -> int:
        return self.y.shape[0]

    @property
    def positives(self) -> int:
        return int(self.y.sum())

    def take(self, index: torch.Tensor) -> "Split":
        return Split(self.x[index], self.y[index])

    def summary(self) -> dict:
        return {"n": len(self), "positives": self.positives}


@dataclass
class BinaryDataset:
    """Train/val/test splits of a binary task plus what a run record needs to know about them."""

    name: str
    dims: int
    critical_class: str
    negative_class: str
    train: Split
    val: Split
    test: Split
    source_md5: str | None = None
    mean: tuple[float, ...] = (0.5,)
    std: tuple[float, ...] = (0.5,)
    augment: str | None = None
    notes: dict = field(default_factory=dict)

    @property
    def in_channels(self) -> int:
        return self.train.x.shape[1]

    @property
    def splits(self) -> dict[str, Split]:
        return {"train": self.train, "val": self.val, "test": self.test}

    def tensor_md5(self) -> str:
        """md5 of every split's image and label bytes: identifies the exact tensors trained on."""
        digest = hashlib.md5()
        for split in self.splits.values():
            digest.update(split.x.contiguous().numpy().tobytes())
            digest.update(split.y.contiguous().numpy().tobytes())
        return digest.hexdigest()

    def record(self) -> dict:
        return {
            "name": self.name,
            "dims": self.dims,
            "critical_class": self.critical_class,
            "negative_class": self.negative_class,
            "source_md5": self.source_md5,
            "tensor_md5": self.tensor_md5(),
            "shape": list(self.train.x.shape[1:]),
            "splits": {name: split.summary() for name, split in self.splits.items()},
            **self.notes,
        }


def file_md5(path, chunk: int = 1 << 20) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def seeded_generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _pick(index: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
    return index[torch.randperm(len(index), generator=gen)[:k]]


def imbalance_index(y: torch.Tensor, ratio: float, gen: torch.Generator) -> torch.Tensor:
    """Sorted indices keeping every negative and one positive per `ratio` negatives (at least 1)."""
    if ratio <= 0:
        raise CritBenchError(f"--imbalance must be positive (negatives per positive), got {ratio}")
    pos, neg = (y == 1).nonzero().flatten(), (y == 0).nonzero().flatten()
    keep = max(1, int(len(neg) / ratio))
    if keep > len(pos):
        raise CritBenchError(
            f"--imbalance {ratio:g} needs {keep} positives but train has only {len(pos)}; "
            f"the natural ratio is 1:{len(neg) / max(len(pos), 1):.1f}: use a larger ratio"
        )
    return torch.cat([neg, _pick(pos, keep, gen)]).sort().values


def stratified_index(y: torch.Tensor, n: int, gen: torch.Generator) -> torch.Tensor:
    """Sorted indices of a class-stratified subset of size about `n`, at least 2 of each class."""
    if n >= len(y):
        return torch.arange(len(y))
    pos, neg = (y == 1).nonzero().flatten(), (y == 0).nonzero().flatten()
    n_pos = min(len(pos), max(2, round(n * len(pos) / len(y))))
    n_neg = min(len(neg), max(2, n - n_pos))
    return torch.cat([_pick(pos, n_pos, gen), _pick(neg, n_neg, gen)]).sort().values


def check_splits(dataset: BinaryDataset) -> BinaryDataset:
    """Refuse splits that cannot be trained or scored (a split without both classes)."""
    for name, split in dataset.splits.items():
        if split.positives == 0 or split.positives == len(split):
            raise CritBenchError(
                f"{dataset.name}: the {name} split has {split.positives} positives out of "
                f"{len(split)}; every split needs both classes to train and compute AUC"
            )
    return dataset
