"""The reproduction report: ``report.md``, ``report.html`` and ``results.json`` from a chain's outputs.

Every number that the paper also reports sits beside the paper's value with the difference; a
"comparison with the paper" section lists them all with a verdict: *agrees* when the paper's
value lies inside our 95 % interval (bootstrap for Table 1, Wilson for accuracies), else *differs*
and by how much. Nothing here tunes anything: it only reads the stages' outputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from interpretgan.diagnose.pooling import binomial_interval
from interpretgan.io import write_json
from interpretgan.report.claims import pooling_claim, pooling_text
from interpretgan.report.document import Report
from interpretgan.report.markdown import pooling_rows
from interpretgan.report.sections import (
    KINDS,
    MNIST_CHECKS,
    OWN_MNIST_CHECKS,
    ablation_section,
    autoattack_tables,
    baselines_section,
    checks_table,
    comparison,
    diagnosis_section,
    explanations_section,
    index_change_section,
    quality_table,
    setup_section,
    table1_comparisons,
    table1_results,
    transitions_section,
)
from interpretgan.report.tables import attack_label, pct, pct_interval


def _pooling_results(table: dict[str, Any]) -> dict[str, Any]:
    names = table["attacks"]
    rows = table["rows"]
    return {"names": names, "n": table["n"], "seeds": table["seeds"],
            "ours": {p: [rows[p][a]["mean"] for a in names] for p in rows},
            "sd": {p: [rows[p][a]["sd"] for a in names] for p in rows},
            "ci": {p: [rows[p][a]["ci"] for a in names] for p in rows},
            "paper": {p: [rows[p][a]["paper"] for a in names] for p in rows},
            "difference": {p: [rows[p][a].get("difference") for a in names] for p in rows},
            "n_attacks": [table.get("n_attacks", {}).get(a, table["n"]) for a in names],
            "avg_minus_max": [table["avg_minus_max"][a]["mean"] for a in names],
            "avg_minus_max_ci": [table["avg_minus_max"][a].get("ci") for a in names],
            "avg_minus_max_paper": [table["avg_minus_max"][a]["paper"] for a in names],
            "avg_at_least_max": table["avg_at_least_max"]}


def _pooling_comparisons(label: str, res: dict[str, Any]) -> list[dict[str, Any]]:
    return [comparison(label, f"{p} pooling {a}", res["ours"][p][i], res["paper"][p][i], res["ci"][p][i])
            for p in ("max", "avg") for i, a in enumerate(res["names"]) if res["paper"][p][i] is not None]


def build_report(target: str, folder: Path, o: dict[str, Any]) -> dict[str, Any]:
    """Write ``report.md``, ``report.html`` and ``results.json`` into ``folder``; return their paths."""
    builders = {"mnist": _mnist, "cifar10": _cifar, "celeba": _celeba}
    report, results = (_own if o.get("own") else builders[target])(o)
    results.update(target=target, preset=o["preset"], dataset=o["dataset"], environment=o["environment"],
                   n_eval=o["spec"]["n_eval"], stage_seconds=o["seconds"], total_seconds=sum(o["seconds"].values()))
    comps = results.get("comparisons", [])
    if comps:
        report.heading("Comparison with the paper")
        report.text("Each number the paper reports, beside ours. Nothing was tuned to match the paper.")
        report.table(["table", "quantity", "ours", "95 % interval", "paper", "difference", "verdict"],
                     [[c["table"], c["name"], pct(c["ours"]), pct_interval(c["ci"]), pct(c["paper"]),
                       pct(c["difference"], signed=True), c["verdict"]] for c in comps])
    paths = report.write(folder)
    write_json(folder / "results.json", results)
    return {"report_md": paths["markdown"], "report_html": paths["html"], "results": folder / "results.json"}


def _mnist(o: dict[str, Any]) -> tuple[Report, dict[str, Any]]:
    what = (
        "pretrained zoo"
        if o["preset"] == "pretrained"
        else f"{o['preset']} preset" + (", miniature" if o.get("miniature") else "")
    )
    r = Report(f"InterpretGAN reproduction: MNIST ({what})")
    setup_section(r, o, "The whole MNIST chain of the paper (Sections 4-5)")
    _weights(r, o)
    nat, arms, diag = o["natural"], o["arms"], o["diagnosis"]
    r.heading("Classifiers")
    n = nat["attack"]["n"]
    rows = [["SmallCNN max, natural", pct(nat["attack"]["clean"], 2), pct(nat["attack"]["accuracy"], 2),
             pct_interval(binomial_interval(nat["attack"]["accuracy"], n))]]
    for p in ("max", "avg"):
        acc = arms[p]["attacks"]["pgd40"]
        rows.append([f"SmallCNN {p}, trades+atta", pct(arms[p]["clean"], 2), pct(acc, 2),
                     pct_interval(binomial_interval(acc, arms[p]["n"]))])
    r.table(["model", "clean accuracy (attacked subset)", "PGD-40 accuracy", "95 % interval"], rows,
            caption=f"PGD-40, eps 0.3, step 0.01, random start, n = {n}")

    results: dict[str, Any] = {"tables": {}, "comparisons": [], "files": {}}
    r.heading("Table 1: per-layer accuracy and vulnerability")
    for kind, title in (("natural", "Naturally trained"), ("adversarial", "Adversarially trained (trades+atta, max)")):
        diagnosis_section(r, title, diag[kind])
        res = table1_results(diag[kind])
        results["tables"][f"table1_{kind}"] = res
        results["comparisons"] += table1_comparisons(kind, res)
    acc_nat = results["tables"]["table1_natural"]["ours"]["accuracy"]
    acc_adv = results["tables"]["table1_adversarial"]["ours"]["accuracy"]
    r.text(f"The adversarially trained model's Acc_i ranges {pct(min(acc_adv))} to {pct(max(acc_adv))} "
           f"(paper: 89.5 % to 95.1 %); the natural model's {pct(min(acc_nat))} to {pct(max(acc_nat))} "
           f"(paper: 3.0 % to 52.6 %).")

    explanations_section(r, o, results, "PGD-40")

    r.heading("Table 2: max vs average pooling (trades+atta)")
    headers, rows = pooling_rows(o["table2"])
    aa_col = [f"{a}: n = {m}" for a, m in o["table2"].get("n_attacks", {}).items() if m != o["table2"]["n"]]
    r.table(headers, rows, caption=f"Robust accuracy on n = {o['table2']['n']} test images, one seed"
                                   + (f" ({', '.join(aa_col)})" if aa_col else ""))
    t2 = _pooling_results(o["table2"])
    results["tables"]["table2"] = t2
    results["comparisons"] += _pooling_comparisons("Table 2", t2)
    at_least = [a for a, ok in t2["avg_at_least_max"].items() if ok]
    r.text(f"Average pooling is at least as robust as max pooling under {len(at_least)} of {len(t2['names'])} attacks"
           f" ({', '.join(at_least) or 'none'}).")

    autoattack_tables(r, o, results, "Adversarially trained (trades+atta, max)")
    index_change_section(r, diag, results, "PGD-40")
    transitions_section(r, o["dataset"], nat["attack"], "PGD-40")
    baselines_section(r, o, results)
    ablation_section(r, o, results)
    results["targets"] = checks_table(r, MNIST_CHECKS, o, nat["attack"]["clean"], arms["max"]["attacks"]["pgd40"],
                                      results["tables"])
    return r, results


def _weights(r: Report, o: dict[str, Any]) -> None:
    """Which weights the report is about and how they were trained."""
    r.heading("Weights")
    if o.get("weights"):
        r.text("The pretrained zoo shipped in the package (`interpretgan pretrained` lists it); every file was checked "
               "against the sha256 in its provenance record before use. Nothing was trained here.")
        rows = []
        for w in o["weights"]:
            f = w["figures"] or {}
            if "clean" in f:
                figures = (
                    f"clean {pct(f['clean'], 2)} (n = {f['n']}), PGD-40 {pct(f['pgd40'], 2)} (n = {f['n_attack']})"
                )
            else:
                cons = [e["consistency"] for e in f.get("layers", {}).values()]
                figures = f"consistency {pct(min(cons))} to {pct(max(cons))} (n = {f.get('n')})" if cons else "–"
            rows.append([w["role"], f"`{w['name']}`", f"`{w['command']}` at commit {w['commit'][:10]}", figures])
        r.table(["role", "weights", "trained by", "figures on the MNIST test set"], rows)
    elif o.get("miniature"):
        r.text("**This is a miniature.** Every model here was trained in this folder on a schedule far below the "
               "`cpu` preset, to show the pipeline working in minutes; its figures are not the paper's. The real "
               "figures come from `interpretgan demo` (the pretrained zoo, trained by `interpretgan reproduce mnist "
               "--preset cpu`) or from running `interpretgan reproduce mnist --preset cpu` (about 1 h 50 min on 2 CPU "
               "cores).")
        lam = o["spec"]["explain"].get("interp_weight", 1.0)
        if lam != 1.0:
            r.text(f"Its explainers weight the interpretability term by lambda = {lam:g}, not the paper's 1: in so few "
                   "iterations lambda = 1 leaves the early layers' explainers collapsed "
                   "(experiments/2026-12-03-demo-train-miniature).")
    else:
        r.text(f"Every model was trained in this folder by the chain's own stages (`{o['preset']}` preset; stage times "
               "above).")


def _cifar(o: dict[str, Any]) -> tuple[Report, dict[str, Any]]:
    r = Report(f"InterpretGAN reproduction: CIFAR-10 pooling study ({o['preset']} preset)")
    setup_section(r, o, "Table 3 (max vs average pooling, trades+atta)")
    results: dict[str, Any] = {"tables": {}, "comparisons": []}
    for model, study in o["studies"].items():
        r.heading(f"Table 3: {model}")
        headers, rows = pooling_rows(study["table"])
        r.table(headers, rows, caption=f"Robust accuracy, eps 8/255, n = {study['table']['n']} test images")
        res = _pooling_results(study["table"])
        results["tables"][f"table3_{model}"] = res
        results["comparisons"] += _pooling_comparisons(f"Table 3 ({model})", res)
        at_least = [a for a, ok in res["avg_at_least_max"].items() if ok]
        r.text(
            f"Average pooling at least as robust as max pooling under {len(at_least)} of {len(res['names'])} attacks."
        )
        claim = pooling_claim(study["table"])
        if claim is not None:
            r.text(pooling_text(claim, f"Table 3 ({model})"))
            results.setdefault("autoattack", {})[model] = {"pooling": claim}
    if o["preset"] != "paper":
        r.text("WideResNet-34-10 runs with the `paper` preset only (it is too large for 2 CPU cores).")
    return r, results


def _celeba(o: dict[str, Any]) -> tuple[Report, dict[str, Any]]:
    r = Report(f"InterpretGAN reproduction: CelebA gender ({o['preset']} preset)")
    setup_section(r, o, "VGG16 gender classifier, explanations of natural vs adversarial faces (Fig. 4/5)")
    nat, d = o["natural"], o["diagnosis"]["natural"]
    r.heading("Classifier")
    r.table(["model", "clean accuracy (attacked subset)", "PGD-20 accuracy (eps 2/255)", "95 % interval"],
            [["VGG16, natural", pct(nat["attack"]["clean"], 2), pct(nat["attack"]["accuracy"], 2),
              pct_interval(binomial_interval(nat["attack"]["accuracy"], nat["attack"]["n"]))]])
    r.heading("Per-layer accuracy on D*")
    diagnosis_section(r, "VGG16 gender", d)
    r.heading("Explanations (Fig. 4/5)")
    r.figure(o["figures"]["natural"]["grid"], "Natural (nat.) and PGD-20 (adv.) faces, explanation per layer")
    r.figure(o["figures"]["natural"]["baselines"], "InterpretGAN per layer beside the Captum baselines")
    r.heading("Explainer quality")
    results: dict[str, Any] = {"tables": {"per_layer_natural": table1_results(d)}, "comparisons": []}
    results["explainer_quality"] = {"natural": quality_table(r, "VGG16 gender", o["explainers"]["natural"]["quality"])}
    return r, results


def _own(o: dict[str, Any]) -> tuple[Report, dict[str, Any]]:
    """The report of ``reproduce --model``: the MNIST report's sections for the user's classifier, with a
    robust-accuracy table in place of the pooling table (its checks only on MNIST, where they are calibrated)."""
    own, models, diag = o["own"], o["models"], o["diagnosis"]
    attack = attack_label(diag["natural"]["attack"])
    what = f"{o['preset']} preset" + (", miniature" if o.get("miniature") else "")
    r = Report(f"InterpretGAN on your classifier: {own['model'].rpartition(':')[2]} on {o['dataset']} ({what})")
    setup_section(
        r,
        o,
        f"The paper's MNIST chain (Sections 4-5) with your classifier `{own['model']}` in place of the paper's, "
        f"explained at {', '.join(f'`{p}`' for p in own['layers'])}",
    )
    r.heading("Weights")
    if own["weights"]:
        r.text(
            f"The naturally trained model is your weights `{own['weights']}` (sha256 {own['weights_sha256'][:16]}…) as "
            "they are; the adversarially trained one (trades+atta) was trained from scratch in this folder."
        )
    else:
        r.text(
            f"Both models were trained from scratch in this folder by the chain's own stages (`{o['preset']}` preset, "
            "natural and trades+atta; stage times above)."
        )

    r.heading("Classifiers")
    names = list(models["natural"]["attacks"])

    def cell(m: dict[str, Any], a: str) -> str:
        return f"{pct(m['attacks'][a], 2)} {pct_interval(binomial_interval(m['attacks'][a], m['n_attacks'][a]))}"

    rows = [[title, pct(models[kind]["clean"], 2), *[cell(models[kind], a) for a in names]] for kind, title in KINDS]
    sizes = ", ".join(f"{attack_label(a)}: n = {models['natural']['n_attacks'][a]}" for a in names
                      if models["natural"]["n_attacks"][a] != models["natural"]["n"])
    r.table(["model", "clean accuracy (attacked subset)", *map(attack_label, names)], rows,
            caption=f"Robust accuracy with 95 % Wilson intervals on n = {models['natural']['n']} test images"
                    + (f" ({sizes})" if sizes else "") + f"; D* of Table 1: {attack}")
    results: dict[str, Any] = {
        "tables": {
            "robust_accuracy": {
                k: {"clean": m["clean"], "n": m["n"], "attacks": m["attacks"], "n_attacks": m["n_attacks"]}
                for k, m in models.items()
            }
        },
        "comparisons": [],
        "model": own,
    }

    r.heading("Table 1: per-layer accuracy and vulnerability")
    for kind, title in (("natural", "Naturally trained"), ("adversarial", "Adversarially trained (trades+atta)")):
        diagnosis_section(r, title, diag[kind])
        results["tables"][f"table1_{kind}"] = table1_results(diag[kind])
    acc = {k: results["tables"][f"table1_{k}"]["ours"]["accuracy"] for k in ("natural", "adversarial")}
    r.text(
        f"The adversarially trained model's Acc_i ranges {pct(min(acc['adversarial']))} to "
        f"{pct(max(acc['adversarial']))}; the natural model's {pct(min(acc['natural']))} to "
        f"{pct(max(acc['natural']))} (the paper's SmallCNN: 89.5 % to 95.1 % and 3.0 % to 52.6 %)."
    )
    explanations_section(r, o, results, attack)
    autoattack_tables(r, o, results, "Adversarially trained (trades+atta)")
    index_change_section(r, diag, results, attack)
    transitions_section(r, o["dataset"], models["natural"], attack)
    baselines_section(r, o, results)
    if o["dataset"].startswith("mnist") and "pgd40" in models["adversarial"]["attacks"]:
        results["targets"] = checks_table(r, OWN_MNIST_CHECKS, o, models["natural"]["clean"],
                                          models["adversarial"]["attacks"]["pgd40"], results["tables"])
    return r, results
