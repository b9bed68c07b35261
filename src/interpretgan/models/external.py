"""A user's classifier named by reference: ``path/to/file.py:build`` or ``package.module:build``.

The reference names a callable that takes no arguments and returns the ``nn.Module`` (a function or
the class itself). Run folders store the reference and the weights (safetensors), never pickled
code, so a checkpoint is rebuilt by calling the user's code again:

>>> f = create_model("examples/own_model.py:LeNet", layers=["features.2", "features.5"], input_shape=(1, 28, 28))

A file reference is stored with its absolute path (a run is found from any working directory);
its folder is on ``sys.path`` while the file is imported, so that it can import its neighbours.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from interpretgan.errors import ConfigError, InterpretganError
from interpretgan.io import load_tensors
from interpretgan.models.wrap import TappedNet, tap

#: A dotted Python name: a module (``package.module``) or an attribute in it (``build``, ``Nets.lenet``).
_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def _split(ref: str) -> tuple[str, str, bool]:
    """``(file or module, attribute path, is_file)``, or one sentence on what a reference looks like."""
    where, _, attr = ref.rpartition(":")
    is_file = where.endswith(".py") or "/" in where or "\\" in where
    if not where or not _DOTTED.fullmatch(attr) or not (is_file or _DOTTED.fullmatch(where)):
        raise ConfigError(f"model reference '{ref}' is not of the form path/to/file.py:build or package.module:build")
    return where, attr, is_file


def normalise_reference(ref: str) -> str:
    """The reference as runs store it: a file's path made absolute (checked to exist), a module's as given."""
    where, attr, is_file = _split(ref)
    if not is_file:
        return ref
    path = Path(where).expanduser()
    if not path.is_file():
        raise ConfigError(f"model file '{where}' (of --model {ref}) does not exist; expected a Python file")
    return f"{path.resolve()}:{attr}"


def reference_stem(ref: str) -> str:
    """The callable's name, for folder and run names: ``nets.py:build`` -> ``build``, ``m:Net.build`` ->
    ``Net-build``."""
    return ref.rpartition(":")[2].replace(".", "-")


def _first_line(err: BaseException) -> str:
    return f"{type(err).__name__}: {(str(err).strip().splitlines() or [''])[0]}".rstrip(": ")


def _import_file(path: Path, ref: str) -> Any:
    # One module per file and content, so that two runs of one process see one class, and an edited file is re-read.
    digest = hashlib.sha1(str(path).encode() + path.read_bytes()).hexdigest()[:12]
    name = f"interpretgan_user_{re.sub(r'[^A-Za-z0-9_]', '_', path.stem)}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"model file '{path}' (of --model {ref}) cannot be imported; expected a .py file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    except BaseException as err:
        del sys.modules[name]
        if isinstance(err, KeyboardInterrupt):
            raise
        raise ConfigError(f"importing model file '{path}' (of --model {ref}) failed: {_first_line(err)}") from None
    finally:
        sys.path.remove(str(path.parent))
    return module


def load_callable(ref: str) -> Callable[[], Any]:
    """The callable a reference names, or one sentence on why it cannot be had."""
    ref = normalise_reference(ref)
    where, attr, is_file = _split(ref)
    if is_file:
        module = _import_file(Path(where), ref)
    else:
        try:
            module = importlib.import_module(where)
        except ModuleNotFoundError as err:
            raise ConfigError(f"module '{where}' (of --model {ref}) is not importable: {_first_line(err)}") from None
        except Exception as err:  # noqa: BLE001  (user code: any failure is the reference's)
            raise ConfigError(f"importing module '{where}' (of --model {ref}) failed: {_first_line(err)}") from None
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            names = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_"))
            raise ConfigError(
                f"'{where}' has no '{attr}' (of --model {ref}); its callables are: {', '.join(names) or 'none'}"
            )
        obj = getattr(obj, part)
    if isinstance(obj, nn.Module):
        raise ConfigError(
            f"'{attr}' in '{where}' is a module instance; --model needs a function or class that builds one"
        )
    if not callable(obj):
        raise ConfigError(f"'{attr}' in '{where}' is a {type(obj).__name__}, not callable; --model needs a function "
                          "or class that takes no arguments and returns the nn.Module")
    return obj


def build_net(ref: str) -> nn.Module:
    """Call the reference with no arguments; the result must be an ``nn.Module``."""
    fn = load_callable(ref)
    try:
        net = fn()
    except InterpretganError:
        raise
    except Exception as err:  # noqa: BLE001  (user code)
        raise ConfigError(
            f"calling {ref}() failed: {_first_line(err)}; --model needs a callable that takes no arguments"
        ) from None
    if not isinstance(net, nn.Module):
        raise ConfigError(f"{ref}() returned a {type(net).__name__}, not a torch.nn.Module")
    return net


def load_weights(net: nn.Module, path: str | Path) -> None:
    """Load a safetensors state dict (the net's own keys) into ``net``, or one sentence on why it does not fit."""
    state = load_tensors(path)
    own = net.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        first = (
            f"'{wrong[0]}' is {tuple(state[wrong[0]].shape)} where {type(net).__name__} has "
            f"{tuple(own[wrong[0]].shape)}"
            if wrong
            else f"missing '{missing[0]}'"
            if missing
            else f"unexpected '{unexpected[0]}'"
        )
        raise ConfigError(
            f"weights {path} do not fit {type(net).__name__} ({len(missing)} missing, {len(unexpected)} "
            f"unexpected, {len(wrong)} of another shape; {first}); expected its state_dict() as safetensors"
        )
    with torch.no_grad():
        net.load_state_dict(state)


def external_model(ref: str, *, layers: Mapping[str, str] | Sequence[str] | None = None,
                   input_shape: Sequence[int] | None = None, names: Sequence[str] | None = None,
                   weights: str | Path | None = None, in_channels: int | None = None,
                   num_classes: int | None = None, image_size: int | None = None) -> TappedNet:
    """Build the referenced net, load ``weights`` into it, and tap it (:func:`interpretgan.models.tap`).

    ``layers``: module paths (or ``{name: path}``, as a checkpoint stores them; None: the logits
    only). ``input_shape`` defaults to ``(in_channels, image_size, image_size)``; ``in_channels``
    and ``num_classes``, when given, are checked against what the net takes and returns.
    """
    if input_shape is None:
        if in_channels is None or image_size is None:
            raise ConfigError(f"model {ref} needs input_shape, or in_channels and image_size")
        input_shape = (in_channels, image_size, image_size)
    if isinstance(layers, Mapping):
        names, layers = list(layers), list(layers.values())
    net = build_net(ref)
    if weights is not None:
        load_weights(net, weights)
    model = tap(net, [""] if layers is None else layers, input_shape, names)
    if in_channels is not None and model.input_shape[0] != in_channels:
        raise ConfigError(f"model {ref} is to take {model.input_shape[0]} channels but the data have {in_channels}")
    if num_classes is not None and model.config.get("num_classes") != num_classes:
        raise ConfigError(f"{ref}() returns {model.config.get('num_classes', 'no (N, K)')} logits per image; "
                          f"the dataset has {num_classes} classes")
    model.registry_name = normalise_reference(ref)
    return model
