"""The report document: markdown and self-contained HTML, checked in a real headless browser."""

from __future__ import annotations

import pytest

from interpretgan.errors import RunError
from interpretgan.report.browser import check_in_browser, find_browser
from interpretgan.report.document import Report
from interpretgan.report.figures import plot_vulnerability
from interpretgan.report.tables import markdown_table, pct


def _report(tmp_path):
    table = {"layers": ["conv1", "fc1"], "accuracy": {"conv1": 0.9, "fc1": 0.8},
             "vulnerability": {"conv1": 0.1, "fc1": 0.1}, "vulnerable": ["conv1"]}
    fig = plot_vulnerability(table, tmp_path / "figs" / "v.png", "test")
    r = Report("Test <report>").heading("Numbers").text("**bold** and `code` & more")
    r.table(["layer", "Acc"], [["conv1", pct(0.9)], ["fc1 | x", pct(0.8)]], caption="a caption")
    return r.figure(fig, "the figure").bullets(["one", "two"])


def test_markdown_and_html_versions(tmp_path):
    paths = _report(tmp_path).write(tmp_path)
    md = paths["markdown"].read_text()
    assert md.startswith("# Test <report>") and "![the figure](figs/v.png)" in md
    assert "| fc1 \\| x | 80.0 % |" in md
    page = paths["html"].read_text()
    assert "<strong>bold</strong>" in page and "<code>code</code>" in page and "&amp; more" in page
    assert "Test &lt;report&gt;" in page and page.count("data:image/png;base64,") == 1
    assert markdown_table(["a"], [[1]]) == "| a |\n|---|\n| 1 |\n"


def test_missing_or_broken_figure_is_refused_without_writing(tmp_path):
    r = Report("x").figure(tmp_path / "nope.png", "missing")
    with pytest.raises(RunError, match="nope.png is missing"):
        r.write(tmp_path)
    (tmp_path / "bad.png").write_text("not a png")
    with pytest.raises(RunError, match="is not a PNG"):
        Report("x").figure(tmp_path / "bad.png", "bad").write(tmp_path)
    assert not (tmp_path / "report.html").exists() and not (tmp_path / "report.md").exists()


@pytest.mark.skipif(find_browser() is None, reason="no headless browser (chromium/chrome) on PATH")
def test_report_renders_in_a_headless_browser(tmp_path):
    paths = _report(tmp_path).write(tmp_path)
    seen = check_in_browser(paths["html"])
    assert seen["images"] == 1 and seen["images_ok"] and seen["tables"] == 1
    assert seen["title"] == "Test &lt;report&gt;"
    # A corrupt embedded image is caught by the browser, not only by the writer.
    broken = paths["html"].read_text().replace("data:image/png;base64,iVBOR", "data:image/png;base64,AAAA", 1)
    (tmp_path / "broken.html").write_text(broken)
    assert not check_in_browser(tmp_path / "broken.html")["images_ok"]


# --- the paper's claims under AutoAttack -------------------------------------------------------------------
def _pooling(avg: float, mx: float, n: int) -> dict:
    from interpretgan.diagnose.pooling import merge_arm, pooling_table

    arm = lambda a: {"clean": 0.99, "n": 1000, "folder": "f", "attacks": dict(pgd40=a, pgd100=a, mpgd40=a, fgsm=a)}  # noqa: E731
    aa = lambda a: {"clean": 0.99, "n": n, "folder": "g", "attacks": {"autoattack-nofab": a}}  # noqa: E731
    return pooling_table(
        {"max": {0: merge_arm(arm(0.9), aa(mx))}, "avg": {0: merge_arm(arm(0.9), aa(avg))}}, "mnist", "smallcnn"
    )


def test_pooling_claim_verdicts_follow_the_interval():
    from interpretgan.diagnose.pooling import difference_interval
    from interpretgan.report.claims import pooling_claim

    holds = pooling_claim(_pooling(0.85, 0.75, 300))  # +10 pp on 300 images: the interval is above 0
    assert holds["holds"] is True and holds["ci"] == pytest.approx(difference_interval(0.85, 300, 0.75, 300))
    assert holds["n"] == 300 and holds["difference"] == pytest.approx(0.10) and holds["ci"][0] > 0
    assert pooling_claim(_pooling(0.75, 0.85, 300))["holds"] is False
    assert pooling_claim(_pooling(0.80, 0.79, 300))["holds"] is None  # 1 pp on 300 images: undecided
    assert pooling_claim(_pooling(0.80, 0.79, 100000))["holds"] is True  # the same gap, decided by many images
    table = _pooling(0.8, 0.8, 300)
    table["attacks"] = table["attacks"][:4]  # a table without the AutoAttack column: no claim
    assert pooling_claim(table) is None


def _diag(acc: list[float], vulnerable: list[str], n: int = 300) -> dict:
    layers = ["conv1", "conv2", "fc1"]
    return {"attack": "autoattack-nofab", "n": n, "table": {
        "layers": layers, "accuracy": dict(zip(layers, acc)), "vulnerable": vulnerable,
        "vulnerability": dict(zip(layers, [1 - acc[0], acc[0] - acc[1], acc[1] - acc[2]])),
        "vulnerability_ci": {k: [0.0, 0.1] for k in layers}}}


def test_accuracy_and_vulnerability_claims(tmp_path):
    from interpretgan.report.claims import accuracy_claim, autoattack_section, vulnerability_claim

    nat, adv = _diag([0.5, 0.2, 0.05], ["conv1", "conv2"]), _diag([0.9, 0.9, 0.85], ["conv1"])
    c = accuracy_claim(nat, adv)
    assert c["holds"] is True and [x["layer"] for x in c["layers"]] == ["conv1", "conv2", "fc1"]
    assert c["layers"][2]["difference"] == pytest.approx(0.80) and c["layers"][2]["ci"][0] > 0.7
    assert accuracy_claim(nat, _diag([0.9, 0.21, 0.85], []))["holds"] is None  # conv2: 21 % vs 20 % decides nothing
    assert accuracy_claim(nat, _diag([0.3, 0.9, 0.85], []))["holds"] is False  # conv1 below the natural model's
    pgd = {"attack": "pgd40"}  # D* of the paper's MNIST chain
    v = vulnerability_claim(adv, {**_diag([0.9, 0.9, 0.85], ["conv1", "fc1"]), **pgd})
    assert v["vulnerable"] == ["conv1"] and v["same_as_pgd40"] is False and v["paper"] is None
    assert [x["vulnerable"] for x in v["layers"]] == [True, False, False] and v["layers"][0]["ci"] == [0.0, 0.1]
    v_nat = vulnerability_claim(nat, {**nat, **pgd}, ("conv1", "conv2"))
    assert v_nat["same_as_pgd40"] is True and v_nat["same_as_paper"] is True and v_nat["pgd_attack"] == "pgd40"

    r = Report("t")
    autoattack_section(r, {"spec": "autoattack", "n": 300, "pooling": None, "accuracy": c,
                           "vulnerable": {"natural": v_nat, "adversarial": v}})
    md = r.to_markdown(tmp_path)
    assert "with AutoAttack's settings on n = 300 test images" in md
    assert "at every layer, under AutoAttack (n = 300 and 300): holds.**" in md
    assert "adversarial: conv1 (not the same as under PGD-40: conv1, fc1)" in md
    assert (
        "natural: conv1, conv2 (the same as under PGD-40: conv1, conv2); the paper names conv1, conv2 (matched)" in md
    )
    # a chain whose D* is another attack (CIFAR-10's PGD-20) names it
    r = Report("t")
    autoattack_section(r, {"spec": "autoattack", "n": 300, "pooling": None, "accuracy": c,
                           "vulnerable": {"adversarial": vulnerability_claim(adv, {**adv, "attack": "pgd20"})}})
    md = r.to_markdown(tmp_path)
    assert "adversarial: conv1 (the same as under PGD-20: conv1)" in md and "PGD-40" not in md


def test_attack_labels():
    from interpretgan.report.tables import attack_label

    assert [attack_label(a) for a in ("pgd40", "mpgd20", "fgsm", "autoattack-nofab-apgd5-square50")] == [
        "PGD-40", "MPGD-20", "FGSM", "autoattack-nofab-apgd5-square50"]


def test_mnist_claims_need_autoattack_results():
    from interpretgan.report.claims import mnist_claims

    assert mnist_claims({"table2": {}, "diagnosis": {}}) is None  # the demo: nothing is said of AutoAttack
