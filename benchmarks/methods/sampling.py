"""Epoch orders for class-balanced batches, drawn on the device from the in-memory labels.

`epoch_order(Sampling(kind, positive_rate), y, batch_size, gen)` returns the indices of one epoch;
the trainer cuts it into consecutive batches of `batch_size`. Index tensors only, no per-sample
Python. Kinds:

- `none`: a permutation of the training set (every sample once).
- `weighted`: N draws with replacement, each class with probability 1/2 (torch's
  WeightedRandomSampler with inverse class-frequency weights).
- `oversample`: every negative once and as many positives, cycling through shuffled positives.
- `undersample`: every positive once and as many randomly chosen negatives.
- `dual`: LibAUC's DualSampler: every negative once, each batch holding round(rate x batch_size)
  positives drawn by cycling through shuffled positives (rate at least the data's positive rate).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from benchmarks.core.errors import CritBenchError

SAMPLERS = ("none", "weighted", "oversample", "undersample")
KINDS = SAMPLERS + ("dual",)


@dataclass(frozen=True)
class Sampling:
    """A batch-sampling choice: its kind and, for `dual`, the positives' share of each batch."""

    kind: str = "none"
    positive_rate: float = 0.5

    def __post_init__(self):
        if self.kind not in KINDS:
            raise CritBenchError(f"unknown sampler {self.kind!r}; valid: {', '.join(SAMPLERS)}")
        if self.kind == "dual" and not 0 < self.positive_rate < 1:
            raise CritBenchError(f"the positive sampling rate must be in (0, 1), got {self.positive_rate}")


def _shuffle(index: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    return index[torch.randperm(len(index), generator=gen, device=index.device)]


def _cycle(index: torch.Tensor, n: int, gen: torch.Generator) -> torch.Tensor:
    """`n` entries of `index`: whole shuffled passes, so each one repeats at most once more than another."""
    passes = math.ceil(n / len(index))
    keys = torch.rand((passes, len(index)), generator=gen, device=index.device)
    return index[keys.argsort(dim=1).flatten()[:n]]


def epoch_order(sampling: Sampling, y: torch.Tensor, batch_size: int, gen: torch.Generator) -> torch.Tensor:
    """Indices into `y` (float or uint8 labels on the device) for one epoch of `sampling`."""
    if sampling.kind == "none":
        return torch.randperm(len(y), generator=gen, device=y.device)
    positive = y > 0.5
    if sampling.kind == "weighted":
        n_pos = positive.sum()
        weights = torch.where(positive, 1 / n_pos.clamp(min=1), 1 / (len(y) - n_pos).clamp(min=1))
        return torch.multinomial(weights.float(), len(y), replacement=True, generator=gen)
    pos, neg = positive.nonzero().flatten(), (~positive).nonzero().flatten()  # one host sync per epoch
    if len(pos) == 0 or len(neg) == 0:
        raise CritBenchError(f"sampler {sampling.kind!r} needs both classes in train, got {len(pos)} positives")
    if sampling.kind == "oversample":
        return _shuffle(torch.cat([neg, _cycle(pos, len(neg), gen)]), gen)
    if sampling.kind == "undersample":
        return _shuffle(torch.cat([pos, _cycle(neg, len(pos), gen)]), gen)
    # LibAUC recommends a rate above the data's own; below it (a majority critical class, as in
    # PneumoniaMNIST) the data's rate is used, so no positive is dropped from the epoch.
    rate = max(sampling.positive_rate, len(pos) / len(y))
    per_batch = min(batch_size - 1, max(1, round(rate * batch_size)))
    batches = math.ceil(len(neg) / (batch_size - per_batch))
    negatives = torch.cat([_shuffle(neg, gen), _cycle(neg, batches * (batch_size - per_batch) - len(neg), gen)])
    positives = _cycle(pos, batches * per_batch, gen)
    return torch.cat([positives.view(batches, per_batch), negatives.view(batches, -1)], dim=1).flatten()
