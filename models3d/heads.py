"""Classifier heads shared by every backbone: the head choices, the cosine head, and the head's
constraint and re-initialization (`ClassifierHead`, inherited by each backbone class)."""
from __future__ import annotations

import torch
from torch import nn

HEADS = ("linear", "cosine", "cosine_pair")


class CosineHead(nn.Module):
    """`scale` x cosine between the features and each class weight (L2-normalized linear layer).

    With 2 outputs and scale 1 it is alm-dnn's `NormedLinear(512, 2)` (`F.normalize(x,
    dim=1).mm(F.normalize(self.weight, dim=0))`), the head its LDAM runs train; with K outputs and
    scale s it is s x LDAM-DRW's `NormedLinear(64, num_classes)` (LDAM's loss multiplies by s=30).
    Both initialize it alike (`reset_parameters`)."""

    def __init__(self, in_features: int, num_outputs: int, scale: float):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_outputs, in_features))
        self.scale = scale
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Each class's weight uniform in [-1, 1] per feature, rescaled to unit norm: both references'
        `self.weight.data.uniform_(-1, 1).renorm_(2, 1, 1e-5).mul_(1e5)` on their (in, out) weight,
        rows here. The norm matters although the forward pass normalizes: an SGD step turns a
        weight's direction by ~lr |grad| / |w| with |grad| ~ 1 / |w|, so lr / |w|^2."""
        with torch.no_grad():
            self.weight.uniform_(-1, 1).renorm_(2, 0, 1e-5).mul_(1e5)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.scale * (nn.functional.normalize(features, dim=1) @ nn.functional.normalize(self.weight, dim=1).t())


class ClassifierHead:
    """A backbone's classifier head `fc`, with its own constraint and re-initialization.

    The trainer calls `constrain_head()` after every optimizer step and `reset_head()` where a
    training stage starts with a fresh classifier (LibAUC's two-stage recipe). A backbone sets
    `max_norm` and may override `init_layer` (its own initialization of a fresh layer)."""

    fc: nn.Module
    max_norm: float = 0.0

    def init_layer(self, module: nn.Module) -> None:
        """Re-initialize `module` as the backbone initializes it (default: the layer's own reset)."""

    def constrain_head(self) -> None:
        """MaxNorm: renorm each head weight row to norm <= `max_norm` (0: no constraint)."""
        if self.max_norm:
            with torch.no_grad():
                self.fc.weight.copy_(torch.renorm(self.fc.weight, 2, 0, self.max_norm))

    def reset_head(self) -> None:
        """Re-initialize the classifier head's parameters in place."""
        self.fc.reset_parameters()
        self.init_layer(self.fc)
