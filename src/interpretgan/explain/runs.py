"""Explain run folders: where :func:`~interpretgan.explain.loop.train_explainers` keeps its progress.

A run folder of kind ``explain`` holds ``ckpt/classifier.*`` (a copy of f), per layer
``ckpt/<layer>/explainer.safetensors`` with ``explainer.json``
(:func:`~interpretgan.explain.explainer.save_explainer`), and ``ckpt/state-<joint|layer>.pt``, the
resume state of a loop (weights, optimizers, random generators, batch order, iteration), written
atomically every ``checkpoint_every`` iterations. ``metrics.jsonl`` receives a ``train`` record per
layer every ``log_every`` iterations, ``collapse`` records when a generator collapses or a critic
runs away (also logged as warnings) and ``eval`` records.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from interpretgan.config import ExplainConfig
from interpretgan.data import load_dataset
from interpretgan.errors import RunError
from interpretgan.explain.compression import CompressionNet, saved_compression_config
from interpretgan.explain.explainer import GP_SPACE, LEGACY_GP_SPACE, Explainer, load_explainer, save_explainer
from interpretgan.explain.loop import train_explainers
from interpretgan.explain.progan import num_scales, saved_generator_config
from interpretgan.io import load_state, read_json, save_state, write_json
from interpretgan.models import TappedModel
from interpretgan.runs import Run, find_run, load_model, require_same_config, save_model

RUN_KIND = "explain"


class RunStore:
    """The :class:`~interpretgan.explain.loop.ExplainStore` of an explain run folder."""

    def __init__(self, run: Run) -> None:
        self.run = run

    def iteration(self, layer: str) -> int | None:
        path = self.run.ckpt_dir / layer / "explainer.json"
        if not (path.is_file() and path.with_suffix(".safetensors").is_file()):
            return None
        return read_json(path).get("iteration")

    def check_versions(self, generator_config: Mapping[str, Any], init: str) -> None:
        """RunError when any layer already checkpointed was built by another version of the generator or of
        the compression net's initialisation, or trained with another gradient penalty (one run never mixes
        them, and resuming must equal an uninterrupted run). Every layer of a run shares one generator config."""
        for path in sorted(self.run.ckpt_dir.glob("*/explainer.json")):
            spec = read_json(path)
            if saved_generator_config(spec["generator"]) != generator_config:
                what = "generator"
            elif saved_compression_config(spec["compression"])["init"] != init:
                what = "compression nets' initialisation"
            elif spec.get("gp_space", LEGACY_GP_SPACE) != GP_SPACE:
                what = "gradient penalty (taken on images in [0, 1], not in the critic's [-1, 1])"
            else:
                continue
            raise RunError(f"{path.parent} was checkpointed by an earlier version of the {what}; "
                           "train these layers anew in another explain run")

    def loop_state(self, tag: str, device_type: str) -> dict[str, Any] | None:
        path = self.run.ckpt_dir / f"state-{tag}.pt"
        if not path.is_file():
            return None
        state = load_state(path)
        written = state.get("device_type", device_type)
        if written != device_type:  # random streams differ between device types
            raise RunError(f"{path} was written training on {written}; resume it there (--device {written}), "
                           f"not on {device_type}")
        return state

    def keep_records(self, keep: Any) -> None:
        self.run.truncate_metrics(keep)

    def record(self, record: dict[str, Any]) -> None:
        self.run.append_metrics(record)

    def records(self) -> list[dict[str, Any]]:
        return self.run.read_metrics()

    def save_explainer(self, layer: str, compression: CompressionNet, generator_state: Mapping[str, Tensor],
                       discriminator_state: Mapping[str, Tensor], *, generator_config: dict[str, Any],
                       discriminator_config: dict[str, Any], meta: dict[str, Any]) -> None:
        save_explainer(self.run.ckpt_dir / layer, layer, compression, generator_state, discriminator_state,
                       generator_config=generator_config, discriminator_config=discriminator_config, meta=meta)

    def save_loop_state(self, tag: str, state: dict[str, Any]) -> None:
        save_state(self.run.ckpt_dir / f"state-{tag}.pt", state)


def layers_behind(run: Run, layers: Sequence[str]) -> list[tuple[str, int, int | str]]:
    """Those of ``layers`` whose explainer in ``run`` has not finished its schedule, as
    ``(layer, iteration reached, total iterations)`` (a layer without a checkpoint: ``0`` of ``"?"``)."""
    behind = []
    for layer in layers:
        path = run.ckpt_dir / layer / "explainer.json"
        meta = read_json(path) if path.is_file() else {}
        if meta.get("iteration") is None or meta.get("iteration") != meta.get("total_iterations"):
            behind.append((layer, meta.get("iteration", 0), meta.get("total_iterations", "?")))
    return behind


def load_explainers(run: Run | str | Path, device: str | torch.device = "cpu",
                    layers: Sequence[str] | None = None, *, finished: bool = False) -> tuple[TappedModel, dict[str, Explainer]]:
    """The classifier copy and the explainers of an explain run, on ``device`` in eval mode.

    ``layers`` defaults to every layer with a checkpoint, in the classifier's order. ``finished``:
    RunError unless every layer the run trains has finished its schedule (for figures such as
    Table 1, where a missing or half-trained layer would shift the others' numbers).
    """
    run = run if isinstance(run, Run) else Run.open(run, kind=RUN_KIND)
    classifier = load_model(run.path, device, name="classifier")
    available = [n for n in classifier.layer_names if (run.ckpt_dir / n / "explainer.json").is_file()]
    if finished:
        for n, done, total in layers_behind(run, run.config.get("resolved_layers") or classifier.layer_names)[:1]:
            raise RunError(f"{run.path} has not finished training layer {n} (iteration {done} of {total}); "
                           f"resume it with `interpretgan explain train --resume {run.path}`")
        if layers is None and run.config.get("resolved_layers"):
            layers = [n for n in classifier.layer_names if n in run.config["resolved_layers"]]
    if layers is None:
        layers = available
    else:
        layers = classifier.check_layers(layers)
        missing = [n for n in layers if n not in available]
        if missing:
            raise RunError(f"{run.path} has no explainer for layer(s) {', '.join(missing)}; trained: {', '.join(available) or 'none'}")
    if not layers:
        raise RunError(f"{run.path} holds no trained explainer yet; expected {run.ckpt_dir}/<layer>/explainer.json")
    return classifier, {n: load_explainer(run.ckpt_dir / n, device) for n in layers}


# --- run folders ---------------------------------------------------------------------------------
def explain_config_of(run: Run) -> ExplainConfig:
    """The :class:`ExplainConfig` stored in an explain run's ``config.json``."""
    names = {f.name for f in dataclasses.fields(ExplainConfig)}
    return ExplainConfig.from_dict({k: v for k, v in run.config.items() if k in names})


def create_explain_run(classifier_run: Run | str | Path, cfg: ExplainConfig, root: str | Path,
                       description: str | None = None) -> Run:
    """A new explain run under ``root`` for the classifier of the train run ``classifier_run``.

    Checks the layers, writes the resolved config (with the classifier run's path and image size)
    and a copy of the classifier (``ckpt/classifier.*``) so that the run is self-contained.
    """
    cls_run = classifier_run if isinstance(classifier_run, Run) else Run.open(classifier_run, kind="train")
    classifier = load_model(cls_run.path, "cpu")
    layers = classifier.check_layers(cfg.layers or classifier.layer_names)
    cfg.validate()
    cfg.iterations_per_scale(num_scales(int(classifier.config["image_size"])), n_train=1)  # its length, before a folder exists
    extra = {"classifier_run": str(cls_run.path.resolve()), "classifier_model": getattr(classifier, "registry_name", None),
             "image_size": int(classifier.config["image_size"]), "resolved_layers": layers}
    run = Run.create(root, description or f"explain-{cls_run.path.name}-{cfg.preset}", RUN_KIND, {**cfg.to_dict(), **extra})
    save_model(run.ckpt_dir, classifier, name="classifier", metadata={"source_run": str(cls_run.path.resolve())})
    return run


def train_run(run: Run | str | Path, *, device: str | torch.device = "cpu", data_root: Any = None, verify: bool = True,
              resume: bool = False, progress: bool = True, evaluate: bool = True,
              stop_after_iterations: int | None = None) -> dict[str, Any]:
    """Train (or resume) the explainers of an explain run, then evaluate them on the test set.

    Returns the results (also written to ``run/results.json`` when evaluated): training summary
    plus, per layer, consistency and Frechet distance (:func:`interpretgan.explain.metrics.evaluate_explainers`).
    """
    from interpretgan.explain.metrics import evaluate_explainers

    run = run if isinstance(run, Run) else Run.open(run, kind=RUN_KIND)
    cfg = explain_config_of(run)
    device = torch.device(device)
    classifier = load_model(run.path, device, name="classifier")
    size = int(classifier.config["image_size"])
    train = load_dataset(cfg.dataset, "train", root=data_root, image_size=size, verify=verify)
    summary = train_explainers(classifier, train, cfg, RunStore(run), device=device, progress=progress, resume=resume,
                               stop_after_iterations=stop_after_iterations)
    summary.pop("explainers")  # evaluated from the files below, which a resumed run's finished layers also have
    if summary["interrupted"] or not evaluate:
        return summary
    test = load_dataset(cfg.dataset, "test", root=data_root, image_size=size, verify=verify).subset(cfg.n_test, seed=cfg.seed)
    _, explainers = load_explainers(run, device, summary["layers"])
    quality = evaluate_explainers(classifier, explainers, test.x, reference_x=train.subset(len(test), seed=cfg.seed + 1).x,
                                  batch_size=cfg.eval_batch_size, device=device, baseline_seed=cfg.seed)
    run.append_metrics({"event": "eval", **quality})
    results = {**summary, **quality, "n_test": len(test)}
    write_json(run.path / "results.json", results)
    return results


def format_results(res: dict[str, Any]) -> str:
    """A plain-text table of :func:`train_run`'s results (per layer: consistency, Frechet distance)."""
    if "layers" not in res or not isinstance(res["layers"], dict):
        state = "interrupted" if res.get("interrupted") else "trained"
        return f"{state}: {', '.join(res.get('layers', []))} ({res.get('iterations')} iterations per layer)"
    lines = [f"explanations of {res.get('n_test')} test images; Frechet distance in f's {res['feature_layer']} features",
             f"{'layer':<8} {'consistency':>11} {'frechet':>9} {'random G: cons.':>15} {'frechet':>9}"]
    for layer, e in res["layers"].items():
        lines.append(f"{layer:<8} {e['consistency']:>11.4f} {e['frechet']:>9.2f} "
                     f"{e.get('random_consistency', float('nan')):>15.4f} {e.get('random_frechet', float('nan')):>9.2f}")
    if res.get("frechet_floor") is not None:
        lines.append(f"real vs real (training vs test images): frechet {res['frechet_floor']:.2f}")
    return "\n".join(lines)


def explain_in(root: str | Path, description: str, classifier_run: Run | str | Path, cfg: ExplainConfig, *,
               device: str | torch.device = "cpu", data_root: Any = None, verify: bool = True,
               progress: bool = True) -> Run:
    """Train and evaluate explainers into ``root/<NNNNN>-<description>``, resuming that run when it exists.

    The multi-stage jobs' counterpart of :func:`create_explain_run` + :func:`train_run`: a finished run
    (``results.json``) is returned as it is; one with another config is an error, never overwritten.
    """
    run = find_run(root, description)
    if run is None:
        run = create_explain_run(classifier_run, cfg, root, description)
    else:
        require_same_config(run, explain_config_of(run).to_dict(), cfg.to_dict(), "holds explainers trained")
        if (run.path / "results.json").is_file():
            return run
    train_run(run, device=device, data_root=data_root, verify=verify, resume=True, progress=progress)
    return run
