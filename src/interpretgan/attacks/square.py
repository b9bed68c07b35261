"""Square Attack, l-inf (Andriushchenko et al. 2020, "Square Attack: a query-efficient black-box
adversarial attack via random search", Algorithm 1 and Section 3.1; the last attack of AutoAttack).

Square uses no gradient, only the model's scores: a random search that changes one random square of
the perturbation at a time to ``+-eps`` per channel and keeps the change when the margin loss falls.
Because it never differentiates, it still works where gradients are masked (shattered, obfuscated
or saturated), which is why AutoAttack runs it after the gradient attacks.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from interpretgan.attacks.base import Attack, eval_mode, margin_loss
from interpretgan.errors import ConfigError

#: AutoAttack's query budget and initial fraction of pixels per square (the standard version).
SQUARE_QUERIES = 5000
SQUARE_P_INIT = 0.8

# The schedule of Andriushchenko et al. (Section 3.1, written for 10,000 queries and rescaled to the
# budget): after these shares of the budget (in 1/10,000), p is halved once more.
_HALVINGS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)
_RESAMPLES = 8  # redraws of the signs when a square would leave an image unchanged (no query spent)


def square_fraction(i: int, queries: int, p_init: float = SQUARE_P_INIT) -> float:
    """Fraction ``p`` of the image's pixels that the square covers at iteration ``i`` of ``queries``.

    ``p_init`` up to 0.1 % of the budget, then halved at 0.5 %, 2 %, 5 %, 10 %, 20 %, 40 %, 60 % and
    80 % of it (``p_init / 512`` at the end), as in the paper's schedule for 10,000 queries.
    """
    at = i * 10000 // queries
    return p_init / 2 ** sum(at > h for h in _HALVINGS)


class Square(Attack):
    """l-inf Square Attack (Andriushchenko et al. 2020): random search on the margin loss.

    Start: vertical stripes, each column of each channel at ``x +- eps`` (clipped to the pixel range).
    Each iteration draws, per example still not fooled, a square of side
    ``round(sqrt(p * H * W))`` (:func:`square_fraction`) at a uniform position and a sign per channel,
    sets that square to ``x +- eps`` and keeps the change if the margin ``z_y - max_{j != y} z_j``
    (targeted: ``max_{j != t} z_j - z_t``) falls; an example stops once it is fooled. Every example
    costs at most ``queries`` forward passes, the first being the start; no backward pass.

    Unlike the AutoAttack code, where one square serves the whole batch, each example draws its own
    square, so that examples do not share their random search; all examples still run as one batch.

    Args:
        eps: radius of the l-inf ball.
        queries: forward passes per example (AutoAttack: 5,000).
        p_init: fraction of the pixels the first squares cover (AutoAttack: 0.8).
        targeted: ``y`` holds target labels.
        clip_min, clip_max, generator, restarts: as for :class:`~interpretgan.attacks.base.Attack`
            (the generator draws the stripes, squares and signs).
    """

    name = "square"

    def __init__(
        self,
        eps: float,
        queries: int = SQUARE_QUERIES,
        *,
        p_init: float = SQUARE_P_INIT,
        targeted: bool = False,
        clip_min: float = 0.0,
        clip_max: float = 1.0,
        generator: torch.Generator | None = None,
        restarts: int = 1,
    ) -> None:
        if isinstance(queries, bool) or not isinstance(queries, int) or queries < 1:
            raise ConfigError(f"Square queries must be an integer >= 1, got {queries!r}")
        if not (isinstance(p_init, (int, float)) and 0 < p_init <= 1):
            raise ConfigError(f"Square p_init must be a number in (0, 1], got {p_init!r}")
        # The base class's alpha is a step size; here every change is a full 2 eps flip.
        eps_ok = isinstance(eps, (int, float)) and not isinstance(eps, bool)
        super().__init__(eps, 2 * eps if eps_ok else eps, queries, random_start=True, targeted=targeted, loss="cw",
                         clip_min=clip_min, clip_max=clip_max, generator=generator, restarts=restarts)
        self.p_init = float(p_init)

    @property
    def queries(self) -> int:
        """Forward passes per example (the base class's ``steps``)."""
        return self.steps

    def __repr__(self) -> str:
        return (f"Square(eps={self.eps!r}, queries={self.queries}, p_init={self.p_init!r}, targeted={self.targeted}, "
                f"clip_min={self.clip_min!r}, clip_max={self.clip_max!r}, restarts={self.restarts})")

    def _draw_signs(self, shape: tuple[int, ...], x: Tensor) -> Tensor:
        bits = torch.randint(0, 2, shape, generator=self.generator, device=x.device)
        return bits.to(x.dtype).mul_(2).sub_(1)

    def _margin(self, model: nn.Module, x_adv: Tensor, y: Tensor) -> Tensor:
        # Positive while the attack has not succeeded; the search lowers it.
        logits = model(x_adv)
        return margin_loss(logits, y) if self.targeted else margin_loss(logits, y).neg_()

    def _run(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        if x.dim() != 4:
            raise ValueError(f"Square needs images (N, C, H, W), got shape {tuple(x.shape)}")
        n, c, h, w = x.shape
        lo, hi = self._box(x)
        with eval_mode(model), torch.no_grad():
            if self.eps == 0:
                return x.clone()
            best = (x + self.eps * self._draw_signs((n, c, 1, w), x)).clamp_(lo, hi)
            margin = self._margin(model, best, y)
            rows = torch.arange(h, device=x.device).view(1, 1, h, 1)
            cols = torch.arange(w, device=x.device).view(1, 1, 1, w)
            for i in range(1, self.queries):
                idx = (margin > 0).nonzero().squeeze(1)
                if idx.numel() == 0:
                    break
                m = idx.numel()
                side = max(
                    min(round(math.sqrt(square_fraction(i, self.queries, self.p_init) * h * w)), h - 1, w - 1), 1
                )
                top = torch.randint(0, h - side + 1, (m, 1, 1, 1), generator=self.generator, device=x.device)
                left = torch.randint(0, w - side + 1, (m, 1, 1, 1), generator=self.generator, device=x.device)
                window = (rows >= top) & (rows < top + side) & (cols >= left) & (cols < left + side)  # (m, 1, h, w)
                x_i, cur, lo_i, hi_i = x[idx], best[idx], lo[idx], hi[idx]
                signs = self._draw_signs((m, c, 1, 1), x)
                cand = torch.where(window, x_i + self.eps * signs, cur).clamp_(lo_i, hi_i)
                for _ in range(_RESAMPLES):  # a square that changes nothing would waste the query
                    same = (cand == cur).flatten(1).all(1)
                    if not same.any():
                        break
                    signs = torch.where(same.view(-1, 1, 1, 1), self._draw_signs((m, c, 1, 1), x), signs)
                    cand = torch.where(window, x_i + self.eps * signs, cur).clamp_(lo_i, hi_i)
                new = self._margin(model, cand, y[idx])
                keep = new < margin[idx]
                kept = idx[keep]
                best[kept] = cand[keep]
                margin[kept] = new[keep]
        return best
