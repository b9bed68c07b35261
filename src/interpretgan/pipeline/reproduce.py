"""``interpretgan reproduce mnist|cifar10|celeba --preset smoke|cpu|paper``: the paper's results in one command.

Each chain is a list of named stages recorded in ``<folder>/stages.json``
(:class:`~interpretgan.pipeline.stages.Stages`): re-running the same command skips finished stages and
resumes an interrupted one from its checkpoints. The report (``report.md``, a self-contained
``report.html`` and ``results.json``, every number beside the paper's with the difference) is
rebuilt at the end of every run.

* **mnist** (Sections 4-5): natural SmallCNN; ``trades+atta`` SmallCNN with max and with avg
  pooling; PGD-40 sets (D*); Table 2's four attacks on both pooled models; explainers of the
  natural and the adversarially trained (max) model; Table 1 for both, max-pool index change,
  label transitions, the explanation grids and the Captum baselines figure. When the spec enables
  AutoAttack (:attr:`ChainSpec.autoattack_n`): AutoAttack on the three models, Table 2's AutoAttack
  column and Table 1 of both explained models under AutoAttack, each in stages of their own.
* **cifar10**: the pooling study of Table 3 (VGG16; and WideResNet-34-10 with ``paper``), with its
  AutoAttack column in a stage of its own.
* **celeba**: VGG16 gender classifier, PGD-20 (eps 2/255), explainers, Fig. 4/5-style grids,
  per-layer accuracy on D*, baselines.
* **mnist or cifar10 with** ``--model file.py:build --layers ...`` (:class:`OwnModel`,
  :func:`run_own_chain`): the MNIST chain with the user's classifier in place of the paper's:
  natural (or the user's ``--weights``) and trades+atta training of it, the dataset's four attacks
  and AutoAttack on both, both explained and diagnosed (Table 1), grids, transitions and baselines.
  No pooling table: the user's net has no max / avg variant.

The ``cpu`` presets attack a seeded subset of the test set (:attr:`ChainSpec.n_eval`), and run
AutoAttack on its first :attr:`ChainSpec.autoattack_n` images; the report states the sizes and
gives each figure's 95 % interval.

AutoAttack's stages came after the others: a folder made before them resumes, runs just them, and
records the spec's AutoAttack fields in its ``config.json``.
"""

from __future__ import annotations

import json
import logging
import platform
import subprocess
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import torch

from interpretgan import distributed
from interpretgan.config.presets import resolve_explain_config, resolve_train_config
from interpretgan.data import dataset_info, load_dataset
from interpretgan.diagnose.pooling import POOLING_ATTACKS, merge_arm, pooling_table
from interpretgan.errors import ConfigError
from interpretgan.io import read_json, write_json
from interpretgan.pipeline.attack import attack_run
from interpretgan.pipeline.chains import (
    ADDED_FIELDS,
    CHAINS,
    ChainSpec,
    OwnModel,
    arithmetic_tag,
    check_own_model,
)
from interpretgan.pipeline.diagnose import diagnose_run
from interpretgan.pipeline.explain import explain_in
from interpretgan.pipeline.runs import Run, runs_root
from interpretgan.pipeline.stages import Stages
from interpretgan.pipeline.study import evaluate_arm, pooling_study, study_train_config
from interpretgan.pipeline.train import fit_in
from interpretgan.report.build import build_report

log = logging.getLogger(__name__)


def _folder(target: str, preset: str, out: str | Path | None, spec: ChainSpec, dataset: str,
            own: OwnModel | None = None, before_create: Callable[[], Any] | None = None) -> Path:
    """The chain's folder (``--out``, else ``<runs root>/reproduce-<target>[-<own model>]-<preset>``), checked
    for a matching config; ``before_create`` runs when the folder is new, before anything is written
    (checks that must end a command with nothing made)."""
    name = f"reproduce-{target}-{preset}" if own is None else f"reproduce-{target}-{own.stem()}-{preset}"
    name += arithmetic_tag(spec)
    folder = Path(out) if out is not None else runs_root() / name
    # JSON round trip: tuples read back as lists, so the stored config compares equal.
    config = json.loads(json.dumps({"kind": "reproduce", "target": target, "preset": preset, "dataset": dataset,
                                    "spec": asdict(spec), **({} if own is None else {"model": own.record()})}))
    path = folder / "config.json"
    if path.is_file():
        stored = read_json(path)
        if isinstance(stored.get("spec"), dict) and any(k not in stored["spec"] for k in ADDED_FIELDS):
            # Made before these fields existed: take the current values; the stages they add run now.
            old = {**stored, "spec": {**stored["spec"], **{k: config["spec"][k] for k in ADDED_FIELDS
                                                            if k not in stored["spec"]}}}
            if old == config:
                if distributed.is_main():
                    write_json(path, config)
                stored = config
        if stored != config:
            what = f"{stored.get('kind')} {stored.get('target')} {stored.get('preset')} on {stored.get('dataset')}"
            raise ConfigError(f"{folder} holds another job ({what}, or other settings); expected reproduce {target} "
                              f"{preset} with the same settings, or an empty folder (use another --out)")
    else:
        if before_create is not None:
            before_create()
        if distributed.is_main():  # in a torchrun job rank 0 makes the folder
            folder.mkdir(parents=True, exist_ok=True)
            write_json(path, config)
    distributed.barrier()
    return folder


def environment(device: torch.device) -> dict[str, Any]:
    """Where a chain ran: torch, device, threads, Python, machine, date and the source's git commit (if any)."""
    return {"torch": torch.__version__, "device": str(device), "threads": torch.get_num_threads(),
            "processes": distributed.world_size(),
            "python": platform.python_version(), "machine": platform.machine(), "commit": _source_commit(),
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def _source_commit() -> str | None:
    """The git commit of the checkout this package runs from (None for an installed wheel): provenance for the zoo."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True,
                             timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _train(stages: Stages, name: str, folder: Path, description: str, cfg, **kw: Any) -> Run:
    path = stages.run(name, lambda: str(fit_in(folder, description, cfg, **kw).path), settings=cfg.to_dict(),
                      spread=True)
    return Run.open(path, kind="train")


def _explain(stages: Stages, name: str, folder: Path, description: str, classifier: Run, cfg, **kw: Any) -> Run:
    path = stages.run(
        name, lambda: str(explain_in(folder, description, classifier, cfg, **kw).path), settings=cfg.to_dict(),
        spread=True,
    )
    return Run.open(path, kind="explain")


def _figures(
    stages: Stages, name: str, explain_run: Run, folder: Path, attack: str, n: int, **kw: Any
) -> dict[str, str]:
    """The explanation grid (Fig. 3) and the baselines figure of one explain run."""
    def make() -> dict[str, str]:
        from interpretgan.pipeline.baselines import baselines_run  # imports captum (through interpretgan.baselines)
        from interpretgan.pipeline.explain import show_run

        grid = show_run(explain_run, attack=attack, n=n, out_dir=folder, **kw)
        base = baselines_run(explain_run, attack=attack, n=min(n, 4), out_dir=folder, **kw)
        return {"grid": grid["png"], "grid_tensors": grid["tensors"], "baselines": base["png"]}

    folder.mkdir(parents=True, exist_ok=True)
    return stages.run(name, make)


def run_mnist_chain(folder: Path, spec: ChainSpec, *, dataset: str = "mnist", device: Any = "cpu",
                    data_root: Any = None, verify: bool = True, progress: bool = True,
                    ablation: bool = False) -> dict[str, Any]:
    """All stages of the MNIST chain in ``folder``; returns the outputs the report needs. ``ablation``: also
    the explainer ablation of both explained classifiers (:func:`ablation_stages`)."""
    device = torch.device(device)
    stages = Stages(folder)
    io = dict(device=device, data_root=data_root, verify=verify)
    nat_cfg = resolve_train_config(dataset, "natural", spec.train_preset, spec.natural)
    natural = _train(stages, "train natural", folder, "smallcnn-max-natural", nat_cfg, progress=progress, **io)
    adv = {}
    for pool in ("max", "avg"):
        cfg = resolve_train_config(dataset, "trades+atta", spec.train_preset, {**spec.adversarial, "pool": pool})
        adv[pool] = _train(stages, f"train {pool} trades+atta", folder, f"smallcnn-{pool}-trades+atta", cfg,
                           progress=progress, **io)
    ecfg = resolve_explain_config(dataset, spec.explain_preset, spec.explain)
    explained = {
        "natural": _explain(
            stages, "explain natural", folder, "explain-natural", natural, ecfg, progress=progress, **io
        ),
        "adversarial": _explain(
            stages,
            "explain trades+atta (max)",
            folder,
            "explain-trades+atta-max",
            adv["max"],
            ecfg,
            progress=progress,
            **io,
        ),
    }
    out = evaluate_mnist_chain(stages, folder, spec, natural, adv, explained, progress=progress, **io)
    studies = ablation_stages(stages, folder, spec, {"natural": natural, "adversarial": adv["max"]}, ablation,
                              progress=progress, **io)
    if studies:
        out["ablation"], out["seconds"] = studies, stages.seconds()
    return out


def ablation_stages(stages: Stages, folder: Path, spec: ChainSpec, classifiers: dict[str, Run], ablation: bool, *,
                    progress: bool = True, **io: Any) -> dict[str, Any]:
    """Stages ``ablation natural`` and ``ablation adversarial``: :func:`~interpretgan.pipeline.ablation.ablation_study`
    of each classifier at the chain's explainer preset, in ``folder/ablation-<kind>`` (run when ``ablation`` is
    set; once recorded, a later run without it keeps them in the report). Returns each study's results."""
    from interpretgan.pipeline.ablation import ablation_study

    out = {}
    for kind, run in classifiers.items():
        name = f"ablation {kind}"
        if ablation or stages.done(name):
            out[kind] = stages.run(name, lambda r=run, k=kind: ablation_study(
                r, out=folder / f"ablation-{k}", preset=spec.explain_preset, progress=progress, **io),
                settings={"preset": spec.explain_preset})
    return out


def evaluate_mnist_chain(stages: Stages, folder: Path, spec: ChainSpec, natural: Run, adv: dict[str, Run],
                         explained: dict[str, Run], *, progress: bool = True, **io: Any) -> dict[str, Any]:
    """The MNIST chain's evaluation stages on trained runs: PGD-40 sets, Table 2's attacks, Table 1 for
    both explained models, index change, transitions, grids and baselines (``adv``: ``{"max", "avg"}``,
    ``explained``: ``{"natural", "adversarial"}``); then, when ``spec`` enables it, AutoAttack's stages
    (:func:`autoattack_stages`), whose column joins Table 2 and whose results go under ``"autoattack"``."""
    nat_attack = stages.run("attack natural (PGD-40)", lambda: _attack_summary(
        attack_run(natural, ["pgd-40"], n=spec.n_eval, progress=progress, **io, **spec.attack)), spread=True)
    arms = {pool: stages.run(f"attack {pool} (Table 2)", evaluate_arm, adv[pool], POOLING_ATTACKS["mnist"],
                             n_eval=spec.n_eval, progress=progress, **io, **spec.attack, spread=True)
            for pool in ("max", "avg")}
    diag, figs = {}, {}
    for kind, run in explained.items():
        diag[kind] = _diagnose(stages, kind, run, folder, "pgd-40", spec, **io)
        figs[kind] = _figures(stages, f"figures {kind}", run, folder / "figures" / kind, "pgd-40", spec.n_show, **io)
    aa = autoattack_stages(stages, folder, spec, natural, adv, explained, progress=progress, **io)
    if aa is not None:
        arms = {p: merge_arm(arms[p], aa["arms"][p]) for p in arms}
    out = {
        "natural": _classifier_summary(natural, nat_attack),
        "arms": {p: {**arms[p], "run": str(adv[p].path)} for p in arms},
        "table2": pooling_table({p: {0: arms[p]} for p in arms}, "mnist", "smallcnn"),
        "explainers": _explainer_summaries(explained),
        "diagnosis": diag,
        "figures": figs,
        "seconds": stages.seconds(),
    }
    if aa is not None:
        out["autoattack"] = {"spec": spec.autoattack, "n": spec.autoattack_images(), "natural": aa["natural"],
                             "diagnosis": aa["diagnosis"]}
    return out


def autoattack_stages(stages: Stages, folder: Path, spec: ChainSpec, natural: Run, adv: dict[str, Run],
                      explained: dict[str, Run], *, progress: bool = True, **io: Any) -> dict[str, Any] | None:
    """AutoAttack on the first :meth:`ChainSpec.autoattack_images` test images, each step a stage of its own
    (so that a folder made before them resumes and runs just these): ``autoattack natural``,
    ``autoattack {pool}`` (Table 2's column) and ``diagnose {kind} (AutoAttack)`` (Table 1 with D* from
    AutoAttack; the sets the attack stages stored are reused). None when the spec leaves AutoAttack off.
    """
    n = spec.autoattack_images()
    if n == 0:
        return None
    settings = {"attack": spec.autoattack, "n": n}
    nat = stages.run("autoattack natural", lambda: _attack_summary(
        attack_run(natural, [spec.autoattack], n=n, progress=progress, **io, **spec.attack)), settings=settings,
        spread=True)
    arms = {pool: stages.run(f"autoattack {pool}", evaluate_arm, adv[pool], [spec.autoattack], n_eval=n,
                             progress=progress, **io, **spec.attack, settings=settings, spread=True)
            for pool in ("max", "avg")}
    return {"natural": nat, "arms": arms, "diagnosis": _autoattack_diagnoses(stages, folder, spec, explained, **io)}


def _autoattack_diagnoses(stages: Stages, folder: Path, spec: ChainSpec, explained: dict[str, Run],
                          **io: Any) -> dict[str, Any]:
    """Stages ``diagnose {kind} (AutoAttack)``: Table 1 of each explain run with D* from AutoAttack (the set
    an ``autoattack`` stage stored in the classifier run)."""
    return {kind: _diagnose(stages, kind, run, folder, spec.autoattack, spec, autoattack=True, **io)
            for kind, run in explained.items()}


def _diagnose(stages: Stages, kind: str, run: Run, folder: Path, attack: str, spec: ChainSpec, *,
              autoattack: bool = False, **io: Any) -> dict[str, Any]:
    """Table 1 of one explain run into ``folder/diagnose-<kind>`` (D*: the attack stage's set, on the
    spec's ``n_eval`` images); with ``autoattack`` the stage ``diagnose <kind> (AutoAttack)`` into
    ``diagnose-<kind>-autoattack``, on AutoAttack's images and recorded with its settings."""
    n = spec.autoattack_images() if autoattack else spec.n_eval
    suffix = (" (AutoAttack)", "-autoattack") if autoattack else ("", "")
    settings = {"attack": attack, "n": n, "n_boot": spec.n_boot} if autoattack else None
    return stages.run(f"diagnose {kind}{suffix[0]}", lambda: _diagnosis_summary(diagnose_run(
        [run], attack=attack, n_compute=n or 10000, n_boot=spec.n_boot, out_dir=folder / f"diagnose-{kind}{suffix[1]}",
        **io)), settings=settings)


def _explainer_summaries(explained: dict[str, Run]) -> dict[str, Any]:
    """Each explain run's folder and its quality figures (``results.json``), as the report reads them."""
    return {k: {"run": str(r.path), "quality": read_json(r.path / "results.json")} for k, r in explained.items()}


def run_own_chain(folder: Path, spec: ChainSpec, own: OwnModel, *, target: str, dataset: str, device: Any = "cpu",
                  data_root: Any = None, verify: bool = True, progress: bool = True) -> dict[str, Any]:
    """The MNIST chain's stages with the user's classifier (:class:`OwnModel`): natural (or ``own.weights``)
    and trades+atta training, the dataset's :data:`POOLING_ATTACKS` on both (the first is D*), both
    explained and diagnosed, grids and baselines; AutoAttack's column and Table 1 under it when the
    spec enables it. Returns the outputs the report needs (``"models"``: per model its accuracies)."""
    device = torch.device(device)
    stages = Stages(folder)
    io = dict(device=device, data_root=data_root, verify=verify)
    cfgs = own.train_configs(dataset, spec)  # checked by reproduce() before the folder was made
    models = {
        kind: _train(stages, f"train {kind}", folder, f"{own.stem()}-{cfg.objective}", cfg, progress=progress, **io)
        for kind, cfg in cfgs.items()
    }
    ecfg = resolve_explain_config(dataset, spec.explain_preset, {**spec.explain, "fit": own.fit})
    explained = {
        kind: _explain(stages, f"explain {kind}", folder, f"explain-{kind}", run, ecfg, progress=progress, **io)
        for kind, run in models.items()
    }
    attacks = POOLING_ATTACKS[target]
    arms = {kind: stages.run(f"attack {kind}", lambda r=run: _arm_summary(attack_run(
        r, list(attacks), n=spec.n_eval, progress=progress, **io, **spec.attack)), spread=True)
        for kind, run in models.items()}
    diag, figs = {}, {}
    for kind, run in explained.items():
        diag[kind] = _diagnose(stages, kind, run, folder, attacks[0], spec, **io)
        figs[kind] = _figures(stages, f"figures {kind}", run, folder / "figures" / kind, attacks[0], spec.n_show, **io)
    out: dict[str, Any] = {
        "models": arms,
        "explainers": _explainer_summaries(explained),
        "diagnosis": diag,
        "figures": figs,
        "own": read_json(folder / "config.json")["model"],  # as _folder recorded it: the weights hashed once
    }
    n = spec.autoattack_images()
    if n != 0:
        settings = {"attack": spec.autoattack, "n": n}
        for kind, run in models.items():
            extra = stages.run(f"autoattack {kind}", evaluate_arm, run, [spec.autoattack], n_eval=n, progress=progress,
                               **io, **spec.attack, settings=settings, spread=True)
            arms[kind] = merge_arm(arms[kind], extra)
        out["autoattack"] = {"spec": spec.autoattack, "n": n,
                             "diagnosis": _autoattack_diagnoses(stages, folder, spec, explained, **io)}
    out["seconds"] = stages.seconds()
    return out


def _arm_summary(res: dict[str, Any]) -> dict[str, Any]:
    """An :func:`~interpretgan.pipeline.study.evaluate_arm` dict of ``attack_run``'s results, with the first
    attack's (D*'s) label transitions as :func:`_attack_summary` gives them."""
    return {**_attack_summary(res), "attacks": {k: v["accuracy"] for k, v in res["attacks"].items()},
            "n_attacks": {k: res["n"] for k in res["attacks"]}}


def _classifier_summary(run: Run, attack: dict[str, Any]) -> dict[str, Any]:
    return {"run": str(run.path), "clean": read_json(run.path / "results.json")["clean_accuracy"], "attack": attack}


def _attack_summary(res: dict[str, Any]) -> dict[str, Any]:
    name = next(iter(res["attacks"]))
    return {"clean": res["clean_accuracy"], "n": res["n"], "folder": res["folder"], "attack": name,
            "accuracy": res["attacks"][name]["accuracy"], "transition": res["attacks"][name]["transition"],
            "most_frequent_wrong": res["attacks"][name]["most_frequent_wrong"],
            "figure": str(Path(res["folder"]) / f"transition-{name}.png")}


def _diagnosis_summary(res: dict[str, Any]) -> dict[str, Any]:
    keep = ("attack", "n", "classifier", "paper_row", "table", "index_change", "transitions", "folder", "files")
    out = {k: res[k] for k in keep}
    first = res["runs"][0]
    out.update(input_accuracy=first["input_accuracy"], clean_accuracy=first["clean_accuracy"], source=first["source"])
    return out


def reproduce(target: str, preset: str, *, out: str | Path | None = None, device: Any = "cpu", data_root: Any = None,
              verify: bool = True, progress: bool = True, spec: ChainSpec | None = None,
              dataset: str | None = None, miniature: bool = False, own: OwnModel | None = None,
              ablation: bool = False) -> dict[str, Any]:
    """Run (or resume) the chain ``target`` at ``preset``; write the report; return the paths and results.

    ``miniature``: the spec is a schedule far below the preset's (``demo --train``); the report says so.
    ``own``: the user's classifier in place of the paper's (:func:`run_own_chain`). ``ablation`` (MNIST):
    the explainer ablation of both explained models too (:func:`ablation_stages`).

    Returns ``{"folder", "report_md", "report_html", "results", "seconds", "outputs"}``.
    """
    if target not in CHAINS:
        raise ConfigError(f"unknown reproduction '{target}'; expected one of {', '.join(CHAINS)}")
    if spec is None:
        if preset not in CHAINS[target]:
            raise ConfigError(f"unknown preset '{preset}'; expected one of {', '.join(CHAINS[target])}")
        spec = CHAINS[target][preset]
    dataset = dataset or target
    device = torch.device(device)
    if ablation and (target != "mnist" or own is not None):
        raise ConfigError("--ablation goes with reproduce mnist (the paper's chain); for another classifier run "
                          "interpretgan study ablation on its train run")
    if own is not None:
        check_own_model(own, target, spec, dataset)
    def check_data() -> None:  # a missing or corrupt dataset ends here, before the folder exists
        for split in dataset_info(dataset).splits:
            load_dataset(dataset, split, root=data_root, verify=verify)

    folder = _folder(target, preset, out, spec, dataset, own, before_create=check_data)
    log.info("reproduce %s (%s preset) in %s", target, preset, folder)
    if own is not None:
        outputs = run_own_chain(folder, spec, own, target=target, dataset=dataset, device=device, data_root=data_root,
                                verify=verify, progress=progress)
    elif target == "mnist":
        outputs = run_mnist_chain(folder, spec, dataset=dataset, device=device, data_root=data_root, verify=verify,
                                  progress=progress, ablation=ablation)
    elif target == "cifar10":
        outputs = run_cifar_chain(folder, spec, preset=preset, device=device, data_root=data_root, verify=verify,
                                  progress=progress)
    else:
        outputs = run_celeba_chain(folder, spec, device=device, data_root=data_root, verify=verify, progress=progress)
    outputs["environment"] = environment(device)
    outputs["miniature"] = miniature
    outputs["spec"] = asdict(spec)
    outputs["preset"], outputs["dataset"], outputs["target"] = preset, dataset, target
    written = None
    if distributed.is_main():
        with distributed.alone():
            written = build_report(target, folder, outputs)
    written = distributed.broadcast_object(written)
    return {"folder": folder, **written, "seconds": outputs["seconds"], "outputs": outputs}


def run_cifar_chain(folder: Path, spec: ChainSpec, *, preset: str, device: Any = "cpu", data_root: Any = None,
                    verify: bool = True, progress: bool = True) -> dict[str, Any]:
    """Table 3: the pooling study for each of ``spec.models`` in ``folder/pooling-<model>``."""
    stages = Stages(folder)
    studies = {}
    for model in spec.models:
        # The arms' resolved training configs: a changed preset refuses this folder instead of reusing its study.
        arms = {
            pool: study_train_config("cifar10", model, pool, preset, 0, spec.adversarial).to_dict()
            for pool in ("max", "avg")
        }
        study = dict(out=folder / f"pooling-{model}", n_eval=spec.n_eval, device=device, data_root=data_root,
                     verify=verify, progress=progress, overrides=spec.adversarial, arithmetic=spec.attack)
        studies[model] = stages.run(f"pooling study {model}", lambda m=model, kw=study: pooling_study(
            "cifar10", m, preset, **kw, autoattack_n=0), settings={"arms": arms, "n_eval": spec.n_eval})
        n = spec.autoattack_images()
        if n != 0:  # a stage of its own: the study folder resumes and runs just its AutoAttack stages
            studies[model] = stages.run(f"autoattack {model}", lambda m=model, kw=study: pooling_study(
                "cifar10", m, preset, **kw, autoattack_n=n, autoattack=spec.autoattack),
                settings={"arms": arms, "n_eval": spec.n_eval, "attack": spec.autoattack, "n": n})
    # Each study's own stage times (training and attacks per pool and seed), so the report lists them one by one.
    seconds = {f"{model} {name}": s for model, study in studies.items() for name, s in study["seconds"].items()}
    return {"studies": studies, "seconds": seconds}


def run_celeba_chain(folder: Path, spec: ChainSpec, *, device: Any = "cpu", data_root: Any = None, verify: bool = True,
                     progress: bool = True) -> dict[str, Any]:
    """VGG16 gender: natural training, PGD-20 (eps 2/255) D*, explainers, grids, Acc_i per layer, baselines."""
    device = torch.device(device)
    stages = Stages(folder)
    io = dict(device=device, data_root=data_root, verify=verify)
    cfg = resolve_train_config("celeba", "natural", spec.train_preset, spec.natural)
    cls = _train(stages, "train natural", folder, "vgg16-max-natural", cfg, progress=progress, **io)
    attack = stages.run("attack (PGD-20)", lambda: _attack_summary(attack_run(cls, ["pgd-20"], n=spec.n_eval,
                                                                             progress=progress, **io, **spec.attack)),
                        spread=True)
    ecfg = resolve_explain_config("celeba", spec.explain_preset, spec.explain)
    explained = _explain(stages, "explain natural", folder, "explain-natural", cls, ecfg, progress=progress, **io)
    diag = _diagnose(stages, "natural", explained, folder, "pgd-20", spec, **io)
    figs = _figures(stages, "figures natural", explained, folder / "figures" / "natural", "pgd-20", spec.n_show, **io)
    return {
        "natural": _classifier_summary(cls, attack),
        "explainers": _explainer_summaries({"natural": explained}),
        "diagnosis": {"natural": diag},
        "figures": {"natural": figs},
        "seconds": stages.seconds(),
    }
