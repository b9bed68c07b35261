"""The InterpretGAN objective: WGAN-GP with ProGAN's drift term, plus the interpretability term (Eq. 2-4).

The paper writes the game with the original GAN value ``V(D, G)`` (Eq. 1-2) and trains it, as the
progressive GAN it builds on does, with the WGAN-GP loss. Per stack member (one per explained layer):

* critic:    ``E[D(x_hat)] - E[D(x)] + gp_weight * E[(||grad D(x_mix)|| - 1)^2] + drift * E[D(x)^2]``
  with ``x_mix = x + eps (x_hat - x)``, ``eps ~ U(0, 1)`` per example (gp_weight 10, drift 0.001),
  the gradient taken in the critic's [-1, 1] pixel space as in ProGAN;
* generator (and compression net): ``-E[D(x_hat)] - lambda * L_I`` where, by Eq. 3,
  ``L_I = E[log p(f(x_hat) = y)] + H(y)``, ``y = f(x)``: minimising ``-L_I`` is minimising the
  cross-entropy of the frozen classifier's prediction on ``x_hat`` against ``y`` (lambda = 1).
  ``y`` is f's label ``argmax f(x)`` (``target="label"``) or, reading ``y ~ f(x)`` in Eq. 3
  literally, f's predictive distribution (``target="distribution"``: a soft-label cross-entropy).

Losses come back per member, shape ``(S,)``; the trainer sums them (members share no weights, so
each member's gradient is that of its own loss).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from interpretgan.errors import ConfigError

TARGETS = ("label", "distribution")


def gradient_penalty(critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, eps: Tensor, *,
                     input_scale: float = 1.0) -> Tensor:
    """WGAN-GP's penalty ``E[(||grad_u D(u_mix)||_2 - 1)^2]`` per stack member, ``u`` the critic's own pixel space.

    Args:
        critic: maps images ``(B, S * C, H, W)`` to scores ``(B, S)`` (or ``(B,)`` when ``S = 1``).
        real, fake: ``(B, S * C, H, W)``; ``fake`` should be detached from the generator.
        eps: interpolation weights ``(B, S)`` (or ``(B,)``) in [0, 1].
        input_scale: the critic maps its input ``x`` to ``u = input_scale * x + shift`` before its
            first layer, and the penalty is taken in ``u``: ``||grad_u|| = ||grad_x|| / input_scale``.
            :class:`~interpretgan.explain.progan.ProDiscriminator` takes images in [0, 1] and works in
            ProGAN's [-1, 1] (``input_scale`` 2), where ProGAN takes its penalty.
    Returns:
        ``(S,)``, differentiable with respect to the critic's parameters (``create_graph=True``).
    """
    b = real.shape[0]
    eps = eps.reshape(b, -1)
    s = eps.shape[1]
    w = eps.repeat_interleave(real.shape[1] // s, dim=1)[:, :, None, None].to(real.dtype)
    mix = (real + w * (fake - real)).detach().requires_grad_(True)
    scores = critic(mix)
    (grad,) = torch.autograd.grad(scores.sum(), mix, create_graph=True)
    norms = grad.reshape(b, s, -1).norm(dim=2) / input_scale  # (B, S)
    return (norms - 1.0).pow(2).mean(dim=0)


def critic_loss(d_real: Tensor, d_fake: Tensor, gp: Tensor, *, gp_weight: float = 10.0,
                drift: float = 0.001) -> tuple[Tensor, dict[str, Tensor]]:
    """The critic's WGAN-GP loss per member.

    ``d_real``, ``d_fake``: scores ``(B, S)``; ``gp``: ``(S,)``. Returns the loss ``(S,)`` and
    detached parts: ``wasserstein`` (``E[D(x)] - E[D(x_hat)]``), ``gp`` and ``drift``.
    """
    d_real, d_fake = d_real.reshape(d_real.shape[0], -1), d_fake.reshape(d_fake.shape[0], -1)
    wasserstein = d_real.mean(0) - d_fake.mean(0)
    drift_term = d_real.pow(2).mean(0)
    loss = -wasserstein + gp_weight * gp + drift * drift_term
    return loss, {"wasserstein": wasserstein.detach(), "gp": gp.detach(), "drift": drift_term.detach()}


def interpretability_loss(logits_hat: Tensor, target: Tensor) -> Tensor:
    """``-L_I`` of Eq. 3 up to the constant ``H(y)``: the cross-entropy of ``f(x_hat)`` against ``y``.

    ``logits_hat``: ``(S * B, K)``, member-major (member ``i``'s batch is rows ``[i*B, (i+1)*B)``);
    ``target``: labels ``(B,)`` or probabilities ``(B, K)``. Returns ``(S,)``.
    """
    b = target.shape[0]
    s = logits_hat.shape[0] // b
    reps = (s,) + (1,) * (target.dim() - 1)
    ce = F.cross_entropy(logits_hat, target.repeat(*reps), reduction="none")
    return ce.view(s, b).mean(dim=1)


def generator_loss(d_fake: Tensor, logits_hat: Tensor, target: Tensor, *,
                   interp_weight: float = 1.0) -> tuple[Tensor, dict[str, Tensor]]:
    """The generator's loss per member, Eq. 4: ``-E[D(x_hat)] + lambda * CE(f(x_hat), y)``.

    ``d_fake``: ``(B, S)``; ``logits_hat``, ``target``: as :func:`interpretability_loss`. Returns
    the loss ``(S,)`` and detached parts ``adversarial`` and ``interp``.
    """
    adversarial = -d_fake.reshape(d_fake.shape[0], -1).mean(0)
    interp = interpretability_loss(logits_hat, target)
    return adversarial + interp_weight * interp, {"adversarial": adversarial.detach(), "interp": interp.detach()}


def pixel_loss(fake: Tensor, real: Tensor, members: int) -> Tensor:
    """Mean squared pixel error of each member's images ``(B, S * C, H, W)`` to the real ones: ``(S,)``."""
    b = fake.shape[0]
    return (fake - real).pow(2).reshape(b, members, -1).mean(dim=(0, 2))


def reconstruction_loss(fake: Tensor, real: Tensor, logits_hat: Tensor, target: Tensor, *,
                        interp_weight: float = 1.0) -> tuple[Tensor, dict[str, Tensor]]:
    """The critic-free explainer's loss per member (``objective="mse"``): pixel MSE to the image
    (Dosovitskiy & Brox's inverter) ``+ lambda * CE(f(x_hat), y)``.

    ``fake``, ``real``: ``(B, S * C, H, W)``; ``logits_hat``, ``target``: as :func:`interpretability_loss`.
    Returns the loss ``(S,)`` and detached parts ``pixel`` and ``interp``.
    """
    interp = interpretability_loss(logits_hat, target)
    pixel = pixel_loss(fake, real, interp.shape[0])
    return pixel + interp_weight * interp, {"pixel": pixel.detach(), "interp": interp.detach()}


def classifier_target(logits: Tensor, kind: str = "label") -> Tensor:
    """``y = f(x)`` for the interpretability term: labels ``(B,)`` or probabilities ``(B, K)``."""
    if kind == "label":
        return logits.argmax(dim=1)
    if kind == "distribution":
        return logits.softmax(dim=1)
    raise ConfigError(f"unknown interpretability target '{kind}'; expected one of {', '.join(TARGETS)}")
