"""Train runs: :func:`~interpretgan.training.train_classifier` into a run folder, resumable.

The folder's ``ckpt/state.pt`` holds the resume state (weights, optimizer, scheduler, random
generators, the objective's buffers), ``ckpt/model.safetensors`` the weights alone, ``metrics.jsonl``
one record per epoch and ``results.json`` the final figures.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from interpretgan.config import TrainConfig, is_reference
from interpretgan.config.presets import resolve_train_config
from interpretgan.data.integrity import file_digest
from interpretgan.errors import ConfigError
from interpretgan.io import load_state, load_tensors, save_state, write_json
from interpretgan.pipeline.checkpoints import save_model
from interpretgan.pipeline.runs import Run, RunRecords, find_run, require_same_config
from interpretgan.training import TrainData, load_train_data, train_classifier


class RunTrainStore(RunRecords):
    """The :class:`~interpretgan.training.TrainStore` of a train run folder."""

    def __init__(self, run: Run) -> None:
        self.run = run

    def resume_state(self, device: torch.device) -> tuple[dict[str, Any], str] | None:
        path = self.run.ckpt_dir / "state.pt"
        if not path.is_file():
            return None
        state = load_state(path)
        if "model" not in state and (self.run.ckpt_dir / "model.safetensors").is_file():
            # a resume state written before the weights were part of it: they are beside it
            state["model"] = load_tensors(self.run.ckpt_dir / "model.safetensors", device)
        return state, str(path)

    def checkpoint(self, state: dict[str, Any], model: nn.Module, epochs_done: int) -> None:
        # the state first, with its own copy of the weights, so that it is consistent whatever
        # happens between the two writes; each is written atomically
        save_state(self.run.ckpt_dir / "state.pt", state)
        save_model(self.run.ckpt_dir, model, metadata={"epochs_done": epochs_done})

    def finish(self, results: dict[str, Any]) -> None:
        write_json(self.run.path / "results.json", results)


def fit(cfg: TrainConfig, run: Run, *, device: str | torch.device = "cpu", data: TrainData | None = None,
        data_root: Any = None, verify: bool = True, resume: bool = False, progress: bool = True,
        stop_after_epochs: int | None = None) -> dict[str, Any]:
    """Train ``cfg`` into the run folder ``run`` (resuming from ``run/ckpt/state.pt`` with ``resume``);
    returns the results written to ``run/results.json`` (``{"interrupted_at_epoch": k}`` when stopped early)."""
    res = train_classifier(cfg, RunTrainStore(run), device=device, data=data, data_root=data_root, verify=verify,
                           resume=resume, progress=progress, stop_after_epochs=stop_after_epochs)
    res.pop("model")
    return res


def fit_in(root: str | Path, description: str, cfg: TrainConfig, *, device: str | torch.device = "cpu",
           data: TrainData | None = None, data_root: Any = None, verify: bool = True, progress: bool = True) -> Run:
    """Train ``cfg`` into ``root/<NNNNN>-<description>``, resuming that run when it exists (multi-stage jobs).

    A finished run (``results.json``) with the same config is returned as it is; an unfinished one
    continues from its checkpoint; a run with another config is an error, never overwritten.
    """
    run = find_run(root, description)
    if run is not None:
        require_same_config(run, {k: v for k, v in run.config.items() if k != "kind"}, cfg.to_dict(), "was trained")
        if (run.path / "results.json").is_file():
            return run
    else:
        run = Run.create(root, description, "train", cfg.to_dict())
    fit(cfg, run, device=device, data=data, data_root=data_root, verify=verify, resume=True, progress=progress)
    return run


def check_model_options(cfg: TrainConfig) -> None:
    """Build ``cfg``'s model once, so that a bad name, option, layer or weights file fails before a run
    folder exists: a registered model on the meta device (no memory), a reference for real (its
    weights and layers are checked by building it)."""
    from interpretgan.data import dataset_info
    from interpretgan.models import create_model

    info = dataset_info(cfg.dataset)
    with torch.device("cpu" if is_reference(cfg.model) else "meta"):
        create_model(cfg.model, **cfg.build_options(info.num_classes, info.channels))


def weights_file(weights: str | Path) -> str:
    """``--weights`` as runs store it (an absolute path), or one sentence when there is no such file."""
    path = Path(weights)
    if not path.is_file():
        raise ConfigError(f"--weights {weights} does not exist; expected the model's state_dict as a safetensors file")
    return str(path.resolve())


def reference_run(
    root: str | Path,
    model: str,
    weights: str | Path,
    *,
    dataset: str = "mnist",
    image_size: int | None = None,
    device: str | torch.device = "cpu",
    data_root: Any = None,
    verify: bool = True,
    progress: bool = True,
) -> Run:
    """The train run that holds the user's classifier ``model`` (``file.py:build``) with ``weights`` as they are.

    A run with 0 epochs (``--weights`` and ``--epochs 0`` of ``interpretgan train``): it evaluates the
    clean accuracy and stores the reference and the weights, so that attack, explain and diagnose
    take it like any train run. Made once per weights file content (its description holds the
    file's hash) and reused. Its layers are the logits; ``explain train --layers`` taps module paths.
    """
    from interpretgan.models.external import normalise_reference, reference_stem

    if not is_reference(model):
        raise ConfigError(f"--model '{model}' with --weights expected a reference path/to/file.py:build or "
                          "package.module:build; for a registered model pass its train run folder")
    weights = weights_file(weights)
    model = normalise_reference(model)
    overrides = {"model": model, "weights": weights, "epochs": 0, "image_size": image_size,
                 "model_kwargs": {}}  # not the presets' (they size the registered models)
    cfg = resolve_train_config(dataset, "natural", "cpu", overrides)
    check_model_options(cfg)
    data = load_train_data(cfg, data_root, verify)  # data problems end here, before a folder exists
    digest = file_digest(Path(weights), "sha256")[:10]
    return fit_in(root, f"{cfg.dataset}-{reference_stem(model)}-weights-{digest}", cfg, device=device, data=data,
                  progress=progress)
