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
from interpretgan.report.claims import autoattack_section, mnist_claims, pooling_claim, pooling_text
from interpretgan.report.document import Report
from interpretgan.report.markdown import pooling_rows, transitions_rows, vulnerability_rows
from interpretgan.report.tables import attack_label, pct, pct_interval


def comparison(table: str, name: str, ours: float, paper: float | None, ci: list[float] | None = None) -> dict[str, Any]:
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


def _table1_results(d: dict[str, Any]) -> dict[str, Any]:
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


def _table1_comparisons(kind: str, res: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for key, label in (("accuracy", "Acc"), ("vulnerability", "Vul")):
        for i, n in enumerate(res["names"]):
            if res["paper"][key][i] is not None and res["ours"][key][i] is not None:
                out.append(comparison(f"Table 1 ({kind})", f"{label} {n}", res["ours"][key][i], res["paper"][key][i],
                                      res["ci"][key][i]))
    return out


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


def _index_results(index: dict[str, Any]) -> dict[str, Any]:
    names = list(index)
    return {"names": names, "ours": [index[n]["fraction"] for n in names], "windows": [index[n]["windows"] for n in names],
            "ours_active": [index[n].get("fraction_active") for n in names],
            "active_windows": [index[n].get("active_windows") for n in names],
            "paper": [index[n].get("paper") for n in names], "difference": [index[n].get("difference") for n in names]}


def _stage_times(report: Report, seconds: dict[str, float]) -> None:
    rows = [[name, f"{s:.0f}", f"{s / 60:.1f}"] for name, s in seconds.items()]
    rows.append(["**total**", f"**{sum(seconds.values()):.0f}**", f"**{sum(seconds.values()) / 60:.1f}**"])
    report.table(["stage", "seconds", "minutes"], rows,
                 caption="Wall time of each stage (as first run; stages finished before a resume keep their time)")


def _setup(report: Report, o: dict[str, Any], what: str) -> None:
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
    _stage_times(report, o["seconds"])


def _quality(report: Report, title: str, q: dict[str, Any]) -> dict[str, Any]:
    layers = list(q["layers"])
    rows = [[n, pct(q["layers"][n]["consistency"]), f"{q['layers'][n]['frechet']:.2f}",
             pct(q["layers"][n].get("random_consistency")), f"{q['layers'][n].get('random_frechet', float('nan')):.2f}"]
            for n in layers]
    floor = q.get("frechet_floor")
    report.table(["layer", "consistency f(x̂) = f(x)", "Fréchet", "random G: consistency", "random G: Fréchet"], rows,
                 caption=f"{title}: explainer quality on {q.get('n_test')} natural test images (Fréchet distance in f's "
                         f"{q.get('feature_layer')} features; real-vs-real floor {floor if floor is None else f'{floor:.2f}'})")
    return {"names": layers, "consistency": [q["layers"][n]["consistency"] for n in layers],
            "frechet": [q["layers"][n]["frechet"] for n in layers], "frechet_floor": floor,
            "random_frechet": [q["layers"][n].get("random_frechet") for n in layers]}


def _diagnosis_section(report: Report, title: str, d: dict[str, Any]) -> None:
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
    what = "pretrained zoo" if o["preset"] == "pretrained" else f"{o['preset']} preset" + (", miniature" if o.get("miniature") else "")
    r = Report(f"InterpretGAN reproduction: MNIST ({what})")
    _setup(r, o, "The whole MNIST chain of the paper (Sections 4-5)")
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
        _diagnosis_section(r, title, diag[kind])
        res = _table1_results(diag[kind])
        results["tables"][f"table1_{kind}"] = res
        results["comparisons"] += _table1_comparisons(kind, res)
    acc_nat = results["tables"]["table1_natural"]["ours"]["accuracy"]
    acc_adv = results["tables"]["table1_adversarial"]["ours"]["accuracy"]
    r.text(f"The adversarially trained model's Acc_i ranges {pct(min(acc_adv))} to {pct(max(acc_adv))} "
           f"(paper: 89.5 % to 95.1 %); the natural model's {pct(min(acc_nat))} to {pct(max(acc_nat))} "
           f"(paper: 3.0 % to 52.6 %).")

    _explanations(r, o, results, "PGD-40")

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

    _under_autoattack(r, o, results, "Adversarially trained (trades+atta, max)")
    _index_change(r, diag, results, "PGD-40")
    _transitions(r, o["dataset"], nat["attack"], "PGD-40")
    _baselines(r, o, results)
    q = {k: o["explainers"][k]["quality"]["layers"] for k in ("natural", "adversarial")}
    results["targets"] = _checks(r, MNIST_CHECKS, nat["attack"]["clean"], arms["max"]["attacks"]["pgd40"], q,
                                 results["tables"])
    return r, results


_KINDS = (("natural", "Naturally trained"), ("adversarial", "Adversarially trained"))


def _explanations(r: Report, o: dict[str, Any], results: dict[str, Any], attack: str) -> None:
    """The explanation grids (Fig. 3) and the explainers' quality tables of both explained models."""
    r.heading("Explanations of natural and adversarial inputs (Fig. 3)")
    for kind, title in _KINDS:
        r.figure(o["figures"][kind]["grid"], f"{title}: natural (nat.) and {attack} (adv.) inputs, explanation per layer "
                                             "with f's label and probability")
    r.text("The last row of each Table 1 above gives, per layer, the fraction of fooled examples whose explanation "
           "f classifies as the adversarial label: the drift toward the adversarial class, layer by layer.")
    r.heading("Explainer quality")
    results["explainer_quality"] = {k: _quality(r, t, o["explainers"][k]["quality"]) for k, t in _KINDS}


def _under_autoattack(r: Report, o: dict[str, Any], results: dict[str, Any], adversarial_title: str) -> None:
    """The paper's claims under AutoAttack and Table 1 of both models under it; nothing when the chain ran
    no AutoAttack (the demo)."""
    claims = mnist_claims(o)
    if claims is None:
        return
    autoattack_section(r, claims)
    results["autoattack"] = claims
    for kind, title in (("natural", "Naturally trained"), ("adversarial", adversarial_title)):
        d = o["autoattack"]["diagnosis"][kind]
        _diagnosis_section(r, f"{title}, under AutoAttack", d)
        results["tables"][f"table1_{kind}_autoattack"] = _table1_results(d)


def _index_change(r: Report, diag: dict[str, Any], results: dict[str, Any], attack: str) -> None:
    """The max-pool index change of both models (with the paper's values where it has them)."""
    r.heading("Max-pool index change (x vs x*)")
    rows = []
    for kind in ("natural", "adversarial"):
        idx = diag[kind]["index_change"]
        results["tables"][f"index_change_{kind}"] = _index_results(idx)
        for name, e in idx.items():
            rows.append([kind, name, pct(e["fraction"]), e["windows"], pct(e.get("fraction_active")), e.get("active_windows", "–"),
                         pct(e.get("paper")), pct(e.get("difference"), signed=True)])
            if e.get("paper") is not None:
                results["comparisons"].append(comparison("index change (natural)", name, e["fraction"], e["paper"]))
    if not rows:
        r.text("No max-pooling layer among the explained ones: no index change to report.")
        return
    r.table(["model", "pooling layer", "windows whose argmax moved", "windows", "of windows with a feature", "such windows",
             "paper", "difference"], rows,
            caption=f"{attack} examples against their natural images (the paper reports the natural model); 'with a feature': "
                    "windows whose natural maximum is positive (all-zero windows tie, and any leak moves their argmax)")


def _transitions(r: Report, dataset: str, attacked: dict[str, Any], attack: str) -> None:
    """The naturally trained model's label transitions under D*'s attack (Fig. 7)."""
    r.heading("Label transitions")
    headers, rows = transitions_rows({"most_frequent_wrong": attacked["most_frequent_wrong"]}, dataset)
    r.table(headers, rows, caption=f"Naturally trained model under {attack}: the most frequent adversarial label per class")
    r.figure(attacked["figure"], f"Naturally trained model: label transitions under {attack} (Fig. 7)")


def _baselines(r: Report, o: dict[str, Any], results: dict[str, Any]) -> None:
    """The Captum baselines figures of both models, and the files the report's figures came from."""
    r.heading("Baselines (Captum) beside the explanations")
    for kind, title in _KINDS:
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


def _checks(r: Report, checks: dict[str, float], clean: float, pgd40: float, quality: dict[str, dict[str, Any]],
            tables: dict[str, Any]) -> dict[str, Any]:
    """Each of ``checks`` (:data:`MNIST_CHECKS`' six, in order) with its value and verdict, as a table in the
    report: from the natural model's clean and the trades+atta model's PGD-40 accuracy, both models'
    explainer ``quality`` per layer and their Table 1 results (``tables``)."""
    margin = min(e["consistency"] - e["random_consistency"] for layers in quality.values() for e in layers.values())
    values = [clean, pgd40, min(e["consistency"] for e in quality["natural"].values()),
              min(e["consistency"] for e in quality["adversarial"].values()),
              margin, min(a - n for a, n in zip(tables["table1_adversarial"]["ours"]["accuracy"],
                                                tables["table1_natural"]["ours"]["accuracy"]))]
    out = {name: {"threshold": th, "value": v, "pass": v >= th} for (name, th), v in zip(checks.items(), values)}
    r.heading("Checks")
    r.text("Thresholds a working run meets and chance-level numbers cannot (the lowest value over layers where a check "
           "says 'every layer').")
    r.table(["check", "threshold", "value", "verdict"],
            [[name, f">= {pct(c['threshold'])}", pct(c["value"]), "pass" if c["pass"] else "**FAIL**"] for name, c in out.items()])
    return out


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
                figures = f"clean {pct(f['clean'], 2)} (n = {f['n']}), PGD-40 {pct(f['pgd40'], 2)} (n = {f['n_attack']})"
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
    _setup(r, o, "Table 3 (max vs average pooling, trades+atta)")
    results: dict[str, Any] = {"tables": {}, "comparisons": []}
    for model, study in o["studies"].items():
        r.heading(f"Table 3: {model}")
        headers, rows = pooling_rows(study["table"])
        r.table(headers, rows, caption=f"Robust accuracy, eps 8/255, n = {study['table']['n']} test images")
        res = _pooling_results(study["table"])
        results["tables"][f"table3_{model}"] = res
        results["comparisons"] += _pooling_comparisons(f"Table 3 ({model})", res)
        at_least = [a for a, ok in res["avg_at_least_max"].items() if ok]
        r.text(f"Average pooling at least as robust as max pooling under {len(at_least)} of {len(res['names'])} attacks.")
        claim = pooling_claim(study["table"])
        if claim is not None:
            r.text(pooling_text(claim, f"Table 3 ({model})"))
            results.setdefault("autoattack", {})[model] = {"pooling": claim}
    if o["preset"] != "paper":
        r.text("WideResNet-34-10 runs with the `paper` preset only (it is too large for 2 CPU cores).")
    return r, results


def _celeba(o: dict[str, Any]) -> tuple[Report, dict[str, Any]]:
    r = Report(f"InterpretGAN reproduction: CelebA gender ({o['preset']} preset)")
    _setup(r, o, "VGG16 gender classifier, explanations of natural vs adversarial faces (Fig. 4/5)")
    nat, d = o["natural"], o["diagnosis"]["natural"]
    r.heading("Classifier")
    r.table(["model", "clean accuracy (attacked subset)", "PGD-20 accuracy (eps 2/255)", "95 % interval"],
            [["VGG16, natural", pct(nat["attack"]["clean"], 2), pct(nat["attack"]["accuracy"], 2),
              pct_interval(binomial_interval(nat["attack"]["accuracy"], nat["attack"]["n"]))]])
    r.heading("Per-layer accuracy on D*")
    _diagnosis_section(r, "VGG16 gender", d)
    r.heading("Explanations (Fig. 4/5)")
    r.figure(o["figures"]["natural"]["grid"], "Natural (nat.) and PGD-20 (adv.) faces, explanation per layer")
    r.figure(o["figures"]["natural"]["baselines"], "InterpretGAN per layer beside the Captum baselines")
    r.heading("Explainer quality")
    results: dict[str, Any] = {"tables": {"per_layer_natural": _table1_results(d)}, "comparisons": []}
    results["explainer_quality"] = {"natural": _quality(r, "VGG16 gender", o["explainers"]["natural"]["quality"])}
    return r, results


def _own(o: dict[str, Any]) -> tuple[Report, dict[str, Any]]:
    """The report of ``reproduce --model``: the MNIST report's sections for the user's classifier, with a
    robust-accuracy table in place of the pooling table (its checks only on MNIST, where they are calibrated)."""
    own, models, diag = o["own"], o["models"], o["diagnosis"]
    attack = attack_label(diag["natural"]["attack"])
    what = f"{o['preset']} preset" + (", miniature" if o.get("miniature") else "")
    r = Report(f"InterpretGAN on your classifier: {own['model'].rpartition(':')[2]} on {o['dataset']} ({what})")
    _setup(r, o, f"The paper's MNIST chain (Sections 4-5) with your classifier `{own['model']}` in place of the paper's, "
                 f"explained at {', '.join(f'`{p}`' for p in own['layers'])}")
    r.heading("Weights")
    if own["weights"]:
        r.text(f"The naturally trained model is your weights `{own['weights']}` (sha256 {own['weights_sha256'][:16]}…) as "
               "they are; the adversarially trained one (trades+atta) was trained from scratch in this folder.")
    else:
        r.text(f"Both models were trained from scratch in this folder by the chain's own stages (`{o['preset']}` preset, "
               "natural and trades+atta; stage times above).")

    r.heading("Classifiers")
    names = list(models["natural"]["attacks"])
    rows = [[title, pct(models[kind]["clean"], 2),
             *[f"{pct(models[kind]['attacks'][a], 2)} {pct_interval(binomial_interval(models[kind]['attacks'][a], models[kind]['n_attacks'][a]))}"
               for a in names]] for kind, title in _KINDS]
    sizes = ", ".join(f"{attack_label(a)}: n = {models['natural']['n_attacks'][a]}" for a in names
                      if models["natural"]["n_attacks"][a] != models["natural"]["n"])
    r.table(["model", "clean accuracy (attacked subset)", *map(attack_label, names)], rows,
            caption=f"Robust accuracy with 95 % Wilson intervals on n = {models['natural']['n']} test images"
                    + (f" ({sizes})" if sizes else "") + f"; D* of Table 1: {attack}")
    results: dict[str, Any] = {"tables": {"robust_accuracy": {k: {"clean": m["clean"], "n": m["n"], "attacks": m["attacks"],
                                                                  "n_attacks": m["n_attacks"]} for k, m in models.items()}},
                               "comparisons": [], "model": own}

    r.heading("Table 1: per-layer accuracy and vulnerability")
    for kind, title in (("natural", "Naturally trained"), ("adversarial", "Adversarially trained (trades+atta)")):
        _diagnosis_section(r, title, diag[kind])
        results["tables"][f"table1_{kind}"] = _table1_results(diag[kind])
    acc = {k: results["tables"][f"table1_{k}"]["ours"]["accuracy"] for k in ("natural", "adversarial")}
    r.text(f"The adversarially trained model's Acc_i ranges {pct(min(acc['adversarial']))} to {pct(max(acc['adversarial']))}; "
           f"the natural model's {pct(min(acc['natural']))} to {pct(max(acc['natural']))} (the paper's SmallCNN: 89.5 % to "
           "95.1 % and 3.0 % to 52.6 %).")
    _explanations(r, o, results, attack)
    _under_autoattack(r, o, results, "Adversarially trained (trades+atta)")
    _index_change(r, diag, results, attack)
    _transitions(r, o["dataset"], models["natural"], attack)
    _baselines(r, o, results)
    if o["dataset"].startswith("mnist") and "pgd40" in models["adversarial"]["attacks"]:
        q = {k: o["explainers"][k]["quality"]["layers"] for k in ("natural", "adversarial")}
        results["targets"] = _checks(r, OWN_MNIST_CHECKS, models["natural"]["clean"], models["adversarial"]["attacks"]["pgd40"],
                                     q, results["tables"])
    return r, results
