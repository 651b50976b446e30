"""He et al.'s 3-stage CIFAR ResNet-32 with option-A shortcuts, as in kaidic/LDAM-DRW's
`models/resnet_cifar.py` (`resnet32`): the backbone of the long-tailed CIFAR literature.

Written by hand because no installed library ships it: torchvision's and timm's ResNets are the
4-stage ImageNet ones with projection (option-B) shortcuts, and MONAI's `ResNet` has four stages
too, with a `shortcut_type="A"` that detaches the shortcut (`out.data`: no gradient flows through it).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models3d.heads import ClassifierHead

STAGE_CHANNELS = (16, 32, 64)  # at width 1, as the reference's layer1..layer3
STAGE_STRIDES = (1, 2, 2)
BLOCKS_PER_STAGE = 5  # 6n + 2 = 32 layers with n = 5 (the reference's `resnet32`: num_blocks [5, 5, 5])


def stage_channels(width: float) -> tuple[int, ...]:
    """Each stage's channels at `width` (at least one)."""
    return tuple(max(1, int(channels * width)) for channels in STAGE_CHANNELS)


class OptionAShortcut(nn.Module):
    """The parameter-free shortcut: the input subsampled by `stride` and zero-padded to
    `out_channels`, the extra channels split between both sides. At width 1 it is the reference's
    `F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, planes//4, planes//4))` (planes//4 = half the difference)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        extra = out_channels - in_channels
        self.stride = stride
        self.padding = (0, 0, 0, 0, extra // 2, extra - extra // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x[:, :, ::self.stride, ::self.stride], self.padding)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm, plus the shortcut, then ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        changes_shape = stride != 1 or in_channels != out_channels
        self.shortcut = OptionAShortcut(in_channels, out_channels, stride) if changes_shape else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(residual + self.shortcut(x))


class CifarResNet(ClassifierHead, nn.Module):
    """ResNet-32 for small 2D images: a 3x3 stride-1 stem (no max-pool), three stages of
    BasicBlocks (16/32/64 channels x `width`, strides 1/2/2), global average pooling, linear head `fc`."""

    def __init__(self, in_channels: int, num_outputs: int, *, width: float = 1.0, max_norm: float = 0.0):
        super().__init__()
        channels = stage_channels(width)
        self.conv1 = nn.Conv2d(in_channels, channels[0], 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels[0])
        stages, previous = [], channels[0]
        for out_channels, stride in zip(channels, STAGE_STRIDES):
            blocks = [BasicBlock(previous, out_channels, stride)]
            blocks += [BasicBlock(out_channels, out_channels, 1) for _ in range(BLOCKS_PER_STAGE - 1)]
            stages.append(nn.Sequential(*blocks))
            previous = out_channels
        self.layer1, self.layer2, self.layer3 = stages
        self.fc = nn.Linear(channels[-1], num_outputs)
        self.max_norm = max_norm
        self.apply(self.init_layer)

    def init_layer(self, module: nn.Module) -> None:
        """The reference's `_weights_init`: `init.kaiming_normal_(m.weight)` on every Linear and
        Conv2d (biases and batch norms keep PyTorch's defaults)."""
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            nn.init.kaiming_normal_(module.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))
