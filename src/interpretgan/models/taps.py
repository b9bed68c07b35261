"""The one way to read a layer: forward hooks on a module path, and ``f_post`` by a torch.fx cut.

A layer is a module path under a root module (``"stages.conv2"``, ``"net.features.5"``,
``"net.layer1.0.conv2"``), the dotted name ``get_submodule`` takes. :func:`record` runs the root's
forward once with a hook on each path's module and returns their outputs (the paper's latent
variables ``l_i``, Section 3); the hooks are always removed (``finally``), and the forward stops as
soon as every requested output is in. :func:`tail` gives the rest of the forward after one path as a
module of that path's output: ``f_post`` with ``f = f_post o f_pre``, where the rest of the forward
depends on the input only through that output.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import chain

import torch
from torch import Tensor, fx, nn

from interpretgan.errors import ConfigError

#: How many candidate paths an unknown-path error lists before it says how many more there are.
_MAX_CANDIDATES = 12


class _AllTapped(Exception):
    """Raised by the hook that completes a request, so the forward skips layers nobody asked for."""


def module_at(root: nn.Module, path: str) -> nn.Module:
    """``root.get_submodule(path)``; ``""`` is ``root`` itself.

    Raises ConfigError naming the first unknown part of ``path`` and the paths that exist there.
    """
    if not isinstance(path, str):
        raise ConfigError(f"a layer is a module path string such as 'features.0', got {type(path).__name__} {path!r}")
    module, done = root, []
    for part in path.split(".") if path else []:
        children = dict(module.named_children())
        if part not in children:
            here = f"'{'.'.join(done)}'" if done else type(root).__name__
            options = [".".join([*done, name]) for name in children]
            listed = ", ".join(options[:_MAX_CANDIDATES]) + (
                f" and {len(options) - _MAX_CANDIDATES} more" if len(options) > _MAX_CANDIDATES else "")
            raise ConfigError(
                f"unknown module path '{path}' in {type(root).__name__}: {here} has no submodule '{part}'; "
                + (f"candidate paths are: {listed}" if options else f"{here} has no submodules")
            )
        module, done = children[part], [*done, part]
    return module


def record(root: nn.Module, x: Tensor, paths: Mapping[str, str], *, stop_early: bool = True,
           in_call_order: bool = False) -> dict[str, Tensor]:
    """Outputs of the modules at ``paths`` from one forward ``root(x)``.

    Args:
        root: the model; ``paths`` are module paths under it, keyed by the names to return them by.
        x: the model's input, e.g. images ``(N, C, H, W)``.
        stop_early: end the forward once every output is in (``False`` runs it to the end, so that
            a module that runs twice, or a later in-place change of an output, is always seen).
        in_call_order: order the result as the modules returned (else as ``paths``).
    Returns:
        ``{name: output}``; outputs keep their autograd graph.
    Raises:
        ConfigError when a module runs more than once in the forward or not at all, returns no
        tensor, or has its output changed in place later in the forward (its tap would be wrong).
    """
    out: dict[str, Tensor] = {}
    versions: dict[str, int | None] = {}
    owner = type(root).__name__

    def hook_for(name: str, path: str):
        where = f"module '{path}' of {owner}" if path else f"the whole {owner}"

        def hook(_module: nn.Module, _inputs: tuple, output: object) -> None:
            if name in out:
                raise ConfigError(f"{where} runs more than once in one forward, so its output is not one layer; "
                                  "tap a module that runs once")
            if not isinstance(output, Tensor):
                raise ConfigError(f"{where} returns {type(output).__name__}, not a tensor; tap a module that "
                                  "returns one tensor")
            out[name] = output
            versions[name] = None if output.is_inference() else output._version
            if stop_early and len(out) == len(paths):
                raise _AllTapped

        return hook

    modules = {name: module_at(root, path) for name, path in paths.items()}  # every path checked before running
    handles = []
    try:
        for name, module in modules.items():
            handles.append(module.register_forward_hook(hook_for(name, paths[name])))
        try:
            root(x)
        except _AllTapped:
            pass
    finally:
        for handle in handles:
            handle.remove()
    for name, path in paths.items():
        if name not in out:
            raise ConfigError(f"module '{path}' of {owner} did not run in its forward; tap a module the forward calls")
        if versions[name] is not None and out[name]._version != versions[name]:
            raise ConfigError(f"the output of module '{path}' of {owner} is changed in place later in the forward "
                              "(e.g. by ReLU(inplace=True)), so its tap would not be its output; tap the module after "
                              "it or make that operation out of place")
    return {name: out[name] for name in (out if in_call_order else paths)}


class _ThroughTracer(fx.Tracer):
    """Traces only through ``through`` (the ancestors of a tapped module); every other module is one call."""

    def __init__(self, through: set[str]) -> None:
        super().__init__()
        self.through = through

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return module_qualified_name not in self.through


def tail(root: nn.Module, path: str, *, label: str | None = None) -> nn.Module:
    """The forward of ``root`` after the module at ``path``, as a module of that module's output.

    ``root`` is traced with torch.fx (as torchvision's ``create_feature_extractor`` does) through
    ``path``'s ancestors only, so only they need to be traceable; every other module stays one opaque
    call whose weights are ``root``'s own. The graph is cut at ``path``'s call and keeps what the
    output needs after it. It is traced anew on every call, so Python branches on ``self.training``
    follow the current mode.

    ``label`` names the layer in errors (default: ``path``).

    Raises:
        ConfigError when ``root`` cannot be traced, when ``path`` is not called exactly once, or when
        the output also reads the input other than through ``path`` (a skip connection around it):
        then no function of that output alone gives ``root``'s output.
    """
    module_at(root, path)
    if path == "":
        return nn.Identity()
    parts = path.split(".")
    through = {".".join(parts[:i]) for i in range(len(parts))}  # "", "a", "a.b" for "a.b.c"
    owner = type(root).__name__
    label = label or path
    try:
        graph = _ThroughTracer(through).trace(root)
    except Exception as err:  # noqa: BLE001  (user code: any failure means "not traceable")
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ConfigError(f"f_post is not offered at '{label}': it needs a torch.fx-traceable forward of {owner} "
                          f"down to that layer, and tracing failed: {first}") from None
    calls = [n for n in graph.nodes if n.op == "call_module" and n.target == path]
    if len(calls) != 1:
        raise ConfigError(f"f_post is not offered at '{label}': it needs that module called exactly once in the "
                          f"traced forward of {owner}, and found {len(calls)} calls")
    cut = calls[0]
    needed: set[fx.Node] = set()
    stack = [next(n for n in reversed(graph.nodes) if n.op == "output")]
    while stack:
        node = stack.pop()
        if node is cut or node in needed:
            continue
        if node.op == "placeholder":
            raise ConfigError(f"f_post is not offered at '{label}': the forward of {owner} reads its input again after "
                              "that layer (a skip connection around it), so the logits are not a function of the "
                              "layer's output alone; f_pre and taps work there")
        needed.add(node)
        stack.extend(node.all_input_nodes)
    cut_graph = fx.Graph()
    env = {cut: cut_graph.placeholder("h")}
    for node in graph.nodes:  # graph order is a topological order
        if node in needed:
            env[node] = cut_graph.node_copy(node, lambda n: env[n])
    return fx.GraphModule(root, cut_graph, class_name=f"{owner}Tail")


def probe_device(module: nn.Module) -> tuple[torch.device, torch.dtype]:
    """The device and dtype of ``module``'s first parameter or buffer (CPU float32 when it has none)."""
    for t in chain(module.parameters(), module.buffers()):
        if t.is_floating_point():
            return t.device, t.dtype
    return torch.device("cpu"), torch.float32
