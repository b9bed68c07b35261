"""``interpretgan explain train|show``: per-layer explainers into a run folder, and their grids."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from interpretgan.cli.common import (
    add_common,
    add_config_options,
    add_model_options,
    classifier_run_arg,
    config_overrides,
    device_of,
    log_to,
    refuse_with_resume,
    remove_unresumable,
    run_arg,
)
from interpretgan.config import PRESET_NAMES, ExplainConfig
from interpretgan.errors import ConfigError


def cmd_explain_train(args: argparse.Namespace) -> int:
    from interpretgan.config.presets import resolve_explain_config
    from interpretgan.data import load_dataset
    from interpretgan.pipeline.explain import create_explain_run, format_results, train_run
    from interpretgan.pipeline.runs import Run, check_runs_root, runs_root

    device = device_of(args.device)
    if args.resume:
        refuse_with_resume(args, {**config_overrides(args, ExplainConfig), "run": args.run, "preset": args.preset,
                                  "out": args.out, "separate": args.separate, "fuse": args.fuse, "model": args.model,
                                  "weights": args.weights, "dataset": args.dataset, "image_size": args.image_size})
        run = Run.open(args.resume, kind="explain")
        if (run.path / "results.json").is_file():
            print(
                f"{run.path} finished training and evaluating its explainers before (results.json); nothing to resume"
            )
            return 0
    else:
        check_runs_root(runs_root(args.out))
        if not args.run and not args.model:
            raise ConfigError(
                "explain train needs a classifier run folder, --model REF --weights FILE, or --resume EXPLAIN_RUN"
            )
        cls_run = Run.open(classifier_run_arg(args), kind="train")
        overrides = {**config_overrides(args, ExplainConfig), "joint": False if args.separate else None,
                     "fuse": True if args.fuse else None}
        if "scale_iterations" in overrides:  # iterations replace the preset's epochs per scale
            overrides["scale_epochs"] = []
        cfg = resolve_explain_config(cls_run.config["dataset"], args.preset or "cpu", overrides)
        # Data problems end the command before a run folder is made (training then reads the cache).
        load_dataset(cfg.dataset, "train", root=args.data_root, image_size=int(cls_run.config.get("image_size", 32)),
                     verify=not args.no_verify)
        run = create_explain_run(cls_run, cfg, runs_root(args.out))
    print(f"explainer run folder: {run.path}")
    try:
        with log_to(run.path / "explain.log"):
            res = train_run(run, device=device, data_root=args.data_root, verify=not args.no_verify,
                            resume=bool(args.resume), progress=not args.no_progress, evaluate=not args.no_eval)
    except KeyboardInterrupt:
        print(f"\ninterrupted; continue with: interpretgan explain train --resume {run.path}", file=sys.stderr)
        return 130
    except BaseException:
        remove_unresumable(None if args.resume else run.path)
        raise
    print(format_results(res))
    return 0


def cmd_explain_show(args: argparse.Namespace) -> int:
    from interpretgan.config import check_seed
    from interpretgan.pipeline.explain import drift_run, load_explainers, show_run
    from interpretgan.pipeline.runs import Run

    run = Run.open(run_arg(args, args.run, "explain"), kind="explain")
    device = device_of(args.device)
    # The grid is written before the drift table: check what would make the second fail first.
    check_seed(args.seed)
    for option, value in (("--n", args.n), ("--n-drift", args.n_drift)):
        if value < 1:
            raise ConfigError(f"{option} must be at least 1, got {value}")
    load_explainers(run, device, finished=True)
    with log_to(run.path / "explain.log"):
        res = show_run(run, attack=args.attack, n=args.n, device=device, data_root=args.data_root,
                       verify=not args.no_verify, seed=args.seed)
        drift = drift_run(run, attack=args.attack, n_compute=args.n_drift, device=device, data_root=args.data_root,
                          verify=not args.no_verify, seed=args.seed)
    print(f"grid: {res['png']}")
    print(f"tensors: {res['tensors']}")
    print(f"adversarial examples from: {res['source']}")
    print(f"per layer, on {drift['n']} adversarial examples ({drift['n_fooled']} fooled f):")
    print("  layer    explanation -> adversarial label (fooled ones)   explanation -> true label (Acc_i)")
    for layer, r in drift["layers"].items():
        to_adv = "-" if r["adversarial_label"] is None else f"{r['adversarial_label']:.2%}"
        print(f"  {layer:8s} {to_adv:>45s}   {r['accuracy']:.2%}")
    return 0


def add_parser(sub: Any) -> None:
    p = sub.add_parser("explain", help="InterpretGAN explainers: train per-layer explainers, draw grids")
    esub = p.add_subparsers(dest="explain_command", metavar="SUBCOMMAND", required=True)
    q = esub.add_parser("train", help="train the explainers of a classifier run into a new run folder")
    add_common(q)
    q.add_argument("run", nargs="?", help="the classifier's train run folder (or --model REF --weights FILE)")
    add_model_options(q)
    q.add_argument("--resume", metavar="EXPLAIN_RUN", help="continue an interrupted explainer run")
    q.add_argument("--preset", choices=PRESET_NAMES, help="default: cpu")
    q.add_argument("--separate", action="store_true", help="train the layers one after another (the paper's way)")
    q.add_argument("--fuse", action="store_true", help="run all layers' G and D as grouped convolutions (GPU)")
    q.add_argument("--no-eval", action="store_true", help="skip the consistency / Frechet evaluation")
    add_config_options(q, ExplainConfig)
    q.set_defaults(func=cmd_explain_train, torchrun=True)
    q = esub.add_parser("show", help="the paper's Fig. 3 grid (natural vs adversarial, one column per layer)")
    add_common(q, out=False)
    q.add_argument("run", help="an explainer run folder")
    q.add_argument("--attack", default="pgd", help="the attack whose D* to explain (default: pgd, the paper's PGD-40)")
    q.add_argument("--n", type=int, default=8, help="examples in the grid")
    q.add_argument("--n-drift", type=int, default=1000, help="adversarial examples for the per-layer drift table")
    q.add_argument("--seed", type=int, default=0)
    q.set_defaults(func=cmd_explain_show)

