"""ResNet backbones for 2D and 3D from MONAI's dimension-generic `ResNet`, with a single logit.

The default `medmnist` stem is a 3x3 stride-1 convolution without max-pool, as in the MedMNIST v2
28-px baselines; `standard` is the ImageNet stem (7x7 stride 2 plus max-pool), 64x cheaper in 3D.
"""
from __future__ import annotations

import torch
from monai.networks.nets import ResNet
from torch import nn

from benchmarks.core.errors import CritBenchError

LAYERS = {"resnet10": [1, 1, 1, 1], "resnet18": [2, 2, 2, 2], "resnet34": [3, 4, 6, 3]}
STEMS = {
    "medmnist": {"conv1_t_size": 3, "conv1_t_stride": 1, "no_max_pool": True},
    "standard": {"conv1_t_size": 7, "conv1_t_stride": 2, "no_max_pool": False},
}


HEADS = ("linear", "cosine", "cosine_pair")


def list_models() -> list[str]:
    return sorted(LAYERS)


class CosineHead(nn.Module):
    """`scale` x cosine between the features and each class weight (L2-normalized linear layer).

    With 2 outputs and scale 1 it is alm-dnn's `NormedLinear(512, 2)` (`F.normalize(x,
    dim=1).mm(F.normalize(self.weight, dim=0))`), the head its LDAM runs train."""

    def __init__(self, in_features: int, num_outputs: int, scale: float):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_outputs, in_features))
        self.scale = scale
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.kaiming_uniform_(self.weight, a=5 ** 0.5)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.scale * (nn.functional.normalize(features, dim=1) @ nn.functional.normalize(self.weight, dim=1).t())


class Backbone(ResNet):
    """MONAI's ResNet whose classifier head `fc` carries its own constraint and re-initialization.

    The trainer calls `constrain_head()` after every optimizer step and `reset_head()` where a
    training stage starts with a fresh classifier (LibAUC's two-stage recipe)."""

    def __init__(self, *, max_norm: float = 0.0, **resnet):
        super().__init__(**resnet)
        self.max_norm = max_norm

    def constrain_head(self) -> None:
        """MaxNorm: renorm each head weight row to norm <= `max_norm` (0: no constraint)."""
        if self.max_norm:
            with torch.no_grad():
                self.fc.weight.copy_(torch.renorm(self.fc.weight, 2, 0, self.max_norm))

    def reset_head(self) -> None:
        """Re-initialize the classifier head's parameters in place."""
        self.fc.reset_parameters()


MIN_WIDTH, MAX_WIDTH = 1 / 64, 16.0  # MONAI's stages have int(64 * width) .. int(512 * width) channels


def check_backbone(arch: str, stem: str, width: float) -> None:
    """Raise CritBenchError (naming the flag and the choices) for a backbone that cannot be built."""
    if arch not in LAYERS:
        raise CritBenchError(f"unknown --model {arch!r}; valid: {', '.join(list_models())}")
    if stem not in STEMS:
        raise CritBenchError(f"unknown --stem {stem!r}; valid: {', '.join(STEMS)}")
    if not MIN_WIDTH <= width <= MAX_WIDTH:  # also refuses NaN
        raise CritBenchError(f"--width must be between {MIN_WIDTH} (one channel in the first stage) and {MAX_WIDTH}, "
                             f"got {width}")


def create_model(dims: int, in_channels: int, *, arch: str = "resnet18", stem: str = "medmnist",
                 width: float = 1.0, num_outputs: int = 1, head: str = "linear",
                 head_scale: float = 30.0, max_norm: float = 0.0) -> Backbone:
    """A ResNet for `dims`-D inputs with `in_channels` channels and `num_outputs` logits.

    `width` scales every stage's channels (1.0 = 64..512); small widths serve fast tests. `head`
    `cosine` (L2-normalized features and weights, times `head_scale`) or `cosine_pair` (the two
    unscaled class cosines (cos_0, cos_1), shape (B, 2): LDAM's head, whose loss applies the scale)
    replaces the final linear layer `fc`; `max_norm` > 0 bounds the head's weight rows (see
    `Backbone.constrain_head`)."""
    if dims not in (2, 3):
        raise CritBenchError(f"dims must be 2 or 3, got {dims}")
    check_backbone(arch, stem, width)
    if head not in HEADS or not head_scale > 0:
        raise CritBenchError(f"head must be one of {', '.join(HEADS)} with head_scale > 0; got {head!r}, {head_scale}")
    if max_norm < 0:
        raise CritBenchError(f"max_norm must be >= 0, got {max_norm}")
    model = Backbone(
        max_norm=max_norm,
        block="basic",
        layers=LAYERS[arch],
        block_inplanes=[64, 128, 256, 512],
        spatial_dims=dims,
        n_input_channels=in_channels,
        widen_factor=width,
        num_classes=num_outputs,
        bias_downsample=False,
        **STEMS[stem],
    )
    if head == "cosine":
        model.fc = CosineHead(model.fc.in_features, num_outputs, head_scale)
    elif head == "cosine_pair":
        model.fc = CosineHead(model.fc.in_features, 2, 1.0)
    return model
