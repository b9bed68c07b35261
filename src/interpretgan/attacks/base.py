"""The l-inf threat model every attack shares (paper Section 2.1, Eq. 1).

An adversarial example is ``x* = x + delta`` with ``||delta||_inf <= eps`` that maximises the
classification loss ``L(f(x + delta), y)`` (or, targeted, minimises it for a target label).
:class:`Attack` owns the threat model: random start, the projected step
``x <- clip(x + alpha * direction)`` and the projection back onto the eps-ball intersected with
``[clip_min, clip_max]``. A subclass owns only the step rule ``_step(grad, state) -> direction``
(sign of the gradient for PGD, sign of the accumulated gradient for momentum PGD), in the manner
of MadryLab/robustness's ``attack_steps``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from interpretgan.devices import eval_mode
from interpretgan.errors import ConfigError

#: A loss ``(logits (N, K), y (N,)) -> scalar``. It must SUM over the batch, so that the gradient
#: of each example does not depend on the batch size (sign rules do not care, raw-gradient ones do).
LossFn = Callable[[Tensor, Tensor], Tensor]


def _cross_entropy_sum(logits: Tensor, y: Tensor) -> Tensor:
    return F.cross_entropy(logits, y, reduction="sum")


def margin_loss(logits: Tensor, y: Tensor) -> Tensor:
    """Carlini-Wagner margin ``max_{j != y} z_j - z_y`` per example ``(N,)`` (no confidence cap).

    Untargeted attacks raise it until another class wins; targeted ones (``y`` the target) lower
    it until the target wins. Unlike cross-entropy it does not saturate on confident logits.
    """
    true = logits.gather(1, y[:, None]).squeeze(1)
    others = logits.masked_fill(F.one_hot(y, logits.shape[1]).bool(), float("-inf"))
    return others.amax(1) - true


def dlr_loss(logits: Tensor, y: Tensor) -> Tensor:
    """Difference of logits ratio per example ``(N,)`` (Croce & Hein 2020, Section 4), K >= 3 classes.

    ``-(z_y - max_{j != y} z_j) / (z_pi1 - z_pi3)`` with ``z_pi`` the logits sorted in decreasing
    order: the CW margin divided by a spread of the logits, so that it does not change when the
    logits are rescaled (which defeats attacks on the plain margin of over-confident models).
    """
    if logits.shape[1] < 3:
        raise ValueError(f"the DLR loss needs at least 3 classes, got logits of shape {tuple(logits.shape)}")
    top = logits.topk(3, dim=1).values
    return margin_loss(logits, y) / (top[:, 0] - top[:, 2] + 1e-12)


def _margin_sum(logits: Tensor, y: Tensor) -> Tensor:
    return margin_loss(logits, y).sum()


def _dlr_sum(logits: Tensor, y: Tensor) -> Tensor:
    return dlr_loss(logits, y).sum()


def _cross_entropy(logits: Tensor, y: Tensor) -> Tensor:
    return F.cross_entropy(logits, y, reduction="none")


#: The losses an attack can name as a string, summed over the batch.
LOSSES: dict[str, LossFn] = {"ce": _cross_entropy_sum, "cw": _margin_sum, "dlr": _dlr_sum}
#: The same losses per example ``(N,)``, for attacks that adapt per example (APGD's step size).
PER_EXAMPLE_LOSSES: dict[str, LossFn] = {"ce": _cross_entropy, "cw": margin_loss, "dlr": dlr_loss}


def resolve_loss(loss: LossFn | str) -> tuple[str, LossFn]:
    """``(name, fn)`` for a loss given by name (see :data:`LOSSES`) or as a callable."""
    if isinstance(loss, str):
        if loss not in LOSSES:
            raise ConfigError(f"unknown attack loss '{loss}'; valid losses are: {', '.join(LOSSES)}")
        return loss, LOSSES[loss]
    if not callable(loss):
        raise ConfigError(f"attack loss must be a loss name or a callable, got {type(loss).__name__}")
    return getattr(loss, "__qualname__", type(loss).__name__), loss


def _check_generator(generator: torch.Generator, device: torch.device) -> None:
    g = generator.device
    if g.type != device.type or (g.index is not None and device.index is not None and g.index != device.index):
        raise ValueError(
            f"the attack's generator is on {g} but the inputs are on {device}; "
            f"random starts are drawn on the inputs' device, so pass a torch.Generator(device='{device}')"
        )


class Attack:
    """Base l-inf attack: ``attack(model, x, y) -> x_adv`` (paper Section 2.1, Eq. 1).

    Settings are fixed at construction; the call runs on one batch, on the device of ``x``.

    Args:
        eps: radius of the l-inf ball, in the units of ``x`` (e.g. 0.3 for MNIST, Appendix C).
        alpha: step size of each iteration.
        steps: number of iterations (PGD-40 is ``steps=40``).
        random_start: start from ``x + U(-eps, eps)`` (clipped) instead of ``x``.
        targeted: if True, ``y`` holds target labels and the loss is minimised.
        loss: ``"ce"`` (cross-entropy summed over the batch), ``"cw"`` (the Carlini-Wagner margin,
            summed), ``"dlr"`` (Croce & Hein's difference of logits ratio, summed) or a callable
            ``(logits, y) -> scalar`` that sums over the batch.
        clip_min, clip_max: the valid pixel range; ``x`` must lie inside it.
        generator: draws the random start. It must live on the device of ``x``: the start is drawn
            with ``torch.rand(..., generator=generator, device=x.device)``, never on another device
            and copied, and a mismatch raises ``ValueError``. ``None`` uses the global RNG.
        restarts: runs from fresh random starts (Madry et al.'s evaluation). After each run, the
            examples not yet fooled (untargeted: still classified as ``y``; targeted: not yet as
            ``y``) are attacked again; each example keeps its first successful ``x_adv``, else its
            last one. So an example counts as robust only if it survives every restart, and the
            first run is exactly the ``restarts=1`` attack. Needs ``random_start``.

    Calling it:
        ``model``: any module mapping ``(N, C, H, W)`` to logits ``(N, K)``, on ``x``'s device.
        ``x``: floating images ``(N, C, H, W)`` in ``[clip_min, clip_max]``; ``y``: labels ``(N,)``
        (int64, same device). Returns ``x_adv`` detached, same shape, device and dtype as ``x``,
        with ``||x_adv - x||_inf <= eps`` and ``clip_min <= x_adv <= clip_max``.
        During the call the model is in eval mode; afterwards every submodule has its own
        ``training`` flag back. Gradients are taken with respect to the input only
        (``torch.autograd.grad``), so parameters' ``.grad`` and ``requires_grad`` are untouched.
    """

    #: registry name; set by each subclass.
    name: str = "attack"
    #: False for attacks that always measure success against the true label (APGD-T, AutoAttack):
    #: they refuse ``targeted=True``.
    targetable: bool = True

    def __init__(
        self,
        eps: float,
        alpha: float,
        steps: int,
        *,
        random_start: bool,
        targeted: bool = False,
        loss: LossFn | str = "ce",
        clip_min: float = 0.0,
        clip_max: float = 1.0,
        generator: torch.Generator | None = None,
        restarts: int = 1,
    ) -> None:
        if not (isinstance(eps, (int, float)) and math.isfinite(eps) and eps >= 0):
            raise ConfigError(f"attack eps must be a finite number >= 0, got {eps!r}")
        # With eps = 0 the ball is the point x and the step size is moot (FGSM then has alpha = 0).
        if not (isinstance(alpha, (int, float)) and math.isfinite(alpha) and (alpha > 0 or (alpha == 0 and eps == 0))):
            raise ConfigError(f"attack alpha (step size) must be a finite number > 0, got {alpha!r}")
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ConfigError(f"attack steps must be an integer >= 1, got {steps!r}")
        if not clip_min < clip_max:
            raise ConfigError(f"attack clip_min must be below clip_max, got {clip_min!r} and {clip_max!r}")
        if isinstance(restarts, bool) or not isinstance(restarts, int) or restarts < 1:
            raise ConfigError(f"attack restarts must be an integer >= 1, got {restarts!r}")
        if restarts > 1 and not random_start:
            raise ConfigError(
                f"attack restarts={restarts} needs random_start: without it every restart repeats the first"
            )
        if targeted and not self.targetable:
            raise ConfigError(
                f"attack '{self.name}' is untargeted (it picks its own target classes); leave targeted unset"
            )
        if generator is not None and not isinstance(generator, torch.Generator):
            raise ConfigError(f"attack generator must be a torch.Generator or None, got {type(generator).__name__}")
        self.eps = float(eps)
        self.alpha = float(alpha)
        self.steps = steps
        self.random_start = bool(random_start)
        self.targeted = bool(targeted)
        self.loss_name, self.loss_fn = resolve_loss(loss)
        self.clip_min = float(clip_min)
        self.clip_max = float(clip_max)
        self.generator = generator
        self.restarts = restarts

    def __repr__(self) -> str:
        # Also the fingerprint that resumable evaluation checks saved chunks against: keep it
        # deterministic (no object addresses) and complete (every setting that changes x_adv).
        return (
            f"{type(self).__name__}(eps={self.eps!r}, alpha={self.alpha!r}, steps={self.steps}, "
            f"random_start={self.random_start}, targeted={self.targeted}, loss={self.loss_name!r}, "
            f"clip_min={self.clip_min!r}, clip_max={self.clip_max!r}"
            # restarts only when used, so that sets saved before restarts existed still resume
            + (f", restarts={self.restarts})" if self.restarts > 1 else ")")
        )

    def with_generator(self, generator: torch.Generator | None) -> Attack:
        """A copy of this attack that draws its random start from ``generator``."""
        other = copy.copy(self)
        other.generator = generator
        return other

    # --- the step rule: the only part a subclass writes -------------------------------------
    def _init_state(self, x: Tensor) -> Any:
        """Per-call state of the step rule (e.g. a momentum buffer), created for batch ``x``."""
        return None

    def _step(self, grad: Tensor, state: Any) -> Tensor:
        """Ascent direction from ``grad = dL/dx_adv`` ``(N, C, H, W)``; may overwrite ``grad``."""
        raise NotImplementedError

    # --- the threat model -------------------------------------------------------------------
    def _check_inputs(self, model: nn.Module, x: Tensor, y: Tensor) -> None:
        if not isinstance(x, Tensor) or not x.is_floating_point():
            raise ValueError(
                f"attack inputs x must be a floating tensor in [{self.clip_min}, {self.clip_max}], "
                f"got {getattr(x, 'dtype', type(x))}"
            )
        soft = isinstance(y, Tensor) and y.dim() == 2 and y.is_floating_point()
        if (
            not isinstance(y, Tensor)
            or y.dim() not in (1, 2)
            or y.shape[0] != x.shape[0]
            or (y.dim() == 2 and not soft)
        ):
            raise ValueError(
                f"attack labels y must be a tensor of shape ({x.shape[0]},), or soft targets ({x.shape[0]}, K), "
                f"got {getattr(y, 'shape', type(y))}"
            )
        if not soft and (y.is_floating_point() or y.is_complex() or y.dtype == torch.bool):
            raise ValueError(f"attack labels y must be integer class indices, got dtype {y.dtype}")
        if soft and (self.restarts > 1 or self.targeted):
            raise ValueError("soft targets y (N, K) are a loss's targets only: they cannot say which examples are "
                             "fooled, so restarts and targeted attacks need integer labels")
        if y.device != x.device:
            raise ValueError(
                f"attack labels y are on {y.device} but inputs x are on {x.device}; move both to the model's device"
            )
        if self.generator is not None and self.random_start:
            _check_generator(self.generator, x.device)
        if x.numel():
            lo, hi = torch.aminmax(x.detach())
            lo, hi = float(lo), float(hi)
            if lo < self.clip_min or hi > self.clip_max:
                raise ValueError(
                    f"attack inputs x must lie in [{self.clip_min}, {self.clip_max}], got values in [{lo}, {hi}] "
                    "(divide uint8 images by 255; normalisation belongs inside the model)"
                )

    def __call__(self, model: nn.Module, x: Tensor, y: Tensor, *, start: Tensor | None = None) -> Tensor:
        """Adversarial examples ``(N, C, H, W)`` for ``x`` ``(N, C, H, W)`` and labels ``y`` ``(N,)``.

        ``y`` may also be soft targets ``(N, K)`` for a loss that takes them (TRADES' KL term).
        ``start``: the first iterate instead of the (random) start, projected onto the threat
        model's box (ATTA continues from a stored perturbation, TRADES from ``x`` plus noise).
        """
        self._check_inputs(model, x, y)
        x = x.detach()
        if start is not None:
            if type(self)._run is not Attack._run:
                raise ConfigError(
                    f"attack '{self.name}' chooses its own start; a start is taken by the projected-step attacks"
                )
            if not isinstance(start, Tensor) or start.shape != x.shape:
                raise ValueError(
                    f"attack start must be a tensor shaped like x {tuple(x.shape)}, "
                    f"got {getattr(start, 'shape', type(start))}"
                )
            return self._run(model, x, y, start=start.detach())
        x_adv = self._run(model, x, y)
        if self.restarts > 1:
            todo = ~self._fooled(model, x_adv, y)
            for _ in range(self.restarts - 1):
                if not todo.any():
                    break
                idx = todo.nonzero().squeeze(1)
                again = self._run(model, x[idx], y[idx])
                x_adv[idx] = again
                todo[idx] = ~self._fooled(model, again, y[idx])
        return x_adv

    def _fooled(self, model: nn.Module, x_adv: Tensor, y: Tensor) -> Tensor:
        """``(N,)`` bool: the attack succeeded on each example (prediction in eval mode)."""
        with eval_mode(model), torch.no_grad():
            pred = model(x_adv).argmax(1)
        return pred == y if self.targeted else pred != y

    def _box(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The eps-ball around ``x`` intersected with the pixel range, as per-pixel bounds ``(lo, hi)``.

        Projection and clipping then become one clamp per step.
        """
        return (x - self.eps).clamp_(min=self.clip_min), (x + self.eps).clamp_(max=self.clip_max)

    def _start(self, x: Tensor, lo: Tensor, hi: Tensor) -> Tensor:
        """The first iterate: ``x + U(-eps, eps)`` clamped to ``[lo, hi]`` (random start), else ``x``."""
        if self.random_start and self.eps > 0:
            noise = torch.rand(x.shape, generator=self.generator, device=x.device, dtype=x.dtype)
            x_adv = noise.mul_(2 * self.eps).sub_(self.eps).add_(x)  # x + U(-eps, eps)
            return x_adv.clamp_(lo, hi)
        return x.clone()

    def _run(self, model: nn.Module, x: Tensor, y: Tensor, start: Tensor | None = None) -> Tensor:
        """One run of ``steps`` projected steps from ``start`` (projected), else from a (random) start."""
        lo, hi = self._box(x)
        x_adv = self._start(x, lo, hi) if start is None else start.clone().clamp_(lo, hi)
        state = self._init_state(x)
        step = -self.alpha if self.targeted else self.alpha
        x_adv.requires_grad_(True)
        with eval_mode(model), torch.enable_grad():
            for _ in range(self.steps):
                loss = self.loss_fn(model(x_adv), y)
                (grad,) = torch.autograd.grad(loss, x_adv)
                direction = self._step(grad, state)
                with torch.no_grad():  # in-place update of the leaf, then project
                    x_adv.add_(direction, alpha=step)
                    x_adv.clamp_(lo, hi)
        return x_adv.detach()
