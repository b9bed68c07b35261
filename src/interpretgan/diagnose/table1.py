"""Table 1 in memory: Acc_i and Vul_i (Eq. 5) of a classifier's explainers on an adversarial set D*."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from interpretgan.diagnose.indices import maxpool_index_change
from interpretgan.diagnose.vulnerability import vulnerability_table
from interpretgan.errors import ConfigError
from interpretgan.explain.explainer import Explainer
from interpretgan.explain.metrics import explanation_predictions
from interpretgan.models import TappedModel


def diagnose(classifier: TappedModel, explainers: Mapping[str, Explainer], x_adv: Tensor, y: Tensor, *,
             x: Tensor | None = None, pred: Tensor | None = None, n_boot: int = 1000, seed: int = 0,
             batch_size: int = 500, device: str | torch.device = "cpu") -> dict[str, Any]:
    """Acc_i / Vul_i with bootstrap intervals, and the drift to the adversarial label, on D* = (x_adv, y).

    Args:
        classifier: f (registered, or any net wrapped by :func:`interpretgan.models.tap`).
        explainers: ``{layer: Explainer}`` of f (e.g. ``train_explainers(...)["explainers"]``).
        x_adv: the adversarial images ``(N, C, H, W)``, uint8 or float in [0, 1]; ``y``: true labels ``(N,)``.
        x: the natural images of D*, for the max-pool index change (omitted without them).
        pred: f's labels on ``x_adv`` when already known (a stored D* records them); else computed.
    Returns:
        ``{"n", "input_accuracy", "table", "pred"}`` and ``"index_change"`` with ``x``: ``table`` is
        :func:`~interpretgan.diagnose.vulnerability.vulnerability_table`'s, plus ``adversarial_label``,
        per layer the fraction of fooled examples (f wrong on x*) whose explanation carries f's label on x*.
    """
    if y.ndim != 1 or len(y) != len(x_adv):
        raise ConfigError(
            f"D* needs one label per adversarial image: {len(x_adv)} images, labels of shape {tuple(y.shape)}"
        )
    own, preds = explanation_predictions(classifier, explainers, x_adv, batch_size=batch_size, device=device)
    pred = own if pred is None else pred.cpu()
    layers = list(preds)
    y = y.to("cpu", torch.int64)
    correct = torch.stack([preds[n] == y for n in layers], dim=1)
    table = vulnerability_table(correct, layers, model_layers=classifier.layer_names, n_boot=n_boot, seed=seed)
    fooled = pred != y
    table["adversarial_label"] = {n: float((preds[n][fooled] == pred[fooled]).float().mean()) if fooled.any() else None
                                  for n in layers}
    out = {"n": len(y), "input_accuracy": float((pred == y).float().mean()), "table": table, "pred": own}
    if x is not None:
        out["index_change"] = maxpool_index_change(classifier, x, x_adv, batch_size=batch_size, device=device)
    return out
