"""WideResNet-34-10 as used by TRADES and ATTA for CIFAR-10 (the paper's Table 3).

Stages (taps): ``conv1`` (3x3 conv, 16 channels), ``block1..block3`` (``n = (depth - 4) / 6``
pre-activation basic blocks each, widths 16k, 32k, 64k, strides 1, 2, 2), ``pool`` (BN, ReLU and
the global pooling) and ``fc`` (logits).
"""

from __future__ import annotations

import torch
from torch import nn

from interpretgan.errors import ConfigError
from interpretgan.models.base import TappedModel, make_normalize
from interpretgan.models.registry import register


class BasicBlock(nn.Module):
    """Pre-activation basic block: BN-ReLU-conv3x3-BN-ReLU-conv3x3 plus a (projected) shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.relu1 = nn.ReLU()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu2 = nn.ReLU()
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.equal = c_in == c_out and stride == 1
        self.shortcut = None if self.equal else nn.Conv2d(c_in, c_out, 1, stride, 0, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        o = self.relu1(self.bn1(x))
        y = self.conv2(self.relu2(self.bn2(self.conv1(o))))
        return y + (x if self.shortcut is None else self.shortcut(o))


class GlobalPool(nn.Module):
    """BN, ReLU, then global max or average pooling to ``(N, C)``."""

    def __init__(self, channels: int, pool: str) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveMaxPool2d(1) if pool == "max" else nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.flatten(self.pool(self.relu(self.bn(x))))


@register("wrn34_10")
class WideResNet(TappedModel):
    """WideResNet-``depth``-``widen`` (default 34-10).

    Which layers ``pool`` changes: the WideResNet has one pooling layer, the global pooling
    before the classifier (8x8 -> 1x1 on CIFAR-10); downsampling elsewhere is done by strided
    convolutions, which are not pooling. ``pool="avg"`` is the published network; ``pool="max"``
    replaces that global average pooling with global max pooling, the only max-vs-average choice
    the architecture offers (the paper's Table 3 compares these two).
    """

    def __init__(
        self,
        *,
        pool: str = "avg",
        in_channels: int = 3,
        num_classes: int = 10,
        image_size: int = 32,
        depth: int = 34,
        widen: int = 10,
        mean: tuple[float, ...] | None = None,
        std: tuple[float, ...] | None = None,
    ) -> None:
        if (depth - 4) % 6 or depth < 10:
            raise ConfigError(f"wrn depth must be 6n + 4 with n >= 1 (10, 16, 22, 28, 34, ...), got {depth}")
        if pool not in ("max", "avg"):
            raise ConfigError(f"unknown pooling '{pool}'; expected 'max' or 'avg'")
        super().__init__(
            dict(pool=pool, in_channels=in_channels, num_classes=num_classes, image_size=image_size,
                 depth=depth, widen=widen,
                 mean=None if mean is None else list(mean), std=None if std is None else list(std))
        )
        self.normalize = make_normalize(mean, std)
        n = (depth - 4) // 6
        widths = [16, 16 * widen, 32 * widen, 64 * widen]
        stages: dict[str, nn.Module] = {"conv1": nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)}
        for b, stride in enumerate((1, 2, 2), start=1):
            blocks = [
                BasicBlock(widths[b - 1] if i == 0 else widths[b], widths[b], stride if i == 0 else 1) for i in range(n)
            ]
            stages[f"block{b}"] = nn.Sequential(*blocks)
        stages["pool"] = GlobalPool(widths[3], pool)
        stages["fc"] = nn.Linear(widths[3], num_classes)
        self.stages = nn.ModuleDict(stages)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)
