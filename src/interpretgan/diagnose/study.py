"""The max- vs average-pooling study (Section 5.2, Tables 2 and 3).

``interpretgan study pooling --dataset mnist --model smallcnn --preset cpu`` trains the max-pool
and the avg-pool variant with ``trades+atta`` under the same seed and schedule (for each seed),
attacks both on the same test subset with the paper's four attacks and, in a stage of its own,
with AutoAttack's ensemble (APGD-CE, APGD-T, Square; FAB-T not included; :data:`STUDY_AUTOATTACK`),
and writes the table with the paper's values beside (none for AutoAttack: the paper did not run
it) and ``avg - max`` per attack (mean and sd over seeds; a binomial 95 % interval for each single
accuracy). The study folder holds the train runs and ``stages.json``, so re-running the same
command resumes it; a folder made before the AutoAttack stage existed resumes and runs just that stage.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from interpretgan.attacks.runner import attack_run, parse_attack_spec
from interpretgan.config import resolve_train_config
from interpretgan.errors import ConfigError
from interpretgan.report.tables import markdown_table, pct, pct_interval
from interpretgan.runs import Run, Stages
from interpretgan.io import write_json, write_text
from interpretgan.training import fit_in

log = logging.getLogger(__name__)

#: The paper's attacks of Table 2 (MNIST, eps 0.3) and Table 3 (CIFAR-10, eps 8/255).
POOLING_ATTACKS: dict[str, tuple[str, ...]] = {
    "mnist": ("pgd-40", "pgd-100", "mpgd-40", "fgsm"),
    "cifar10": ("pgd-20", "pgd-100", "mpgd-20", "fgsm"),
}

#: The paper's Tables 2 and 3: robust accuracy per (dataset, model), pooling and attack name.
PAPER_POOLING: dict[tuple[str, str], dict[str, dict[str, float]]] = {
    ("mnist", "smallcnn"): {
        "max": dict(pgd40=0.8933, pgd100=0.8198, mpgd40=0.8976, fgsm=0.9562),
        "avg": dict(pgd40=0.9156, pgd100=0.8748, mpgd40=0.9209, fgsm=0.9572),
    },
    ("cifar10", "vgg16"): {
        "max": dict(pgd20=0.4697, pgd100=0.4569, mpgd20=0.4706, fgsm=0.5046),
        "avg": dict(pgd20=0.4825, pgd100=0.4709, mpgd20=0.4891, fgsm=0.5164),
    },
    ("cifar10", "wrn34_10"): {
        "max": dict(pgd20=0.5308, pgd100=0.5165, mpgd20=0.5394, fgsm=0.5763),
        "avg": dict(pgd20=0.5468, pgd100=0.5259, mpgd20=0.5547, fgsm=0.5992),
    },
}

#: Test images attacked per preset (None: the whole test set).
STUDY_EVAL: dict[str, int | None] = {"smoke": 64, "cpu": 1000, "paper": None}

#: AutoAttack's column per preset: (attack spec, test images; None: the whole test set). The
#: ensemble costs ~15x Table 2's four attacks per robust image, so ``cpu`` runs it on a prefix of
#: the same seeded subset; ``smoke`` runs a reduced ensemble that only shows the stage working.
STUDY_AUTOATTACK: dict[str, tuple[str, int | None]] = {
    "smoke": ("autoattack-apgd5-square50", 64), "cpu": ("autoattack", 300), "paper": ("autoattack", None),
}

#: Model size for the reduced presets where the training preset's ``model_kwargs`` are VGG's.
_REDUCED_MODEL_KWARGS: dict[str, dict[str, Any]] = {"wrn34_10": {"depth": 10, "widen": 1}}


def binomial_interval(p: float, n: int, z: float = 1.96) -> list[float]:
    """Wilson score interval of a proportion ``p`` measured on ``n`` examples (95 % by default)."""
    if n == 0:
        return [0.0, 1.0]
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [max(0.0, centre - half), min(1.0, centre + half)]


def difference_interval(p1: float, n1: int, p2: float, n2: int, z: float = 1.96) -> list[float]:
    """Newcombe's (1998, method 10) 95 % interval of ``p1 - p2`` from the two proportions' Wilson intervals.

    It treats the two samples as independent; for two models attacked on the same images (positively
    correlated outcomes) it is wider than a paired interval, so a claim it decides is decided safely.
    """
    l1, u1 = binomial_interval(p1, n1, z)
    l2, u2 = binomial_interval(p2, n2, z)
    d = p1 - p2
    lo = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    hi = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return [max(-1.0, lo), min(1.0, hi)]


def study_train_config(dataset: str, model: str, pool: str, preset: str, seed: int,
                       overrides: dict[str, Any] | None = None):
    """The ``trades+atta`` training config of one arm of the study (same schedule for both pools)."""
    values: dict[str, Any] = {"model": model, "pool": pool, "seed": seed}
    if preset != "paper" and model in _REDUCED_MODEL_KWARGS:
        values["model_kwargs"] = _REDUCED_MODEL_KWARGS[model]
    return resolve_train_config(dataset, "trades+atta", preset, {**values, **(overrides or {})})


def evaluate_arm(run: Run, attacks: Sequence[str], *, n_eval: int | None, device: Any, data_root: Any, verify: bool,
                 progress: bool, seed: int = 0) -> dict[str, Any]:
    """``attacks`` (specs, e.g. :data:`POOLING_ATTACKS` of the dataset) on one trained arm:
    ``{"clean", "n", "attacks": {name: accuracy}, "n_attacks": {name: n}, "folder"}``."""
    res = attack_run(run, list(attacks), n=n_eval, device=device, data_root=data_root, verify=verify,
                     progress=progress, seed=seed)
    return {"clean": res["clean_accuracy"], "n": res["n"], "folder": res["folder"],
            "attacks": {k: v["accuracy"] for k, v in res["attacks"].items()},
            "n_attacks": {k: res["n"] for k in res["attacks"]}}


def merge_arm(arm: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``arm`` (an :func:`evaluate_arm` dict) with the attacks of ``extra`` (another stage's, e.g. AutoAttack's
    on a subset) added, each keeping its own number of images; ``arm``'s clean accuracy and ``n`` stay."""
    n_attacks = {**{a: arm["n"] for a in arm["attacks"]}, **arm.get("n_attacks", {})}
    n_attacks.update({a: extra.get("n_attacks", {}).get(a, extra["n"]) for a in extra["attacks"]})
    return {**arm, "attacks": {**arm["attacks"], **extra["attacks"]}, "n_attacks": n_attacks,
            "folders": {**arm.get("folders", {}), **{a: extra["folder"] for a in extra["attacks"]}}}


def pooling_table(arms: dict[str, dict[int, dict[str, Any]]], dataset: str, model: str) -> dict[str, Any]:
    """Combine the arms (``{pool: {seed: evaluate_arm dict}}``) into Table 2/3 with the paper's values.

    The columns are :data:`POOLING_ATTACKS` that every arm was attacked with, then any other attack
    (AutoAttack's, merged in by :func:`merge_arm`) that every arm has. Each accuracy's interval counts
    the images its own attack ran on (``n_attacks``; AutoAttack may run on a subset), as does
    ``out["n_attacks"]``.
    """
    paper_names = [parse_attack_spec(a, eps=0.0, alpha=0.0, steps=1)[0] for a in POOLING_ATTACKS[dataset]]
    every = [arm["attacks"] for pool in arms.values() for arm in pool.values()]
    extra = [a for a in every[0] if a not in paper_names]
    names = [a for a in [*paper_names, *extra] if all(a in attacks for attacks in every)]
    paper = PAPER_POOLING.get((dataset, model))
    seeds = sorted(set(arms["max"]) & set(arms["avg"]))
    first = arms["max"][seeds[0]]
    n_of = {a: first.get("n_attacks", {}).get(a, first["n"]) for a in names}
    out: dict[str, Any] = {"attacks": names, "seeds": seeds, "n": first["n"], "n_attacks": n_of, "rows": {},
                           "avg_minus_max": {}}
    def values(pool: str, a: str) -> torch.Tensor:
        return torch.tensor([arms[pool][s]["clean"] if a == "clean" else arms[pool][s]["attacks"][a] for s in seeds],
                            dtype=torch.float64)

    def spread(v: torch.Tensor) -> float | None:
        return float(v.std()) if len(seeds) > 1 else None

    for pool in ("max", "avg"):
        row = {}
        for a in ["clean", *names]:
            v = values(pool, a)
            mean = float(v.mean())
            # The seeds attack the same test images: the interval counts them once, not once a seed.
            row[a] = {"mean": mean, "sd": spread(v), "ci": binomial_interval(mean, n_of.get(a, out["n"])),
                      "paper": paper[pool].get(a) if paper else None}
            if row[a]["paper"] is not None:
                row[a]["difference"] = mean - row[a]["paper"]
        out["rows"][pool] = row
    for a in ["clean", *names]:
        d = values("avg", a) - values("max", a)
        m = n_of.get(a, out["n"])
        out["avg_minus_max"][a] = {"mean": float(d.mean()), "sd": spread(d),
                                   # Newcombe's interval of the difference of the seed-mean accuracies
                                   "ci": difference_interval(float(values("avg", a).mean()), m, float(values("max", a).mean()), m),
                                   "paper": paper["avg"][a] - paper["max"][a] if paper and a in paper["avg"] else None}
    out["avg_at_least_max"] = {a: out["avg_minus_max"][a]["mean"] >= 0 for a in names}
    return out


def pooling_rows(table: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Table 2/3 as (headers, rows): ours (with interval or sd), the paper's and the difference, per pooling and attack."""
    names = table["attacks"]
    rows = []
    for pool in ("max", "avg"):
        r = table["rows"][pool]
        cells = []
        for a in names:
            text = pct(r[a]["mean"], 2) + (f" ± {r[a]['sd'] * 100:.2f}" if r[a]["sd"] is not None else f" {pct_interval(r[a]['ci'])}")
            cells.append(text)
        rows.append([f"{pool} pooling", pct(r["clean"]["mean"], 2), *cells])
        if any(r[a]["paper"] is not None for a in names):
            rows.append([f"{pool} (paper)", "–", *[pct(r[a]["paper"], 2) for a in names]])
            rows.append([f"{pool} − paper", "–", *[pct(r[a].get("difference"), 2, signed=True) for a in names]])
    d = table["avg_minus_max"]
    rows.append(["avg − max", pct(d["clean"]["mean"], 2, signed=True),
                 *[pct(d[a]["mean"], 2, signed=True) + (f" ± {d[a]['sd'] * 100:.2f}" if d[a]["sd"] is not None else "") for a in names]])
    if any(d[a]["paper"] is not None for a in names):
        rows.append(["avg − max (paper)", "–", *[pct(d[a]["paper"], 2, signed=True) for a in names]])
    return ["", "clean", *names], rows


def pooling_markdown(table: dict[str, Any], title: str) -> str:
    """:func:`pooling_rows` as a markdown table under ``title``."""
    return f"## {title}\n\n" + markdown_table(*pooling_rows(table))


def pooling_study(dataset: str, model: str, preset: str, *, seeds: Sequence[int] = (0,), out: str | Path,
                  n_eval: int | None = -1, device: Any = "cpu", data_root: Any = None, verify: bool = True,
                  progress: bool = True, overrides: dict[str, Any] | None = None, autoattack_n: int | None = -1,
                  autoattack: str | None = None) -> dict[str, Any]:
    """Run (or resume) the pooling study in the folder ``out``; returns and writes ``pooling.json`` / ``pooling.md``.

    ``n_eval``: test images attacked per arm (-1: the preset's :data:`STUDY_EVAL`; None: all).
    ``autoattack_n``: test images of AutoAttack's column, the first of the same seeded subset (-1: the
    preset's :data:`STUDY_AUTOATTACK`; 0: no column; None: all); ``autoattack``: its spec (None: the preset's).
    """
    key = "mnist" if dataset == "mnist-sample" else dataset
    if key not in POOLING_ATTACKS:
        raise ConfigError(f"the pooling study covers {', '.join(POOLING_ATTACKS)}; got dataset '{dataset}'")
    if not seeds:
        raise ConfigError("--seeds is empty; expected at least one seed")
    if preset not in STUDY_EVAL:
        raise ConfigError(f"unknown preset '{preset}' for the pooling study; expected one of {', '.join(STUDY_EVAL)}")
    n_eval = STUDY_EVAL[preset] if n_eval == -1 else n_eval
    aa_spec = STUDY_AUTOATTACK[preset][0] if autoattack is None else autoattack
    aa_n = STUDY_AUTOATTACK[preset][1] if autoattack_n == -1 else autoattack_n
    if aa_n is not None and (isinstance(aa_n, bool) or not isinstance(aa_n, int) or aa_n < 0):
        raise ConfigError(f"the AutoAttack subset must be an integer >= 0 (0: no AutoAttack), got {aa_n!r}")
    if aa_n != 0:
        parse_attack_spec(aa_spec, eps=0.0, alpha=0.0, steps=1)  # a bad spec ends here, before any training
    if n_eval is not None and (aa_n is None or aa_n > n_eval):
        aa_n = n_eval  # the first aa_n of the same seeded subset: never images the other attacks did not see
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    stages = Stages(folder)
    arms: dict[str, dict[int, dict[str, Any]]] = {"max": {}, "avg": {}}
    for seed in seeds:
        for pool in ("max", "avg"):
            cfg = study_train_config(dataset, model, pool, preset, seed, overrides)
            desc = f"{dataset}-{model}-{pool}-trades+atta-{preset}-seed{seed}"
            path = stages.run(f"train-{pool}-seed{seed}", lambda c=cfg, d=desc: str(fit_in(
                folder, d, c, device=device, data_root=data_root, verify=verify, progress=progress).path),
                settings=cfg.to_dict())
            io = dict(device=device, data_root=data_root, verify=verify, progress=progress)
            arm = stages.run(f"attack-{pool}-seed{seed}", evaluate_arm, Run.open(path, kind="train"), POOLING_ATTACKS[key],
                             n_eval=n_eval, **io, settings={"attacks": list(POOLING_ATTACKS[key]), "n_eval": n_eval})
            if aa_n != 0:  # a stage of its own: a folder made before it resumes and runs just this
                arm = merge_arm(arm, stages.run(f"autoattack-{pool}-seed{seed}", evaluate_arm, Run.open(path, kind="train"),
                                                [aa_spec], n_eval=aa_n, **io, settings={"attack": aa_spec, "n": aa_n}))
            arms[pool][seed] = {**arm, "run": path}
    table = pooling_table(arms, key, model)
    result = {"dataset": dataset, "model": model, "preset": preset, "seeds": list(seeds), "table": table,
              "arms": {p: {str(s): v for s, v in a.items()} for p, a in arms.items()}, "seconds": stages.seconds(),
              "folder": str(folder)}
    reduced = _REDUCED_MODEL_KWARGS.get(model) if preset != "paper" else None
    shape = f", reduced to {', '.join(f'{k} {v}' for k, v in reduced.items())}; the paper's row is the full model" if reduced else ""
    aa = [f"{a} on n={m}" for a, m in table["n_attacks"].items() if m != table["n"]]
    title = (f"{'Table 2' if key == 'mnist' else 'Table 3'}: {model}{shape}, max vs avg pooling "
             f"({preset} preset, n={table['n']} per seed{'; ' + ', '.join(aa) if aa else ''})")
    write_json(folder / "pooling.json", result)
    write_text(folder / "pooling.md", pooling_markdown(table, title))
    return result
