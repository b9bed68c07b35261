"""Explain run folders: where :func:`~interpretgan.explain.loop.train_explainers` keeps its progress,
the adversarial inputs an explain run is shown and diagnosed on, its grids and its drift table.

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
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import Tensor

from interpretgan import distributed
from interpretgan.attacks.specs import ATTACK_DEFAULTS, parse_attack_spec
from interpretgan.attacks.store import adversarial_set_model, load_adversarial_set, model_fingerprint
from interpretgan.config import ExplainConfig
from interpretgan.data import dataset_info, load_dataset
from interpretgan.devices import eval_mode
from interpretgan.errors import ConfigError, RunError
from interpretgan.explain.compression import CompressionNet, saved_compression_config
from interpretgan.explain.explainer import GP_SPACE, LEGACY_GP_SPACE, Explainer, load_explainer, save_explainer
from interpretgan.explain.fit import gan_side
from interpretgan.explain.loop import EAGER_PARTS, train_explainers
from interpretgan.explain.metrics import adversarial_drift, evaluate_explainers
from interpretgan.explain.progan import num_scales, saved_generator_config
from interpretgan.explain.show import explanation_grid
from interpretgan.io import load_state, read_json, save_state, write_json
from interpretgan.models import TappedModel, TappedNet
from interpretgan.pipeline.checkpoints import load_model, save_model
from interpretgan.pipeline.runs import Run, RunRecords, find_run, require_same_config

log = logging.getLogger(__name__)

RUN_KIND = "explain"


class RunStore(RunRecords):
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

    def save_explainer(self, layer: str, compression: CompressionNet, generator_state: Mapping[str, Tensor],
                       discriminator_state: Mapping[str, Tensor], *, generator_config: dict[str, Any],
                       discriminator_config: dict[str, Any], meta: dict[str, Any]) -> None:
        save_explainer(self.run.ckpt_dir / layer, layer, compression, generator_state, discriminator_state,
                       generator_config=generator_config, discriminator_config=discriminator_config, meta=meta)

    def save_loop_state(self, tag: str, state: dict[str, Any]) -> None:
        save_state(self.run.ckpt_dir / f"state-{tag}.pt", state)

    def loop_tags(self) -> list[str]:
        return sorted(p.name[len("state-"):-len(".pt")] for p in self.run.ckpt_dir.glob("state-*.pt"))


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


def load_explainers(
    run: Run | str | Path,
    device: str | torch.device = "cpu",
    layers: Sequence[str] | None = None,
    *,
    finished: bool = False,
) -> tuple[TappedModel, dict[str, Explainer]]:
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
            raise RunError(
                f"{run.path} has no explainer for layer(s) {', '.join(missing)}; "
                f"trained: {', '.join(available) or 'none'}"
            )
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
    if isinstance(classifier, TappedNet) and cfg.layers and not set(cfg.layers) <= set(classifier.layer_names):
        classifier = classifier.with_layers(cfg.layers)  # a user's model: the layers are module paths, tapped now
    layers = classifier.check_layers(cfg.layers or classifier.layer_names)
    cfg.validate()
    cfg.iterations_per_scale(
        num_scales(gan_side(*classifier.input_shape[1:])), n_train=1
    )  # its length, before a folder exists
    extra = {
        "classifier_run": str(cls_run.path.resolve()),
        "classifier_model": getattr(classifier, "registry_name", None),
        "image_size": int(classifier.config["image_size"]),
        "resolved_layers": layers,
        # which parts --compile compiles and which stay eager, and why (issue 30: the choice is the run's)
        **({"compiled_parts": {"compiled": ["classifier"], "eager": EAGER_PARTS}} if cfg.compile else {}),
    }
    run = Run.create(
        root, description or f"explain-{cls_run.path.name}-{cfg.preset}", RUN_KIND, {**cfg.to_dict(), **extra}
    )
    if distributed.is_main():
        save_model(run.ckpt_dir, classifier, name="classifier", metadata={"source_run": str(cls_run.path.resolve())})
    distributed.barrier()
    return run


def train_run(run: Run | str | Path, *, device: str | torch.device = "cpu", data_root: Any = None, verify: bool = True,
              resume: bool = False, progress: bool = True, evaluate: bool = True,
              stop_after_iterations: int | None = None) -> dict[str, Any]:
    """Train (or resume) the explainers of an explain run, then evaluate them on the test set.

    Returns the results (also written to ``run/results.json`` when evaluated): training summary
    plus, per layer, consistency and Frechet distance (:func:`interpretgan.explain.metrics.evaluate_explainers`).

    In a torchrun job each rank trains and evaluates its share of the layers; a rank after 0 keeps its
    records in ``metrics-rank<r>.jsonl`` until the training ends, when rank 0 moves them into
    ``metrics.jsonl``; rank 0 writes the results.
    """
    run = run if isinstance(run, Run) else Run.open(run, kind=RUN_KIND)
    cfg = explain_config_of(run)
    device = torch.device(device)
    classifier = load_model(run.path, device, name="classifier")
    size = int(classifier.config["image_size"])
    train = load_dataset(cfg.dataset, "train", root=data_root, image_size=size, verify=verify)
    rank = distributed.rank()
    store = RunStore(run if rank == 0 else Run(run.path, metrics=f"metrics-rank{rank}.jsonl"))
    summary = train_explainers(classifier, train, cfg, store, device=device, progress=progress, resume=resume,
                               stop_after_iterations=stop_after_iterations)
    summary.pop("explainers")  # evaluated from the files below, which a resumed run's finished layers also have
    if distributed.active():
        summary["seconds"] = max(distributed.all_gather_objects(summary["seconds"]))  # the ranks ran side by side
        if distributed.is_main():
            _merge_rank_records(run)
    if summary["interrupted"] or not evaluate:
        return summary
    test = load_dataset(cfg.dataset, "test", root=data_root, image_size=size, verify=verify).subset(
        cfg.n_test, seed=cfg.seed
    )
    mine = summary["layers"][rank :: distributed.world_size()]  # each rank evaluates as many layers
    _, explainers = load_explainers(run, device, mine) if mine else (None, {})
    quality = {"layers": {}} if not mine else evaluate_explainers(
        classifier,
        explainers,
        test.x,
        reference_x=train.subset(len(test), seed=cfg.seed + 1).x,
        batch_size=cfg.eval_batch_size,
        device=device,
        baseline_seed=cfg.seed,
    )
    if distributed.active():
        parts = {k: v for q in distributed.all_gather_objects(quality["layers"]) for k, v in q.items()}
        shared = distributed.broadcast_object({k: v for k, v in quality.items() if k != "layers"})  # rank 0 has layers
        quality = {**shared, "layers": {layer: parts[layer] for layer in summary["layers"]}}
    results = {**summary, **quality, "n_test": len(test)}
    if distributed.is_main():
        run.append_metrics({"event": "eval", **quality})
        write_json(run.path / "results.json", results)
    distributed.barrier()
    return results


def _merge_rank_records(run: Run) -> None:
    """The records of a torchrun job's ranks after 0, moved into ``metrics.jsonl`` (called by rank 0 once
    every rank has finished training)."""
    for path in sorted(run.path.glob("metrics-rank*.jsonl")):
        for record in Run(run.path, metrics=path.name).read_metrics():
            run.append_metrics(record)
        path.unlink()


def format_results(res: dict[str, Any]) -> str:
    """A plain-text table of :func:`train_run`'s results (per layer: consistency, Frechet distance)."""
    if "layers" not in res or not isinstance(res["layers"], dict):
        state = "interrupted" if res.get("interrupted") else "trained"
        return f"{state}: {', '.join(res.get('layers', []))} ({res.get('iterations')} iterations per layer)"
    lines = [
        f"explanations of {res.get('n_test')} test images; Frechet distance in f's {res['feature_layer']} features",
        f"{'layer':<8} {'consistency':>11} {'frechet':>9} {'random G: cons.':>15} {'frechet':>9}",
    ]
    for layer, e in res["layers"].items():
        lines.append(
            f"{layer:<8} {e['consistency']:>11.4f} {e['frechet']:>9.2f} "
            f"{e.get('random_consistency', float('nan')):>15.4f} {e.get('random_frechet', float('nan')):>9.2f}"
        )
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


# --- D*: the adversarial inputs an explain run is shown and diagnosed on -----------------------------
class AdversarialInputs(NamedTuple):
    """Natural images and their adversarial versions, on the CPU.

    ``x``, ``x_adv``: ``(N, C, H, W)`` float32 in [0, 1]; ``y``: true labels ``(N,)``; ``pred``:
    f's labels on ``x_adv`` ``(N,)``; ``name``: the attack (``pgd40``); ``source``: the D* file
    read, or ``"computed"``.
    """

    x: Tensor
    x_adv: Tensor
    y: Tensor
    pred: Tensor
    name: str
    source: str


def adversarial_inputs(run: Run, classifier: TappedModel, attack: str, *, n_compute: int = 1000,
                       device: str | torch.device = "cpu", data_root: Any = None, verify: bool = True,
                       seed: int = 0) -> AdversarialInputs:
    """The adversarial set D* of ``attack`` (``pgd``, ``pgd-40``, ``mpgd``, ``fgsm``) for an explain run (or
    for the classifier of a train run).

    The attack command's D* of the classifier run (``<classifier run>/attacks/*/<name>.safetensors``
    with the natural images it was made from: of the test-split sets made by this classifier's
    weights with the paper's settings for the dataset, the largest) when there is one (``n_compute``
    is then not used);
    else the attack runs here, with the paper's settings for the dataset (``ATTACK_DEFAULTS``),
    on a subset of ``n_compute`` test images seeded by ``seed``. ``classifier`` is on ``device``.
    """
    device = torch.device(device)
    dataset, size = run.config["dataset"], int(classifier.config["image_size"])
    defaults = ATTACK_DEFAULTS.get(dataset, ATTACK_DEFAULTS["mnist"])
    name, attack_obj = parse_attack_spec(
        attack, eps=defaults["eps"], alpha=defaults["alpha"], steps=int(defaults["steps"])
    )
    # an explain run's classifier run, or a train run itself; none recorded: D* is computed here
    source = run.config.get("classifier_run") or (str(run.path) if run.config.get("kind") == "train" else None)
    folder = Path(source) / "attacks" if source else None
    candidates = []
    for sub in sorted(folder.iterdir()) if folder is not None and folder.is_dir() else []:
        path = sub / f"{name}.safetensors"
        if not path.is_file() or not (sub / "settings.json").is_file():
            continue
        settings = read_json(sub / "settings.json")
        if settings.get("split") != "test" or abs(float(settings["eps"]) - float(defaults["eps"])) > 1e-9:
            continue  # D* is a test set at the paper's radius
        made = settings.get("attacks", {}).get(name)
        if made is not None and made != repr(attack_obj):
            log.warning("%s was made by %s, not the paper's %s: not used", path, made, attack_obj)
            continue
        candidates.append((int(settings["n"]), path, settings))
    fingerprint = None
    # The largest stored set first (all test images before a subset).
    for _, path, settings in sorted(candidates, key=lambda c: -c[0]):
        fingerprint = fingerprint or model_fingerprint(classifier)
        made_by = adversarial_set_model(path)
        if made_by is not None and made_by != fingerprint:
            log.warning("%s was made by other weights than this explain run's classifier: not used", path)
            continue
        ds = load_dataset(dataset, settings["split"], root=data_root, image_size=size, verify=verify)
        if settings["n"] < len(ds):
            ds = ds.subset(settings["n"], seed=settings["seed"])
        adv = load_adversarial_set(path)
        if len(ds) < int(adv.index.max()) + 1:
            raise RunError(
                f"{path} does not match the {settings['split']} set it was made from; rerun the attack command"
            )
        return AdversarialInputs(ds.x[adv.index].float().div(255), adv.x_adv, adv.y, adv.pred, name, str(path))
    if candidates:
        log.warning("no stored %s set of %s fits: attacking %d test images here", name, folder, n_compute)
    test = load_dataset(dataset, "test", root=data_root, image_size=size, verify=verify).subset(n_compute, seed=seed)
    x, y = test.x.float().div(255), test.y
    gen = torch.Generator(device=device).manual_seed(seed)
    x_adv = attack_obj.with_generator(gen)(classifier, x.to(device), y.to(device))
    with torch.no_grad(), eval_mode(classifier):
        pred = classifier(x_adv).argmax(1)
    return AdversarialInputs(x, x_adv.cpu(), y, pred.cpu(), name, "computed")  # explicit: results live on the host


def drift_run(run: Run | str | Path, *, attack: str = "pgd", n_compute: int = 1000, device: str | torch.device = "cpu",
              data_root: Any = None, verify: bool = True, seed: int = 0, batch_size: int = 500) -> dict[str, Any]:
    """:func:`adversarial_drift` of an explain run's explainers on D* (:func:`adversarial_inputs`).

    Writes ``<run>/drift-<attack name>.json`` and returns its content (with ``"attack"`` and ``"source"``).
    """
    run = run if isinstance(run, Run) else Run.open(run, kind=RUN_KIND)
    device = torch.device(device)
    classifier, explainers = load_explainers(run, device, finished=True)
    adv = adversarial_inputs(run, classifier, attack, n_compute=n_compute, device=device, data_root=data_root,
                             verify=verify, seed=seed)
    res = adversarial_drift(
        classifier, explainers, adv.x_adv, adv.y, adv_pred=adv.pred, batch_size=batch_size, device=device
    )
    res.update(attack=adv.name, source=adv.source)
    write_json(run.path / f"drift-{adv.name}.json", res)
    return res


# --- the Fig. 3 grid ------------------------------------------------------------------------------
def grid_inputs(
    run: Run | str | Path,
    *,
    attack: str,
    n: int,
    device: str | torch.device = "cpu",
    data_root: Any = None,
    verify: bool = True,
    seed: int = 0,
    fooled_only: bool = True,
) -> tuple[Run, TappedModel, dict[str, Explainer], AdversarialInputs, Tensor]:
    """An explain run's models, its D* (:func:`~interpretgan.explain.metrics.adversarial_inputs`) and the
    ``n`` examples a figure shows: with ``fooled_only``, those the attack fooled (f right on ``x``,
    wrong on ``x_adv``) first, then others when there are fewer than ``n``."""
    run = run if isinstance(run, Run) else Run.open(run, kind=RUN_KIND)
    if n < 1:
        raise ConfigError(f"--n must be at least 1, got {n}")
    device = torch.device(device)
    classifier, explainers = load_explainers(run, device)
    _warn_unfinished(run, explainers)
    adv = adversarial_inputs(run, classifier, attack, n_compute=max(4 * n, 64), device=device, data_root=data_root,
                             verify=verify, seed=seed)
    order = torch.arange(len(adv.y))
    if fooled_only:
        with torch.no_grad(), eval_mode(classifier):
            pred_nat = classifier(adv.x.to(device)).argmax(1).cpu()
        fooled = order[(pred_nat == adv.y) & (adv.pred != adv.y)]
        order = torch.cat([fooled, order[~torch.isin(order, fooled)]])
    return run, classifier, explainers, adv, order[:n]


def _warn_unfinished(run: Run, explainers: Mapping[str, Explainer]) -> None:
    """A grid of a run still training (or missing layers) is drawn, with a warning saying so."""
    behind = [f"{layer} at iteration {done} of {total}" for layer, done, total in layers_behind(run, list(explainers))]
    missing = [layer for layer in run.config.get("resolved_layers") or [] if layer not in explainers]
    if behind or missing:
        log.warning("%s has not finished training: %s; the grid shows the explainers as they are",
                    run.path, "; ".join(behind + ([f"no explainer yet for {', '.join(missing)}"] if missing else [])))


def show_run(run: Run | str | Path, *, attack: str = "pgd", n: int = 8, device: str | torch.device = "cpu",
             data_root: Any = None, verify: bool = True, seed: int = 0, fooled_only: bool = True,
             out_dir: str | Path | None = None) -> dict[str, Any]:
    """``interpretgan explain show RUN``: the Fig. 3 grid of an explain run for ``n`` test examples.

    The adversarial versions come from :func:`~interpretgan.explain.metrics.adversarial_inputs`
    (the attack command's D* when the classifier run has one, else computed here on a seeded
    subset of ``max(4 n, 64)`` test images). ``fooled_only`` keeps examples the attack fooled (f
    right on ``x``, wrong on ``x_adv``), falling back to others when there are fewer than ``n``.
    Writes ``<out_dir>/explanations-<attack>.png`` and ``.safetensors`` (default ``out_dir``: the
    run folder) and returns :func:`explanation_grid`'s dict plus ``"source"`` (the D* file or
    ``"computed"``) and ``"examples"`` (the indices shown, into the adversarial set).
    """
    run, classifier, explainers, adv, pick = grid_inputs(run, attack=attack, n=n, device=device, data_root=data_root,
                                                         verify=verify, seed=seed, fooled_only=fooled_only)
    device = torch.device(device)
    out_dir = Path(out_dir) if out_dir is not None else run.path
    classes = list(dataset_info(run.config["dataset"]).classes)
    result = explanation_grid(
        classifier,
        explainers,
        adv.x[pick].to(device),
        adv.x_adv[pick].to(device),
        classes,
        out_dir / f"explanations-{adv.name}.png",
        tensors_path=out_dir / f"explanations-{adv.name}.safetensors",
        title=f"{run.path.resolve().name}: natural and {adv.name} inputs, explanation per layer "
        "(f's label, probability)",
    )
    result["source"] = adv.source
    result["examples"] = pick.tolist()
    return result
