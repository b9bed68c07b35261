"""Model checkpoints in run folders: ``<name>.safetensors`` (weights and buffers) beside ``<name>.json``
(the registry name or ``file.py:build`` reference and the keyword arguments that rebuild the model).
Loading never executes code from the files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from interpretgan.errors import RunError
from interpretgan.io import load_tensors, read_json, save_tensors, write_json


def save_model(
    directory: str | Path, model: nn.Module, name: str = "model", metadata: dict[str, Any] | None = None
) -> None:
    """Write ``<name>.safetensors`` (weights and buffers) and ``<name>.json`` (how to rebuild it)."""
    directory = Path(directory)
    spec = {
        "model": getattr(model, "registry_name", type(model).__name__),
        "kwargs": getattr(model, "config", {}),
        **(metadata or {}),
    }
    save_tensors(directory / f"{name}.safetensors", model.state_dict())
    write_json(directory / f"{name}.json", spec)


def load_model(path: str | Path, device: str | torch.device = "cpu", name: str = "model",
               expected: tuple[str, dict[str, Any]] | None = None) -> nn.Module:
    """Rebuild a registered classifier from a run folder or its ``ckpt/`` folder, in eval mode.

    ``expected``: the (registry name, keyword arguments) the run's config asks for; RunError when the
    checkpoint describes another model (a checkpoint copied from another run).
    """
    from interpretgan.config import is_reference
    from interpretgan.models import create_model
    from interpretgan.models.external import normalise_reference

    path = Path(path)
    directory = path / "ckpt" if (path / "ckpt").is_dir() else path
    spec_path = directory / f"{name}.json"
    if not spec_path.is_file():
        raise RunError(f"{path} holds no model checkpoint; expected {spec_path}")
    spec = read_json(spec_path)
    if not (isinstance(spec, dict) and isinstance(spec.get("model"), str) and isinstance(spec.get("kwargs"), dict)):
        raise RunError(f"{spec_path} is not a model description; expected a JSON object with 'model' and 'kwargs'")
    if expected is not None:
        if is_reference(expected[0]):  # a run made with a relative path names the same file
            expected = (normalise_reference(expected[0]), expected[1])
        differ = [k for k, v in expected[1].items() if json.dumps(spec["kwargs"].get(k)) != json.dumps(v, default=list)]
        if spec["model"] != expected[0] or differ:
            raise RunError(
                f"{spec_path} describes model '{spec['model']}' with {spec['kwargs']} but the run's config.json "
                f"expects '{expected[0]}'"
                + (f" with {', '.join(f'{k}={expected[1][k]}' for k in differ)}" if differ else "")
                + "; the checkpoint belongs to another run"
            )
    model = create_model(spec["model"], **spec["kwargs"])
    state = load_tensors(directory / f"{name}.safetensors")
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as err:  # a tensor of another shape: other model options than the spec's
        raise RunError(
            f"{directory / f'{name}.safetensors'} does not fit model '{spec['model']}' "
            f"with {spec['kwargs']}: {(str(err).splitlines() or [type(err).__name__])[-1].strip()}"
        ) from None
    if missing or unexpected:
        raise RunError(
            f"{directory / f'{name}.safetensors'} does not fit model '{spec['model']}' "
            f"(missing {len(missing)}, unexpected {len(unexpected)} tensors)"
        )
    return model.to(device).eval()
