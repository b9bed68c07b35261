"""The arithmetic an attack's forward and backward passes run in: bf16 autocast with the input layer
kept in fp32, channels-last memory order, and ``torch.compile`` (``interpretgan attack --precision
--channels-last --compile``).

Under bf16 throughout, PGD-40 is a weaker attack on MNIST (it left 4.2 points more of 1,000 images
robust, ``experiments/2026-12-04-bf16-cpu/``): the module that reads the perturbed pixels sees them
with 8 bits of mantissa, so steps of 0.01 near 1 vanish and small gradient components lose their
sign. :class:`AttackForward` therefore runs that one module, found by :func:`input_module`, in fp32.
The adversarial examples are always judged by the fp32 model itself.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from interpretgan.devices import autocast, check_precision, eval_mode, to_channels_last


def input_module(model: nn.Module, example: Tensor) -> nn.Module | None:
    """The first module with weights of its own that ``model``'s forward calls on ``example`` (one
    image is enough): the layer that reads the pixels, or a normalisation's output of them. None
    when no module with weights runs."""
    order: list[nn.Module] = []
    owners = [m for m in model.modules() if next(m.parameters(recurse=False), None) is not None]
    hooks = [m.register_forward_pre_hook(lambda mod, _args: order.append(mod)) for m in owners]
    try:
        with eval_mode(model), torch.no_grad():  # eval: a probe must not move BatchNorm's statistics
            model(example[:1])
    finally:
        for h in hooks:
            h.remove()
    return order[0] if order else None


class AttackForward(nn.Module):
    """``model``'s forward in the attack's arithmetic; the weights stay ``model``'s own (shared).

    Args:
        model: the classifier; with ``channels_last`` its 4-d weights are put in NHWC order in place
            (values unchanged).
        precision: ``bf16`` runs the forward under autocast, except :func:`input_module`'s module,
            which runs in fp32 on float32 inputs; ``fp32`` or None runs it as written.
        channels_last: the batches (and the weights) in channels-last order.
        compile: ``torch.compile`` the forward (inductor; the first calls compile).
        example: an input batch, to find the input module (needed for ``bf16``).
    """

    def __init__(self, model: nn.Module, *, precision: str | None = None, channels_last: bool = False,
                 compile: bool = False, example: Tensor | None = None) -> None:
        super().__init__()
        check_precision(precision)
        self.model = to_channels_last(model, channels_last)
        self.precision, self.channels_last = precision or "fp32", bool(channels_last)
        object.__setattr__(self, "_first", None)
        if self.precision == "bf16":
            if example is None:
                raise ValueError("AttackForward needs an example batch under bf16, to find the input layer")
            # object.__setattr__: a reference, not a second registration of the submodule
            object.__setattr__(self, "_first", input_module(model, example))
            if self._first is not None:
                # An instance attribute shadows the class's forward (a hook pair could not hold the
                # autocast block open in a form torch.compile traces); remove() deletes it.
                self._first.forward = _in_fp32(self._first, example.device.type)
        self._run = torch.compile(self.model) if compile else self.model

    def forward(self, x: Tensor) -> Tensor:
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(x.device, self.precision):
            return self._run(x)

    def remove(self) -> None:
        """Give the input layer back its own forward (the model is as it was, bar its memory order)."""
        if self._first is not None and "forward" in vars(self._first):
            del self._first.forward



def _in_fp32(module: nn.Module, device_type: str) -> Any:
    """``module``'s own forward with autocast off and its floating inputs in float32."""
    forward = type(module).forward

    def fp32_forward(*args: Any, **kwargs: Any) -> Any:
        with torch.autocast(device_type, enabled=False):
            return forward(module, *(a.float() if isinstance(a, Tensor) and a.is_floating_point() else a
                                     for a in args), **kwargs)

    return fp32_forward


def attack_forward(model: nn.Module, example: Tensor, *, precision: str | None = None,
                   channels_last: bool = False, compile: bool = False) -> nn.Module:
    """``model`` itself when every option is off, else an :class:`AttackForward` around it."""
    if (precision or "fp32") == "fp32" and not channels_last and not compile:
        return model
    return AttackForward(model, precision=precision, channels_last=channels_last, compile=compile, example=example)
