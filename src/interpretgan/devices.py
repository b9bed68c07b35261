"""Device names as tensors report them, and :func:`eval_mode`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


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
