"""``interpretgan demo``: the MNIST chain on the CPU, with no download and, by default, no training.

By default the demo loads the pretrained zoo (:mod:`interpretgan.pretrained`: the natural and the
``trades+atta`` SmallCNNs and the explainers of two of them, trained by ``interpretgan reproduce
mnist --preset cpu``) and runs every evaluation stage of that chain on them: the PGD-40 sets, Table 2's
four attacks on both poolings, Table 1 for both explained models with intervals, the max-pool index
change, label transitions, the Fig. 3 grids, the Captum baselines and the report.

``--train`` trains everything from scratch instead, on a miniature schedule
(:data:`interpretgan.pipeline.chains.DEMO_CHAIN`); its report says it is a miniature.

It reads MNIST from the data root when one is set (``--data-root`` / ``INTERPRETGAN_DATA``) and holds
it, otherwise the MNIST sample shipped in the package.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from interpretgan.data import mnist, resolve_data_root
from interpretgan.errors import ConfigError
from interpretgan.pipeline.chains import DEMO_CHAIN, ChainSpec
from interpretgan.pipeline.reproduce import environment, evaluate_mnist_chain, reproduce
from interpretgan.pipeline.runs import Run, new_run_dir, runs_root
from interpretgan.pipeline.stages import Stages
from interpretgan.pipeline.zoo import materialize, provenance
from interpretgan.report.build import build_report

log = logging.getLogger(__name__)

#: The zoo entries the demo evaluates: role -> name.
ZOO = {"natural": "mnist-smallcnn-max-natural", "max": "mnist-smallcnn-max-trades+atta",
       "avg": "mnist-smallcnn-avg-trades+atta"}
#: The pretrained demo's evaluation sizes: 300 attacked test images keep it under 3 minutes on 2 cores.
PRETRAINED_SPEC = ChainSpec("cpu", "cpu", n_eval=300, n_boot=500, n_show=4)
PRESETS = ("smoke", "cpu")


def _dataset(data_root: str | Path | None) -> tuple[Path | None, str]:
    root = resolve_data_root(data_root)
    if root is not None and mnist.find(root) is None:
        log.warning("the data root %s holds no MNIST files; the demo runs on the embedded sample", root)
        root = None
    return root, "mnist" if root is not None else "mnist-sample"


def zoo_weights(dataset: str) -> list[dict[str, Any]]:
    """What the report says of each pretrained weight file the demo uses: name, how it was trained, figures."""
    out = []
    for role, name in [("natural", ZOO["natural"]), ("natural explainers", ZOO["natural"] + "-explainers"),
                       ("trades+atta max", ZOO["max"]), ("trades+atta max explainers", ZOO["max"] + "-explainers"),
                       ("trades+atta avg", ZOO["avg"])]:
        prov = provenance(name)
        out.append({"role": role, "name": f"pretrained:{name}", "command": prov["command"], "commit": prov["commit"],
                    "preset": prov["preset"], "figures": prov["figures"].get("mnist"),
                    "training_seconds": prov.get("training_seconds")})
    return out


def run_demo(out: str | Path | None = None, data_root: str | Path | None = None, preset: str = "cpu",
             device: torch.device | str = "cpu", verify: bool = True, progress: bool = True,
             train: bool = False) -> dict[str, Path]:
    """Run the demo into a new folder under the runs root; return the paths of what it wrote.

    ``train=False`` evaluates the pretrained zoo; ``train=True`` trains the miniature chain of ``preset``.
    """
    if preset not in PRESETS:
        raise ConfigError(f"unknown demo preset '{preset}'; expected one of {', '.join(PRESETS)}")
    root, dataset = _dataset(data_root)
    if train:
        folder = new_run_dir(runs_root(out), f"demo-{dataset}-train-{preset}")
        log.info("demo on %s (miniature training, %s preset) in %s", dataset, preset, folder)
        res = reproduce("mnist", preset, out=folder, device=device, data_root=root, verify=verify, progress=progress,
                        spec=DEMO_CHAIN[preset], dataset=dataset, miniature=True)
        o, written = res["outputs"], res
    else:
        for name in ZOO.values():
            provenance(name)  # an incomplete zoo ends here, before a folder is made
        folder = new_run_dir(runs_root(out), f"demo-{dataset}-pretrained")
        log.info("demo on %s with the pretrained zoo in %s", dataset, folder)
        spec = PRETRAINED_SPEC if preset == "cpu" else DEMO_CHAIN["smoke"]
        runs = {role: Run.open(materialize(name, "train", dataset=dataset, root=folder), kind="train")
                for role, name in ZOO.items()}
        explained = {k: Run.open(materialize(ZOO[role], "explain", dataset=dataset, root=folder), kind="explain")
                     for k, role in (("natural", "natural"), ("adversarial", "max"))}
        device = torch.device(device)
        o = evaluate_mnist_chain(
            Stages(folder),
            folder,
            spec,
            runs["natural"],
            {"max": runs["max"], "avg": runs["avg"]},
            explained,
            progress=progress,
            device=device,
            data_root=root,
            verify=verify,
        )
        o.update(environment=environment(device), spec=asdict(spec), preset="pretrained", dataset=dataset,
                 target="mnist", weights=zoo_weights(dataset))
        written = build_report("mnist", folder, o)
    diag = o["diagnosis"]
    return {
        "demo folder": folder,
        "explanation grid (natural model)": Path(o["figures"]["natural"]["grid"]),
        "explanation grid (adversarially trained model)": Path(o["figures"]["adversarial"]["grid"]),
        "Table 1 (natural model)": Path(diag["natural"]["files"]["markdown"]),
        "Table 1 (adversarially trained model)": Path(diag["adversarial"]["files"]["markdown"]),
        "baselines figure": Path(o["figures"]["natural"]["baselines"]),
        "report (markdown)": Path(written["report_md"]),
        "report (HTML)": Path(written["report_html"]),
        "results": Path(written["results"]),
    }
