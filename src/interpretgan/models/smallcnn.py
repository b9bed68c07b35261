"""The MNIST classifier of the paper (Fig. 6): the small CNN of Madry et al. / TRADES.

conv 32, conv 32, pool, conv 64, conv 64, pool, FC 200, FC 200, FC 10 with ReLU, dropout 0.5
after FC1. The taps follow Fig. 6: ``conv2`` and ``conv4`` are read after their pooling layer.
"""

from __future__ import annotations

from torch import nn

from interpretgan.models.base import TappedModel, make_pool
from interpretgan.models.registry import register


@register("smallcnn")
class SmallCNN(TappedModel):
    """TRADES' MNIST SmallCNN with named stages ``conv1..conv4, fc1..fc3``.

    Shapes for a 32x32 input (the paper resizes MNIST to 32x32):
    conv1 (32, 30, 30) -> conv2 (32, 14, 14) -> conv3 (64, 12, 12) -> conv4 (64, 5, 5)
    -> fc1 (200) -> fc2 (200) -> fc3 (num_classes).
    """

    def __init__(
        self,
        *,
        pool: str = "max",
        in_channels: int = 1,
        num_classes: int = 10,
        image_size: int = 32,
        dropout: float = 0.5,
    ) -> None:
        super().__init__(
            dict(pool=pool, in_channels=in_channels, num_classes=num_classes, image_size=image_size, dropout=dropout)
        )
        side = ((image_size - 4) // 2 - 4) // 2  # two valid 3x3 convs, pool, two convs, pool
        if side < 1:
            from interpretgan.errors import ConfigError

            raise ConfigError(f"smallcnn needs image_size >= 16, got {image_size}")
        # Every ReLU is its own module: Captum's DeepLIFT cannot handle a reused ReLU.
        self.stages = nn.ModuleDict(
            {
                "conv1": nn.Sequential(nn.Conv2d(in_channels, 32, 3), nn.ReLU()),
                "conv2": nn.Sequential(nn.Conv2d(32, 32, 3), nn.ReLU(), make_pool(pool)),
                "conv3": nn.Sequential(nn.Conv2d(32, 64, 3), nn.ReLU()),
                "conv4": nn.Sequential(nn.Conv2d(64, 64, 3), nn.ReLU(), make_pool(pool)),
                "fc1": nn.Sequential(nn.Flatten(), nn.Linear(64 * side * side, 200), nn.ReLU(), nn.Dropout(dropout)),
                "fc2": nn.Sequential(nn.Linear(200, 200), nn.ReLU()),
                "fc3": nn.Linear(200, num_classes),
            }
        )
        # TRADES' initialisation: Kaiming-normal convolutions with zero bias, a zero last layer.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.zeros_(self.stages["fc3"].weight)
        nn.init.zeros_(self.stages["fc3"].bias)
