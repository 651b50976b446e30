"""Tiny learnable imbalanced datasets in 2D and 3D, for tests and offline demos: binary
(synthetic2d, synthetic3d) and of four classes (synthetic2d_mc, synthetic3d_mc, for `--task multiclass`).

Negatives are smooth noise; positives add a faint bright blob at a random position, so a small
network learns the task in a few epochs while the problem stays imperfectly separable.
"""
from __future__ import annotations

from functools import partial
from pathlib import Path

import torch

from datasets.base import BinaryDataset, Split, seeded_generator
from datasets.critical import PARAM, PARAM_HELP, CriticalDefault, canonical_params, choose_critical
from datasets.registry import LoadRequest, register_dataset
from datasets.stand_in import StandIn

DEFAULT_COUNTS = {"train": (240, 24), "val": (96, 24), "test": (96, 24)}  # (negatives, positives)
PARAMS = {"n_train": "number of training samples (default 264, 1 positive per 10 negatives)"}
# The multi-class stand-in (synthetic2d_mc, synthetic3d_mc): samples per class and split; the
# critical class is the rarest.
CLASSES = ("noise", "low blob", "middle blob", "high blob")
CLASS_COUNTS = {"train": (96, 48, 48, 16), "val": (32, 16, 16, 12), "test": (32, 16, 16, 12)}
CLASS_CRITICAL = CriticalDefault((3,), "high blob: the rarest class")


def blobs(centres: torch.Tensor, dims: int, size: int) -> torch.Tensor:
    """Faint Gaussian blobs (peak 0.35, sd size/8) at `centres` `(n, dims)`: `(n, *spatial)`."""
    n = len(centres)
    grid = torch.stack(torch.meshgrid(*[torch.arange(size, dtype=torch.float32)] * dims, indexing="ij"))
    distance2 = ((grid.unsqueeze(0) - centres.view(n, dims, *([1] * dims))) ** 2).sum(1)
    return 0.35 * torch.exp(-distance2 / (2 * (size / 8) ** 2))


def to_pixels(images: torch.Tensor) -> torch.Tensor:
    return (images.clamp(0, 1) * 255).round().to(torch.uint8)


def make_split(n_neg: int, n_pos: int, dims: int, size: int, gen: torch.Generator) -> Split:
    """`n_neg` noise images and `n_pos` with a faint Gaussian blob, shuffled, drawn from `gen`."""
    n = n_neg + n_pos
    shape = (n, 1) + (size,) * dims
    images = 0.35 + 0.12 * torch.randn(shape, generator=gen)
    labels = torch.cat([torch.zeros(n_neg), torch.ones(n_pos)]).to(torch.uint8)
    centres = size * (0.25 + 0.5 * torch.rand((n_pos, dims), generator=gen))
    images[n_neg:, 0] += blobs(centres, dims, size)
    order = torch.randperm(n, generator=gen)
    return Split(to_pixels(images)[order].contiguous(), labels[order])


def make_class_split(counts: tuple[int, ...], critical: tuple[int, ...], dims: int, size: int,
                     gen: torch.Generator) -> Split:
    """`counts[k]` images of each class k of `CLASSES`, shuffled, drawn from `gen`: class 0 noise,
    class k > 0 a faint blob whose centre's first coordinate lies in the k-th third of the image
    (the others anywhere in the middle half); `critical` labels make the binary `y`."""
    n = sum(counts)
    images = 0.35 + 0.12 * torch.randn((n, 1) + (size,) * dims, generator=gen)
    classes = torch.cat([torch.full((count,), k) for k, count in enumerate(counts)])
    has_blob = classes > 0
    centres = size * (0.25 + 0.5 * torch.rand((int(has_blob.sum()), dims), generator=gen))
    centres[:, 0] = size * (classes[has_blob] - 1 + torch.rand(len(centres), generator=gen)) / 3
    images[has_blob, 0] += blobs(centres, dims, size)
    order = torch.randperm(n, generator=gen)
    y = torch.isin(classes, torch.tensor(critical)).to(torch.uint8)
    return Split(to_pixels(images)[order].contiguous(), y[order], classes[order].to(torch.uint8))


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


def load_synthetic_classes(dims: int, request: LoadRequest) -> BinaryDataset:
    """`CLASSES` in `dims` dimensions at `--size`, drawn from the run's seed; the critical class is
    `--param critical` or the rarest, `central blob`."""
    choice = choose_critical(request.params, list(CLASSES), CLASS_CRITICAL, f"synthetic{dims}d_mc")
    gen = seeded_generator(1000 + request.seed)
    splits = {name: make_class_split(counts, choice.labels, dims, request.size, gen) for name, counts in CLASS_COUNTS.items()}
    return BinaryDataset(
        name=f"synthetic{dims}d_mc",
        dims=dims,
        critical_class=choice.name,
        negative_class="the other classes",
        notes={"generator_seed": 1000 + request.seed, **choice.record()},
        class_names=list(CLASSES),
        critical_labels=choice.labels,
        **splits,
    )


def check_class_params(dims: int, params: dict) -> dict:
    """`params` checked before loading, `critical` in its canonical form."""
    return canonical_params(params, list(CLASSES), CLASS_CRITICAL, f"synthetic{dims}d_mc")


for _dims in (2, 3):
    register_dataset(
        f"synthetic{_dims}d_mc",
        dims=_dims,
        sizes=(16, 8, 28, 32, 64),
        description=f"tiny learnable {_dims}D data of {len(CLASSES)} classes (noise and blobs in three places) for "
                    f"tests of --task multiclass; critical class: {CLASSES[CLASS_CRITICAL.labels[0]]}",
        params={PARAM: PARAM_HELP},
        stand_in=stand_in_synthetic,
        check_params=partial(check_class_params, _dims),
        class_labels="multi-class",
    )(partial(load_synthetic_classes, _dims))
    register_dataset(
        f"synthetic{_dims}d",
        dims=_dims,
        sizes=(16, 8, 28, 32, 64),
        description=f"tiny learnable imbalanced {_dims}D data for tests and offline demos",
        params=PARAMS,
        stand_in=stand_in_synthetic,
    )(partial(load_synthetic, _dims))
