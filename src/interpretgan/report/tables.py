"""Markdown tables and number formatting shared by the diagnosis, the pooling study and the report."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any


def pct(value: float | None, digits: int = 1, signed: bool = False) -> str:
    """``0.9123 -> "91.2 %"`` (``signed``: ``"+1.2 pp"`` style for differences); None -> ``"–"``."""
    if value is None:
        return "–"
    if signed:
        return f"{value * 100:+.{digits}f} pp"
    return f"{value * 100:.{digits}f} %"


def pct_interval(interval: Sequence[float] | None, digits: int = 1) -> str:
    """``[lo, hi] -> "[90.1, 92.3]"`` in percent; None -> ``""``."""
    if not interval:
        return ""
    return f"[{interval[0] * 100:.{digits}f}, {interval[1] * 100:.{digits}f}]"


def attack_label(name: str) -> str:
    """An attack's results key as the reports write it: ``pgd40`` -> ``PGD-40``, ``fgsm`` -> ``FGSM``; other
    names (AutoAttack's specs) as they are."""
    m = re.fullmatch(r"([a-z]+)(\d*)", name)
    if m is None:
        return name
    return m[1].upper() + (f"-{m[2]}" if m[2] else "")


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured markdown table; cells are converted with ``str`` and ``|`` is escaped."""
    def cell(v: Any) -> str:
        return str(v).replace("|", "\\|")

    lines = ["| " + " | ".join(cell(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
