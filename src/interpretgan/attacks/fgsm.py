"""Fast gradient sign method: one PGD step of size eps from x (Goodfellow et al.; robustness's FGSM).

``x* = clip_[0, 1](x + eps * sign(grad_x L(f(x), y)))``, i.e. ``PGD(eps, alpha=eps, steps=1,
random_start=False)`` exactly.
"""

from __future__ import annotations

from interpretgan.attacks.base import LossFn
from interpretgan.attacks.pgd import PGD


class FGSM(PGD):
    """FGSM: :class:`PGD` with ``alpha=eps``, ``steps=1`` and no random start."""

    name = "fgsm"

    def __init__(
        self,
        eps: float,
        *,
        targeted: bool = False,
        loss: LossFn | str = "ce",
        clip_min: float = 0.0,
        clip_max: float = 1.0,
    ) -> None:
        super().__init__(
            eps,
            alpha=eps,
            steps=1,
            random_start=False,
            targeted=targeted,
            loss=loss,
            clip_min=clip_min,
            clip_max=clip_max,
        )
