"""VGG16 with batch norm, for CIFAR-10 and CelebA gender (the paper's Section 4 and Table 3).

Five convolutional blocks (``block1..block5``, each ending in its pooling layer) and three fully
connected layers ``fc1..fc2`` (ReLU, dropout) and ``fc3`` (logits), as the paper names them.
"""

from __future__ import annotations

from torch import nn

from interpretgan.errors import ConfigError
from interpretgan.models.base import TappedModel, make_normalize, make_pool
from interpretgan.models.registry import register

# Output channels of the 3x3 convolutions of each block (VGG16, configuration "D").
VGG16_BLOCKS: tuple[tuple[int, ...], ...] = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))


@register("vgg16")
class VGG16(TappedModel):
    """VGG16-BN. ``pool`` sets all five block-final pooling layers.

    For an input of side ``s`` (a multiple of 32) the taps are block1 (64, s/2, s/2), block2
    (128, s/4, s/4), ..., block5 (512, s/32, s/32), fc1 (fc_width), fc2 (fc_width), fc3 (num_classes).
    ``width`` scales every conv's channels (1.0 is VGG16; smaller values are for CPU presets).
    ``mean``/``std`` normalise inside the model, so inputs stay in [0, 1].
    """

    def __init__(
        self,
        *,
        pool: str = "max",
        in_channels: int = 3,
        num_classes: int = 10,
        image_size: int = 32,
        fc_width: int = 512,
        width: float = 1.0,
        dropout: float = 0.5,
        mean: tuple[float, ...] | None = None,
        std: tuple[float, ...] | None = None,
    ) -> None:
        if image_size % 32 or image_size < 32:
            raise ConfigError(f"vgg16 needs image_size a multiple of 32, got {image_size}")
        super().__init__(
            dict(pool=pool, in_channels=in_channels, num_classes=num_classes, image_size=image_size,
                 fc_width=fc_width, width=width, dropout=dropout,
                 mean=None if mean is None else list(mean), std=None if std is None else list(std))
        )
        self.normalize = make_normalize(mean, std)
        stages: dict[str, nn.Module] = {}
        c_in = in_channels
        for b, widths in enumerate(VGG16_BLOCKS, start=1):
            layers: list[nn.Module] = []
            for c in widths:
                c_out = max(1, round(c * width))
                layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
                c_in = c_out
            layers.append(make_pool(pool))
            stages[f"block{b}"] = nn.Sequential(*layers)
        side = image_size // 32
        stages["fc1"] = nn.Sequential(
            nn.Flatten(), nn.Linear(c_in * side * side, fc_width), nn.ReLU(), nn.Dropout(dropout)
        )
        stages["fc2"] = nn.Sequential(nn.Linear(fc_width, fc_width), nn.ReLU(), nn.Dropout(dropout))
        stages["fc3"] = nn.Linear(fc_width, num_classes)
        self.stages = nn.ModuleDict(stages)
