"""ResNet backbones for 2D and 3D from MONAI's dimension-generic `ResNet`, and the 2D CIFAR
ResNet-32 (`cifar_resnet.py`), with a single logit by default.

The default `medmnist` stem is a 3x3 stride-1 convolution without max-pool, as in the MedMNIST v2
28-px baselines; `standard` is the ImageNet stem (7x7 stride 2 plus max-pool), 64x cheaper in 3D.
"""
from __future__ import annotations

from monai.networks.nets import ResNet

from benchmarks.core.errors import CritBenchError
from models3d.cifar_resnet import CifarResNet
from models3d.heads import HEADS, ClassifierHead, CosineHead

LAYERS = {"resnet10": [1, 1, 1, 1], "resnet18": [2, 2, 2, 2], "resnet34": [3, 4, 6, 3]}
STEMS = {
    "medmnist": {"conv1_t_size": 3, "conv1_t_stride": 1, "no_max_pool": True},
    "standard": {"conv1_t_size": 7, "conv1_t_stride": 2, "no_max_pool": False},
}


CIFAR_MODELS = ("resnet32",)  # He et al.'s 3-stage CIFAR ResNet (models3d/cifar_resnet.py), 2D only


def list_models() -> list[str]:
    return sorted([*LAYERS, *CIFAR_MODELS])


class Backbone(ClassifierHead, ResNet):
    """MONAI's ResNet whose classifier head `fc` carries its own constraint and re-initialization
    (`ClassifierHead`)."""

    def __init__(self, *, max_norm: float = 0.0, **resnet):
        super().__init__(**resnet)
        self.max_norm = max_norm


MIN_WIDTH, MAX_WIDTH = 1 / 64, 16.0  # MONAI's stages have int(64 * width) .. int(512 * width) channels


def check_backbone(arch: str, stem: str, width: float, dims: int | None = None) -> None:
    """Raise CritBenchError (naming the flag and the choices) for a backbone that cannot be built
    (for `dims`-D inputs, where given)."""
    if arch not in list_models():
        raise CritBenchError(f"unknown --model {arch!r}; valid: {', '.join(list_models())}")
    if stem not in STEMS:
        raise CritBenchError(f"unknown --stem {stem!r}; valid: {', '.join(STEMS)}")
    if not MIN_WIDTH <= width <= MAX_WIDTH:  # also refuses NaN
        raise CritBenchError(f"--width must be between {MIN_WIDTH} (one channel in the first stage) and {MAX_WIDTH}, "
                             f"got {width}")
    if arch in CIFAR_MODELS and stem != "medmnist":
        raise CritBenchError(f"--model {arch} has its own stem (3x3 stride 1, no max-pool: He et al.'s CIFAR ResNet, "
                             f"the same as --stem medmnist); --stem {stem} applies to {', '.join(LAYERS)} only")
    if arch in CIFAR_MODELS and dims not in (None, 2):
        raise CritBenchError(f"--model {arch} is a 2D network; for {dims}D data use {', '.join(LAYERS)} "
                             f"(MONAI's dimension-generic ResNets)")


def create_model(dims: int, in_channels: int, *, arch: str = "resnet18", stem: str = "medmnist",
                 width: float = 1.0, num_outputs: int = 1, head: str = "linear",
                 head_scale: float = 30.0, max_norm: float = 0.0) -> Backbone | CifarResNet:
    """A ResNet for `dims`-D inputs with `in_channels` channels and `num_outputs` logits: MONAI's
    for LAYERS' architectures, the CIFAR ResNet-32 (2D only) for `resnet32`.

    `width` scales every stage's channels (1.0 = 64..512, or 16..64 for resnet32); small widths
    serve fast tests. `head` `cosine` (L2-normalized features and weights, times `head_scale`) or
    `cosine_pair` (the two unscaled class cosines (cos_0, cos_1), shape (B, 2): LDAM's head, whose
    loss applies the scale) replaces the final linear layer `fc`; `max_norm` > 0 bounds the head's
    weight rows (see `ClassifierHead.constrain_head`)."""
    if dims not in (2, 3):
        raise CritBenchError(f"dims must be 2 or 3, got {dims}")
    check_backbone(arch, stem, width, dims)
    if head not in HEADS or not head_scale > 0:
        raise CritBenchError(f"head must be one of {', '.join(HEADS)} with head_scale > 0; got {head!r}, {head_scale}")
    if max_norm < 0:
        raise CritBenchError(f"max_norm must be >= 0, got {max_norm}")
    if arch in CIFAR_MODELS:
        model = CifarResNet(in_channels, num_outputs, width=width, max_norm=max_norm)
    else:
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
