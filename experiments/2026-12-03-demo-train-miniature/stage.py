"""Screen one stage of the `demo --train` miniature on the embedded MNIST sample.

    python experiments/2026-12-03-demo-train-miniature/stage.py train natural '{"epochs": 8}' OUT
    python experiments/2026-12-03-demo-train-miniature/stage.py train trades+atta '{"pool": "max"}' OUT
    python experiments/2026-12-03-demo-train-miniature/stage.py explain CLASSIFIER_RUN '{...}' OUT

Prints one JSON line: the settings, wall seconds and the run's results (clean accuracy; per-layer
consistency for explainers). Train runs also report PGD-40 on 500 test images for trades+atta.
"""

import json
import sys
import time

from interpretgan.pipeline.attack import attack_run
from interpretgan.config.presets import resolve_explain_config, resolve_train_config
from interpretgan.pipeline.explain import explain_in
from interpretgan.pipeline.runs import read_json
from interpretgan.pipeline.train import fit_in

kind, what, overrides, out = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
t0 = time.perf_counter()
if kind == "train":
    cfg = resolve_train_config("mnist-sample", what, "cpu", overrides)
    run = fit_in(out, f"{what}-{overrides.get('pool', 'max')}", cfg, progress=False)
    seconds = time.perf_counter() - t0
    res = read_json(run.path / "results.json")
    summary = {"clean": res["clean_accuracy"]}
    if what != "natural":
        att = attack_run(run, ["pgd-40"], n=500, progress=False)
        summary["pgd40"] = att["attacks"]["pgd40"]["accuracy"]
else:
    cfg = resolve_explain_config("mnist-sample", "cpu", overrides)
    run = explain_in(out, "explain", what, cfg, progress=False)
    seconds = time.perf_counter() - t0
    res = read_json(run.path / "results.json")
    summary = {k: v for k, v in res.items() if k in ("consistency", "layers")}
print(json.dumps({"kind": kind, "what": what, "overrides": overrides, "seconds": round(seconds, 1),
                  "run": str(run.path), "summary": summary}, default=str))
