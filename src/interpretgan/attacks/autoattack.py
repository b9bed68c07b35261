"""AutoAttack's ensemble, l-inf, without FAB-T (Croce & Hein 2020, Section 5; the RobustBench standard).

AutoAttack's standard version runs APGD-CE, APGD-T, FAB-T and Square in that order, each on the
images that the previous ones left robust, so that an image counts as robust only if it survives
all four. **FAB-T is not included here**: this ensemble is APGD-CE, APGD-T, Square, in AutoAttack's
order. Its robust accuracy is therefore an upper bound on AutoAttack's (it is what FAB-T would have
to lower).
"""

from __future__ import annotations

import logging

import torch
from torch import Tensor, nn

from interpretgan.attacks.apgd import APGD, APGD_STEPS, APGD_TARGETS, APGDT
from interpretgan.attacks.base import Attack
from interpretgan.attacks.square import SQUARE_P_INIT, SQUARE_QUERIES, Square

log = logging.getLogger(__name__)


class AutoAttack(Attack):
    """APGD-CE, then APGD-T, then Square, each on the examples still robust (FAB-T not included).

    An example is attacked only while every earlier component has failed on it (clean-misclassified
    examples are not attacked: they are returned unchanged); it keeps the first component's
    successful ``x_adv``, else Square's last point. Untargeted: ``y`` are the true labels, and
    ``targeted=True`` is refused. All components draw from this attack's generator, in order.

    Args:
        eps: radius of the l-inf ball.
        steps: iterations of each APGD run (AutoAttack: 100).
        targets: target classes of APGD-T (AutoAttack: 9; at most ``K - 1`` are used).
        queries: Square's forward passes per example (AutoAttack: 5,000; the dominant cost on a CPU).
        p_init: Square's initial square size (AutoAttack: 0.8).
        clip_min, clip_max, generator, restarts: as for :class:`~interpretgan.attacks.base.Attack`
            (``restarts`` reruns the whole ensemble on the examples still robust).

    ``components`` lists the attacks run, by registry name: ``("apgd-ce", "apgd-t", "square")``.
    """

    name = "autoattack"
    targetable = False
    #: AutoAttack's standard components that this ensemble leaves out.
    missing = ("fab-t",)

    def __init__(
        self,
        eps: float,
        steps: int = APGD_STEPS,
        *,
        targets: int = APGD_TARGETS,
        queries: int = SQUARE_QUERIES,
        p_init: float = SQUARE_P_INIT,
        clip_min: float = 0.0,
        clip_max: float = 1.0,
        generator: torch.Generator | None = None,
        restarts: int = 1,
    ) -> None:
        common = dict(clip_min=clip_min, clip_max=clip_max)
        self.parts: dict[str, Attack] = {
            "apgd-ce": APGD(eps, steps, loss="ce", **common),
            "apgd-t": APGDT(eps, steps, targets=targets, **common),
            "square": Square(eps, queries, p_init=p_init, **common),
        }
        super().__init__(eps, self.parts["apgd-ce"].alpha, steps, random_start=True, generator=generator,
                         restarts=restarts, **common)
        self.targets, self.queries, self.p_init = targets, queries, float(p_init)

    @property
    def components(self) -> tuple[str, ...]:
        """The attacks run, in order (AutoAttack's standard order, FAB-T left out)."""
        return tuple(self.parts)

    def __repr__(self) -> str:
        return (f"AutoAttack(eps={self.eps!r}, components={self.components}, missing={self.missing}, "
                f"steps={self.steps}, targets={self.targets}, queries={self.queries}, p_init={self.p_init!r}, "
                f"clip_min={self.clip_min!r}, clip_max={self.clip_max!r}, restarts={self.restarts})")

    def _run(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        x_adv = x.clone()
        robust = ~self._fooled(model, x, y)
        for name, part in self.parts.items():
            idx = robust.nonzero().squeeze(1)
            if idx.numel() == 0:
                break
            out = part.with_generator(self.generator)(model, x[idx], y[idx])
            hit = self._fooled(model, out, y[idx])
            # Square runs last: its point is kept for the survivors too (the D* of a robust image).
            keep = torch.ones_like(hit) if name == "square" else hit
            x_adv[idx[keep]] = out[keep]
            robust[idx[hit]] = False
            log.debug("autoattack: %s fooled %d of %d, %d robust", name, int(hit.sum()), idx.numel(), int(robust.sum()))
        return x_adv
