"""Seeded train-only subsampling: imbalance injection (`--imbalance`) and stratified subsets
(`--max-train-samples`), applied by `create_dataset` after the adapter loaded the splits."""
from __future__ import annotations

import math

import torch

from benchmarks.core.errors import CritBenchError
from datasets.base import BinaryDataset


def _pick(index: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
    return index[torch.randperm(len(index), generator=gen)[:k]]


def imbalance_index(y: torch.Tensor, ratio: float, gen: torch.Generator,
                    classes: torch.Tensor | None = None) -> torch.Tensor:
    """Sorted indices keeping every negative and floor(negatives / `ratio`) positives (at least 1),
    drawn uniformly from `gen`: exactly one positive per `ratio` negatives. With per-sample
    `classes` (`--task multiclass`), the kept positives are stratified on the critical classes, one
    of each at least, so no critical class drops out of train."""
    if ratio <= 0:
        raise CritBenchError(f"--imbalance must be positive (negatives per positive), got {ratio}")
    pos, neg = (y == 1).nonzero().flatten(), (y == 0).nonzero().flatten()
    keep = max(1, math.floor(len(neg) / ratio + 1e-9))  # 1e-9: 7 / 0.07 must give 100, not 99
    if keep > len(pos):
        raise CritBenchError(
            f"--imbalance {ratio:g} needs {keep} positives but train has only {len(pos)}; "
            f"the natural ratio is 1:{len(neg) / max(len(pos), 1):.1f}: use a larger ratio"
        )
    if classes is None:
        return torch.cat([neg, _pick(pos, keep, gen)]).sort().values
    critical = len(classes[pos].unique())
    if keep < critical:
        raise CritBenchError(f"--imbalance {ratio:g} keeps {keep} training positives, fewer than the {critical} "
                             f"critical classes, and --task multiclass keeps one of each: use a ratio of at most "
                             f"{math.floor(len(neg) / critical):g}")
    return torch.cat([neg, pos[class_stratified_index(classes[pos], keep, gen)]]).sort().values


def stratified_index(y: torch.Tensor, n: int, gen: torch.Generator) -> torch.Tensor:
    """Sorted indices of a class-stratified subset of size about `n`, at least 2 of each class."""
    if n >= len(y):
        return torch.arange(len(y))
    pos, neg = (y == 1).nonzero().flatten(), (y == 0).nonzero().flatten()
    n_pos = min(len(pos), max(2, round(n * len(pos) / len(y))))
    n_neg = min(len(neg), max(2, n - n_pos))
    return torch.cat([_pick(pos, n_pos, gen), _pick(neg, n_neg, gen)]).sort().values


def class_stratified_index(classes: torch.Tensor, n: int, gen: torch.Generator) -> torch.Tensor:
    """Sorted indices of a subset of size `n` stratified on the per-sample class indices `classes`:
    one sample of every class, the other `n - K` shared in proportion to each class's remaining
    samples (largest remainders)."""
    if n >= len(classes):
        return torch.arange(len(classes))
    present, counts = classes.unique(return_counts=True)
    spare, pool = n - len(present), len(classes) - len(present)
    if spare < 0:
        raise CritBenchError(f"--max-train-samples {n} is fewer than the {len(present)} classes of train, and "
                             f"--task multiclass keeps one sample of each; give at least {len(present)}")
    share = spare * (counts - 1)
    quota = 1 + share // pool
    quota[(share % pool).argsort(descending=True, stable=True)[:n - int(quota.sum())]] += 1
    picks = [_pick((classes == label).nonzero().flatten(), int(k), gen) for label, k in zip(present, quota)]
    return torch.cat(picks).sort().values


def inject_imbalance(dataset: BinaryDataset, ratio: float, gen: torch.Generator) -> None:
    """Keep one training positive per `ratio` negatives; record which positives survived."""
    loaded = dataset.train
    classes = loaded.classes if loaded.classes is not None and loaded.classes.ndim == 1 else None
    keep = imbalance_index(loaded.y, ratio, gen, classes)
    kept_positives = keep[loaded.y[keep] == 1]
    dataset.train = loaded.take(keep)
    dataset.notes["imbalance"] = ratio
    # Which training positives survived: indices into the adapter's train split, before any subsetting.
    dataset.notes["imbalance_positives"] = {"available": loaded.positives, "kept": len(kept_positives),
                                            "kept_index": kept_positives.tolist()}


def subset_train(dataset: BinaryDataset, max_train_samples: int, gen: torch.Generator) -> None:
    """Cut train to a stratified subset of about `max_train_samples`: on the classes where train
    carries one per sample (`--task multiclass`), keeping every class; else (the binary task,
    multi-label findings) on the binary label."""
    if max_train_samples < 4:
        raise CritBenchError(f"--max-train-samples must be at least 4, got {max_train_samples}")
    classes = dataset.train.classes
    if classes is not None and classes.ndim == 1:
        index = class_stratified_index(classes, max_train_samples, gen)
    else:
        index = stratified_index(dataset.train.y, max_train_samples, gen)
    dataset.train = dataset.train.take(index)
    dataset.notes["max_train_samples"] = max_train_samples
