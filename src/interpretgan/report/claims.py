"""The paper's claims re-judged under AutoAttack, with intervals (issue 29).

Three claims, each given a verdict that is ``True`` (holds), ``False`` (does not hold) or ``None``
(undecided: the 95 % interval holds the boundary at this number of images):

(a) average pooling is at least as robust as max pooling (Tables 2 and 3): ``avg - max`` under
    AutoAttack with Newcombe's interval (:func:`~interpretgan.diagnose.pooling.difference_interval`);
(b) the adversarially trained model's Acc_i is above the natural one's at every layer (Table 1):
    the difference per layer, with the same interval;
(c) which layers are vulnerable (Table 1's Vul_i): the layers marked under AutoAttack beside those
    marked under the paper's PGD-40, each Vul_i with its bootstrap interval.

Pure functions of the chain's outputs; :func:`autoattack_section` writes them into a report.
"""

from __future__ import annotations

from typing import Any

from interpretgan.attacks.specs import is_autoattack
from interpretgan.diagnose.pooling import binomial_interval, difference_interval
from interpretgan.report.document import Report
from interpretgan.report.tables import attack_label, pct, pct_interval

#: The layers the paper calls vulnerable in its MNIST SmallCNN (Section 5.1).
PAPER_VULNERABLE_MNIST = ("conv1", "conv2", "conv4", "fc1")


def verdict(interval: list[float], strict: bool = False) -> bool | None:
    """True when the interval lies above 0 (at or above unless ``strict``), False when below, None when it holds 0."""
    lo, hi = interval
    if lo > 0 or (lo == 0 and not strict):
        return True
    if hi < 0:
        return False
    return None


def _word(v: bool | None) -> str:
    return {True: "holds", False: "does not hold", None: "undecided"}[v]


def autoattack_column(table: dict[str, Any]) -> str | None:
    """The AutoAttack column of a pooling table (Table 2/3), if it has one."""
    return next((a for a in table["attacks"] if is_autoattack(a)), None)


def pooling_claim(table: dict[str, Any]) -> dict[str, Any] | None:
    """Claim (a) under AutoAttack from a :func:`~interpretgan.diagnose.pooling.pooling_table`; None without
    the column."""
    a = autoattack_column(table)
    if a is None:
        return None
    d = table["avg_minus_max"][a]
    n = table.get("n_attacks", {}).get(a, table["n"])
    ci = d.get("ci") or difference_interval(table["rows"]["avg"][a]["mean"], n, table["rows"]["max"][a]["mean"], n)
    return {"attack": a, "n": n, "max": table["rows"]["max"][a]["mean"], "max_ci": table["rows"]["max"][a]["ci"],
            "avg": table["rows"]["avg"][a]["mean"], "avg_ci": table["rows"]["avg"][a]["ci"],
            "difference": d["mean"], "ci": ci, "holds": verdict(ci)}


def accuracy_claim(natural: dict[str, Any], adversarial: dict[str, Any]) -> dict[str, Any]:
    """Claim (b) from the two diagnoses (``_diagnosis_summary`` dicts) under AutoAttack: per shared layer,
    both Acc_i with Wilson intervals and the difference with Newcombe's; holds when every layer's is above 0."""
    tn, ta = natural["table"], adversarial["table"]
    layers = [n for n in ta["layers"] if n in tn["layers"]]
    rows = []
    for n in layers:
        a, b = ta["accuracy"][n], tn["accuracy"][n]
        ci = difference_interval(a, adversarial["n"], b, natural["n"])
        rows.append({"layer": n, "adversarial": a, "adversarial_ci": binomial_interval(a, adversarial["n"]),
                     "natural": b, "natural_ci": binomial_interval(b, natural["n"]), "difference": a - b, "ci": ci,
                     "holds": verdict(ci, strict=True)})
    each = [r["holds"] for r in rows]
    holds = True if all(v is True for v in each) else (False if any(v is False for v in each) else None)
    return {"attack": adversarial["attack"], "n": {"natural": natural["n"], "adversarial": adversarial["n"]},
            "layers": rows, "holds": holds}


def vulnerability_claim(under_aa: dict[str, Any], under_pgd: dict[str, Any] | None,
                        paper: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Claim (c) for one model: the layers marked vulnerable under AutoAttack, under PGD-40 and by the paper,
    and each Vul_i under AutoAttack with its bootstrap interval (None where it has none)."""
    t = under_aa["table"]
    aa = list(t["vulnerable"])
    pgd = list(under_pgd["table"]["vulnerable"]) if under_pgd else None
    # "pgd40" keys: the paper's D* on MNIST; "pgd_attack" names the chain's own (PGD-20 on CIFAR-10)
    return {"attack": under_aa["attack"], "n": under_aa["n"], "vulnerable": aa, "vulnerable_pgd40": pgd,
            "pgd_attack": under_pgd["attack"] if under_pgd else None, "paper": list(paper) if paper else None,
            "same_as_pgd40": None if pgd is None else set(aa) == set(pgd),
            "same_as_paper": None if not paper else set(aa) == set(paper),
            "layers": [{"layer": n, "vulnerability": t["vulnerability"][n],
                        "ci": (t.get("vulnerability_ci") or {}).get(n), "vulnerable": n in aa} for n in t["layers"]]}


def mnist_claims(o: dict[str, Any]) -> dict[str, Any] | None:
    """Claims (a), (b) and (c) of the MNIST chain under AutoAttack; None when it ran no AutoAttack (the demo).

    A chain of the user's classifier (``o["own"]``) has no pooling table, so no (a), and no paper layers for (c).
    """
    aa = o.get("autoattack")
    if not aa:
        return None
    diag, own = aa["diagnosis"], bool(o.get("own"))
    return {"spec": aa["spec"], "n": aa["n"], "pooling": None if own else pooling_claim(o["table2"]),
            "accuracy": accuracy_claim(diag["natural"], diag["adversarial"]),
            "vulnerable": {k: vulnerability_claim(diag[k], o["diagnosis"].get(k),
                                                  PAPER_VULNERABLE_MNIST if k == "natural" and not own else None)
                           for k in ("natural", "adversarial")}}


def _images(n: int | None) -> str:
    return "all test images" if n is None else f"n = {n} test images"


def pooling_text(c: dict[str, Any], label: str) -> str:
    """One sentence: claim (a) under AutoAttack, with the interval."""
    return (f"**(a) {label}: average pooling at least as robust as max pooling under AutoAttack ({c['attack']}, "
            f"n = {c['n']}): {_word(c['holds'])}.** avg {pct(c['avg'], 2)} {pct_interval(c['avg_ci'])}, max "
            f"{pct(c['max'], 2)} {pct_interval(c['max_ci'])}; avg − max {pct(c['difference'], 1, signed=True)}, "
            f"95 % interval {pct_interval(c['ci'])} pp (Newcombe; it treats the two models' outcomes as independent, "
            "so on the same images it is if anything too wide).")


def autoattack_section(r: Report, claims: dict[str, Any]) -> None:
    """The MNIST report's section: each claim's verdict under AutoAttack with its intervals."""
    r.heading("The paper's claims under AutoAttack")
    how = "with AutoAttack's settings" if claims["spec"] == "autoattack" else f"reduced, as `{claims['spec']}`"
    r.text(f"AutoAttack here is APGD-CE, APGD-T and Square in AutoAttack's order (FAB-T not included: its robust "
           f"accuracy bounds AutoAttack's from above), run {how} "
           f"on {_images(claims['n'])}, the first of the seeded subset the other attacks use. "
           "A claim *holds* when its 95 % interval lies on its side of 0, *does not hold* when it lies on the other, "
           "and is *undecided* when it holds 0.")
    if claims["pooling"]:
        r.text(pooling_text(claims["pooling"], "Table 2"))
    acc = claims["accuracy"]
    r.text(f"**(b) The adversarially trained model's Acc_i above the natural one's at every layer, under AutoAttack "
           f"(n = {acc['n']['adversarial']} and {acc['n']['natural']}): {_word(acc['holds'])}.**")
    r.table(["layer", "Acc_i adversarially trained", "Acc_i natural", "difference", "95 % interval", "verdict"],
            [[x["layer"], f"{pct(x['adversarial'])} {pct_interval(x['adversarial_ci'])}",
              f"{pct(x['natural'])} {pct_interval(x['natural_ci'])}", pct(x["difference"], signed=True),
              pct_interval(x["ci"]), _word(x["holds"])] for x in acc["layers"]],
            caption=f"Acc_i on D* from {acc['attack']} (Wilson intervals; Newcombe's for the difference)")
    pgd = next((attack_label(c["pgd_attack"]) for c in claims["vulnerable"].values() if c.get("pgd_attack")), "PGD-40")
    rows = []
    for kind, c in claims["vulnerable"].items():
        for x in c["layers"]:
            rows.append(
                [
                    kind,
                    x["layer"],
                    f"{pct(x['vulnerability'])} {pct_interval(x['ci'])}",
                    "**yes**" if x["vulnerable"] else "no",
                    "–" if c["vulnerable_pgd40"] is None else ("yes" if x["layer"] in c["vulnerable_pgd40"] else "no"),
                ]
            )
    r.text(
        "**(c) Which layers are vulnerable under AutoAttack** (our rule: Vul_i above an even share of the total drop): "
        + "; ".join(
            f"{kind}: {', '.join(c['vulnerable']) or 'none'}"
            + (
                ""
                if c["same_as_pgd40"] is None
                else f" ({'the same as' if c['same_as_pgd40'] else 'not the same as'} under {pgd}: "
                f"{', '.join(c['vulnerable_pgd40']) or 'none'})"
            )
            + (
                ""
                if c["paper"] is None
                else f"; the paper names {', '.join(c['paper'])} ({'matched' if c['same_as_paper'] else 'not matched'})"
            )
            for kind, c in claims["vulnerable"].items()
        )
        + "."
    )
    r.table(
        ["model", "layer", "Vul_i under AutoAttack (bootstrap 95 %)", "vulnerable", f"vulnerable under {pgd}"], rows
    )
