"""Refresh the zoo from a finished ``interpretgan reproduce mnist`` folder.

``interpretgan pretrained refresh FOLDER`` copies the chain's three classifiers and two explainer
sets into the zoo and measures what their provenance records: clean and PGD-40 accuracy, and per
layer the explainers' consistency and Frechet distance, on the full MNIST test set and on the
embedded sample's 1,000 test digits, plus Acc_i (Table 1) on the sample's PGD-40 set. The attacks
keep their sets under ``FOLDER/zoo-measurements`` so an interrupted refresh resumes.
"""

from __future__ import annotations

import json
import logging
import platform
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from interpretgan.attacks.evaluate import evaluate_attacks
from interpretgan.attacks.specs import ATTACK_DEFAULTS, parse_attack_spec
from interpretgan.data import load_dataset
from interpretgan.data.integrity import file_digest
from interpretgan.diagnose.vulnerability import vulnerability_table
from interpretgan.errors import RunError
from interpretgan.explain.explainer import save_explainer
from interpretgan.explain.metrics import evaluate_explainers, explanation_predictions
from interpretgan.io import read_json, write_json
from interpretgan.pipeline.checkpoints import load_model
from interpretgan.pipeline.explain import load_explainers
from interpretgan.pipeline.runs import Run, find_run
from interpretgan.pipeline.zoo import PROVENANCE, ZOO_DIR
from interpretgan.training import evaluate

log = logging.getLogger(__name__)

#: zoo name -> (the run description inside a reproduce mnist folder, the stage that trained it).
CLASSIFIERS = {
    "mnist-smallcnn-max-natural": ("smallcnn-max-natural", "train natural"),
    "mnist-smallcnn-max-trades+atta": ("smallcnn-max-trades+atta", "train max trades+atta"),
    "mnist-smallcnn-avg-trades+atta": ("smallcnn-avg-trades+atta", "train avg trades+atta"),
}
#: zoo name -> (run description, the zoo classifier it explains).
EXPLAINERS = {
    "mnist-smallcnn-max-natural-explainers": ("explain-natural", "mnist-smallcnn-max-natural"),
    "mnist-smallcnn-max-trades+atta-explainers": ("explain-trades+atta-max", "mnist-smallcnn-max-trades+atta"),
}
ATTACK = "pgd-40"


def _run(folder: Path, description: str, kind: str) -> Run:
    run = find_run(folder, description)
    if run is None or not (run.path / "results.json").is_file():
        raise RunError(f"{folder} holds no finished '{description}' run; expected a finished "
                       "`interpretgan reproduce mnist` folder")
    return Run.open(run.path, kind=kind)


def _test_sets(data_root: Any, verify: bool, n_test: int | None) -> dict[str, Any]:
    full = load_dataset("mnist", "test", root=data_root, verify=verify)
    return {"mnist": full if n_test is None else full.subset(n_test, seed=0),
            "mnist-sample": load_dataset("mnist-sample", "test")}


def _attack(model: torch.nn.Module, ds: Any, work: Path, device: torch.device, progress: bool) -> dict[str, Any]:
    name, attack = parse_attack_spec(ATTACK, **ATTACK_DEFAULTS["mnist"])
    return evaluate_attacks(model, ds.x, ds.y, {name: attack}, batch_size=500, device=device, num_classes=10,
                            work_dir=work, progress=progress, seed=0)


def refresh_zoo(folder: str | Path, *, commit: str, zoo: Path = ZOO_DIR, data_root: Any = None, verify: bool = True,
                device: str | torch.device = "cpu", progress: bool = True, n_test: int | None = None,
                n_attack: int | None = None) -> dict[str, Any]:
    """Measure the chain's products and write them into ``zoo``; return ``{name: provenance}``.

    ``commit`` is the git commit the reproduction ran at (recorded, not checked). ``n_test``: MNIST
    test images measured (None: all 10,000; fewer for tests). ``n_attack``: of those, the seeded
    subset attacked with PGD-40 (None: all of them; the figure records its own ``n_attack``).
    """
    folder, device = Path(folder), torch.device(device)
    chain = read_json(folder / "config.json")
    if chain.get("kind") != "reproduce" or chain.get("target") != "mnist" or chain.get("dataset") != "mnist":
        raise RunError(f"{folder} is not an `interpretgan reproduce mnist` folder on the full MNIST; expected one")
    preset = chain["preset"]
    stages = read_json(folder / "stages.json")
    tests = _test_sets(data_root, verify, n_test)
    env = {"torch": torch.__version__, "machine": platform.machine(), "device": str(device),
           "measured": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    command = f"interpretgan reproduce mnist --preset {preset}"
    out: dict[str, dict[str, Any]] = {}
    # zoo name -> (the run it comes from, its explainers or None): what _write copies.
    sources: dict[str, tuple[Run, dict[str, Any] | None]] = {}
    adv_sets: dict[str, Any] = {}
    for name, (desc, stage) in CLASSIFIERS.items():
        run = _run(folder, desc, "train")
        model = load_model(run.path, device)
        figures = {}
        for dataset, ds in tests.items():
            attacked = ds.subset(n_attack, seed=0) if dataset == "mnist" and n_attack is not None else ds
            res = _attack(
                model, attacked, folder / "zoo-measurements" / name / f"{dataset}-{len(attacked)}", device, progress
            )
            clean = evaluate(model, ds.x.to(device), ds.y.to(device), 500, 10)["accuracy"]
            figures[dataset] = {"n": len(ds), "clean": clean, "n_attack": res["n"],
                                "pgd40": res["attacks"]["pgd40"]["accuracy"]}
            adv_sets[name, dataset] = res["adversarial"]["pgd40"]
        out[name] = {"name": name, "kind": "classifier", "command": command, "commit": commit, "preset": preset,
                     "config": {k: v for k, v in run.config.items() if k != "kind"},
                     "results": {k: v for k, v in read_json(run.path / "results.json").items()
                                 if k in ("clean_accuracy", "train_seconds", "epochs")},
                     "training_seconds": stages.get(stage, {}).get("seconds"),
                     "figures": figures, "attack": {"name": "pgd40", **ATTACK_DEFAULTS["mnist"], "random_start": True},
                     "files": {}, "environment": env}
        sources[name] = (run, None)
    # The Frechet distances' reference: training images, loaded once per dataset.
    train_sets = {dataset: load_dataset(dataset, "train", root=data_root, verify=verify) for dataset in tests}
    for name, (desc, cls_name) in EXPLAINERS.items():
        run = _run(folder, desc, "explain")
        classifier, explainers = load_explainers(run, device, finished=True)
        figures = {}
        for dataset, ds in tests.items():
            ref = train_sets[dataset].subset(len(ds), seed=1).x
            q = evaluate_explainers(classifier, explainers, ds.x, reference_x=ref, batch_size=500, device=device)
            adv = adv_sets[cls_name, dataset]
            _, preds = explanation_predictions(classifier, explainers, adv.x_adv, batch_size=500, device=device)
            correct = torch.stack([preds[n] == adv.y.long() for n in preds], dim=1)
            table = vulnerability_table(correct, list(preds), n_boot=0)
            figures[dataset] = {"n": len(ds), "frechet_floor": q["frechet_floor"], "feature_layer": q["feature_layer"],
                                "layers": {n: {"consistency": e["consistency"], "frechet": e["frechet"],
                                               "random_consistency": e["random_consistency"],
                                               "random_frechet": e["random_frechet"]} for n, e in q["layers"].items()},
                                "accuracy_pgd40": table["accuracy"]}
        out[cls_name]["explainers"] = name
        out[name] = {"name": name, "kind": "explainers", "classifier": cls_name, "command": command, "commit": commit,
                     "preset": preset, "layers": list(explainers),
                     "config": {k: v for k, v in run.config.items() if k not in ("kind", "classifier_run")},
                     "results": read_json(run.path / "results.json"), "figures": figures, "files": {},
                     "environment": env}
        sources[name] = (run, explainers)
    _write(zoo, out, sources)
    return out


def _write(zoo: Path, out: dict[str, dict[str, Any]], sources: dict[str, tuple[Run, dict[str, Any] | None]]) -> None:
    """Write every entry into a fresh folder beside ``zoo``, then swap it in (never half a zoo)."""
    zoo.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".zoo.", dir=zoo.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; the zoo ships readable
    try:
        for name, prov in out.items():
            target = staging / name
            target.mkdir()
            run, explainers = sources[name]
            if explainers is None:
                for f in ("model.safetensors", "model.json"):
                    shutil.copyfile(run.ckpt_dir / f, target / f)
            else:
                for layer, exp in explainers.items():
                    spec = read_json(run.ckpt_dir / layer / "explainer.json")
                    # The critic is not needed to explain: shipped without it (a third of the size).
                    meta = {
                        k: v for k, v in spec.items() if k not in ("layer", "compression", "generator", "discriminator")
                    }
                    save_explainer(target / layer, layer, exp.compression, exp.generator.state_dict(), {},
                                   generator_config=spec["generator"], discriminator_config=None, meta=meta)
            prov["files"] = {str(p.relative_to(target)): file_digest(p, "sha256")
                             for p in sorted(target.rglob("*")) if p.is_file()}
            write_json(target / PROVENANCE, prov)
        old = zoo.with_name(zoo.name + ".old")
        if zoo.exists():
            zoo.rename(old)
        staging.rename(zoo)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log.info("zoo written to %s: %s", zoo, json.dumps(sorted(out)))
