"""Classifiers as an ordered chain of named stages, with layer taps and ``f_post``.

A classifier ``f`` is written as ``f = stage_K o ... o stage_1 (o normalize)``; the output of
stage ``i`` is the latent variable ``l_i`` the paper explains (Section 3: ``l = f_pre(x)``,
``f = f_post o f_pre``). :meth:`TappedModel.taps` reads chosen stage outputs from one forward pass
through forward hooks that are always removed (in ``finally``), and :meth:`TappedModel.f_post`
runs the rest of the network from any tap.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import nn

from interpretgan.errors import ConfigError


class Normalize(nn.Module):
    """Per-channel ``(x - mean) / std`` inside the model, so attacks work on pixels in [0, 1]."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def make_normalize(mean: Sequence[float] | None, std: Sequence[float] | None) -> nn.Module:
    """:class:`Normalize` when both ``mean`` and ``std`` are given, ``nn.Identity`` when neither is."""
    if (mean is None) != (std is None):
        given = "mean" if std is None else "std"
        raise ConfigError(f"only {given} given; expected both mean and std (to normalise inside the model) or neither")
    return nn.Identity() if mean is None else Normalize(mean, std)


class TappedModel(nn.Module):
    """Base class of every registered classifier.

    Subclasses fill ``self.stages`` (an ``nn.ModuleDict`` whose insertion order is the forward
    order and whose keys are the paper's layer names) and may set ``self.normalize``.
    ``forward(x)`` maps images ``(N, C, H, W)`` in [0, 1] to logits ``(N, num_classes)``.
    """

    stages: nn.ModuleDict

    def __init__(self, config: dict) -> None:
        super().__init__()
        #: the keyword arguments that rebuild this model through ``create_model`` (checkpoints).
        self.config = dict(config)
        self.normalize: nn.Module = nn.Identity()

    @property
    def layer_names(self) -> list[str]:
        """The tap names in forward order (the paper's Conv1..FC3 / Block1..FC3)."""
        return list(self.stages.keys())

    def check_layers(self, layers: Iterable[str]) -> list[str]:
        """Return ``layers`` as a list, or raise ConfigError naming the unknown or repeated one and the valid ones."""
        layers = list(layers)
        valid = self.layer_names
        for i, name in enumerate(layers):
            if name not in self.stages:
                raise ConfigError(
                    f"unknown layer '{name}' for {type(self).__name__}; valid layers are: {', '.join(valid)}"
                )
            if name in layers[:i]:
                raise ConfigError(f"layer '{name}' is listed twice; expected each of {', '.join(valid)} at most once")
        return layers

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.normalize(x)
        for stage in self.stages.values():
            h = stage(h)
        return h

    def taps(self, x: torch.Tensor, layers: Iterable[str] | None = None) -> dict[str, torch.Tensor]:
        """Outputs of the chosen layers from a single forward pass.

        Args:
            x: images ``(N, C, H, W)`` in [0, 1].
            layers: tap names (default: all, in forward order).
        Returns:
            ``{name: l_name}``, in the order given; ``l_name`` keeps its autograd graph.
        """
        names = self.layer_names if layers is None else self.check_layers(layers)
        wanted = set(names)
        out: dict[str, torch.Tensor] = {}
        handles = []
        try:
            for name in names:
                handles.append(self.stages[name].register_forward_hook(_store(out, name)))
            # Stop after the deepest requested stage: later stages would be computed for nothing.
            last = max(self.layer_names.index(n) for n in wanted) if wanted else -1
            h = self.normalize(x)
            for i, stage in enumerate(self.stages.values()):
                if i > last:
                    break
                h = stage(h)
        finally:
            for handle in handles:
                handle.remove()
        return {name: out[name] for name in names}

    def f_pre(self, x: torch.Tensor, layer: str) -> torch.Tensor:
        """``l = f_pre(x)``: the output of ``layer`` for images ``x``."""
        return self.taps(x, [layer])[layer]

    def f_post(self, layer: str, h: torch.Tensor) -> torch.Tensor:
        """Run the network from the output of ``layer`` to the logits: ``f_post(f_pre(x)) == f(x)``."""
        (layer,) = self.check_layers([layer])
        names = self.layer_names
        for name in names[names.index(layer) + 1 :]:
            h = self.stages[name](h)
        return h

    @torch.no_grad()
    def tap_shapes(self, image_size: int) -> dict[str, tuple[int, ...]]:
        """Per-tap output shape (without the batch dimension) for one input of ``image_size``."""
        was_training = self.training
        self.eval()
        try:
            p = next(self.parameters())
            x = torch.zeros(1, self.config["in_channels"], image_size, image_size, device=p.device, dtype=p.dtype)
            return {k: tuple(v.shape[1:]) for k, v in self.taps(x).items()}
        finally:
            self.train(was_training)


def _store(out: dict[str, torch.Tensor], name: str):
    def hook(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        out[name] = output

    return hook


def make_pool(pool: str, kernel_size: int = 2, stride: int = 2) -> nn.Module:
    """The one place that turns ``pool="max"|"avg"`` into a pooling layer."""
    if pool == "max":
        return nn.MaxPool2d(kernel_size, stride)
    if pool == "avg":
        return nn.AvgPool2d(kernel_size, stride)
    raise ConfigError(f"unknown pooling '{pool}'; expected 'max' or 'avg'")
