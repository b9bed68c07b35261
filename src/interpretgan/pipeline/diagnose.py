"""``interpretgan diagnose EXPLAIN_RUN [EXPLAIN_RUN ...] --attack pgd``: Table 1 and its companions.

For each explain run (several runs = several seeds of explainers for one classifier): D* (the
attack command's set when the classifier run has one, else computed on a seeded test subset),
Acc_i / Vul_i with bootstrap intervals (Eq. 5), the fraction of fooled examples (f wrong on x*, as
in ``explain.metrics.adversarial_drift``) whose explanation carries the adversarial label (the
drift), the max-pool index change and the label transitions.
Everything goes to one folder (default ``<first run>/diagnose-<attack>``): ``diagnose.json``,
``vulnerability.md``, ``vulnerability.png`` (vulnerable layers in red, the paper's values as
ticks when the classifier is one of Table 1's) and ``transitions-<attack>.png``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from interpretgan.attacks.metrics import summarize_predictions
from interpretgan.data import dataset_info
from interpretgan.devices import eval_mode
from interpretgan.diagnose.table1 import diagnose
from interpretgan.diagnose.vulnerability import (
    PAPER_INDEX_CHANGE,
    combine_runs,
    paper_model_kind,
    with_paper,
)
from interpretgan.errors import ConfigError
from interpretgan.io import read_json, write_json, write_text
from interpretgan.pipeline.explain import RUN_KIND, adversarial_inputs, load_explainers
from interpretgan.pipeline.runs import Run
from interpretgan.report.markdown import format_markdown

log = logging.getLogger(__name__)


def classifier_info(run: Run) -> dict[str, Any]:
    """Dataset, model, pooling and objective of the classifier an explain run explains."""
    info = {"dataset": run.config["dataset"], "model": run.config.get("classifier_model"), "objective": None,
            "pool": None, "classifier_run": run.config.get("classifier_run")}
    cfg_path = Path(info["classifier_run"]) / "config.json" if info["classifier_run"] else None
    if cfg_path is not None and cfg_path.is_file():
        cfg = read_json(cfg_path)
        info.update(objective=cfg.get("objective"), pool=cfg.get("pool"), model=cfg.get("model", info["model"]))
    return info


def diagnose_one(run: Run, *, attack: str = "pgd", n_compute: int = 1000, n_boot: int = 1000, seed: int = 0,
                 batch_size: int = 500, device: str | torch.device = "cpu", data_root: Any = None,
                 verify: bool = True) -> dict[str, Any]:
    """Acc_i / Vul_i, drift, max-pool index change and label transitions of one explain run on D*."""
    device = torch.device(device)
    classifier, explainers = load_explainers(run, device, finished=True)
    adv = adversarial_inputs(run, classifier, attack, n_compute=n_compute, device=device, data_root=data_root,
                             verify=verify, seed=seed)
    # the stored labels on x*: as explain.metrics.adversarial_drift, every x* that f got wrong is fooled
    res = diagnose(classifier, explainers, adv.x_adv, adv.y, x=adv.x, pred=adv.pred, n_boot=n_boot, seed=seed,
                   batch_size=batch_size, device=device)
    own, table, index = res["pred"], res["table"], res["index_change"]
    y = adv.y.to(torch.int64)
    with torch.no_grad(), eval_mode(classifier):
        clean = torch.cat([classifier(adv.x[s : s + batch_size].to(device)).argmax(1).cpu()
                           for s in range(0, len(y), batch_size)])
    info = classifier_info(run)
    k = dataset_info(info["dataset"]).num_classes
    transitions = summarize_predictions(adv.name, y, adv.pred, clean == y, k).to_dict()
    if paper_model_kind(info["dataset"], info["model"], info["objective"], info["pool"]) == "natural":
        for name, entry in index.items():
            if name in PAPER_INDEX_CHANGE:
                entry.update(paper=PAPER_INDEX_CHANGE[name], difference=entry["fraction"] - PAPER_INDEX_CHANGE[name])
    return {
        "run": str(run.path),
        "classifier": info,
        "attack": adv.name,
        "source": adv.source,
        "n": len(y),
        "input_accuracy": float((adv.pred == y).float().mean()),
        "clean_accuracy": float((clean == y).float().mean()),
        "stored_prediction_reproduced": float((own == adv.pred).float().mean()),  # f on D* now vs when stored
        "table": table,
        "index_change": index,
        "transitions": transitions,
    }


def diagnose_run(runs: Sequence[Run | str | Path], *, attack: str = "pgd", n_compute: int = 1000, n_boot: int = 1000,
                 seed: int = 0, batch_size: int = 500, device: str | torch.device = "cpu", data_root: Any = None,
                 verify: bool = True, out_dir: str | Path | None = None) -> dict[str, Any]:
    """Diagnose one or several explain runs of the same classifier; write and return the results.

    Returns ``{"attack", "runs": [diagnose_one dicts], "table": Table 1 (one run: with intervals;
    several: mean +/- sd), "paper_row", "index_change", "transitions", "folder", "files"}``.
    """
    opened = [r if isinstance(r, Run) else Run.open(r, kind=RUN_KIND) for r in runs]
    if not opened:
        raise ConfigError("no explain run given; expected at least one EXPLAIN_RUN folder")
    sources = {o.config.get("classifier_run") for o in opened}
    if len(sources) > 1:
        raise ConfigError(f"the explain runs explain different classifiers ({', '.join(map(str, sorted(sources)))}); "
                          "expected runs of one classifier (seeds)")
    results = [diagnose_one(o, attack=attack, n_compute=n_compute, n_boot=n_boot, seed=seed, batch_size=batch_size,
                            device=device, data_root=data_root, verify=verify) for o in opened]
    first = results[0]
    info = first["classifier"]
    kind = paper_model_kind(info["dataset"], info["model"], info["objective"], info["pool"])
    table = first["table"] if len(results) == 1 else combine_runs([r["table"] for r in results])
    table = with_paper(table, kind)
    name = first["attack"]
    folder = Path(out_dir) if out_dir is not None else opened[0].path / f"diagnose-{name}"
    folder.mkdir(parents=True, exist_ok=True)
    out = {"attack": name, "n": first["n"], "classifier": info, "paper_row": kind, "table": table,
           "index_change": first["index_change"], "transitions": first["transitions"], "runs": results,
           "folder": str(folder)}

    from interpretgan.report.figures import plot_transition_matrix, plot_vulnerability

    label = f"{info['model']} {info['pool'] or ''} {info['objective'] or ''}".replace("  ", " ").strip()
    files = {
        "json": folder / "diagnose.json",
        "markdown": folder / "vulnerability.md",
        "figure": plot_vulnerability(
            table,
            folder / "vulnerability.png",
            f"{label}: Acc_i and Vul_i on {name} (n={first['n']}"
            + (f", {len(results)} runs" if len(results) > 1 else "")
            + ")",
        ),
        "transitions": plot_transition_matrix(
            first["transitions"]["transition"],
            list(dataset_info(info["dataset"]).classes),
            folder / f"transitions-{name}.png",
            title=f"{label}: {name}\n(row: true label, column: adversarial prediction)",
        ),
    }
    out["files"] = {k: str(v) for k, v in files.items()}
    write_text(files["markdown"], format_markdown(out))
    write_json(files["json"], out)
    return out


