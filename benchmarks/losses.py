"""Base losses on single logits: `@register_loss`, `create_loss(name)`.

A loss maps `(logits, targets)` (both float, shape `(B,)`, targets in {0, 1}) to a scalar mean.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from benchmarks.registry import Registry

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
LOSSES: Registry[Callable[[], LossFn]] = Registry("base loss")


def list_losses() -> list[str]:
    return LOSSES.names()


def create_loss(name: str) -> LossFn:
    return LOSSES.get(name)()


@LOSSES.register("bce")
def bce() -> LossFn:
    """Binary cross-entropy on the logit (the MedMNIST v2 objective)."""
    return F.binary_cross_entropy_with_logits
