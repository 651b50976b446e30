"""Epoch orders for class-balanced batches, drawn on the device from the in-memory labels.

`epoch_order(Sampling(kind, positive_rate), y, batch_size, gen)` returns the indices of one epoch;
the trainer cuts it into consecutive batches of `batch_size`. Index tensors only, no per-sample
Python. Kinds:

- `none`: a permutation of the training set (every sample once).
- `weighted`: N draws with replacement, each class with probability 1/2 (torch's
  WeightedRandomSampler with inverse class-frequency weights).
- `oversample`: every negative once and as many positives, cycling through shuffled positives.
- `undersample`: every positive once and as many randomly chosen negatives.
- `dual`: LibAUC's DualSampler (libauc/sampler/sampler.py): batches of `n_pos = int(rate x
  batch_size)` (at least 1) positives and `batch_size - n_pos` negatives, `max(P // n_pos, N //
  n_neg)` of them per epoch, each class drawn in whole shuffled passes (the class that runs out
  first repeats), so neither class is dropped.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from benchmarks.core.errors import CritBenchError

SAMPLERS = ("none", "weighted", "oversample", "undersample")  # the batch samplers `--sampler` offers
KINDS = SAMPLERS + ("dual",)  # and the one that methods composing their own batches ask for (`Method.sampling`)


@dataclass(frozen=True)
class Sampling:
    """A batch-sampling choice: its kind and, for `dual`, the positives' share of each batch."""

    kind: str = "none"
    positive_rate: float = 0.5

    def __post_init__(self):
        if self.kind not in KINDS:
            raise CritBenchError(f"unknown --sampler {self.kind!r}; valid: {', '.join(SAMPLERS)}")
        if self.kind == "dual" and not 0 < self.positive_rate < 1:
            raise CritBenchError(f"the positive sampling rate must be in (0, 1), got {self.positive_rate}")

    def batch_positive_rate(self, train_positive_rate: float, batch_size: int) -> float:
        """The positives' share of the batches this sampling draws (its expectation where it varies)."""
        if self.kind == "dual":
            return dual_positives(self.positive_rate, batch_size) / batch_size
        return train_positive_rate if self.kind == "none" else 0.5


# The params of the methods that draw LibAUC's DualSampler batches themselves: each stage's share of
# positives (the CE pre-training's, the AUC stage's; 0, where the method allows it: the run's --sampler).
DUAL_RATES = ("pretrain_sampling_rate", "sampling_rate")


def dual_sampler_refusal(method: str, params, sampler: str, zero_allowed: bool) -> str | None:
    """Why `--sampler sampler` cannot train `method` with `params` (what to do included), or None:
    a stage whose `DUAL_RATES` rate is not 0 draws DualSampler batches, which --sampler would not
    change. `zero_allowed`: the method accepts 0 for those rates (it then draws with --sampler)."""
    rates = {key: getattr(params, key) for key in DUAL_RATES if getattr(params, key, 0)}
    if sampler == "none" or not rates:
        return None
    remedy = (f"pass --param {' --param '.join(f'{key}=0' for key in rates)} to train with --sampler {sampler}, or "
              f"drop --sampler" if zero_allowed else "drop --sampler (its sampling_rate must stay in (0, 1))")
    return (f"--method {method} composes its batches itself (LibAUC's DualSampler, "
            f"{', '.join(f'{key}={rate:g}' for key, rate in rates.items())}), which --sampler {sampler} would not "
            f"change: {remedy}")


def dual_positives(rate: float, batch_size: int) -> int:
    """Positives per DualSampler batch: LibAUC's `int(sampling_rate * batch_size)`, at least 1."""
    return max(1, int(rate * batch_size))


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
    n_pos = dual_positives(sampling.positive_rate, batch_size)
    n_neg = batch_size - n_pos
    batches = max(1, len(pos) // n_pos, len(neg) // n_neg)
    positives, negatives = _cycle(pos, batches * n_pos, gen), _cycle(neg, batches * n_neg, gen)
    return torch.cat([positives.view(batches, n_pos), negatives.view(batches, n_neg)], dim=1).flatten()
