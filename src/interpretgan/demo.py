"""``interpretgan demo``: the chain in miniature, on the CPU, with no download.

It uses MNIST from the data root when one is set (``--data-root`` / ``INTERPRETGAN_DATA``) and the
MNIST sample shipped in the package otherwise. Stages so far: a natural SmallCNN, an
adversarially trained one (``trades+atta``), and PGD-40 (eps 0.3) on both with their label
transitions; the explainers and the diagnosis join as they land.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from interpretgan.attacks.runner import attack_run
from interpretgan.config import resolve_train_config
from interpretgan.data import resolve_data_root
from interpretgan.runs import Run, runs_root, write_json, write_text
from interpretgan.training import fit, load_train_data

log = logging.getLogger(__name__)

#: Per demo preset: training overrides per objective, and the size of the attacked test subset.
DEMO_PRESETS: dict[str, dict[str, Any]] = {
    "smoke": {
        "natural": dict(epochs=1, n_train=512, n_test=200, batch_size=64, lr_milestones=[]),
        "trades+atta": dict(epochs=1, n_train=256, n_test=200, batch_size=64, lr_milestones=[], attack_step=0.1),
        "n_attack": 64,
        "steps": 10,
    },
    "cpu": {
        "natural": dict(epochs=3, n_train=10000, n_test=1000, lr_milestones=[2]),
        # ATTA-1 grows the stored perturbation one step an epoch: 6 steps of 0.06 reach eps 0.3.
        "trades+atta": dict(epochs=6, n_train=10000, n_test=1000, lr_milestones=[5], attack_step=0.06),
        "n_attack": 500,
        "steps": 40,
    },
}


def run_demo(
    out: str | Path | None = None,
    data_root: str | Path | None = None,
    preset: str = "cpu",
    device: torch.device | str = "cpu",
    verify: bool = True,
    progress: bool = True,
) -> dict[str, Path]:
    """Run the demo into a new folder under the runs root; return the paths of what it wrote."""
    root = resolve_data_root(data_root)
    dataset = "mnist" if root is not None else "mnist-sample"
    spec = DEMO_PRESETS[preset]
    folder = Run.create(runs_root(out), f"demo-{dataset}-{preset}", "demo",
                        {"dataset": dataset, "preset": preset, "data_root": str(root) if root else None}).path
    log.info("demo on %s (%s preset) in %s", dataset, preset, folder)

    summary: dict[str, Any] = {"dataset": dataset, "preset": preset, "models": {}}
    paths: dict[str, Path] = {"demo folder": folder}
    for objective in ("natural", "trades+atta"):
        cfg = resolve_train_config(dataset, objective, "smoke" if preset == "smoke" else "cpu", spec[objective])
        run = Run.create(folder, f"{objective}-smallcnn-{cfg.pool}", "train", cfg.to_dict())
        res = fit(cfg, run, device=device, data=load_train_data(cfg, root, verify), progress=progress)
        att = attack_run(run, [f"pgd-{spec['steps']}"], n=spec["n_attack"], device=device, data_root=root,
                         verify=verify, progress=progress)
        name = next(iter(att["attacks"]))
        summary["models"][objective] = {
            "run": str(run.path),
            "clean_accuracy": res["clean_accuracy"],
            "n_test": res["n_test"],
            f"{name}_accuracy": att["attacks"][name]["accuracy"],
            "n_attacked": att["n"],
            "most_frequent_wrong": att["attacks"][name]["most_frequent_wrong"],
        }
        paths[f"{objective} transitions ({name})"] = Path(att["folder"]) / f"transition-{name}.png"
    write_json(folder / "results.json", summary)
    write_text(folder / "summary.md", _summary_markdown(summary))
    paths["results"] = folder / "results.json"
    paths["summary"] = folder / "summary.md"
    return paths


def _summary_markdown(s: dict[str, Any]) -> str:
    lines = [f"# interpretgan demo ({s['dataset']}, {s['preset']} preset)", "",
             "| model | clean accuracy | robust accuracy (PGD, eps 0.3) |", "|---|---|---|"]
    for objective, m in s["models"].items():
        robust = next(v for k, v in m.items() if k.endswith("_accuracy") and k != "clean_accuracy")
        lines.append(f"| SmallCNN, {objective} | {m['clean_accuracy']:.2%} (n={m['n_test']}) | {robust:.2%} (n={m['n_attacked']}) |")
    return "\n".join(lines) + "\n"
