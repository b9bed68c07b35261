"""Quality of the explainers, per layer: consistency, Frechet distance, and the drift of adversarial explanations.

* **consistency**: the fraction of natural test images whose explanation gets f's label,
  ``f(x_hat_i) == f(x)``: what the interpretability term (Eq. 3) asks for.
* **Frechet distance in the classifier's feature space**: the Frechet distance between two
  Gaussians fitted to f's penultimate-layer features (the layer before the logits: ``fc2`` for
  SmallCNN and VGG16) of real test images and of their explanations. It is FID's formula, but
  computed with the explained classifier as the feature extractor instead of Inception-v3, so its
  values are comparable only within one classifier: read them beside the **floor** (the same
  distance between training and test images, :func:`real_floor`) and a **randomly initialised
  explainer** of the same architecture (``random_frechet``).
* **adversarial drift**: on an adversarial set D*, per layer, the fraction of explanations that f
  classifies as the adversarial label (the paper's main observation: it grows layer by layer), and
  Acc_i, the fraction classified as the true label (Eq. 5).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from interpretgan.devices import eval_mode
from interpretgan.explain.compression import CompressionNet
from interpretgan.explain.explainer import Explainer
from interpretgan.explain.progan import ProGenerator
from interpretgan.models import TappedModel

log = logging.getLogger(__name__)


def penultimate_layer(classifier: TappedModel) -> str:
    """The tap before the logits (``fc2`` for SmallCNN and VGG16): the Frechet feature space."""
    return classifier.layer_names[-2]


class _Moments:
    """Running sums (float64) for a mean ``(D,)`` and a covariance ``(D, D)``."""

    def __init__(self) -> None:
        self.n, self.s1, self.s2 = 0, None, None

    def add(self, feats: Tensor) -> None:
        f = feats.flatten(1).to(torch.float64)
        s1, s2 = f.sum(0), f.T @ f
        self.s1 = s1 if self.s1 is None else self.s1 + s1
        self.s2 = s2 if self.s2 is None else self.s2 + s2
        self.n += f.shape[0]

    def stats(self) -> tuple[Tensor, Tensor]:
        if self.n < 2:
            raise ValueError("a covariance needs at least two examples")
        mu = self.s1 / self.n
        cov = (self.s2 - self.n * torch.outer(mu, mu)) / (self.n - 1)
        return mu, cov


def frechet_distance(mu1: Tensor, cov1: Tensor, mu2: Tensor, cov2: Tensor) -> float:
    """``||mu1 - mu2||^2 + tr(cov1 + cov2 - 2 (cov1 cov2)^(1/2))`` between two Gaussians (float64).

    ``tr((cov1 cov2)^(1/2))`` is the sum of the square roots of the eigenvalues of
    ``cov1^(1/2) cov2 cov1^(1/2)`` (symmetric, positive semi-definite), which avoids a
    non-symmetric matrix square root.
    """
    mu1, cov1, mu2, cov2 = (t.to(torch.float64) for t in (mu1, cov1, mu2, cov2))
    w, v = torch.linalg.eigh(cov1)
    sqrt1 = (v * w.clamp(min=0).sqrt()) @ v.T
    m = sqrt1 @ cov2 @ sqrt1
    tr_sqrt = torch.linalg.eigvalsh((m + m.T) / 2).clamp(min=0).sqrt().sum()
    value = (mu1 - mu2).pow(2).sum() + torch.trace(cov1) + torch.trace(cov2) - 2 * tr_sqrt
    return float(value.clamp(min=0))


def _batches(x: Tensor, batch_size: int, device: torch.device):
    for s in range(0, x.shape[0], batch_size):
        xb = x[s : s + batch_size].to(device)  # explicit: evaluation runs on the caller's device
        yield s, (xb.float().div_(255) if xb.dtype == torch.uint8 else xb.float())


@torch.no_grad()
def feature_statistics(classifier: TappedModel, x: Tensor, *, batch_size: int = 500, device: str | torch.device = "cpu",
                       layer: str | None = None) -> tuple[Tensor, Tensor]:
    """Mean ``(D,)`` and covariance ``(D, D)`` (float64) of f's ``layer`` features (default: penultimate).

    ``x``: images ``(N, C, H, W)``, uint8 or float in [0, 1], any device (batches go to ``device``).
    """
    layer = layer or penultimate_layer(classifier)
    acc = _Moments()
    with eval_mode(classifier):
        for _, xb in _batches(x, batch_size, torch.device(device)):
            acc.add(classifier.taps(xb, [layer])[layer])
    return acc.stats()


def real_floor(classifier: TappedModel, x_a: Tensor, x_b: Tensor, *, batch_size: int = 500,
               device: str | torch.device = "cpu") -> float:
    """The Frechet distance between two sets of real images (e.g. training vs test): the best an explainer can do."""
    a = feature_statistics(classifier, x_a, batch_size=batch_size, device=device)
    b = feature_statistics(classifier, x_b, batch_size=batch_size, device=device)
    return frechet_distance(*a, *b)


def random_explainer(like: Explainer, seed: int = 0) -> Explainer:
    """An explainer with ``like``'s architecture, freshly initialised from ``seed`` (the untrained baseline)."""
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)  # the CPU generator only (restored on exit); CUDA's untouched
        comp = CompressionNet(**like.compression.config)
        gen = ProGenerator(**like.generator.config)
    p = next(like.parameters())
    return Explainer(like.layer, comp, gen, image_shape=like.image_shape, fit=like.fit).to(p.device).eval()


def ssim(a: Tensor, b: Tensor, *, window: int = 11, sigma: float = 1.5) -> Tensor:
    """Structural similarity of images ``(B, C, H, W)`` in [0, 1], per image ``(B,)`` (Wang et al. 2004:
    an 11 x 11 Gaussian window of sd 1.5 over the valid positions, C1 = 0.01^2, C2 = 0.03^2, the mean
    over positions and channels). Images smaller than the window use a window of their size."""
    c = a.shape[1]
    window = min(window, a.shape[-1], a.shape[-2])
    g = torch.exp(-((torch.arange(window, dtype=a.dtype, device=a.device) - window // 2) ** 2) / (2 * sigma**2))
    g = g / g.sum()
    kernel = torch.outer(g, g).expand(c, 1, window, window)

    def blur(t: Tensor) -> Tensor:
        return torch.nn.functional.conv2d(t, kernel, groups=c)

    mu_a, mu_b = blur(a), blur(b)
    var_a, var_b = blur(a * a) - mu_a**2, blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    value = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return value.flatten(1).mean(1)


@torch.no_grad()
def evaluate_explainers(classifier: TappedModel, explainers: Mapping[str, Explainer], x: Tensor, *,
                        reference_x: Tensor | None = None, batch_size: int = 500, device: str | torch.device = "cpu",
                        baseline_seed: int | None = 0, reconstruction: bool = False) -> dict[str, Any]:
    """Consistency and Frechet distance of each layer's explanations of the natural images ``x``.

    Args:
        classifier: f, on ``device``; explainers: ``{layer: Explainer}`` on ``device`` (or anything that
            maps a layer's latents to images, such as :class:`~interpretgan.explain.inversion.FeatureInverter`).
        x: test images ``(N, C, H, W)``, uint8 or float in [0, 1] (any device; batches are moved).
        reference_x: other real images (e.g. training images) for the floor :func:`real_floor`.
        baseline_seed: also score a randomly initialised explainer per layer (None: skip).
        reconstruction: also how close each explanation is to its image: ``pixel_mse`` (mean squared
            error) and ``ssim`` (:func:`ssim`), means over the images.
    Returns:
        ``{"feature_layer", "frechet_floor" (or None), "layers": {layer: {"consistency", "frechet",
        "random_consistency", "random_frechet"[, "pixel_mse", "ssim"]}}}``.
    """
    device = torch.device(device)
    feat, last = penultimate_layer(classifier), classifier.layer_names[-1]
    layers = [n for n in classifier.layer_names if n in explainers]
    models: dict[str, dict[str, Explainer]] = {"": dict(explainers)}
    if baseline_seed is not None:
        models["random_"] = {n: random_explainer(explainers[n], baseline_seed) for n in layers}
    real = _Moments()
    moments = {(p, n): _Moments() for p in models for n in layers}
    agree = {(p, n): 0 for p in models for n in layers}
    close = {n: [0.0, 0.0] for n in layers}  # sums of the pixel error and of SSIM
    with eval_mode(classifier):
        for _, xb in _batches(x, batch_size, device):
            taps = classifier.taps(xb, list(dict.fromkeys([*layers, feat, last])))
            real.add(taps[feat])
            label = taps[last].argmax(1)
            for p, exps in models.items():
                for n in layers:
                    x_hat = exps[n](taps[n])
                    out = classifier.taps(x_hat, [feat, last])
                    moments[p, n].add(out[feat])
                    agree[p, n] += int((out[last].argmax(1) == label).sum())
                    if reconstruction and not p:
                        close[n][0] += float((x_hat - xb).pow(2).flatten(1).mean(1).sum())
                        close[n][1] += float(ssim(x_hat, xb).sum())
    mu_r, cov_r = real.stats()
    total = x.shape[0]
    result: dict[str, Any] = {"feature_layer": feat, "frechet_floor": None, "layers": {}}
    for n in layers:
        entry = {}
        for p in models:
            entry[f"{p}consistency"] = agree[p, n] / total
            entry[f"{p}frechet"] = frechet_distance(*moments[p, n].stats(), mu_r, cov_r)
        if reconstruction:
            entry["pixel_mse"], entry["ssim"] = close[n][0] / total, close[n][1] / total
        result["layers"][n] = entry
    if reference_x is not None:
        result["frechet_floor"] = frechet_distance(*feature_statistics(classifier, reference_x, batch_size=batch_size,
                                                                      device=device, layer=feat), mu_r, cov_r)
    return result


@torch.no_grad()
def explanation_predictions(
    classifier: TappedModel,
    explainers: Mapping[str, Explainer],
    x: Tensor,
    *,
    batch_size: int = 500,
    device: str | torch.device = "cpu",
) -> tuple[Tensor, dict[str, Tensor]]:
    """f's labels on images ``x`` and on each layer's explanation of them, from one f forward per batch.

    Args:
        x: images ``(N, C, H, W)``, uint8 or float in [0, 1] (any device; batches go to ``device``).
    Returns:
        ``(pred (N,), {layer: f(x_hat_layer) (N,)})`` on the CPU, layers in the classifier's order.
    """
    device = torch.device(device)
    last = classifier.layer_names[-1]
    layers = [n for n in classifier.layer_names if n in explainers]
    preds: dict[str, list[Tensor]] = {n: [] for n in layers}
    own: list[Tensor] = []
    with eval_mode(classifier):
        for _, xb in _batches(x, batch_size, device):
            taps = classifier.taps(xb, list(dict.fromkeys([*layers, last])))
            own.append(taps[last].argmax(1).cpu())
            for n in layers:
                preds[n].append(classifier(explainers[n](taps[n])).argmax(1).cpu())
    return torch.cat(own), {n: torch.cat(p) for n, p in preds.items()}


def adversarial_drift(classifier: TappedModel, explainers: Mapping[str, Explainer], x_adv: Tensor, y: Tensor, *,
                      adv_pred: Tensor | None = None, batch_size: int = 500,
                      device: str | torch.device = "cpu") -> dict[str, Any]:
    """Where the explanations of adversarial examples land, per layer.

    Args:
        x_adv: adversarial images ``(N, C, H, W)`` in [0, 1] (D*); y: true labels ``(N,)``.
        adv_pred: f's labels on ``x_adv`` ``(N,)`` (computed when None).
    Returns:
        ``{"n", "n_fooled" (adv_pred != y), "input_accuracy", "layers": {layer: {"accuracy" (Acc_i of
        Eq. 5: f(x_hat) == y over all N), "adversarial_label" (f(x_hat) == adv_pred over the fooled
        examples), "prediction_kept" (f(x_hat) == adv_pred over all N)}}}``.
    """
    own, preds = explanation_predictions(classifier, explainers, x_adv, batch_size=batch_size, device=device)
    y = y.to("cpu", torch.int64)
    adv = own if adv_pred is None else adv_pred.to("cpu", torch.int64)
    fooled = adv != y
    n_fooled = int(fooled.sum())
    out: dict[str, Any] = {"n": int(y.numel()), "n_fooled": n_fooled,
                           "input_accuracy": float((adv == y).float().mean()), "layers": {}}
    for n, p in preds.items():
        out["layers"][n] = {
            "accuracy": float((p == y).float().mean()),
            "adversarial_label": float((p[fooled] == adv[fooled]).float().mean()) if n_fooled else None,
            "prediction_kept": float((p == adv).float().mean()),
        }
    return out


# --- adversarial sets ----------------------------------------------------------------------------


