"""Classifiers with layer taps: the :class:`TappedModel` interface and the registered families' base.

A layer is a name for a module path (:mod:`interpretgan.models.taps`): the output of that module is
the latent variable ``l_i`` the paper explains (Section 3: ``l = f_pre(x)``, ``f = f_post o f_pre``).
:meth:`TappedModel.taps` reads chosen layers from one forward pass through forward hooks that are
always removed (in ``finally``), and :meth:`TappedModel.f_post` runs the rest of the network from a
layer's output. The registered families are ``f = stage_K o ... o stage_1 o normalize`` with one
layer per stage (path ``stages.<name>``); :func:`interpretgan.models.tap` gives any ``nn.Module``
the same interface, with the same code reading the taps.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import nn

from interpretgan.devices import eval_mode
from interpretgan.errors import ConfigError
from interpretgan.models.taps import probe_device, record, tail


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
    """A classifier with named layer taps; the base class of every registered classifier.

    Subclasses fill ``self.stages`` (an ``nn.ModuleDict`` whose insertion order is the forward
    order and whose keys are the paper's layer names) and may set ``self.normalize``.
    ``forward(x)`` maps images ``(N, C, H, W)`` in [0, 1] to logits ``(N, num_classes)``.
    ``config`` holds at least ``in_channels`` and ``image_size``.

    The interface the pipeline uses (``layer_names`` in forward order ending with the logits,
    ``check_layers``, ``taps``, ``f_pre``, ``f_post``, ``tap_shapes``, ``input_shape``) rests on
    :attr:`tap_root` and :meth:`tap_paths` alone, so :class:`interpretgan.models.wrap.TappedNet`
    overrides only those, ``forward`` and ``input_shape``.
    """

    stages: nn.ModuleDict

    def __init__(self, config: dict) -> None:
        super().__init__()
        #: the keyword arguments that rebuild this model through ``create_model`` (checkpoints).
        self.config = dict(config)
        self.normalize: nn.Module = nn.Identity()

    @property
    def tap_root(self) -> nn.Module:
        """The module whose forward the taps run (``self(x)`` must equal ``tap_root(x)``)."""
        return self

    def tap_paths(self) -> dict[str, str]:
        """``{layer name: module path under tap_root}`` in forward order; a stage's is ``stages.<name>``."""
        return {name: f"stages.{name}" for name in self.stages}

    @property
    def layer_names(self) -> list[str]:
        """The tap names in forward order (the paper's Conv1..FC3 / Block1..FC3); the last is the logits."""
        return list(self.tap_paths())

    @property
    def model_name(self) -> str:
        """The classifier's name in error messages."""
        return type(self.tap_root).__name__

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one input image."""
        side = int(self.config["image_size"])
        return int(self.config["in_channels"]), side, side

    def check_layers(self, layers: Iterable[str]) -> list[str]:
        """Return ``layers`` as a list, or raise ConfigError naming the unknown or repeated one and the valid ones."""
        if isinstance(layers, str):
            raise ConfigError(f"layers must be a list of layer names, got the string '{layers}'")
        layers = list(layers)
        valid = self.layer_names
        for i, name in enumerate(layers):
            if name not in valid:
                raise ConfigError(
                    f"unknown layer '{name}' for {self.model_name}; valid layers are: {', '.join(valid)}"
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
        """Outputs of the chosen layers from a single forward pass, which stops after the deepest one.

        Args:
            x: images ``(N, C, H, W)`` in [0, 1].
            layers: tap names (default: all, in forward order).
        Returns:
            ``{name: l_name}``, in the order given; ``l_name`` keeps its autograd graph.
        """
        names = self.layer_names if layers is None else self.check_layers(layers)
        paths = self.tap_paths()
        return record(self.tap_root, x, {name: paths[name] for name in names})

    def f_pre(self, x: torch.Tensor, layer: str) -> torch.Tensor:
        """``l = f_pre(x)``: the output of ``layer`` for images ``x``."""
        return self.taps(x, [layer])[layer]

    def f_post(self, layer: str, h: torch.Tensor) -> torch.Tensor:
        """Run the network from the output ``h`` of ``layer`` to the logits: ``f_post(l, f_pre(x, l)) == f(x)``.

        Offered where the rest of the forward depends on the input only through ``h``
        (:func:`interpretgan.models.taps.tail`); elsewhere ConfigError says why. The explainers
        and the diagnosis do not need it.
        """
        (layer,) = self.check_layers([layer])
        return tail(self.tap_root, self.tap_paths()[layer], label=layer)(h)

    @torch.no_grad()
    def tap_shapes(self, image_size: int | None = None) -> dict[str, tuple[int, ...]]:
        """Per-tap output shape (without the batch dimension) for one input of ``input_shape``,
        or of side ``image_size`` when given."""
        c, height, width = self.input_shape
        if image_size is not None:
            height = width = image_size
        device, dtype = probe_device(self)
        with eval_mode(self):
            x = torch.zeros(1, c, height, width, device=device, dtype=dtype)
            return {k: tuple(v.shape[1:]) for k, v in self.taps(x).items()}


def make_pool(pool: str, kernel_size: int = 2, stride: int = 2) -> nn.Module:
    """The one place that turns ``pool="max"|"avg"`` into a pooling layer."""
    if pool == "max":
        return nn.MaxPool2d(kernel_size, stride)
    if pool == "avg":
        return nn.AvgPool2d(kernel_size, stride)
    raise ConfigError(f"unknown pooling '{pool}'; expected 'max' or 'avg'")
