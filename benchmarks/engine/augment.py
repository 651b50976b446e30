"""Batch preprocessing on the training device: uint8 -> normalized float, plus augmentation.

Whole batches at once, drawn from the run's generator; no per-sample Python. An augmentation is
named by `+`-joined operations (`--augment flip+rotate+crop`, `--augment scale+flip`):

- `crop`: random crop after zero padding by 4 (2D); `crop_flip` is crop + horizontal flip (CIFAR).
- `flip`: horizontal flip in 2D; in 3D an independent flip along each spatial axis; p = 0.5.
- `rotate`: rotation by a uniform angle in [-15, 15] degrees, bilinear, zero fill (2D).
- `scale`: intensity x U(0, 1) in training and x 0.5 in evaluation, as MedMNIST's shape-dataset
  transform for the 3D shape volumes (Adrenal, Vessel; recipes.md).

Operations that only apply in training return the batch unchanged in evaluation.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

from benchmarks.core.errors import CritBenchError

ROTATION_DEGREES = 15.0
EVAL_SCALE = 0.5


def normalize(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8-range `(B, C, ...)` to float, scaled to [0, 1] then standardized per channel.

    Divides in place: a float `x` must be a temporary (the augmentations return new tensors)."""
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return (x.float().div_(255) - mean.view(shape)) / std.view(shape)


def crop_flip(x: torch.Tensor, gen: torch.Generator, pad: int = 4, flip: bool = True) -> torch.Tensor:
    """Random crop after zero padding by `pad` and random horizontal flip, per image (2D)."""
    b, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (b, 1), generator=gen, device=x.device)
    dx = torch.randint(0, 2 * pad + 1, (b, 1), generator=gen, device=x.device)
    rows = (dy + torch.arange(h, device=x.device)).view(b, 1, h, 1)
    cols = dx + torch.arange(w, device=x.device)
    if flip:
        flipped = torch.rand((b, 1), generator=gen, device=x.device) < 0.5
        cols = torch.where(flipped, cols.flip(1), cols)
    cols = cols.view(b, 1, 1, w)
    batch = torch.arange(b, device=x.device).view(b, 1, 1, 1)
    channel = torch.arange(x.shape[1], device=x.device).view(1, -1, 1, 1)
    return padded[batch, channel, rows, cols]


def random_flip(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Horizontal flip (2D) or a flip along each spatial axis independently (3D), p = 0.5 each."""
    axes = [x.ndim - 1] if x.ndim == 4 else list(range(2, x.ndim))
    shape = (len(x),) + (1,) * (x.ndim - 1)
    for axis in axes:
        flipped = torch.rand(shape, generator=gen, device=x.device) < 0.5
        x = torch.where(flipped, x.flip(axis), x)
    return x


def random_rotate(x: torch.Tensor, gen: torch.Generator, degrees: float = ROTATION_DEGREES) -> torch.Tensor:
    """Rotation of each 2D image by a uniform angle in [-degrees, degrees] (float output)."""
    angle = (torch.rand(len(x), generator=gen, device=x.device) * 2 - 1) * math.radians(degrees)
    cos, sin, zero = angle.cos(), angle.sin(), torch.zeros_like(angle)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x.float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def intensity_scale(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Each volume times one factor drawn from U(0, 1) (float output)."""
    factor = torch.rand((len(x),) + (1,) * (x.ndim - 1), generator=gen, device=x.device)
    return x.float() * factor


# name -> (training op, evaluation op or None for identity, dims it applies to)
Op = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
OPS: dict[str, tuple[Op, Callable[[torch.Tensor], torch.Tensor] | None, tuple[int, ...]]] = {
    "crop": (lambda x, gen: crop_flip(x, gen, flip=False), None, (2,)),
    "crop_flip": (crop_flip, None, (2,)),
    "flip": (random_flip, None, (2, 3)),
    "rotate": (random_rotate, None, (2,)),
    "scale": (intensity_scale, lambda x: x.float() * EVAL_SCALE, (2, 3)),
}


class Augmentation:
    """A sequence of named operations; `aug(x, gen, train)` applies their train or eval form."""

    def __init__(self, names: list[str]):
        self.names = names

    def __call__(self, x: torch.Tensor, gen: torch.Generator, train: bool = True) -> torch.Tensor:
        for name in self.names:
            op, eval_op, _ = OPS[name]
            if train:
                x = op(x, gen)
            elif eval_op is not None:
                x = eval_op(x)
        return x


def create_augmentation(spec: str | None, dims: int) -> Augmentation | None:
    """The augmentation named `spec` (`none`/None: none) for `dims`-D batches."""
    if spec in (None, "", "none"):
        return None
    names = spec.split("+")
    for name in names:
        if name not in OPS or dims not in OPS[name][2]:
            valid = [n for n, (_, _, d) in OPS.items() if dims in d]
            raise CritBenchError(f"unknown {dims}D augmentation {name!r} in {spec!r}; valid: none or "
                                 f"+-joined {', '.join(valid)}")
    basic = [part for name in names for part in (("crop", "flip") if name == "crop_flip" else (name,))]
    repeated = sorted({name for name in basic if basic.count(name) > 1})
    if repeated:
        raise CritBenchError(f"--augment {spec} applies {', '.join(repeated)} twice (crop_flip is crop+flip); "
                             f"name each operation once")
    return Augmentation(names)
