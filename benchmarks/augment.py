"""Batch preprocessing on the training device: uint8 -> normalized float, plus augmentation.

Whole batches at once, drawn from the run's generator; no per-sample Python.
"""
from __future__ import annotations

import torch


def normalize(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 `(B, C, ...)` to float, scaled to [0, 1] then standardized per channel."""
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return (x.float().div_(255) - mean.view(shape)) / std.view(shape)


def crop_flip(x: torch.Tensor, gen: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random crop after zero padding by `pad` and random horizontal flip, per image (2D)."""
    b, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (b, 1), generator=gen, device=x.device)
    dx = torch.randint(0, 2 * pad + 1, (b, 1), generator=gen, device=x.device)
    rows = (dy + torch.arange(h, device=x.device)).view(b, 1, h, 1)
    cols = dx + torch.arange(w, device=x.device)
    flip = torch.rand((b, 1), generator=gen, device=x.device) < 0.5
    cols = torch.where(flip, cols.flip(1), cols).view(b, 1, 1, w)
    batch = torch.arange(b, device=x.device).view(b, 1, 1, 1)
    channel = torch.arange(x.shape[1], device=x.device).view(1, -1, 1, 1)
    return padded[batch, channel, rows, cols]


AUGMENTATIONS = {None: None, "crop_flip": crop_flip}
