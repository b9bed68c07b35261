"""``interpretgan baselines RUN``: the Captum attributions beside an explain run's explanations (Fig. 3 and 5)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from interpretgan.baselines import METHODS, attribute
from interpretgan.data import dataset_info
from interpretgan.explain.show import explanation_grid
from interpretgan.pipeline.explain import grid_inputs
from interpretgan.pipeline.runs import Run


def baselines_run(run: Run | str | Path, *, attack: str = "pgd", n: int = 4, methods: Sequence[str] = METHODS,
                  device: str | torch.device = "cpu", data_root: Any = None, verify: bool = True, seed: int = 0,
                  out_dir: str | Path | None = None) -> dict[str, Any]:
    """The Fig. 3/5 layout for an explain run: per example, natural and adversarial rows with the
    InterpretGAN explanation of every layer, then the Captum baselines of the same input.

    Examples: the first ``n`` of D* that the attack fooled (f right on x, wrong on x*). Writes
    ``<out_dir>/baselines-<attack>.png`` and ``.safetensors`` (default: the run folder) and returns
    :func:`~interpretgan.explain.show.explanation_grid`'s dict plus ``"methods"`` and ``"examples"``.
    """
    run, classifier, explainers, adv, pick = grid_inputs(run, attack=attack, n=n, device=device, data_root=data_root,
                                                         verify=verify, seed=seed)
    device = torch.device(device)
    x, x_adv = adv.x[pick].to(device), adv.x_adv[pick].to(device)
    attributions = {"natural": attribute(classifier, x, methods), "adversarial": attribute(classifier, x_adv, methods)}
    out_dir = Path(out_dir) if out_dir is not None else run.path
    out_dir.mkdir(parents=True, exist_ok=True)
    classes = list(dataset_info(run.config["dataset"]).classes)
    result = explanation_grid(
        classifier,
        explainers,
        x,
        x_adv,
        classes,
        out_dir / f"baselines-{adv.name}.png",
        tensors_path=out_dir / f"baselines-{adv.name}.safetensors",
        attributions=attributions,
        title=f"{run.path.resolve().name}: InterpretGAN per layer beside Captum attributions of f's label "
        f"(natural and {adv.name} inputs)",
    )
    result.update(methods=list(methods), examples=pick.tolist(), source=adv.source)
    return result
