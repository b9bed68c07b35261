"""The max- vs average-pooling comparison (Section 5.2, Tables 2 and 3): the paper's attacks and
values, binomial and Newcombe intervals, and the table that sets avg beside max
(:mod:`interpretgan.pipeline.study` trains and attacks the arms)."""

from __future__ import annotations

import logging
import math
from typing import Any

import torch

from interpretgan.attacks.specs import parse_attack_spec

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
        out["avg_minus_max"][a] = {
            "mean": float(d.mean()),
            "sd": spread(d),
            # Newcombe's interval of the difference of the seed-mean accuracies
            "ci": difference_interval(float(values("avg", a).mean()), m, float(values("max", a).mean()), m),
            "paper": paper["avg"][a] - paper["max"][a] if paper and a in paper["avg"] else None,
        }
    out["avg_at_least_max"] = {a: out["avg_minus_max"][a]["mean"] >= 0 for a in names}
    return out


