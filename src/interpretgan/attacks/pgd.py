"""Projected gradient descent, l-inf (Madry et al.; the paper's PGD-40 / PGD-20, Section 4.1, Appendix C).

``x_{t+1} = Proj_{B(x, eps) ∩ [0, 1]}(x_t + alpha * sign(grad_x L(f(x_t), y)))``.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from interpretgan.attacks.base import Attack


class PGD(Attack):
    """l-inf PGD: step ``alpha * sign(grad)``; everything else is :class:`Attack`'s threat model.

    Example (the paper's MNIST attack): ``PGD(eps=0.3, alpha=0.01, steps=40, random_start=True)``.
    """

    name = "pgd"

    def _step(self, grad: Tensor, state: Any) -> Tensor:
        return grad.sign_()
