"""Independent cross-check of our PGD against ``captum.robust.PGD`` (used by ``interpretgan attack --crosscheck``)."""

from __future__ import annotations

import warnings
from typing import Any

import torch
import torch.nn.functional as F
from captum.robust import PGD as CaptumPGD
from torch import Tensor, nn

from interpretgan.attacks.pgd import PGD
from interpretgan.devices import eval_mode


def _per_example_ce(logits: Tensor, y: Tensor) -> Tensor:
    return F.cross_entropy(logits, y, reduction="none")


def crosscheck_with_captum(
    model: nn.Module, x: Tensor, y: Tensor, eps: float, alpha: float, steps: int, *, zero_thresh: float = 0.0
) -> dict[str, Any]:
    """Robust accuracy under our PGD and under ``captum.robust.PGD`` with the same settings.

    Both start at ``x`` (no random start), use cross-entropy, the l-inf ball and the [0, 1] range.
    ``x`` ``(N, C, H, W)`` in [0, 1] and ``y`` ``(N,)`` must be on the model's device.
    ``zero_thresh`` is set on captum's inner FGSM: captum leaves a pixel unchanged where
    ``|grad| <= zero_thresh``. Its default, 1e-6, freezes every pixel of an example the model is
    very confident about (the cross-entropy gradient vanishes in float32 there), which makes it a
    different, weaker attack; 0.0 (the default here) makes it the textbook rule ours implements.

    Returns:
        ``{"ours": accuracy, "captum": accuracy, "diff_points": 100 * (ours - captum),
        "same_prediction": fraction of examples with equal predictions,
        "max_abs_diff": max |x_ours - x_captum|, "n": N}``.
    """
    ours = PGD(eps, alpha, steps, random_start=False)
    captum = CaptumPGD(model, loss_func=_per_example_ce, lower_bound=0.0, upper_bound=1.0)
    captum.fgsm.zero_thresh = zero_thresh
    with eval_mode(model):
        x_ours = ours(model, x, y)
        with torch.enable_grad(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Input Tensor .* did not already require gradients")
            x_captum = captum.perturb(
                x.detach().clone(), radius=eps, step_size=alpha, step_num=steps, target=y,
                targeted=False, random_start=False, norm="Linf",
            ).detach()
        with torch.no_grad():
            p_ours, p_captum = model(x_ours).argmax(1), model(x_captum).argmax(1)
    n = int(y.numel())
    acc_ours = float((p_ours == y).sum()) / n
    acc_captum = float((p_captum == y).sum()) / n
    return {
        "ours": acc_ours,
        "captum": acc_captum,
        "diff_points": 100.0 * (acc_ours - acc_captum),
        "same_prediction": float((p_ours == p_captum).sum()) / n,
        "max_abs_diff": float((x_ours - x_captum).abs().max()) if n else 0.0,
        "n": n,
    }
