"""Device names as tensors report them, :func:`eval_mode`, and the numeric formats a stage may run in
(:func:`autocast`, :func:`to_channels_last`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from interpretgan.errors import ConfigError

#: --precision: fp32 runs as written; bf16 runs the forward passes under torch.autocast in bfloat16.
PRECISIONS = ("fp32", "bf16")


def concrete_device(device: str | torch.device) -> torch.device:
    """``device`` with its index filled in: ``cuda`` becomes ``cuda:<current device>``.

    Tensors moved to ``cuda`` live on ``cuda:0`` (or the current device), and
    ``torch.device("cuda") != torch.device("cuda:0")``: comparing a tensor's device with a device
    the user named needs this form.
    """
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", torch.cuda.current_device())
    return device


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode for the block, then restore every submodule's own flag.

    Restoring per submodule (not ``model.train(was_training)``) keeps a partly frozen model, e.g. a
    train-mode model with its BatchNorm layers in eval, exactly as it was.
    """
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, flag in flags:
            m.training = flag


def check_precision(precision: str | None) -> None:
    """One sentence when ``precision`` is not one of :data:`PRECISIONS` (None: fp32)."""
    if precision not in (None, *PRECISIONS):
        raise ConfigError(f"--precision must be one of {', '.join(PRECISIONS)}, got '{precision}'")


def autocast(device: str | torch.device, precision: str | None) -> torch.autocast:
    """The block's forward passes in ``precision``: ``bf16`` runs convolutions and matrix products in
    bfloat16 under :class:`torch.autocast` (losses, softmax and reductions stay float32, and so do the
    weights, their gradients and the inputs an attack perturbs); ``fp32`` or None runs them as written.
    Backward passes follow their forward's types, so a ``loss.backward()`` may sit outside the block."""
    check_precision(precision)
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=precision == "bf16")


def to_channels_last(model: nn.Module, enabled: bool | None = True) -> nn.Module:
    """``model`` with its 4-d weights in channels-last memory order (NHWC: the layout oneDNN's and cuDNN's
    fastest convolutions read), when ``enabled``; the values are unchanged. Only 4-d tensors move
    (``Module.to`` would refuse a module holding 5-d ones, such as stacked explainers' weights)."""
    if enabled:
        with torch.no_grad():
            for t in [*model.parameters(), *model.buffers()]:
                if t.dim() == 4:
                    t.data = t.data.contiguous(memory_format=torch.channels_last)
    return model
