"""``interpretgan attack RUN``: robust accuracy of a trained run, its D*, and label transitions.

Results go to ``RUN/attacks/<split>-<n>-eps<eps>/`` (``...-bf16/`` under ``--precision bf16``):
``results.json`` (clean and robust accuracy, per class, success rate, transition matrix and the most
frequent wrong label per class, for each attack and the per-example worst case),
``<attack>.safetensors`` (the adversarial set D*, reused by the explainers and the diagnosis) and
``transition-<attack>.png`` (the paper's Fig. 7).
Re-running the same command resumes: finished batches are not attacked again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from interpretgan import distributed
from interpretgan.attacks import Attack, evaluate_attacks
from interpretgan.attacks.evaluate import check_evaluation_inputs
from interpretgan.attacks.specs import ATTACK_DEFAULTS, ATTACK_NAMES_EXPECTED, parse_attack_spec
from interpretgan.config import TrainConfig, check_seed
from interpretgan.data import ArrayDataset, dataset_info, load_dataset
from interpretgan.devices import check_precision
from interpretgan.errors import ConfigError, RunError
from interpretgan.io import read_json, write_json
from interpretgan.pipeline.checkpoints import load_model
from interpretgan.pipeline.runs import Run, stored_config

log = logging.getLogger(__name__)


def attack_run(run: Run, specs: list[str], **options: Any) -> dict[str, Any]:
    """Attack the classifier of the train run ``run``: :func:`plan_attack` then :func:`run_attack_plan`."""
    return run_attack_plan(plan_attack(run, specs, **options))


def plan_attack(
    run: Run,
    specs: list[str],
    *,
    split: str = "test",
    n: int | None = None,
    eps: float | None = None,
    alpha: float | None = None,
    steps: int | None = None,
    random_start: bool = True,
    restarts: int = 1,
    loss: str = "ce",
    batch_size: int = 500,
    device: torch.device | str = "cpu",
    data_root: Any = None,
    verify: bool = True,
    progress: bool = True,
    seed: int = 0,
    crosscheck: int = 0,
    precision: str | None = None,
    channels_last: bool = False,
    compile: bool = False,
) -> AttackPlan:
    """Plan the attack of the classifier of the train run ``run`` on ``n`` examples of ``split``.

    ``eps``/``alpha``/``steps`` default to the paper's values for the run's dataset
    (:data:`ATTACK_DEFAULTS`). ``restarts`` and ``loss`` apply to every attack named (see
    :func:`parse_attack_spec`). ``crosscheck > 0`` also runs ``captum.robust.PGD`` on the first
    ``crosscheck`` examples (no random start) beside ours and records both accuracies.
    ``precision`` / ``channels_last`` / ``compile``: the attacks' arithmetic (see
    :func:`~interpretgan.attacks.evaluate_attacks`; bf16 keeps the input layer in fp32).
    Checks everything and loads the model and the data, writing nothing (so that a refused attack
    leaves the run as it was); :func:`run_attack_plan` then attacks and writes.
    """
    check_seed(seed)
    check_precision(precision)
    if not (isinstance(crosscheck, int) and crosscheck >= 0):
        raise ConfigError(f"--crosscheck must be an integer >= 0, got {crosscheck}")
    cfg = stored_config(run, TrainConfig)
    defaults = ATTACK_DEFAULTS.get(cfg.dataset, ATTACK_DEFAULTS["mnist"])
    eps = defaults["eps"] if eps is None else eps
    alpha = defaults["alpha"] if alpha is None else alpha
    steps = int(defaults["steps"]) if steps is None else steps
    attacks = dict(parse_attack_spec(s, eps=eps, alpha=alpha, steps=steps, random_start=random_start,
                                     restarts=restarts, loss=loss) for s in specs)
    if not attacks:
        raise ConfigError(f"no --attack given; expected at least one of {ATTACK_NAMES_EXPECTED}")

    info = dataset_info(cfg.dataset)
    ds = load_dataset(cfg.dataset, split, root=data_root, image_size=cfg.image_size, verify=verify)
    size = "all" if n is None or n >= len(ds) else str(n)
    ds = ds.subset(n, seed=seed)
    device = torch.device(device)
    model = load_model(run.path, device, expected=cfg.model_spec())
    # One folder per input set (split, subset and its seed), radius and precision; its settings.json says which.
    folder = (
        run.path / "attacks" / (f"{split}-{size}-eps{eps:.4g}" + (f"-seed{seed}" if size != "all" and seed else "")
                                + ("-bf16" if precision == "bf16" else ""))
    )
    settings = {"split": split, "n": len(ds), "eps": eps, "alpha": alpha, "steps": steps, "random_start": random_start,
                "seed": seed, "batch_size": batch_size, "attacks": {k: repr(a) for k, a in attacks.items()},
                "arithmetic": {"precision": precision or "fp32", "channels_last": bool(channels_last),
                               "compile": bool(compile)}}
    if (folder / "settings.json").is_file():
        stored = read_json(folder / "settings.json")
        changed = [k for k in ("split", "n", "eps", "seed") if stored.get(k) != settings[k]]
        if changed:
            raise RunError(f"{folder} holds attacks made with another {', '.join(changed)}; "
                           "delete that folder to attack with these settings")
        settings["attacks"] = {**stored.get("attacks", {}), **settings["attacks"]}
    check_evaluation_inputs(ds.x, ds.y, attacks, batch_size, info.num_classes)
    return AttackPlan(run, cfg.dataset, model, ds, attacks, folder, settings, device, progress, crosscheck)


@dataclass
class AttackPlan:
    """Everything :func:`run_attack_plan` needs, checked and loaded by :func:`plan_attack`."""

    run: Run
    dataset: str
    model: nn.Module
    ds: ArrayDataset
    attacks: dict[str, Attack]
    folder: Path
    settings: dict[str, Any]  # split, n, eps, alpha, steps, random_start, seed, batch_size, attacks
    device: torch.device
    progress: bool
    crosscheck: int


def run_attack_plan(plan: AttackPlan) -> dict[str, Any]:
    """Attack as :func:`plan_attack` planned; returns the results dict (also written to ``results.json``)
    with ``"folder"`` added."""
    model, ds, folder, settings, device = plan.model, plan.ds, plan.folder, plan.settings, plan.device
    split, eps, alpha, seed = (settings[k] for k in ("split", "eps", "alpha", "seed"))
    folder.mkdir(parents=True, exist_ok=True)
    res = evaluate_attacks(
        model,
        ds.x,
        ds.y,
        plan.attacks,
        batch_size=settings["batch_size"],
        device=device,
        num_classes=dataset_info(plan.dataset).num_classes,
        work_dir=folder,
        progress=plan.progress,
        seed=seed,
        **settings["arithmetic"],
    )
    res.pop("adversarial")
    res.update(dataset=plan.dataset, split=split, eps=eps, alpha=alpha, classes=list(ds.classes), folder=str(folder))
    if distributed.is_main():  # in a torchrun job rank 0 writes; the others wait for it
        _write_attack_results(plan, res)
    distributed.barrier()
    return res


def _write_attack_results(plan: AttackPlan, res: dict[str, Any]) -> None:
    """The attack folder's settings, results (with the captum cross-check when asked) and transition figures."""
    run, model, ds, folder, settings, device = plan.run, plan.model, plan.ds, plan.folder, plan.settings, plan.device
    eps, alpha, steps = (settings[k] for k in ("eps", "alpha", "steps"))
    write_json(folder / "settings.json", settings)  # only now: a refused or failed attack leaves the old one
    if plan.crosscheck:
        m = min(plan.crosscheck, len(ds))
        x = ds.x[:m].float().div(255).to(device)
        from interpretgan.baselines import crosscheck_with_captum  # the one module that imports captum

        res["captum_crosscheck"] = crosscheck_with_captum(
            model, x, ds.y[:m].to(device), eps=eps, alpha=alpha, steps=steps
        )
    write_json(folder / "results.json", res)
    from interpretgan.report.figures import plot_transition_matrix

    for name, r in res["attacks"].items():
        plot_transition_matrix(
            r["transition"],
            list(ds.classes),
            folder / f"transition-{name}.png",
            title=f"{run.path.name}\n{name}, eps {eps:.4g} (row: true label, column: adversarial prediction)",
        )


def format_results(res: dict[str, Any]) -> str:
    """Human-readable summary of :func:`attack_run`'s results."""
    classes = res["classes"]
    lines = [f"clean accuracy {res['clean_accuracy']:.2%} on {res['n']} {res['split']} images (eps {res['eps']:.4g})"]
    for name, r in res["attacks"].items():
        lines.append(f"  {name:8s} robust accuracy {r['accuracy']:.2%}   attack success rate {r['success_rate']:.2%}")
    if len(res["attacks"]) > 1:
        lines.append(f"  worst case over {', '.join(res['attacks'])}: {res['worst_case']['accuracy']:.2%}")
    first = next(iter(res["attacks"].values()))
    wrong = first["most_frequent_wrong"]
    if wrong:
        parts = [
            f"{classes[int(c)]}->{classes[w['label']]} {w['fraction_of_wrong']:.0%}"
            for c, w in sorted(wrong.items(), key=lambda kv: int(kv[0]))
        ]
        lines.append(
            f"  most frequent wrong label ({next(iter(res['attacks']))}, share of the class's errors): "
            + ", ".join(parts)
        )
    if "captum_crosscheck" in res:
        c = res["captum_crosscheck"]
        lines.append(f"  captum.robust.PGD cross-check: {c}")
    lines.append(f"  written to {Path(res['folder'])}")
    return "\n".join(lines)
