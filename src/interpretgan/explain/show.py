"""The paper's Fig. 3: explanations of natural inputs and of their adversarial versions, layer by layer.

For each example, one row for the natural input and one for its adversarial version: the input,
then one column per explained layer, each image annotated with f's label on it and that label's
probability. Drawn on a matplotlib :class:`~matplotlib.figure.Figure` with an Agg canvas (never
``pyplot``) and written atomically as PNG; the tensors behind it are saved as safetensors so a
notebook can redraw or analyse them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import Tensor

from interpretgan.devices import eval_mode
from interpretgan.explain.explainer import Explainer, explain
from interpretgan.io import atomic_path, save_tensors
from interpretgan.models import TappedModel

log = logging.getLogger(__name__)


@torch.no_grad()
def explanation_table(classifier: TappedModel, explainers: Mapping[str, Explainer], x: Tensor) -> dict[str, Tensor]:
    """Inputs, explanations and f's verdicts for images ``x`` ``(n, C, H, W)`` in [0, 1] (on the models' device).

    Returns ``images`` ``(n, 1 + L, C, H, W)`` (the input, then the L layers' explanations in the
    classifier's order), ``label`` ``(n, 1 + L)`` (f's label on each) and ``prob`` ``(n, 1 + L)``
    (its probability).
    """
    expl = explain(classifier, explainers, x)
    images = torch.stack([x, *expl.values()], dim=1)
    n, k = images.shape[:2]
    with eval_mode(classifier):
        probs = classifier(images.flatten(0, 1)).softmax(dim=1)
    prob, label = probs.max(dim=1)
    return {"images": images, "label": label.view(n, k), "prob": prob.view(n, k)}


def plot_explanations(natural: Mapping[str, Tensor], adversarial: Mapping[str, Tensor] | None, layers: Sequence[str],
                      class_names: Sequence[str], path: str | Path, *, title: str | None = None,
                      attributions: Mapping[str, Mapping[str, Tensor]] | None = None) -> Path:
    """Draw the Fig. 3 grid from :func:`explanation_table` outputs and write it to ``path`` (PNG).

    Rows: for each example, the natural row and (when ``adversarial`` is given) the adversarial
    row; columns: the input, then one per layer. ``attributions`` (``{"natural"|"adversarial":
    {method: (n, C, H, W)}}``, the Captum baselines) adds one column per method after the layers,
    drawn as a signed heat map (channels summed; red positive, blue negative, scaled to the map's
    largest magnitude), the paper's Fig. 3 and 5 layout. Returns ``path``.
    """
    path = Path(path)
    methods = list(next(iter(attributions.values()))) if attributions else []
    rows: list[tuple[str, Mapping[str, Tensor], Mapping[str, Tensor], int]] = []
    n = natural["images"].shape[0]
    for i in range(n):
        rows.append(("nat.", natural, (attributions or {}).get("natural", {}), i))
        if adversarial is not None:
            rows.append(("adv.", adversarial, (attributions or {}).get("adversarial", {}), i))
    cols = 1 + len(layers) + len(methods)
    cell = 1.25
    fig = Figure(figsize=(cell * cols + 0.6, cell * len(rows) + (0.6 if title else 0.3)), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(rows), cols, squeeze=False)
    headers = ["input", *layers, *methods]
    for r, (kind, table, attr, i) in enumerate(rows):
        for c in range(cols):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c > len(layers):
                heat = (
                    attr[methods[c - 1 - len(layers)]][i].detach().to("cpu", torch.float32).sum(0)
                )  # explicit: host plot
                scale = float(heat.abs().max()) or 1.0
                ax.imshow(heat.numpy(), cmap="bwr", vmin=-scale, vmax=scale)
            else:
                img = (
                    table["images"][i, c].detach().to("cpu", torch.float32).clamp(0, 1)
                )  # explicit: plotting is on the host
                if img.shape[0] == 1:
                    ax.imshow(img[0].numpy(), cmap="gray", vmin=0.0, vmax=1.0)
                else:
                    ax.imshow(img.permute(1, 2, 0).numpy())
                label = int(table["label"][i, c])
                name = class_names[label] if label < len(class_names) else str(label)
                ax.set_title(f"{name} ({float(table['prob'][i, c]):.2f})", fontsize=7, pad=2)
            if r == 0:
                ax.text(0.5, 1.28, headers[c], transform=ax.transAxes, ha="center", fontsize=8, weight="bold")
            if c == 0:
                ax.set_ylabel(kind, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    # Keep the top 0.55 inch for the title: the column headers sit above the first row's axes.
    fig.tight_layout(rect=(0, 0, 1, 1 - (0.55 if title else 0.2) / fig.get_figheight()))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path


def explanation_grid(classifier: TappedModel, explainers: Mapping[str, Explainer], x: Tensor, x_adv: Tensor | None,
                     class_names: Sequence[str], path: str | Path, *, tensors_path: str | Path | None = None,
                     title: str | None = None,
                     attributions: Mapping[str, Mapping[str, Tensor]] | None = None) -> dict[str, Any]:
    """Explain ``x`` (and ``x_adv``), draw the Fig. 3 grid to ``path``, save the tensors to ``tensors_path``.

    ``attributions``: Captum baselines to draw beside the explanations (see :func:`plot_explanations`);
    they are saved as ``nat_attr_<method>`` / ``adv_attr_<method>``.

    ``x``, ``x_adv``: ``(n, C, H, W)`` in [0, 1] on the models' device. The tensors file holds
    ``nat_images``/``adv_images`` ``(n, 1 + L, C, H, W)``, ``nat_label``/``adv_label`` and
    ``nat_prob``/``adv_prob`` ``(n, 1 + L)``, with the layer names in its metadata. Returns
    ``{"png", "tensors", "layers", "natural": {...}, "adversarial": {...}}`` (labels and probabilities as lists).
    """
    layers = [n for n in classifier.layer_names if n in explainers]
    nat = explanation_table(classifier, explainers, x)
    adv = explanation_table(classifier, explainers, x_adv) if x_adv is not None else None
    png = plot_explanations(nat, adv, layers, class_names, path, title=title, attributions=attributions)
    out: dict[str, Any] = {"png": str(png), "tensors": None, "layers": layers,
                           "natural": {"label": nat["label"].tolist(), "prob": nat["prob"].tolist()}}
    if adv is not None:
        out["adversarial"] = {"label": adv["label"].tolist(), "prob": adv["prob"].tolist()}
    if tensors_path is not None:
        tensors = {f"nat_{k}": v for k, v in nat.items()}
        if adv is not None:
            tensors.update({f"adv_{k}": v for k, v in adv.items()})
        for kind, maps in (attributions or {}).items():
            tensors.update({f"{kind[:3]}_attr_{m}": v for m, v in maps.items()})
        save_tensors(
            tensors_path, tensors, metadata={"layers": json.dumps(layers), "columns": json.dumps(["input", *layers])}
        )
        out["tensors"] = str(tensors_path)
    return out


