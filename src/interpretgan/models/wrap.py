"""Any classifier as a :class:`TappedModel`: layers named by module path, as Captum and torchvision do.

>>> f = tap(net, layers=["features.2", "features.5", "classifier.1"], input_shape=(1, 28, 28))
>>> f.layer_names                      # forward order, then the logits when no layer gives them
['features.2', 'features.5', 'classifier.1', 'logits']
>>> l = f.f_pre(x, "features.5")       # or f.taps(x, [...]) for several layers from one forward

Layer names default to the paths themselves. Dots are fine in a name: a name is a key of plain
dicts and a folder name of explain runs (``ckpt/features.5/``), never a ``ModuleDict`` key; what a
name may hold is checked here once (:data:`NAME_PATTERN`).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Sequence

import torch
from torch import nn

from interpretgan.devices import eval_mode
from interpretgan.errors import ConfigError
from interpretgan.models.base import TappedModel
from interpretgan.models.taps import module_at, probe_device, record

#: What a layer name may hold: it names a folder in explain runs, so no separators, no leading dot.
NAME_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+\-]*")

#: The name of the tap on the whole net, added when no requested layer outputs the logits.
LOGITS = "logits"


class TappedNet(TappedModel):
    """``net`` with layer taps at module paths; build it with :func:`tap`.

    ``net`` is held, not copied, as the submodule ``net``: training this model trains ``net``, its
    state_dict keys are ``net.<key>``, and ``self.net.state_dict()`` is the user's own.
    ``forward(x) = net(x)``; taps are read by hooks under ``net`` (the ``tap_root``), at the paths the
    user gave. ``config`` holds ``in_channels``, ``input_shape``, ``layers`` (``{name: path}`` as
    requested, which :func:`tap` rebuilds from; :meth:`tap_paths` adds the forward order and the
    logits), ``num_classes`` when the logits are ``(N, K)``, and ``image_size`` when inputs are square.
    """

    def __init__(self, net: nn.Module, requested: dict[str, str], paths: dict[str, str],
                 input_shape: tuple[int, int, int], num_classes: int | None) -> None:
        c, h, w = input_shape
        config: dict = {"in_channels": c, "input_shape": [c, h, w], "layers": dict(requested)}
        if h == w:
            config["image_size"] = h
        if num_classes is not None:
            config["num_classes"] = num_classes
        super().__init__(config)
        del self.normalize  # the registered families' input normalisation; here it lives in net, if anywhere
        self.net = net
        self._input_shape = (c, h, w)
        self._paths = dict(paths)

    @property
    def tap_root(self) -> nn.Module:
        return self.net

    def tap_paths(self) -> dict[str, str]:
        return dict(self._paths)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self._input_shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def with_layers(self, layers: Sequence[str], names: Sequence[str] | None = None) -> TappedNet:
        """The same net (held, not copied) tapped at other module paths; keeps the reference it was built from."""
        other = tap(self.net, layers, self._input_shape, names)
        if hasattr(self, "registry_name"):
            other.registry_name = self.registry_name
        return other

    def extra_repr(self) -> str:
        return "layers: " + ", ".join(n if n == p else f"{n}={p or '(the whole net)'}" for n, p in self._paths.items())


def tap(
    net: nn.Module, layers: Sequence[str], input_shape: Sequence[int], names: Sequence[str] | None = None
) -> TappedNet:
    """Give any classifier the :class:`TappedModel` interface, with layers at module paths.

    Args:
        net: the classifier, images ``(N, C, H, W)`` -> logits ``(N, K)``; held, not copied.
        layers: module paths under ``net`` (``"features.5"``, ``"layer1.0.conv2"``; ``""`` is ``net``
            itself), each a module that runs once per forward and returns one tensor.
        input_shape: ``(C, H, W)`` of one input; a zero image of it is run once (in eval mode, no
            gradient) to check the paths and order the layers.
        names: a name per path (default: the paths, with ``""`` named ``logits``).
    Returns:
        A :class:`TappedNet` whose ``layer_names`` are the names in forward order, followed by
        ``logits`` (a tap on ``net`` itself) unless the last layer's output already is ``net``'s.
    Raises:
        ConfigError, in one sentence, for a ``net`` that is not a module, an empty or repeated layer
        list, an unknown path (listing the paths that exist there), a bad name, or a ``net`` that
        does not run on ``input_shape``.
    """
    if isinstance(net, type) and issubclass(net, nn.Module):
        raise ConfigError(f"tap() needs a model instance, got the class {net.__name__}; pass {net.__name__}(...)")
    if not isinstance(net, nn.Module):
        raise ConfigError(f"tap() needs a torch.nn.Module, got {type(net).__name__}")
    paths = _check_paths(net, layers)
    given = _check_names([LOGITS if p == "" else p for p in paths] if names is None else names, paths)
    shape = _check_shape(input_shape)

    named = dict(zip(given, paths))
    whole = "<the whole net>"  # no layer name can hold a space or '<', so this key is free
    device, dtype = probe_device(net)
    try:
        with eval_mode(net), torch.no_grad():
            out = record(net, torch.zeros(1, *shape, device=device, dtype=dtype), {**named, whole: ""},
                         stop_early=False, in_call_order=True)
    except ConfigError:
        raise
    except Exception as err:  # noqa: BLE001  (user code: any failure means it does not run on this shape)
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ConfigError(f"{type(net).__name__} does not run on one input of shape {tuple(shape)}: {first}") from None
    logits = out.pop(whole)
    order = {name: named[name] for name in out}  # forward order: the order the modules returned
    if out[next(reversed(out))] is not logits:
        if LOGITS in order:
            raise ConfigError(f"layer name '{LOGITS}' is kept for the tap on the whole net, and "
                              f"'{order[LOGITS]}' does not output the net's logits; give it another name")
        order[LOGITS] = ""
    num_classes = int(logits.shape[1]) if logits.dim() == 2 else None
    return TappedNet(net, named, order, shape, num_classes)


def _check_paths(net: nn.Module, layers: Sequence[str]) -> list[str]:
    if isinstance(layers, str):
        raise ConfigError(f"layers must be a list of module paths, got the string '{layers}'; write ['{layers}']")
    paths = list(layers)
    if not paths:
        top = ", ".join(name for name, _ in net.named_children()) or "none"
        raise ConfigError(
            f"layers is empty; expected module paths of {type(net).__name__} (its top-level modules: {top})"
        )
    for i, path in enumerate(paths):
        module_at(net, path)
        if path in paths[:i]:
            raise ConfigError(f"module path '{path}' is listed twice in layers; expected each at most once")
    return paths


def _check_names(names: Sequence[str], paths: list[str]) -> list[str]:
    if isinstance(names, str):
        raise ConfigError(f"names must be a list of layer names, got the string '{names}'")
    names = list(names)
    if len(names) != len(paths):
        raise ConfigError(f"{len(names)} names for {len(paths)} layers; expected one name per module path")
    for i, name in enumerate(names):
        if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
            raise ConfigError(f"layer name {name!r} (for '{paths[i]}') is not usable; expected letters, digits and "
                              "_ . + - not starting with a dot (names become folder names), so pass names=[...]")
        if name in names[:i]:
            raise ConfigError(f"layer name '{name}' is given twice; expected one name per module path")
    return names


def _check_shape(input_shape: Sequence[int]) -> tuple[int, int, int]:
    try:
        shape = tuple(operator.index(s) for s in input_shape)
    except TypeError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise ConfigError(f"input_shape must be (C, H, W) of one input, three positive integers, got {input_shape!r}")
    return shape  # type: ignore[return-value]
