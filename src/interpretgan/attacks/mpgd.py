"""Momentum PGD as in the ATTA code (Zheng et al., used for ATTA-1 training, paper Section 5.2).

The raw input gradient is accumulated without normalisation or decay, ``g_t = g_{t-1} + grad_t``
(``g_0 = 0``), and the step is ``alpha * sign(g_t)``. With one step it equals PGD.
"""

from __future__ import annotations

import torch
from torch import Tensor

from interpretgan.attacks.base import Attack


class MPGD(Attack):
    """l-inf momentum PGD: step ``alpha * sign(g)`` with ``g <- g + grad`` (decay 1, no normalisation)."""

    name = "mpgd"

    def _init_state(self, x: Tensor) -> Tensor:
        return torch.zeros_like(x)  # the accumulated gradient g, (N, C, H, W)

    def _step(self, grad: Tensor, state: Tensor) -> Tensor:
        state.add_(grad)
        return grad.copy_(state).sign_()  # reuse grad's storage for the direction
