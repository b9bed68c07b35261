"""``interpretgan demo``: the MNIST reproduction chain in miniature, on the CPU, with no download.

It uses MNIST from the data root when one is set (``--data-root`` / ``INTERPRETGAN_DATA``) and holds
it, otherwise the MNIST sample shipped in the package, and runs every stage of ``interpretgan reproduce
mnist`` with the small schedule :data:`interpretgan.reproduce.DEMO_CHAIN`: a natural SmallCNN,
``trades+atta`` SmallCNNs with max and avg pooling, PGD-40 sets and Table 2's attacks, explainers
of the natural and the adversarial model, Table 1 for both, index change, label transitions,
grids, baselines and the report.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from interpretgan.data import mnist, resolve_data_root
from interpretgan.errors import ConfigError
from interpretgan.reproduce import DEMO_CHAIN, reproduce
from interpretgan.runs import new_run_dir, runs_root

log = logging.getLogger(__name__)


def run_demo(
    out: str | Path | None = None,
    data_root: str | Path | None = None,
    preset: str = "cpu",
    device: torch.device | str = "cpu",
    verify: bool = True,
    progress: bool = True,
) -> dict[str, Path]:
    """Run the demo into a new folder under the runs root; return the paths of what it wrote."""
    if preset not in DEMO_CHAIN:
        raise ConfigError(f"unknown demo preset '{preset}'; expected one of {', '.join(DEMO_CHAIN)}")
    root = resolve_data_root(data_root)
    if root is not None and mnist.find(root) is None:
        log.warning("the data root %s holds no MNIST files; the demo runs on the embedded sample", root)
        root = None
    dataset = "mnist" if root is not None else "mnist-sample"
    folder = new_run_dir(runs_root(out), f"demo-{dataset}-{preset}")
    log.info("demo on %s (%s preset) in %s", dataset, preset, folder)
    res = reproduce("mnist", preset, out=folder, device=device, data_root=root, verify=verify, progress=progress,
                    spec=DEMO_CHAIN[preset], dataset=dataset)
    o: dict[str, Any] = res["outputs"]
    diag = o["diagnosis"]
    return {
        "demo folder": folder,
        "explanation grid (natural model)": Path(o["figures"]["natural"]["grid"]),
        "explanation grid (adversarially trained model)": Path(o["figures"]["adversarial"]["grid"]),
        "Table 1 (natural model)": Path(diag["natural"]["files"]["markdown"]),
        "Table 1 (adversarially trained model)": Path(diag["adversarial"]["files"]["markdown"]),
        "baselines figure": Path(o["figures"]["natural"]["baselines"]),
        "report (markdown)": Path(res["report_md"]),
        "report (HTML)": Path(res["report_html"]),
        "results": Path(res["results"]),
    }
