"""Figures of the paper, drawn with matplotlib's Agg canvas and written atomically as PNG.

The figures are built on :class:`matplotlib.figure.Figure` with an Agg canvas, never through
``pyplot``: nothing here changes the process-wide backend or keeps figures alive.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from interpretgan.errors import ConfigError
from interpretgan.io import atomic_path


def plot_transition_matrix(
    matrix: Sequence[Sequence[int]] | np.ndarray | torch.Tensor,
    class_names: Sequence[str],
    path: Path | str,
    title: str,
    *,
    wrong_only: bool = False,
) -> Path:
    """Heat map of label transitions under attack (Appendix D, Fig. 7), written to ``path`` (PNG).

    Args:
        matrix: ``K x K`` counts, row = true label, column = prediction on the adversarial example
            (``AttackResult.transition``).
        class_names: ``K`` labels for rows and columns.
        path: the PNG to write (atomically: a temporary file in the same folder, then a rename).
        title: the figure title.
        wrong_only: normalise each row over its misclassified examples only, with the diagonal
            left blank (the distribution of misclassified labels of Fig. 7); by default each row is
            normalised over all its examples.

    Each cell shows its row percentage; rows with no example (or, with ``wrong_only``, no
    misclassified example) stay empty. Returns ``path``.
    """
    path = Path(path)
    counts = torch.as_tensor(matrix).detach().to("cpu", torch.float64).numpy()  # explicit: plotting is on the host
    k = len(class_names)
    if counts.shape != (k, k):
        raise ConfigError(f"transition matrix must be {k} x {k} to match the {k} class names, got shape {counts.shape}")
    if wrong_only:
        counts = counts.copy()
        np.fill_diagonal(counts, 0.0)
    totals = counts.sum(axis=1, keepdims=True)
    pct = np.divide(100.0 * counts, totals, out=np.zeros_like(counts), where=totals > 0)
    shown = np.ma.masked_where(np.broadcast_to(totals == 0, pct.shape), pct)
    if wrong_only:
        shown = np.ma.masked_where(np.eye(k, dtype=bool) | np.ma.getmaskarray(shown), pct)

    size = max(4.0, 0.55 * k + 2.0)
    fig = Figure(figsize=(size + 1.0, size), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    image = ax.imshow(shown, cmap="Blues", vmin=0.0, vmax=100.0)
    fig.colorbar(image, ax=ax, label="% of the row's " + ("misclassified examples" if wrong_only else "examples"))
    ax.set_xticks(range(k), labels=list(class_names))
    ax.set_yticks(range(k), labels=list(class_names))
    ax.set_xlabel("prediction on the adversarial example")
    ax.set_ylabel("true label")
    ax.set_title(title)
    fontsize = 8 if k <= 12 else 6
    for i in range(k):
        for j in range(k):
            if np.ma.getmaskarray(shown)[i, j]:
                continue
            value = pct[i, j]
            ax.text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=fontsize,
                    color="white" if value > 50.0 else "black")
    fig.tight_layout()

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path


def _percent(values: list[float | None]) -> np.ndarray:
    """Fractions to percent, None to NaN."""
    return np.array([np.nan if v is None else v for v in values], dtype=float) * 100


def plot_vulnerability(table: dict, path: Path | str, title: str) -> Path:
    """Table 1 as bars: Acc_i (top) and Vul_i (bottom) per layer, written to ``path`` (PNG).

    ``table`` is :func:`interpretgan.diagnose.vulnerability_table`'s dict (or
    :func:`~interpretgan.diagnose.combine_runs`'s, whose sd becomes the error bar), optionally with
    the paper's row (:func:`~interpretgan.diagnose.with_paper`), drawn as black ticks. Vulnerable
    layers (``table["vulnerable"]``) are red, as in the paper.
    """
    layers = list(table["layers"])
    x = np.arange(len(layers))
    fig = Figure(figsize=(max(5.0, 0.8 * len(layers) + 1.5), 5.2), dpi=120)
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 1, sharex=True)
    for ax, key, label in ((axes[0], "accuracy", "Acc_i (%)"), (axes[1], "vulnerability", "Vul_i (%)")):
        # Vul_i is None where the layer before is not explained: no bar there.
        values = _percent([(table.get(key) or table[f"{key}_mean"])[n] for n in layers])
        if f"{key}_ci" in table:
            ci = np.array([table[f"{key}_ci"][n] or [None, None] for n in layers], dtype=float).T * 100
            err = np.nan_to_num(np.abs(ci - values))
            top = np.fmax(values, ci[1])
        elif f"{key}_sd" in table:
            err = np.nan_to_num(_percent([table[f"{key}_sd"][n] for n in layers]))
            top = values + err
        else:
            err, top = None, values
        colors = [
            "tab:red" if key == "vulnerability" and n in table.get("vulnerable", []) else "tab:blue" for n in layers
        ]
        ax.bar(x, values, color=colors, yerr=err, capsize=3)
        paper = table.get("paper", {}).get(key)
        if paper:
            px = [i for i, n in enumerate(layers) if n in paper]
            ax.scatter(
                px, [paper[layers[i]] * 100 for i in px], marker="_", s=300, color="black", zorder=3, label="paper"
            )
            ax.legend(fontsize=7, loc="best")
        ax.axhline(0, color="black", linewidth=0.6)
        ax.set_ylabel(label)
        for i, v in enumerate(values):  # the value above its error bar
            if np.isnan(v):
                ax.text(i, 0.0, "n/a", ha="center", va="bottom", fontsize=7, color="gray")
            else:
                ax.text(i, max(top[i], 0.0), f"{v:.1f}", ha="center", va="bottom", fontsize=7)
    axes[1].set_xticks(x, labels=layers)
    axes[0].set_title(title, fontsize=9)
    fig.tight_layout()
    with atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, format="png")
    return Path(path)


def plot_ablation_grid(inputs: torch.Tensor, rows: dict[str, dict[str, torch.Tensor]], path: Path | str,
                       title: str) -> Path:
    """The inputs ``(k, C, H, W)`` in the top row, then one row per arm of ``rows`` (``{arm: {layer:
    explanations (k, C, H, W)}}``) with a column per layer; each cell shows the k images side by side."""
    arms = list(rows)
    layers = list(next(iter(rows.values())))

    def strip(t: torch.Tensor) -> np.ndarray:  # (k, C, H, W) in [0, 1] -> (H, k * W[, C])
        t = t.detach().float().clamp(0, 1).cpu()
        img = torch.cat(list(t), dim=-1).permute(1, 2, 0).numpy()
        return img[..., 0] if img.shape[-1] == 1 else img

    fig = Figure(figsize=(1.3 * len(inputs) * len(layers) / 2 + 1.5, 1.1 * (len(arms) + 1) + 0.6), dpi=120)
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(arms) + 1, len(layers), squeeze=False)
    for j, layer in enumerate(layers):
        axes[0, j].imshow(strip(inputs), cmap="gray", vmin=0, vmax=1)
        axes[0, j].set_title(layer, fontsize=8)
        for i, arm in enumerate(arms, start=1):
            axes[i, j].imshow(strip(rows[arm][layer]), cmap="gray", vmin=0, vmax=1)
    for i, label in enumerate(["input", *arms]):
        axes[i, 0].set_ylabel(label, fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    with atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, format="png")
    return Path(path)
