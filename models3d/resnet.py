"""ResNet backbones for 2D and 3D from MONAI's dimension-generic `ResNet`, with a single logit.

The default `medmnist` stem is a 3x3 stride-1 convolution without max-pool, as in the MedMNIST v2
28-px baselines; `standard` is the ImageNet stem (7x7 stride 2 plus max-pool), 64x cheaper in 3D.
"""
from __future__ import annotations

from monai.networks.nets import ResNet
from torch import nn

from benchmarks.errors import CritBenchError

LAYERS = {"resnet10": [1, 1, 1, 1], "resnet18": [2, 2, 2, 2], "resnet34": [3, 4, 6, 3]}
STEMS = {
    "medmnist": {"conv1_t_size": 3, "conv1_t_stride": 1, "no_max_pool": True},
    "standard": {"conv1_t_size": 7, "conv1_t_stride": 2, "no_max_pool": False},
}


def list_models() -> list[str]:
    return sorted(LAYERS)


def create_model(dims: int, in_channels: int, *, arch: str = "resnet18", stem: str = "medmnist",
                 width: float = 1.0, num_outputs: int = 1) -> nn.Module:
    """A ResNet for `dims`-D inputs with `in_channels` channels and `num_outputs` logits.

    `width` scales every stage's channels (1.0 = 64..512); small widths serve fast tests."""
    if dims not in (2, 3):
        raise CritBenchError(f"dims must be 2 or 3, got {dims}")
    if arch not in LAYERS:
        raise CritBenchError(f"unknown model {arch!r}; valid: {', '.join(list_models())}")
    if stem not in STEMS:
        raise CritBenchError(f"unknown stem {stem!r}; valid: {', '.join(STEMS)}")
    if not width > 0:
        raise CritBenchError(f"width must be positive, got {width}")
    return ResNet(
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
