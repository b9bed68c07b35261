"""Device names as tensors report them."""

from __future__ import annotations

import torch


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
