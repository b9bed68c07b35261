"""conv2's explainer of the zoo's natural SmallCNN under schedule variants of the `cpu` preset (issue 30's
95 % consistency bar), trained as the bf16 + channels-last chain trains it, scored in fp32 on all 10,000
test images and on the chain's 2,000-image subset of the seed.

    python experiments/2026-12-04-conv2-consistency/screen.py CLASSIFIER_RUN --variant base,width1 --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import json
import os
import time

from interpretgan.config.presets import resolve_explain_config
from interpretgan.data import load_dataset
from interpretgan.explain import train_explainers
from interpretgan.explain.metrics import evaluate_explainers
from interpretgan.pipeline.checkpoints import load_model

#: The preset's overrides per variant (the chain's options: bf16, channels-last); all but the ema ones
#: without the moving average the preset now keeps, as they ran.
NO_AVERAGE = {"ema_decay": 0.0}
VARIANTS = {
    "base": NO_AVERAGE,
    "fp32": {**NO_AVERAGE, "precision": "fp32", "channels_last": False},
    "width0.5": {**NO_AVERAGE, "compression_width": 0.5},
    "width1": {**NO_AVERAGE, "compression_width": 1.0},
    "last800": {**NO_AVERAGE, "scale_iterations": [400, 400, 600, 800]},
    "lambda2": {**NO_AVERAGE, "interp_weight": 2.0},
    "ema0.99": {"ema_decay": 0.99},
    "ema0.995": {"ema_decay": 0.995},
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("classifier")
    ap.add_argument("--variant", default="base")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--layer", default="conv2")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "screen.jsonl"))
    args = ap.parse_args()
    f = load_model(args.classifier, "cpu")
    train = load_dataset("mnist", "train", image_size=32)
    test = load_dataset("mnist", "test", image_size=32)
    for variant in args.variant.split(","):
        for seed in map(int, args.seeds.split(",")):
            cfg = resolve_explain_config("mnist", "cpu", {"layers": [args.layer], "seed": seed, "precision": "bf16",
                                                          "channels_last": True, "log_every": 10**9,
                                                          "checkpoint_every": 10**9, **VARIANTS[variant]})
            t0 = time.perf_counter()
            explainers = train_explainers(f, train, cfg, progress=False)["explainers"]
            seconds = time.perf_counter() - t0
            full = evaluate_explainers(f, explainers, test.x, baseline_seed=None)["layers"][args.layer]
            sub = test.subset(cfg.n_test, seed=seed)
            chain = evaluate_explainers(f, explainers, sub.x, baseline_seed=None)["layers"][args.layer]
            row = {"layer": args.layer, "variant": variant, "seed": seed, "train_seconds": round(seconds, 1),
                   "consistency_10000": full["consistency"], "consistency_2000": chain["consistency"],
                   "frechet_10000": round(full["frechet"], 2), "overrides": VARIANTS[variant]}
            print(json.dumps(row), flush=True)
            with open(args.out, "a") as fh:
                fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
