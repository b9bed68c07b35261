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
