"""Auto-PGD, l-inf (Croce & Hein 2020, "Reliable evaluation of adversarial robustness with an
ensemble of diverse parameter-free attacks", Section 3, Algorithm 1; the first two attacks of AutoAttack).

APGD is PGD with a momentum of 0.75 and a step size that needs no tuning: it starts at ``2 eps``
and is halved, per example, at checkpoints ``w_j`` where the loss has stopped rising (Section 3.2).
:class:`APGD` climbs cross-entropy (APGD-CE) or the difference of logits ratio (APGD-DLR, Section 4);
:class:`APGDT` is APGD-T: targeted DLR (Section 4) against each of the top-k other classes in turn,
an untargeted attack overall. The threat model (ball, pixel range, random start, restarts) is
:class:`~interpretgan.attacks.base.Attack`'s.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from interpretgan.attacks.base import PER_EXAMPLE_LOSSES, Attack, eval_mode
from interpretgan.errors import ConfigError

#: AutoAttack's iterations per APGD run and target classes of APGD-T (the standard version).
APGD_STEPS = 100
APGD_TARGETS = 9


def apgd_checkpoints(steps: int) -> list[int]:
    """The checkpoints ``w_j = ceil(p_j * steps)`` of Croce & Hein 2020, Section 3.2.

    ``p_0 = 0``, ``p_1 = 0.22``, ``p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06)`` while ``p <= 1``:
    the interval between checks shrinks from 22 % of the budget to 6 %. Returns the distinct
    ``w_j``, from 0; e.g. ``[0, 22, 41, 57, 70, 80, 87, 93, 99]`` for 100 steps.
    """
    # In hundredths, so that 0.22 + 0.19 is exactly 0.41 and ceil() does not round float noise up.
    p = [0, 22]
    while True:
        nxt = p[-1] + max(p[-1] - p[-2] - 3, 6)
        if nxt > 100:
            break
        p.append(nxt)
    return sorted({-(-q * steps // 100) for q in p})


def targeted_dlr_loss(logits: Tensor, y: Tensor, target: Tensor) -> Tensor:
    """Targeted DLR per example ``(N,)`` (Croce & Hein 2020, Section 4), for K >= 4 classes.

    ``-(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2)``: maximising it raises the target ``t`` over the
    true label ``y``; the denominator keeps it invariant to a rescaling of the logits.
    """
    if logits.shape[1] < 4:
        raise ValueError(f"the targeted DLR loss needs at least 4 classes, got logits of shape {tuple(logits.shape)}")
    top = logits.topk(4, dim=1).values
    z_y = logits.gather(1, y[:, None]).squeeze(1)
    z_t = logits.gather(1, target[:, None]).squeeze(1)
    return (z_t - z_y) / (top[:, 0] - 0.5 * (top[:, 2] + top[:, 3]) + 1e-12)


class APGD(Attack):
    """l-inf APGD (Croce & Hein 2020, Algorithm 1): APGD-CE with ``loss="ce"``, APGD-DLR with ``"dlr"``.

    One run: from ``x_0`` (random start), ``z = P(x_k + eta * sign(grad))``,
    ``x_{k+1} = P(x_k + 0.75 (z - x_k) + 0.25 (x_k - x_{k-1}))`` (the first step is ``z``), with
    ``eta = 2 eps`` per example to begin with. At each checkpoint ``w_j`` (:func:`apgd_checkpoints`)
    an example's ``eta`` is halved and it restarts from its highest-loss point ``x_max`` if (1) the
    loss rose in fewer than ``rho`` of the steps since ``w_{j-1}``, or (2) ``eta`` was not halved at
    ``w_{j-1}`` and the best loss has not improved since. Each step costs one forward and one backward
    pass. The run returns, per example, the last iterate that fooled the model, else ``x_max``.

    Args:
        eps: radius of the l-inf ball.
        steps: iterations (AutoAttack: 100).
        loss: ``"ce"``, ``"dlr"`` or ``"cw"`` (see :data:`~interpretgan.attacks.base.PER_EXAMPLE_LOSSES`).
        random_start: start from ``x + U(-eps, eps)`` (AutoAttack does), else from ``x``.
        targeted: ``y`` holds targets and the loss is minimised (for the targeted DLR of AutoAttack,
            which also needs the true label, use :class:`APGDT`).
        rho: the fraction of rising steps below which the step size is halved (the paper's 0.75).
        clip_min, clip_max, generator, restarts: as for :class:`~interpretgan.attacks.base.Attack`.

    Calling it: ``attack(model, x, y)`` with ``x`` ``(N, C, H, W)`` and ``y`` ``(N,)``, as for every attack.
    """

    name = "apgd"

    def __init__(
        self,
        eps: float,
        steps: int = APGD_STEPS,
        *,
        loss: str = "ce",
        random_start: bool = True,
        targeted: bool = False,
        rho: float = 0.75,
        clip_min: float = 0.0,
        clip_max: float = 1.0,
        generator: torch.Generator | None = None,
        restarts: int = 1,
    ) -> None:
        if not isinstance(loss, str) or loss not in PER_EXAMPLE_LOSSES:
            raise ConfigError(f"APGD loss must be one of {', '.join(PER_EXAMPLE_LOSSES)}, got {loss!r}")
        if not (isinstance(rho, (int, float)) and 0 < rho <= 1):
            raise ConfigError(f"APGD rho must be a number in (0, 1], got {rho!r}")
        # The first step size is 2 eps (Algorithm 1); the base class keeps it as alpha.
        eps_ok = isinstance(eps, (int, float)) and not isinstance(eps, bool)
        super().__init__(eps, 2 * eps if eps_ok else eps, steps, random_start=random_start, targeted=targeted,
                         loss=loss, clip_min=clip_min, clip_max=clip_max, generator=generator, restarts=restarts)
        self.rho = float(rho)

    def __repr__(self) -> str:
        # The fingerprint of saved adversarial sets: every setting that changes x_adv.
        return (f"{type(self).__name__}(eps={self.eps!r}, steps={self.steps}, loss={self.loss_name!r}, "
                f"random_start={self.random_start}, targeted={self.targeted}, rho={self.rho!r}, "
                f"clip_min={self.clip_min!r}, clip_max={self.clip_max!r}, restarts={self.restarts})")

    def _run(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        loss = PER_EXAMPLE_LOSSES[self.loss_name]
        if self.targeted:
            return self._ascend(model, x, lambda z: -loss(z, y), lambda z: z.argmax(1) == y)[0]
        return self._ascend(model, x, lambda z: loss(z, y), lambda z: z.argmax(1) != y)[0]

    def _ascend(self, model: nn.Module, x: Tensor, objective: Callable[[Tensor], Tensor],
                fooled: Callable[[Tensor], Tensor]) -> tuple[Tensor, Tensor]:
        """One APGD run maximising ``objective(logits) -> (N,)``, given ``fooled(logits) -> (N,) bool``.

        Returns ``(x_adv (N, C, H, W), fooled (N,) bool)``: whether some iterate fooled the model.
        """
        n = x.shape[0]
        lo, hi = self._box(x)
        view = (n,) + (1,) * (x.dim() - 1)
        eta = torch.full(view, 2 * self.eps, dtype=x.dtype, device=x.device)
        checks = apgd_checkpoints(self.steps)[1:]

        def evaluate(point: Tensor) -> tuple[Tensor, Tensor, Tensor]:
            point = point.detach().requires_grad_(True)
            logits = model(point)
            f = objective(logits)
            (g,) = torch.autograd.grad(f.sum(), point)  # per-example gradients: the sum separates them
            return f.detach(), g, fooled(logits.detach())

        with eval_mode(model), torch.enable_grad():
            x_k = self._start(x, lo, hi)
            f_k, grad, hit = evaluate(x_k)
            x_adv = x_k.clone()  # per example: the last iterate that fooled the model, else x_max
            ever = hit.clone()
            x_max, f_max, grad_max = x_k.clone(), f_k.clone(), grad.clone()
            x_prev = x_k
            rises = torch.zeros(n, dtype=torch.long, device=x.device)
            f_max_at_check = f_max.clone()
            halved_at_check = torch.zeros(n, dtype=torch.bool, device=x.device)
            last_check = 0
            for k in range(self.steps):
                with torch.no_grad():
                    z = torch.addcmul(x_k, eta, grad.sign()).clamp_(lo, hi)
                    if k == 0:
                        x_next = z
                    else:  # momentum 0.75 on the projected step, 0.25 on the previous move
                        x_next = (x_k + 0.75 * (z - x_k) + 0.25 * (x_k - x_prev)).clamp_(lo, hi)
                x_prev, x_k = x_k, x_next
                f_next, grad, hit = evaluate(x_k)
                with torch.no_grad():
                    x_adv[hit] = x_k[hit]
                    ever |= hit
                    rises += f_next > f_k
                    f_k = f_next
                    better = f_next > f_max
                    x_max[better], f_max[better], grad_max[better] = x_k[better], f_next[better], grad[better]
                    if k + 1 in checks:
                        w = k + 1
                        stalled = rises < self.rho * (w - last_check)  # condition 1
                        stuck = ~halved_at_check & (f_max <= f_max_at_check)  # condition 2
                        halve = stalled | stuck
                        eta[halve] /= 2
                        # Restart the halved examples from their best point; the next momentum term is
                        # then x_max - x_k, as in the reference implementation.
                        x_k = torch.where(halve.view(view), x_max, x_k)
                        grad = torch.where(halve.view(view), grad_max, grad)
                        halved_at_check, f_max_at_check, last_check = halve, f_max.clone(), w
                        rises.zero_()
            return torch.where(ever.view(view), x_adv, x_max).detach(), ever


class APGDT(APGD):
    """APGD-T (Croce & Hein 2020, Section 4): APGD on the targeted DLR loss, one target class at a time.

    For ``t = 2 .. targets + 1`` the ``t``-th most likely class on the clean input is the target of a
    full APGD run (``steps`` iterations) on the examples no earlier target has fooled. Success is
    untargeted (``argmax != y``): ``y`` holds the true labels, and ``targeted=True`` is refused.
    AutoAttack's standard version uses 9 targets (all other classes of a 10-class problem); the
    number actually used is at most ``K - 1``. Needs K >= 4 classes.
    """

    name = "apgd-t"
    targetable = False

    def __init__(
        self,
        eps: float,
        steps: int = APGD_STEPS,
        *,
        targets: int = APGD_TARGETS,
        random_start: bool = True,
        rho: float = 0.75,
        clip_min: float = 0.0,
        clip_max: float = 1.0,
        generator: torch.Generator | None = None,
        restarts: int = 1,
    ) -> None:
        if isinstance(targets, bool) or not isinstance(targets, int) or targets < 1:
            raise ConfigError(f"APGD-T targets must be an integer >= 1, got {targets!r}")
        super().__init__(eps, steps, loss="dlr", random_start=random_start, rho=rho, clip_min=clip_min,
                         clip_max=clip_max, generator=generator, restarts=restarts)
        self.loss_name = "dlr-targeted"
        self.targets = targets

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f", targets={self.targets})"

    def _run(self, model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        with eval_mode(model), torch.no_grad():
            logits = model(x)
        order = logits.argsort(1, descending=True)  # clean ranking: rank 1 is the 2nd most likely class
        x_adv = x.clone()
        todo = torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
        for rank in range(1, min(self.targets, logits.shape[1] - 1) + 1):
            idx = todo.nonzero().squeeze(1)
            if idx.numel() == 0:
                break
            xi, yi, ti = x[idx], y[idx], order[idx, rank]
            out, hit = self._ascend(model, xi, lambda z, yi=yi, ti=ti: targeted_dlr_loss(z, yi, ti),
                                    lambda z, yi=yi: z.argmax(1) != yi)
            # Examples that no target fools keep the first target's highest-loss point.
            if rank == 1:
                x_adv[idx] = out
            else:
                x_adv[idx[hit]] = out[hit]
            todo[idx[hit]] = False
        return x_adv
