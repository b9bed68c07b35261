"""Pixel-attribution baselines through Captum, beside the InterpretGAN explanations (Section 4.1, Fig. 3 and 5).

DeepLIFT, saliency, input x gradient, integrated gradients and occlusion, each attributing the
label f predicts for the input it is given (the natural image, or the adversarial one), with a
black image as the baseline where a method needs one. The models of this package give every
ReLU its own module, which Captum's DeepLIFT requires; they are used as they are.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
from captum.attr import DeepLift, InputXGradient, IntegratedGradients, Occlusion, Saliency
from torch import Tensor, nn

from interpretgan.devices import eval_mode
from interpretgan.errors import ConfigError

#: The baselines, in the order the figure draws them.
METHODS: tuple[str, ...] = ("deeplift", "saliency", "input_x_gradient", "integrated_gradients", "occlusion")


def attribute(model: nn.Module, x: Tensor, methods: Sequence[str] = METHODS, *, target: Tensor | None = None,
              ig_steps: int = 32, occlusion_window: int | None = None) -> dict[str, Tensor]:
    """Attributions of f's label for images ``x`` ``(N, C, H, W)`` in [0, 1], one ``(N, C, H, W)`` map per method.

    Args:
        target: the labels to attribute ``(N,)`` (default: f's prediction on ``x``).
        ig_steps: integrated-gradients steps (Gauss-Legendre, Captum's default rule).
        occlusion_window: side of the occluding square (default ``H // 8``, at least 2), stride half of it.
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ConfigError(f"unknown baseline(s) {', '.join(unknown)}; expected some of {', '.join(METHODS)}")
    if x.ndim != 4:
        raise ConfigError(f"baselines need images (N, C, H, W), got shape {tuple(x.shape)}")
    base = torch.zeros_like(x)
    side = occlusion_window or max(2, x.shape[-1] // 8)
    out: dict[str, Tensor] = {}
    with eval_mode(model), warnings.catch_warnings():
        # DeepLIFT announces that it hooks the activations (and removes the hooks afterwards).
        warnings.filterwarnings("ignore", message="Setting forward, backward hooks")
        if target is None:
            with torch.no_grad():
                target = model(x).argmax(1)
        for m in methods:
            inp = x.detach().clone().requires_grad_(m != "occlusion")
            if m == "deeplift":
                a = DeepLift(model).attribute(inp, baselines=base, target=target)
            elif m == "saliency":
                a = Saliency(model).attribute(inp, target=target, abs=True)
            elif m == "input_x_gradient":
                a = InputXGradient(model).attribute(inp, target=target)
            elif m == "integrated_gradients":
                a = IntegratedGradients(model).attribute(inp, baselines=base, target=target, n_steps=ig_steps,
                                                         internal_batch_size=max(1, x.shape[0]) * 8)
            else:
                a = Occlusion(model).attribute(inp, baselines=0.0, target=target,
                                               sliding_window_shapes=(x.shape[1], side, side),
                                               strides=(x.shape[1], max(1, side // 2), max(1, side // 2)))
            out[m] = a.detach()
    return out


