"""Batched random crop (zero padding) and horizontal flip as one gather, so the same transform
can be applied to an image and to its stored ATTA perturbation (and written back to the latter)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class CropFlip:
    """The sampled transform of one batch: the per-example gather index into the padded images."""

    index: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]
    pad: int

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """Transform images ``(N, C, H, W)``."""
        return self.pad_tensor(x)[self.index]

    def crop(self, padded: torch.Tensor) -> torch.Tensor:
        """Transform tensors that are already padded ``(N, C, H + 2p, W + 2p)``."""
        return padded[self.index]

    def rows(self, rows: slice) -> CropFlip:
        """The transform of the examples ``rows`` of the batch alone (a rank's share of it)."""
        n, c, h, w = self.index
        return CropFlip((n[: rows.stop - rows.start], c, h[rows], w[rows]), self.pad)

    def pad_tensor(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, (self.pad,) * 4)


def sample_crop_flip(n: int, channels: int, height: int, width: int, pad: int, generator: torch.Generator,
                     device: torch.device) -> CropFlip:
    """Draw a random crop offset in [0, 2 * pad] (each axis) and a fair coin flip per example.

    The draws use ``generator`` (a CPU generator, so the sequence is the same on every device);
    only the resulting small index tensors are placed on ``device``.
    """
    oy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    ox = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    flip = torch.rand(n, generator=generator) < 0.5
    rows = oy[:, None] + torch.arange(height)  # (N, H)
    across = torch.arange(width)
    cols = ox[:, None] + torch.where(flip[:, None], across.flip(0), across)  # (N, W), reversed when flipped
    index = (
        torch.arange(n)[:, None, None, None].to(device),
        torch.arange(channels)[None, :, None, None].to(device),
        rows[:, None, :, None].to(device),
        cols[:, None, None, :].to(device),
    )
    return CropFlip(index, pad)
