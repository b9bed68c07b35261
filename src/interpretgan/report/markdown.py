"""Table 1 (vulnerability), label transitions and Tables 2/3 (pooling) as markdown rows and tables."""

from __future__ import annotations

from typing import Any

from interpretgan.data import dataset_info
from interpretgan.report.tables import markdown_table, pct, pct_interval


def vulnerability_rows(table: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Table 1 as (headers, rows): Acc_i and Vul_i per layer (vulnerable layers in bold) with intervals
    or sd, the paper's row and the difference when present, and the drift to the adversarial label."""
    layers = table["layers"]
    several = "accuracy_mean" in table
    rows: list[list[str]] = []
    for key, label in (("accuracy", "Acc_i"), ("vulnerability", "Vul_i")):
        values = table[f"{key}_mean"] if several else table[key]
        cells = []
        for n in layers:
            text = pct(values[n])
            if several and table[f"{key}_sd"][n] is not None:
                text += f" ± {table[f'{key}_sd'][n] * 100:.1f}"
            if key == "vulnerability" and n in table.get("vulnerable", []):
                text = f"**{text}**"
            cells.append(text)
        rows.append([label, *cells])
        if not several and f"{key}_ci" in table:
            rows.append(
                [f"{int(table['confidence'] * 100)} % CI", *[pct_interval(table[f"{key}_ci"][n]) for n in layers]]
            )
        if "paper" in table:
            rows.append([f"{label} (paper)", *[pct(table["paper"][key].get(n)) for n in layers]])
            rows.append([f"{label} − paper", *[pct(table["difference"][key].get(n), signed=True) for n in layers]])
    if "adversarial_label" in table:
        rows.append(
            [
                "explanation = adversarial label (x* with f(x*) ≠ y)",
                *[pct(table["adversarial_label"].get(n)) for n in layers],
            ]
        )
    return ["", *layers], rows


def vulnerability_markdown(table: dict[str, Any]) -> str:
    """:func:`vulnerability_rows` as a markdown table."""
    return markdown_table(*vulnerability_rows(table))


def format_markdown(res: dict[str, Any]) -> str:
    """The diagnosis as a markdown document (``vulnerability.md``)."""
    info, table = res["classifier"], res["table"]
    lines = [
        f"# Diagnosis: {info['model']} ({info['pool']} pooling, {info['objective']}) under {res['attack']}",
        "",
        f"D*: {res['n']} test examples ({res['runs'][0]['source']}); f's accuracy on D* "
        f"{pct(res['runs'][0]['input_accuracy'])}, on the natural images {pct(res['runs'][0]['clean_accuracy'])}.",
        f"Runs: {len(res['runs'])}"
        + (
            " (mean ± sd over runs)"
            if len(res["runs"]) > 1
            else f" (intervals: percentile bootstrap over D*, {table.get('n_boot')} resamples)"
        ),
        "",
        vulnerability_markdown(table),
        "Vulnerable layers (our rule: Vul_i above an even share of the total drop): "
        f"{', '.join(table['vulnerable']) or 'none'}.",
        "",
    ]
    missing = [n for n in table["layers"] if (table.get("vulnerability") or table["vulnerability_mean"])[n] is None]
    if missing:
        lines += [f"Vul_i of {', '.join(missing)} is not given: the layer before it is not explained in this run, "
                  "and Eq. 5 compares each layer with the one before it.", ""]
    if res["index_change"]:
        rows = [[name, pct(e["fraction"]), f"{e['changed']} / {e['windows']}", pct(e.get("fraction_active")),
                 pct(e.get("paper")), pct(e.get("difference"), signed=True)] for name, e in res["index_change"].items()]
        lines += ["## Max-pool index change (x vs x*)", "",
                  markdown_table(["pooling layer", "windows whose argmax moved", "count", "of windows with a feature",
                                  "paper", "difference"], rows),
                  "", "'With a feature': the windows whose natural maximum is positive (all-zero windows tie).", ""]
    else:
        lines += ["No max-pooling layer: no index change to report.", ""]
    lines += ["## Label transitions", "", transitions_markdown(res["transitions"], res["classifier"]["dataset"])]
    return "\n".join(lines)


def transitions_rows(t: dict[str, Any], dataset: str) -> tuple[list[str], list[list[str]]]:
    """Per true class, the most frequent wrong label under attack and its share of the class and of its errors."""
    classes = list(dataset_info(dataset).classes)
    rows = [[classes[int(c)], classes[w["label"]], pct(w["fraction"]), pct(w["fraction_of_wrong"])]
            for c, w in sorted(t["most_frequent_wrong"].items(), key=lambda kv: int(kv[0]))]
    return ["true label", "most frequent adversarial label", "share of the class", "share of its errors"], rows


def transitions_markdown(t: dict[str, Any], dataset: str) -> str:
    """:func:`transitions_rows` as a markdown table."""
    headers, rows = transitions_rows(t, dataset)
    return markdown_table(headers, rows) if rows else "The attack fooled no example.\n"


def pooling_rows(table: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Table 2/3 as (headers, rows): ours (with interval or sd), the paper's and the difference, per pooling
    and attack."""
    names = table["attacks"]
    rows = []
    for pool in ("max", "avg"):
        r = table["rows"][pool]
        cells = []
        for a in names:
            text = pct(r[a]["mean"], 2) + (
                f" ± {r[a]['sd'] * 100:.2f}" if r[a]["sd"] is not None else f" {pct_interval(r[a]['ci'])}"
            )
            cells.append(text)
        rows.append([f"{pool} pooling", pct(r["clean"]["mean"], 2), *cells])
        if any(r[a]["paper"] is not None for a in names):
            rows.append([f"{pool} (paper)", "–", *[pct(r[a]["paper"], 2) for a in names]])
            rows.append([f"{pool} − paper", "–", *[pct(r[a].get("difference"), 2, signed=True) for a in names]])
    d = table["avg_minus_max"]
    rows.append(
        [
            "avg − max",
            pct(d["clean"]["mean"], 2, signed=True),
            *[
                pct(d[a]["mean"], 2, signed=True) + (f" ± {d[a]['sd'] * 100:.2f}" if d[a]["sd"] is not None else "")
                for a in names
            ],
        ]
    )
    if any(d[a]["paper"] is not None for a in names):
        rows.append(["avg − max (paper)", "–", *[pct(d[a]["paper"], 2, signed=True) for a in names]])
    return ["", "clean", *names], rows


def pooling_markdown(table: dict[str, Any], title: str) -> str:
    """:func:`pooling_rows` as a markdown table under ``title``."""
    return f"## {title}\n\n" + markdown_table(*pooling_rows(table))


#: The ablation's figures: (key in each arm's per-layer figures, heading, formatter).
ABLATION_FIGURES: list[tuple[str, str, Any]] = [
    ("consistency", "Consistency (f(x_hat) = f(x), natural test images)", pct),
    ("frechet", "Frechet distance in f's features (lower is better; floor: real vs real)", lambda v: f"{v:.2f}"),
    ("pixel_mse", "Pixel error to the image (mean squared, natural test images)", lambda v: f"{v:.4f}"),
    ("ssim", "SSIM to the image (natural test images)", lambda v: f"{v:.3f}"),
    ("accuracy", "Acc_i on D* (95 % bootstrap interval)", None),
    ("vulnerability", "Vul_i on D* (95 % bootstrap interval; – where the layer before is not explained)", None),
    ("adversarial_label", "Fooled examples whose explanation carries the adversarial label", pct),
]


def ablation_markdown(res: dict[str, Any]) -> str:
    """The ablation study as markdown: one table per figure, the arms as rows and the layers as columns,
    then each arm's wall time."""
    layers, arms = res["layers"], res["arms"]
    first = next(iter(arms.values()))
    lines = [f"# Explainer ablation: {res['classifier_run']}", "",
             f"Preset `{res['preset']}`; {res['n_test']} natural test images; D*: {res['attack']} on "
             f"{res['n_adversarial']} test images ({first['source']}), f's accuracy on it "
             f"{pct(first['input_accuracy'])}.", ""]
    for key, heading, fmt in ABLATION_FIGURES:
        rows = []
        for arm, r in arms.items():
            cells = []
            for n in layers:
                v = r["layers"][n].get(key)
                if fmt is None:  # a fraction with its interval
                    cells.append(f"{pct(v)} {pct_interval(r['layers'][n].get(f'{key}_ci'))}".strip())
                else:
                    cells.append("–" if v is None else fmt(v))
            rows.append([arm, *cells])
        lines += [f"## {heading}", "", markdown_table(["arm", *layers], rows), ""]
        if key == "frechet" and res.get("frechet_floor") is not None:
            lines += [f"Real vs real (training vs test images): {res['frechet_floor']:.2f}.", ""]
    rows = [[arm, f"{r['train_seconds']:.0f}", f"{r['evaluate_seconds']:.0f}"] for arm, r in arms.items()]
    lines += ["## Wall time (seconds)", "", markdown_table(["arm", "training", "evaluation"], rows), ""]
    findings = ablation_findings(res)
    if findings:
        lines += ["## What the numbers say", "", " ".join(findings), ""]
    return "\n".join(lines)


def ablation_findings(res: dict[str, Any]) -> list[str]:
    """Sentences on what the interpretability term and the GAN prior change in Acc_i and Vul_i, computed
    from an ablation study's figures (each only when the arms it compares were run)."""
    layers, arms = res["layers"], res["arms"]

    def figure(arm: str, key: str) -> list[float]:
        return [arms[arm]["layers"][n][key] for n in layers]

    def mean(values: list[float]) -> float:
        return sum(values) / len(values)

    def span(values: list[float]) -> str:
        return f"{pct(min(values))}-{pct(max(values))}" if pct(min(values)) != pct(max(values)) else pct(values[0])

    def shift(a: str, b: str) -> str:  # Acc_i of b minus a's, per layer, in points
        d = [(y - x) * 100 for x, y in zip(figure(a, "accuracy"), figure(b, "accuracy"))]
        return f"{mean(d):+.1f} points on average ({min(d):+.1f} to {max(d):+.1f})"

    def overlapping(a: str, b: str) -> list[str]:
        both = [(arms[a]["layers"][n].get("accuracy_ci"), arms[b]["layers"][n].get("accuracy_ci"), n) for n in layers]
        return [n for u, v, n in both if u and v and u[0] <= v[1] and v[0] <= u[1]]

    out = []
    chance = 1 / dataset_info(res["dataset"]).num_classes
    if {"interpretgan", "gan-only"} <= arms.keys():
        cons = figure("gan-only", "consistency")
        readable = mean(cons) >= 0.5
        out.append(
            f"Without the interpretability term (gan-only against interpretgan) Acc_i moves by "
            f"{shift('interpretgan', 'gan-only')}, but the explanations keep f's label on only {span(cons)} of "
            f"natural images (interpretgan: {span(figure('interpretgan', 'consistency'))})"
            + ("." if readable else f", near chance ({pct(chance)}): that arm's Acc_i does not read the layers."))
    if {"mse", "mse+ce"} <= arms.keys():
        without, with_ = figure("mse", "adversarial_label"), figure("mse+ce", "adversarial_label")
        pulled = mean(with_) > mean(without)
        out.append(f"Added to the pixel-MSE inverter (mse to mse+ce), the term moves Acc_i by "
                   f"{shift('mse', 'mse+ce')}; the explanations of fooled inputs carry f's (adversarial) label "
                   + ("more" if pulled else "no more") + f" often with it ({span(with_)} of them, against "
                   f"{span(without)} without it).")
    if {"interpretgan", "mse+ce"} <= arms.keys():
        same = overlapping("interpretgan", "mse+ce")
        out.append(f"The GAN prior with the term (interpretgan against mse+ce) moves Acc_i by "
                   f"{shift('mse+ce', 'interpretgan')}, the 95 % intervals overlapping at {len(same)} of "
                   f"{len(layers)} layers; it changes how the explanations look (Frechet distance "
                   f"{mean(figure('interpretgan', 'frechet')):.1f} against {mean(figure('mse+ce', 'frechet')):.1f} on "
                   f"average, real vs real {res.get('frechet_floor') or float('nan'):.2f}).")
    if "optim" in arms:
        ssim = figure("optim", "ssim")
        kept = [n for n, v in zip(layers, ssim) if v is not None and v >= 0.9]
        if kept:
            base, accs = arms["optim"]["input_accuracy"], [arms["optim"]["layers"][n]["accuracy"] for n in kept]
            one = len(kept) == 1
            same = all(abs(a - base) <= 0.02 for a in accs)
            out.append(f"Inverted without a learned prior (optim), {', '.join(kept)} give{'s' if one else ''} back "
                       f"the input itself (SSIM >= 0.9 on natural images): {'its' if one else 'their'} Acc_i "
                       f"({span(accs)}) is {'within 2 points of' if same else 'not'} f's own accuracy on D* "
                       f"({pct(base)})" + (f", so {'that layer keeps' if one else 'those layers keep'} the "
                                           "perturbation as f's input has it." if same else "."))
    vul = {arm: a["vulnerable"] for arm, a in arms.items()}
    if vul:
        first = layers[0]
        out.append("Layers marked vulnerable (Vul_i above an even share of the drop): "
                   + "; ".join(f"{arm} {', '.join(v) or 'none'}" for arm, v in vul.items())
                   + f". Vul_{first}: " + ", ".join(
                       f"{arm} {pct(a['layers'][first]['vulnerability'])}" for arm, a in arms.items()
                       if a["layers"][first].get("vulnerability") is not None) + ".")
    if len(arms) > 1:
        ok = [arm for arm in arms if mean(figure(arm, "consistency")) >= 0.9]
        if ok:
            best = max(ok, key=lambda arm: mean(figure(arm, "accuracy")))
            out.append(f"Of the arms whose explanations keep f's label (mean consistency >= 90 %), {best} keeps "
                       f"the true class most often (mean Acc_i {pct(mean(figure(best, 'accuracy')))}"
                       + (f"; interpretgan {pct(mean(figure('interpretgan', 'accuracy')))})." if best != "interpretgan"
                          and "interpretgan" in arms else ")."))
    return out
