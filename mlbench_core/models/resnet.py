"""ResNets for CIFAR-10 (He et al., "Deep Residual Learning for Image Recognition", 2016, §4.2).

The network takes 32x32 RGB images: a 3x3 convolution to 16 channels, then three stages of
``n`` basic blocks each (two 3x3 convolutions, batch norm, ReLU) with 16, 32 and 64 channels on
32x32, 16x16 and 8x8 feature maps, then global average pooling and one fully connected layer:
``6n + 2`` weighted layers in all (``n = 3``: ResNet-20, 0.27M parameters as in the paper's
Table 6; exactly 269,722 with 10 classes).

Shortcuts are the paper's option A: identity, and where a stage halves the map and doubles the
channels, the input subsampled by 2 and zero-padded with the new channels. That is the shortcut
He et al. used for every CIFAR-10 model ("in all cases we use identity shortcuts"), it adds no
parameter, so the count matches the paper's 0.27M, and it keeps results comparable with the
reference benchmark (option B's 1x1 projections would add 2,560 weights and their batch norms).

Weights: He initialisation (``kaiming_normal_``, fan-out, ReLU gain) for every convolution,
batch-norm scale 1 and shift 0; the final linear layer keeps PyTorch's default initialisation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["BasicBlock", "CifarResNet", "cifar_resnet", "resnet20"]

STAGE_CHANNELS = (16, 32, 64)


def _conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm, added to the (option A) shortcut, then ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        if out_channels < in_channels:
            raise ValueError("a block cannot reduce its channels with an option-A shortcut")
        self.conv1 = _conv3x3(in_channels, out_channels, stride)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = _conv3x3(out_channels, out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.stride = stride
        self.extra_channels = out_channels - in_channels

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        """Identity, or the input subsampled by the stride and zero-padded with new channels."""
        if self.stride != 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.extra_channels:
            half = self.extra_channels // 2
            # F.pad counts from the last dimension: (W, W, H, H, C, C)
            x = F.pad(x, (0, 0, 0, 0, half, self.extra_channels - half))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """A CIFAR ResNet with ``blocks_per_stage`` basic blocks in each of its three stages."""

    def __init__(self, blocks_per_stage: int, num_classes: int = 10) -> None:
        super().__init__()
        if blocks_per_stage < 1:
            raise ValueError("each stage needs at least one block")
        self.conv1 = _conv3x3(3, STAGE_CHANNELS[0])
        self.bn1 = nn.BatchNorm2d(STAGE_CHANNELS[0])
        stages = []
        in_channels = STAGE_CHANNELS[0]
        for index, channels in enumerate(STAGE_CHANNELS):
            blocks = []
            for block in range(blocks_per_stage):
                stride = 2 if index > 0 and block == 0 else 1
                blocks.append(BasicBlock(in_channels, channels, stride))
                in_channels = channels
            stages.append(nn.Sequential(*blocks))
        self.stage1, self.stage2, self.stage3 = stages
        self.fc = nn.Linear(STAGE_CHANNELS[-1], num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images ``(batch, 3, H, W)`` to class logits ``(batch, num_classes)``."""
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.stage3(self.stage2(self.stage1(out)))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.fc(out)


def cifar_resnet(depth: int, num_classes: int = 10) -> CifarResNet:
    """The CIFAR ResNet of ``depth`` = 6n + 2 layers (20, 32, 44, 56, 110, ...)."""
    if depth < 8 or (depth - 2) % 6:
        raise ValueError(f"a CIFAR ResNet has 6n + 2 layers (n >= 1), not {depth}")
    return CifarResNet((depth - 2) // 6, num_classes)


def resnet20(num_classes: int = 10) -> CifarResNet:
    """ResNet-20: three blocks per stage, 269,722 parameters with 10 classes."""
    return cifar_resnet(20, num_classes)
