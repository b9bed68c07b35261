"""The explainer ablation (issue 31): what the GAN prior and the interpretability term contribute to the
per-layer figures, beside the reference arms of the feature-inversion literature.

``interpretgan study ablation CLASSIFIER_RUN --preset cpu`` explains the same layers of one classifier
with each arm, all sharing the compression nets' design and the schedule of the explain preset:

- ``interpretgan``: WGAN-GP progressive GAN + lambda = 1 interpretability term (the paper);
- ``gan-only``: the same with lambda = 0;
- ``mse``: no critic, C_i + G_i fit the image by pixel MSE (Dosovitskiy & Brox 2016);
- ``mse+ce``: pixel MSE + lambda = 1 interpretability term;
- ``optim``: no training, per image the inversion of :mod:`interpretgan.explain.inversion`
  (Mahendran & Vedaldi 2015; Engstrom et al. 2019's setting for robust models).

Each arm is evaluated on the same natural test images (consistency, Frechet distance in f's
features with the real-vs-real floor, pixel error and SSIM to the image) and the same D* (the
classifier run's stored PGD-40 set when it has one): Acc_i and Vul_i with bootstrap intervals
(:func:`~interpretgan.diagnose.diagnose`, the function Table 1 uses) and the fraction of fooled
examples whose explanation carries the adversarial label; and its wall time (training plus
evaluation; the inversion's is all evaluation). The study folder holds one explain run per trained
arm, ``stages.json`` (re-running resumes), ``ablation.json``, ``ablation.md`` (one table per figure:
arms as rows, layers as columns) and the grids ``ablation-natural.png`` / ``ablation-adversarial.png``
(arms as rows, layers as columns, a few fooled examples per cell).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from interpretgan.config.presets import resolve_explain_config
from interpretgan.data import load_dataset
from interpretgan.devices import eval_mode
from interpretgan.diagnose import diagnose
from interpretgan.errors import ConfigError
from interpretgan.explain.explainer import explain
from interpretgan.explain.inversion import FeatureInverter
from interpretgan.explain.metrics import evaluate_explainers
from interpretgan.io import read_json, write_json, write_text
from interpretgan.pipeline.checkpoints import load_model
from interpretgan.pipeline.explain import AdversarialInputs, adversarial_inputs, explain_in, load_explainers
from interpretgan.pipeline.runs import Run
from interpretgan.pipeline.stages import Stages

ARMS = ("interpretgan", "gan-only", "mse", "mse+ce", "optim")
#: The explain-config fields of each trained arm (the rest is the preset's, shared).
ARM_CONFIG: dict[str, dict[str, Any]] = {
    "interpretgan": {"objective": None, "interp_weight": 1.0},
    "gan-only": {"objective": None, "interp_weight": 0.0},
    "mse": {"objective": "mse", "interp_weight": 0.0},
    "mse+ce": {"objective": "mse", "interp_weight": 1.0},
}
#: Per preset: the layers (None: all; ``cpu``: the ones the paper calls vulnerable), natural test
#: images for consistency / Frechet / pixel error / SSIM, D*'s size when it is computed here, bootstrap
#: resamples, the inversion's steps and the examples per grid cell.
ABLATION_PRESETS: dict[str, dict[str, Any]] = {
    "smoke": dict(layers=None, n_test=64, n_eval=64, n_boot=200, optim_steps=20, n_show=2),
    "cpu": dict(layers=["conv1", "conv2", "conv4", "fc1"], n_test=1000, n_eval=1000, n_boot=1000, optim_steps=200,
                n_show=3),
    "paper": dict(layers=None, n_test=None, n_eval=None, n_boot=1000, optim_steps=500, n_show=4),
}
ATTACK = "pgd-40"


def check_arms(arms: Sequence[str]) -> list[str]:
    """``arms`` in the study's order, or one sentence naming the unknown one."""
    unknown = [a for a in arms if a not in ARMS]
    if not arms:
        raise ConfigError(f"--arms is empty; expected some of {', '.join(ARMS)}")
    if unknown:
        raise ConfigError(f"unknown ablation arm '{unknown[0]}'; expected some of {', '.join(ARMS)}")
    return [a for a in ARMS if a in arms]


def ablation_study(classifier_run: Run | str | Path, *, out: str | Path, arms: Sequence[str] = ARMS,
                   layers: Sequence[str] | None = None, preset: str = "cpu", device: Any = "cpu", data_root: Any = None,
                   verify: bool = True, progress: bool = True) -> dict[str, Any]:
    """Run (or resume) the ablation of the classifier of the train run ``classifier_run`` in the folder ``out``.

    Returns (and writes to ``out/ablation.json``) ``{"classifier_run", "preset", "layers", "arms": {arm:
    {"layers": {layer: figures}, "train_seconds", "evaluate_seconds", ...}}, "frechet_floor", "attack",
    "n_test", "n_adversarial", "seconds" (the stages'), "files"}``.
    """
    if preset not in ABLATION_PRESETS:
        raise ConfigError(f"unknown preset '{preset}'; expected one of {', '.join(ABLATION_PRESETS)}")
    arms = check_arms(arms)
    sizes = ABLATION_PRESETS[preset]
    cls_run = classifier_run if isinstance(classifier_run, Run) else Run.open(classifier_run, kind="train")
    device = torch.device(device)
    classifier = load_model(cls_run.path, device)
    layers = classifier.check_layers(list(layers or sizes["layers"] or classifier.layer_names))
    dataset = cls_run.config["dataset"]
    base = resolve_explain_config(dataset, preset, {"layers": layers})
    # Loaded once for every arm; a missing or corrupt dataset ends here, before the folder exists.
    train, test = (load_dataset(dataset, split, root=data_root, image_size=int(classifier.config["image_size"]),
                                verify=verify) for split in ("train", "test"))
    test = test.subset(sizes["n_test"], seed=0)
    natural = (test.x, train.subset(len(test), seed=1).x)  # the arms' images and the Frechet floor's references
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stages = Stages(out)
    io = dict(device=device, data_root=data_root, verify=verify)
    settings = {"classifier_run": str(cls_run.path.resolve()), "layers": layers, **sizes}
    # D*: the classifier run's stored set, else computed here once for every arm
    adv = adversarial_inputs(cls_run, classifier, ATTACK, n_compute=sizes["n_eval"] or 10000, **io)
    results, runs = {}, {}
    for arm in arms:
        if arm == "optim":
            results[arm] = stages.run("evaluate optim", lambda: _evaluate(classifier, _inverters(
                classifier, layers, sizes), natural, adv, sizes, None, device), settings={**settings, "arm": arm})
            continue
        cfg = dataclasses.replace(base, **ARM_CONFIG[arm])
        path = runs[arm] = stages.run(f"train {arm}", lambda c=cfg, a=arm: str(explain_in(
            out, f"explain-{a}", cls_run, c, progress=progress, **io).path), settings=cfg.to_dict())
        results[arm] = stages.run(f"evaluate {arm}", lambda p=path: _evaluate(
            classifier, load_explainers(Run.open(p), device, layers, finished=True)[1], natural, adv, sizes, Path(p),
            device), settings={**settings, "arm": arm, "run": path})
    res = {"classifier_run": str(cls_run.path), "dataset": dataset, "preset": preset, "layers": layers,
           "attack": ATTACK, "arms": results, "n_test": results[arms[0]]["n_test"],
           "n_adversarial": results[arms[0]]["n_adversarial"], "frechet_floor": results[arms[0]]["frechet_floor"],
           "seconds": stages.seconds()}
    res["files"] = stages.run("grids", lambda: _grids(cls_run, classifier, adv, out, runs, arms, layers, sizes,
                                                      device), settings={**settings, "arms": arms})
    write_json(out / "ablation.json", res)
    from interpretgan.report.markdown import ablation_markdown

    write_text(out / "ablation.md", ablation_markdown(res))
    return res


def _inverters(classifier, layers: Sequence[str], sizes: dict[str, Any]) -> dict[str, FeatureInverter]:
    return {n: FeatureInverter(classifier, n, steps=sizes["optim_steps"]) for n in layers}


def _evaluate(classifier, explainers, natural: tuple[torch.Tensor, torch.Tensor], adv: AdversarialInputs,
              sizes: dict[str, Any], explain_run: Path | None, device: torch.device) -> dict[str, Any]:
    """One arm's figures on the natural test images (``natural``: them and the training images of the
    Frechet floor) and on D*, and its wall time."""
    t0 = time.perf_counter()
    test_x, reference_x = natural
    quality = evaluate_explainers(classifier, explainers, test_x, reference_x=reference_x, device=device,
                                  baseline_seed=None, reconstruction=True)
    diag = diagnose(classifier, explainers, adv.x_adv, adv.y, pred=adv.pred, n_boot=sizes["n_boot"], device=device)
    table = diag["table"]
    figures = {n: {**quality["layers"][n], "accuracy": table["accuracy"][n],
                   "accuracy_ci": table.get("accuracy_ci", {}).get(n), "vulnerability": table["vulnerability"][n],
                   "vulnerability_ci": (table.get("vulnerability_ci") or {}).get(n),
                   "adversarial_label": table["adversarial_label"][n]} for n in quality["layers"]}
    train_seconds = read_json(explain_run / "results.json")["seconds"] if explain_run is not None else 0.0
    return {"layers": figures, "vulnerable": table["vulnerable"], "input_accuracy": diag["input_accuracy"],
            "n_test": len(test_x), "n_adversarial": diag["n"], "source": adv.source,
            "frechet_floor": quality["frechet_floor"], "train_seconds": train_seconds,
            "evaluate_seconds": time.perf_counter() - t0, "run": str(explain_run) if explain_run else None}


def _grids(cls_run: Run, classifier, adv: AdversarialInputs, out: Path, runs: dict[str, str], arms: Sequence[str],
           layers: Sequence[str], sizes: dict[str, Any], device: torch.device) -> dict[str, str]:
    """The natural and adversarial grids: the first ``n_show`` fooled examples of D*, every arm and layer."""
    from interpretgan.report.figures import plot_ablation_grid

    with torch.no_grad(), eval_mode(classifier):
        natural_pred = classifier(adv.x.to(device)).argmax(1).cpu()
    fooled = ((natural_pred == adv.y) & (adv.pred != adv.y)).nonzero().flatten()
    pick = torch.cat([fooled, torch.arange(len(adv.y))])[: sizes["n_show"]]
    files = {}
    for kind, images in (("natural", adv.x[pick]), ("adversarial", adv.x_adv[pick])):
        rows = {}
        for arm in arms:
            if arm == "optim":
                explainers = _inverters(classifier, layers, sizes)
            else:
                explainers = load_explainers(Run.open(runs[arm]), device, layers, finished=True)[1]
            rows[arm] = {n: t.cpu() for n, t in explain(classifier, explainers, images.to(device)).items()}
        path = out / f"ablation-{kind}.png"
        plot_ablation_grid(images, rows, path, title=f"{cls_run.path.name}: {kind} inputs (top row), each arm's "
                                                     "explanation per layer")
        files[kind] = str(path)
    return files
