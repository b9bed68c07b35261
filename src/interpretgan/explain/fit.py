"""Inputs whose size is not the GAN's: the progressive GAN grows 4x4 -> 8x8 -> ... -> 4 * 2^k pixels,
so a classifier of another input size (28x28 MNIST, 224x224) has its images mapped to the smallest
such square that holds them, and the explanations mapped back before f sees them.

``resize`` (the default): bilinear up to the GAN's side and back (anti-aliased when shrinking),
as the paper's own 28 -> 32 MNIST resize. ``pad``: zeros around the image, centred, and a centre
crop back, so that no pixel is interpolated; the critic then also sees the zero border.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from interpretgan.config import FITS
from interpretgan.errors import ConfigError


def gan_side(height: int, width: int) -> int:
    """The smallest 4 * 2^k that is at least ``height`` and ``width`` (28 -> 32, 32 -> 32, 100 -> 128)."""
    side = 4
    while side < max(height, width):
        side *= 2
    return side


def check_fit(fit: str | None) -> str:
    """``fit`` (None: ``resize``), or one sentence naming the choices."""
    fit = FITS[0] if fit is None else fit
    if fit not in FITS:
        raise ConfigError(f"--fit must be one of {', '.join(FITS)}, got '{fit}'")
    return fit


def to_gan(x: Tensor, side: int, fit: str | None) -> Tensor:
    """Images ``(B, C, H, W)`` in [0, 1] -> ``(B, C, side, side)``."""
    h, w = x.shape[-2:]
    if (h, w) == (side, side):
        return x
    if check_fit(fit) == "pad":
        top, left = (side - h) // 2, (side - w) // 2
        return F.pad(x, (left, side - w - left, top, side - h - top))
    return F.interpolate(x, size=(side, side), mode="bilinear", align_corners=False, antialias=side < max(h, w))


def from_gan(x: Tensor, height: int, width: int, fit: str | None) -> Tensor:
    """The inverse map of :func:`to_gan`: ``(B, C, side, side)`` -> ``(B, C, height, width)``."""
    side = x.shape[-1]
    if (height, width) == (side, side):
        return x
    if check_fit(fit) == "pad":
        top, left = (side - height) // 2, (side - width) // 2
        return x[..., top:top + height, left:left + width]
    return F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False,
                         antialias=side > max(height, width)).clamp(0.0, 1.0)
