"""Explanation by optimisation, no training (the ablation's ``optim`` arm): for a layer's activation
``l_i(x)``, the image ``x_hat`` in [0, 1] that minimises

    ||l_i(x_hat) - l_i(x)||^2 / ||l_i(x)||^2  +  tv_weight * TV(x_hat)

by projected Adam from a fixed start (Mahendran & Vedaldi 2015: inversion under a natural-image
prior, here the squared total variation; Engstrom et al. 2019 run the same inversion on robust models,
where the prior matters less). :class:`FeatureInverter` maps latents to images as an
:class:`~interpretgan.explain.explainer.Explainer` does, so the diagnosis and the metrics take it as
they take a trained explainer.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from interpretgan.devices import eval_mode
from interpretgan.errors import ConfigError
from interpretgan.models import TappedModel


def total_variation(x: Tensor) -> Tensor:
    """Squared total variation per image ``(B,)``: the mean squared difference of neighbouring pixels."""
    dh = (x[:, :, 1:, :] - x[:, :, :-1, :]).pow(2).flatten(1).mean(1)
    dw = (x[:, :, :, 1:] - x[:, :, :, :-1]).pow(2).flatten(1).mean(1)
    return dh + dw


def feature_distance(features: Tensor, target: Tensor) -> Tensor:
    """``||features - target||^2 / ||target||^2`` per example ``(B,)`` (the inversion's data term)."""
    err = (features - target).pow(2).flatten(1).sum(1)
    return err / target.pow(2).flatten(1).sum(1).clamp_min(1e-12)


class FeatureInverter(nn.Module):
    """Latent ``l_i(x)`` -> the image of least :func:`feature_distance` plus ``tv_weight`` times
    :func:`total_variation`, after ``steps`` Adam steps of size ``lr`` from the constant image ``start``
    (each step projected onto [0, 1]). The classifier's weights get no gradient."""

    def __init__(self, classifier: TappedModel, layer: str, *, steps: int = 200, lr: float = 0.05,
                 tv_weight: float = 0.05, start: float = 0.5) -> None:
        super().__init__()
        if steps < 1 or lr <= 0 or tv_weight < 0 or not 0 <= start <= 1:
            raise ConfigError(f"the inversion needs steps >= 1, lr > 0, tv_weight >= 0 and start in [0, 1]; got "
                              f"steps {steps}, lr {lr}, tv_weight {tv_weight}, start {start}")
        self.classifier, self.layer = classifier, classifier.check_layers([layer])[0]
        self.steps, self.lr, self.tv_weight, self.start = steps, lr, tv_weight, start

    def forward(self, latent: Tensor) -> Tensor:
        f, target = self.classifier, latent.detach().float()
        x = torch.full((latent.shape[0], *f.input_shape), self.start, device=latent.device, requires_grad=True)
        opt = torch.optim.Adam([x], lr=self.lr)
        with torch.enable_grad(), eval_mode(f):  # also when the caller runs under no_grad
            for _ in range(self.steps):
                loss = self.objective(x, target).sum()
                (grad,) = torch.autograd.grad(loss, x)  # into x alone: f's weights are left as they are
                x.grad = grad
                opt.step()
                with torch.no_grad():
                    x.clamp_(0.0, 1.0)
        return x.detach()

    def objective(self, x: Tensor, target: Tensor) -> Tensor:
        """The minimised loss per image ``(B,)``."""
        features = self.classifier.taps(x, [self.layer])[self.layer]
        return feature_distance(features, target) + self.tv_weight * total_variation(x)
