"""Tiny learnable imbalanced datasets in 2D and 3D, for tests and offline demos.

Negatives are smooth noise; positives add a faint bright blob at a random position, so a small
network learns the task in a few epochs while the problem stays imperfectly separable.
"""
from __future__ import annotations

from functools import partial
from pathlib import Path

import torch

from datasets.base import BinaryDataset, Split, seeded_generator
from datasets.registry import LoadRequest, register_dataset
from datasets.stand_in import StandIn

DEFAULT_COUNTS = {"train": (240, 24), "val": (96, 24), "test": (96, 24)}  # (negatives, positives)
PARAMS = {"n_train": "number of training samples (default 264, 1 positive per 10 negatives)"}


def make_split(n_neg: int, n_pos: int, dims: int, size: int, gen: torch.Generator) -> Split:
    """`n_neg` noise images and `n_pos` with a faint Gaussian blob, shuffled, drawn from `gen`."""
    n = n_neg + n_pos
    shape = (n, 1) + (size,) * dims
    images = 0.35 + 0.12 * torch.randn(shape, generator=gen)
    labels = torch.cat([torch.zeros(n_neg), torch.ones(n_pos)]).to(torch.uint8)
    grid = torch.stack(torch.meshgrid(*[torch.arange(size, dtype=torch.float32)] * dims, indexing="ij"))
    centres = size * (0.25 + 0.5 * torch.rand((n_pos, dims), generator=gen))
    distance2 = ((grid.unsqueeze(0) - centres.view(n_pos, dims, *([1] * dims))) ** 2).sum(1)
    images[n_neg:, 0] += 0.35 * torch.exp(-distance2 / (2 * (size / 8) ** 2))
    order = torch.randperm(n, generator=gen)
    pixels = (images.clamp(0, 1) * 255).round().to(torch.uint8)
    return Split(pixels[order].contiguous(), labels[order])


def stand_in_synthetic(folder: Path) -> StandIn:
    """Generated in memory: nothing to write, only a small side."""
    return StandIn(size=8)


def load_synthetic(dims: int, request: LoadRequest) -> BinaryDataset:
    """Noise vs a faint blob in `dims` dimensions at `--size`, drawn from the run's seed (each seed
    its own splits); `--param n_train` sets the training size."""
    gen = seeded_generator(1000 + request.seed)
    counts = dict(DEFAULT_COUNTS)
    if "n_train" in request.params:
        n = request.number("n_train", None, int, low=4)  # at least 2 per class
        counts["train"] = (n - max(2, n // 11), max(2, n // 11))
    splits = {name: make_split(*counts[name], dims, request.size, gen) for name in counts}
    return BinaryDataset(
        name=f"synthetic{dims}d",
        dims=dims,
        critical_class="blob",
        negative_class="noise",
        notes={"generator_seed": 1000 + request.seed},
        **splits,
    )


for _dims in (2, 3):
    register_dataset(
        f"synthetic{_dims}d",
        dims=_dims,
        sizes=(16, 8, 28, 32, 64),
        description=f"tiny learnable imbalanced {_dims}D data for tests and offline demos",
        params=PARAMS,
        stand_in=stand_in_synthetic,
    )(partial(load_synthetic, _dims))
