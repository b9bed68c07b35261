"""The report's sections shared by its builders (:mod:`interpretgan.report.build`): Table 1, explainer
quality, grids, AutoAttack's claims, index change, transitions, baselines and the checks; each writes
into a :class:`~interpretgan.report.document.Report` and returns or fills the matching
``results.json`` entries. They only read the chains' outputs."""

from __future__ import annotations

from typing import Any

from interpretgan.report.claims import autoattack_section, mnist_claims
from interpretgan.report.document import Report
from interpretgan.report.markdown import ablation_findings, transitions_rows, vulnerability_rows
from interpretgan.report.tables import pct


def comparison(
    table: str, name: str, ours: float, paper: float | None, ci: list[float] | None = None
) -> dict[str, Any]:
    """One number beside the paper's: difference and verdict (within our interval, or by how much it differs)."""
    entry: dict[str, Any] = {"table": table, "name": name, "ours": ours, "paper": paper, "ci": ci}
    if paper is None:
        entry.update(difference=None, verdict="no paper value")
        return entry
    diff = ours - paper
    entry["difference"] = diff
    if ci is not None and ci[0] <= paper <= ci[1]:
        entry["verdict"] = "agrees (the paper's value is inside our 95 % interval)"
    elif ci is not None:
        entry["verdict"] = f"differs by {diff * 100:+.1f} pp (outside our 95 % interval)"
    else:
        entry["verdict"] = f"{diff * 100:+.1f} pp from the paper (no interval to judge it by)"
    return entry


def table1_results(d: dict[str, Any]) -> dict[str, Any]:
    t = d["table"]
    layers = t["layers"]
    out = {"names": layers, "n": d["n"], "attack": d["attack"], "ours": {}, "paper": {}, "difference": {}, "ci": {}}
    for key in ("accuracy", "vulnerability"):
        out["ours"][key] = [t[key][n] for n in layers]
        out["ci"][key] = [t.get(f"{key}_ci", {}).get(n) for n in layers]
        out["paper"][key] = [t.get("paper", {}).get(key, {}).get(n) for n in layers]
        out["difference"][key] = [None if p is None or o is None else o - p
                                  for o, p in zip(out["ours"][key], out["paper"][key])]
    out["vulnerable"] = t["vulnerable"]
    out["adversarial_label"] = [t.get("adversarial_label", {}).get(n) for n in layers]
    return out


def table1_comparisons(kind: str, res: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for key, label in (("accuracy", "Acc"), ("vulnerability", "Vul")):
        for i, n in enumerate(res["names"]):
            if res["paper"][key][i] is not None and res["ours"][key][i] is not None:
                out.append(comparison(f"Table 1 ({kind})", f"{label} {n}", res["ours"][key][i], res["paper"][key][i],
                                      res["ci"][key][i]))
    return out


def index_results(index: dict[str, Any]) -> dict[str, Any]:
    names = list(index)
    return {
        "names": names,
        "ours": [index[n]["fraction"] for n in names],
        "windows": [index[n]["windows"] for n in names],
        "ours_active": [index[n].get("fraction_active") for n in names],
        "active_windows": [index[n].get("active_windows") for n in names],
        "paper": [index[n].get("paper") for n in names],
        "difference": [index[n].get("difference") for n in names],
    }


def stage_times(report: Report, seconds: dict[str, float]) -> None:
    rows = [[name, f"{s:.0f}", f"{s / 60:.1f}"] for name, s in seconds.items()]
    rows.append(["**total**", f"**{sum(seconds.values()):.0f}**", f"**{sum(seconds.values()) / 60:.1f}**"])
    report.table(["stage", "seconds", "minutes"], rows,
                 caption="Wall time of each stage (as first run; stages finished before a resume keep their time)")


def setup_section(report: Report, o: dict[str, Any], what: str) -> None:
    env, spec = o["environment"], o["spec"]
    n_eval = spec["n_eval"]
    how = "with the pretrained zoo" if o["preset"] == "pretrained" else f"`{o['preset']}` preset"
    report.text(f"{what}, {how}, on `{o['dataset']}`; torch {env['torch']} on {env['device']} "
                f"({env['threads']} thread{'' if env['threads'] == 1 else 's'}), {env['date']}.")
    images = 'all test images' if n_eval is None else f'a seeded subset of {n_eval} test images'
    aa_n = o["autoattack"]["n"] if o.get("autoattack") else 0
    if aa_n != 0:
        images += f" (AutoAttack: {'all of them' if aa_n is None else f'the first {aa_n}'})"
    if o.get("diagnosis"):
        report.text(f"Attacks and the diagnosis use {images}; every accuracy is given with its 95 % interval "
                    "(bootstrap over D* for Table 1, Wilson otherwise).")
    else:
        report.text(f"Attacks use {images}; every accuracy is given with its 95 % Wilson interval.")
    stage_times(report, o["seconds"])


def quality_table(report: Report, title: str, q: dict[str, Any]) -> dict[str, Any]:
    layers = list(q["layers"])
    rows = [[n, pct(q["layers"][n]["consistency"]), f"{q['layers'][n]['frechet']:.2f}",
             pct(q["layers"][n].get("random_consistency")), f"{q['layers'][n].get('random_frechet', float('nan')):.2f}"]
            for n in layers]
    floor = q.get("frechet_floor")
    report.table(
        ["layer", "consistency f(x̂) = f(x)", "Fréchet", "random G: consistency", "random G: Fréchet"],
        rows,
        caption=f"{title}: explainer quality on {q.get('n_test')} natural test images (Fréchet distance in f's "
        f"{q.get('feature_layer')} features; real-vs-real floor {floor if floor is None else f'{floor:.2f}'})",
    )
    return {"names": layers, "consistency": [q["layers"][n]["consistency"] for n in layers],
            "frechet": [q["layers"][n]["frechet"] for n in layers], "frechet_floor": floor,
            "random_frechet": [q["layers"][n].get("random_frechet") for n in layers]}


def diagnosis_section(report: Report, title: str, d: dict[str, Any]) -> None:
    headers, rows = vulnerability_rows(d["table"])
    report.table(headers, rows, caption=f"{title}: Acc_i and Vul_i (Eq. 5) on {d['attack']}, n = {d['n']}; "
                                        f"f's accuracy on D* {pct(d['input_accuracy'])}; the intervals resample D* "
                                        "only (one explainer training: its own variance is not in them)")
    # The paper names vulnerable layers for its MNIST SmallCNN only (Section 5.1): d["paper_row"] says it is that model.
    named = ", and for MNIST names Conv1, Conv2, Conv4 and FC1" if d.get("paper_row") else ""
    report.text(f"Vulnerable layers (bold; our rule: Vul_i above an even share of the total drop, the paper states "
                f"none{named}): {', '.join(d['table']['vulnerable']) or 'none'}.")
    ticks = "; black ticks: the paper" if "paper" in d["table"] else ""
    report.figure(d["files"]["figure"], f"{title}: Acc_i and Vul_i per layer (red: vulnerable{ticks})")


KINDS = (("natural", "Naturally trained"), ("adversarial", "Adversarially trained"))


def explanations_section(r: Report, o: dict[str, Any], results: dict[str, Any], attack: str) -> None:
    """The explanation grids (Fig. 3) and the explainers' quality tables of both explained models."""
    r.heading("Explanations of natural and adversarial inputs (Fig. 3)")
    for kind, title in KINDS:
        r.figure(
            o["figures"][kind]["grid"],
            f"{title}: natural (nat.) and {attack} (adv.) inputs, explanation per layer with f's label and probability",
        )
    r.text("The last row of each Table 1 above gives, per layer, the fraction of fooled examples whose explanation "
           "f classifies as the adversarial label: the drift toward the adversarial class, layer by layer.")
    r.heading("Explainer quality")
    results["explainer_quality"] = {k: quality_table(r, t, o["explainers"][k]["quality"]) for k, t in KINDS}


def autoattack_tables(r: Report, o: dict[str, Any], results: dict[str, Any], adversarial_title: str) -> None:
    """The paper's claims under AutoAttack and Table 1 of both models under it; nothing when the chain ran
    no AutoAttack (the demo)."""
    claims = mnist_claims(o)
    if claims is None:
        return
    autoattack_section(r, claims)
    results["autoattack"] = claims
    for kind, title in (("natural", "Naturally trained"), ("adversarial", adversarial_title)):
        d = o["autoattack"]["diagnosis"][kind]
        diagnosis_section(r, f"{title}, under AutoAttack", d)
        results["tables"][f"table1_{kind}_autoattack"] = table1_results(d)


def index_change_section(r: Report, diag: dict[str, Any], results: dict[str, Any], attack: str) -> None:
    """The max-pool index change of both models (with the paper's values where it has them)."""
    r.heading("Max-pool index change (x vs x*)")
    rows = []
    for kind in ("natural", "adversarial"):
        idx = diag[kind]["index_change"]
        results["tables"][f"index_change_{kind}"] = index_results(idx)
        for name, e in idx.items():
            rows.append(
                [
                    kind,
                    name,
                    pct(e["fraction"]),
                    e["windows"],
                    pct(e.get("fraction_active")),
                    e.get("active_windows", "–"),
                    pct(e.get("paper")),
                    pct(e.get("difference"), signed=True),
                ]
            )
            if e.get("paper") is not None:
                results["comparisons"].append(comparison("index change (natural)", name, e["fraction"], e["paper"]))
    if not rows:
        r.text("No max-pooling layer among the explained ones: no index change to report.")
        return
    r.table(
        [
            "model",
            "pooling layer",
            "windows whose argmax moved",
            "windows",
            "of windows with a feature",
            "such windows",
            "paper",
            "difference",
        ],
        rows,
        caption=f"{attack} examples against their natural images (the paper reports the natural model); "
        "'with a feature': windows whose natural maximum is positive (all-zero windows tie, and any leak moves "
        "their argmax)",
    )


def transitions_section(r: Report, dataset: str, attacked: dict[str, Any], attack: str) -> None:
    """The naturally trained model's label transitions under D*'s attack (Fig. 7)."""
    r.heading("Label transitions")
    headers, rows = transitions_rows({"most_frequent_wrong": attacked["most_frequent_wrong"]}, dataset)
    r.table(
        headers, rows, caption=f"Naturally trained model under {attack}: the most frequent adversarial label per class"
    )
    r.figure(attacked["figure"], f"Naturally trained model: label transitions under {attack} (Fig. 7)")


def baselines_section(r: Report, o: dict[str, Any], results: dict[str, Any]) -> None:
    """The Captum baselines figures of both models, and the files the report's figures came from."""
    r.heading("Baselines (Captum) beside the explanations")
    for kind, title in KINDS:
        r.figure(o["figures"][kind]["baselines"], f"{title}: InterpretGAN per layer, then DeepLIFT, saliency, input x "
                                                  "gradient, integrated gradients and occlusion of f's label")
    results["files"] = {"figures": o["figures"], "diagnosis": {k: d["files"] for k, d in o["diagnosis"].items()}}


#: The MNIST report's checks, each a threshold that chance-level models (10 % on MNIST) and collapsed
#: explainers cannot meet; they are the floor of a working run, far below the paper's figures.
MNIST_CHECKS: dict[str, float] = {
    "natural model, clean accuracy": 0.97,
    "trades+atta (max), PGD-40 accuracy": 0.60,
    "explainer consistency at every layer, natural model": 0.70,
    "explainer consistency at every layer, adversarially trained model": 0.60,
    # A constant classifier makes any explainer "consistent": the margin over a random explainer is not.
    "explainer consistency minus a random explainer's, at every layer of both models": 0.30,
    "Acc_i of the adversarially trained model minus the natural one's, at every layer": 0.30,
}


#: The same checks of a chain of the user's classifier on MNIST (one trades+atta model, no max / avg pair).
OWN_MNIST_CHECKS: dict[str, float] = {name.replace(" (max)", ""): th for name, th in MNIST_CHECKS.items()}


def checks_table(r: Report, thresholds: dict[str, float], o: dict[str, Any], clean: float, pgd40: float,
                 tables: dict[str, Any]) -> dict[str, Any]:
    """Each of ``thresholds`` (:data:`MNIST_CHECKS`' six, in order) with its value and verdict, as a table in the
    report: from the natural model's clean and the trades+atta model's PGD-40 accuracy, both models'
    explainer quality per layer (the chain's outputs ``o``) and their Table 1 results (``tables``)."""
    quality = {k: o["explainers"][k]["quality"]["layers"] for k in ("natural", "adversarial")}
    margin = min(e["consistency"] - e["random_consistency"] for layers in quality.values() for e in layers.values())
    values = [clean, pgd40, min(e["consistency"] for e in quality["natural"].values()),
              min(e["consistency"] for e in quality["adversarial"].values()),
              margin, min(a - n for a, n in zip(tables["table1_adversarial"]["ours"]["accuracy"],
                                                tables["table1_natural"]["ours"]["accuracy"]))]
    out = {name: {"threshold": th, "value": v, "pass": v >= th} for (name, th), v in zip(thresholds.items(), values)}
    r.heading("Checks")
    r.text("Thresholds a working run meets and chance-level numbers cannot (the lowest value over layers where a check "
           "says 'every layer').")
    r.table(
        ["check", "threshold", "value", "verdict"],
        [
            [name, f">= {pct(c['threshold'])}", pct(c["value"]), "pass" if c["pass"] else "**FAIL**"]
            for name, c in out.items()
        ],
    )
    return out


def ablation_summary(study: dict[str, Any]) -> dict[str, Any]:
    """Per arm, Acc_i per layer and minus the ``interpretgan`` arm's (mean, min and max over the layers, in
    fractions), its mean consistency and Frechet distance, and the layers it marks vulnerable."""
    layers, arms = study["layers"], study["arms"]
    base = arms.get("interpretgan")
    out: dict[str, Any] = {}
    for arm, a in arms.items():
        acc = [a["layers"][n]["accuracy"] for n in layers]
        cons = [a["layers"][n]["consistency"] for n in layers]
        entry = {"accuracy": dict(zip(layers, acc)), "mean_consistency": sum(cons) / len(cons),
                 "mean_frechet": sum(a["layers"][n]["frechet"] for n in layers) / len(layers),
                 "vulnerable": a["vulnerable"]}
        if base is not None and arm != "interpretgan":
            d = [x - base["layers"][n]["accuracy"] for x, n in zip(acc, layers)]
            entry["accuracy_minus_interpretgan"] = {"mean": sum(d) / len(d), "min": min(d), "max": max(d)}
        out[arm] = entry
    return out


def ablation_section(r: Report, o: dict[str, Any], results: dict[str, Any]) -> None:
    """The explainer ablation of both explained models (``reproduce mnist --ablation``): Acc_i and consistency
    per arm and layer, the adversarial grid, and what leaving out the GAN prior or the interpretability term
    changes, in sentences computed from the numbers. Nothing when the chain ran no ablation."""
    studies = o.get("ablation")
    if not studies:
        return
    r.heading("What the explainer contributes: the ablation")
    r.text("Each layer explained five ways with C_i's design and the schedule shared: `interpretgan` (the paper), "
           "`gan-only` (lambda = 0), `mse` (pixel MSE, no critic), `mse+ce` (pixel MSE + the interpretability term) "
           "and `optim` (per-image inversion under a total-variation prior, no training); all on the same D* as "
           "Table 1. Full tables (Frechet distance, pixel error, SSIM, Vul_i, intervals, times) in each study's "
           "`ablation.md`.")
    summaries = {}
    for kind, title in KINDS:
        study = studies[kind]
        layers = study["layers"]
        rows = [[arm, *[f"{pct(a['layers'][n]['accuracy'])} / {pct(a['layers'][n]['consistency'])}" for n in layers]]
                for arm, a in study["arms"].items()]
        r.table(["arm", *layers], rows, caption=f"{title}: Acc_i on D* / consistency on natural test images")
        if study.get("files", {}).get("adversarial"):
            r.figure(study["files"]["adversarial"], f"{title}: adversarial inputs (top row), each arm's explanation "
                                                    "per layer")
        summaries[kind] = ablation_summary(study)
        r.text(f"{title}: " + " ".join(ablation_findings(study)))
    results["ablation"] = summaries
