"""Short probes of the CIFAR-10 `trades+atta` `cpu` preset: train with overrides, then PGD-20 on a test subset.

The probes behind the preset's lr and dropout (src/interpretgan/config.py), each about 2.5 minutes
on 2 CPU cores, with INTERPRETGAN_DATA pointing at the datasets:

    P='"n_train": 10000, "epochs": 4, "lr_milestones": []'
    python experiments/2026-11-30-cpu-cifar10-reproduce/probe_cifar_cpu.py paper-recipe "{$P, \"lr\": 0.1, \"model_kwargs\": {\"width\": 0.25, \"fc_width\": 128, \"dropout\": 0.5}}"
    python experiments/2026-11-30-cpu-cifar10-reproduce/probe_cifar_cpu.py no-dropout   "{$P, \"lr\": 0.1, \"model_kwargs\": {\"width\": 0.25, \"fc_width\": 128, \"dropout\": 0.0}}"
    python experiments/2026-11-30-cpu-cifar10-reproduce/probe_cifar_cpu.py lr0.02       "{$P, \"lr\": 0.02, \"model_kwargs\": {\"width\": 0.25, \"fc_width\": 128, \"dropout\": 0.5}}"
    python experiments/2026-11-30-cpu-cifar10-reproduce/probe_cifar_cpu.py both         "{$P, \"lr\": 0.02, \"model_kwargs\": {\"width\": 0.25, \"fc_width\": 128, \"dropout\": 0.0}}"

Prints one JSON line: the overrides, clean and PGD-20 accuracy, seconds.
"""

from __future__ import annotations

import argparse
import json
import time

from interpretgan.attacks.runner import attack_run
from interpretgan.config.presets import resolve_train_config
from interpretgan.training import fit_in


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("name", help="the probe's run name")
    ap.add_argument("overrides", help="JSON object of training-config fields over the cpu preset")
    ap.add_argument("--out", default="runs/cifar-probes")
    ap.add_argument("--n-eval", type=int, default=500, help="test images attacked")
    args = ap.parse_args()
    overrides = json.loads(args.overrides)
    cfg = resolve_train_config("cifar10", "trades+atta", "cpu", overrides)
    t0 = time.perf_counter()
    run = fit_in(args.out, args.name, cfg, progress=False)
    res = attack_run(run, ["pgd-20"], n=args.n_eval, progress=False)
    print(json.dumps({"name": args.name, "overrides": overrides, "clean": res["clean_accuracy"],
                      "pgd20": res["attacks"]["pgd20"]["accuracy"], "seconds": time.perf_counter() - t0}))


if __name__ == "__main__":
    main()
