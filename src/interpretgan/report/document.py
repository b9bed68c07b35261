"""The report folder: one document written as ``report.md`` and as a self-contained ``report.html``.

A :class:`Report` is a list of blocks (headings, paragraphs, tables, figures). The markdown
version links the figures by relative path; the HTML version embeds them as base64 data URIs, so
the file can be mailed or archived alone. The HTML carries a small script that, once the page has
loaded, marks ``<body data-images-ok="true|false" data-images="N">`` after checking that every
image decoded: :func:`interpretgan.report.browser.check_in_browser` reads it back from a real
headless browser.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from interpretgan.errors import RunError
from interpretgan.io import write_text
from interpretgan.report.tables import markdown_table

_BOLD = re.compile(r"\*\*(.+?)\*\*")
_CODE = re.compile(r"`([^`]+)`")

_CSS = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; max-width: 1100px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
table { border-collapse: collapse; margin: 0.6em 0 1.2em; font-size: 0.88em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.55em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f3f3f3; }
figure { margin: 1em 0 1.6em; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.88em; color: #555; }
code { background: #f5f5f5; padding: 0 0.2em; }
"""

_CHECK = """
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.every(function (i) { return i.complete && i.naturalWidth > 0; });
  document.body.setAttribute('data-images', String(imgs.length));
  document.body.setAttribute('data-images-ok', ok ? 'true' : 'false');
});
"""


@dataclass
class Report:
    """An ordered document of headings, paragraphs, bullet lists, tables and PNG figures."""

    title: str
    blocks: list[tuple[str, Any]] = field(default_factory=list)

    def heading(self, text: str, level: int = 2) -> Report:
        self.blocks.append(("heading", (level, text)))
        return self

    def text(self, text: str) -> Report:
        """A paragraph; ``**bold**`` and ``code`` in backticks are kept in both formats."""
        self.blocks.append(("text", text))
        return self

    def bullets(self, items: Sequence[str]) -> Report:
        self.blocks.append(("bullets", list(items)))
        return self

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[Any]], caption: str | None = None) -> Report:
        self.blocks.append(("table", (list(headers), [list(r) for r in rows], caption)))
        return self

    def figure(self, path: str | Path, caption: str) -> Report:
        """A PNG figure (it must exist when the report is written)."""
        self.blocks.append(("figure", (Path(path), caption)))
        return self

    # --- rendering -----------------------------------------------------------------------------
    def to_markdown(self, folder: Path) -> str:
        out = [f"# {self.title}", ""]
        for kind, value in self.blocks:
            if kind == "heading":
                out += ["#" * value[0] + " " + value[1], ""]
            elif kind == "text":
                out += [value, ""]
            elif kind == "bullets":
                out += [f"- {item}" for item in value] + [""]
            elif kind == "table":
                headers, rows, caption = value
                if caption:
                    out += [f"*{caption}*", ""]
                out += [markdown_table(headers, rows)]
            else:
                path, caption = value
                out += [f"![{caption}]({_relative(path, folder)})", "", f"*{caption}*", ""]
        return "\n".join(out)

    def to_html(self) -> str:
        body: list[str] = [f"<h1>{_inline(self.title)}</h1>"]
        for kind, value in self.blocks:
            if kind == "heading":
                body.append(f"<h{value[0]}>{_inline(value[1])}</h{value[0]}>")
            elif kind == "text":
                body.append(f"<p>{_inline(value)}</p>")
            elif kind == "bullets":
                body.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in value) + "</ul>")
            elif kind == "table":
                headers, rows, caption = value
                cap = f"<caption>{_inline(caption)}</caption>" if caption else ""
                head = "".join(f"<th>{_inline(str(h))}</th>" for h in headers)
                trs = "".join("<tr>" + "".join(f"<td>{_inline(str(c))}</td>" for c in r) + "</tr>" for r in rows)
                body.append(f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{trs}</tbody></table>")
            else:
                path, caption = value
                data = base64.b64encode(_read_figure(path)).decode("ascii")
                body.append(f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
                            f"<figcaption>{_inline(caption)}</figcaption></figure>")
        return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                f"<title>{html.escape(self.title)}</title><style>{_CSS}</style><script>{_CHECK}</script></head>\n"
                "<body>\n" + "\n".join(body) + "\n</body></html>\n")

    def write(self, folder: str | Path, name: str = "report") -> dict[str, Path]:
        """Write ``<folder>/<name>.md`` and ``<folder>/<name>.html`` (atomically); return their paths."""
        folder = Path(folder)
        md, page = folder / f"{name}.md", folder / f"{name}.html"
        text, markup = self.to_markdown(folder), self.to_html()  # both rendered before either is written
        write_text(md, text)
        write_text(page, markup)
        return {"markdown": md, "html": page}


def _inline(text: str) -> str:
    escaped = html.escape(text)
    return _CODE.sub(r"<code>\1</code>", _BOLD.sub(r"<strong>\1</strong>", escaped))


def _relative(path: Path, folder: Path) -> str:
    try:
        return path.resolve().relative_to(folder.resolve()).as_posix()
    except ValueError:
        return path.resolve().as_posix()


def _read_figure(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError:
        raise RunError(f"the report's figure {path} is missing; expected a PNG written by an earlier stage") from None
    if not data.startswith(b"\x89PNG"):
        raise RunError(f"the report's figure {path} is not a PNG file")
    return data
