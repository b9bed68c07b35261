"""``interpretgan train`` and ``interpretgan eval``: a classifier into a run folder, and its clean accuracy."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from interpretgan.cli.common import (
    add_common,
    add_config_options,
    config_overrides,
    device_of,
    log_to,
    refuse_with_resume,
    remove_unresumable,
    run_arg,
    split_list,
)
from interpretgan.config import OBJECTIVES, PRESET_NAMES, TrainConfig, is_reference


def _train_overrides(args: argparse.Namespace) -> dict[str, Any]:
    out = {**config_overrides(args, TrainConfig), **({} if args.model is None else {"model": args.model})}
    if getattr(args, "weights", None) is not None:
        from interpretgan.pipeline.train import weights_file

        out["weights"] = weights_file(args.weights)
    if getattr(args, "layers", None):
        out["model_kwargs"] = {"layers": split_list(args.layers)}
    if is_reference(out.get("model")):
        from interpretgan.models.external import normalise_reference

        out["model"] = normalise_reference(out["model"])  # runs store the file's absolute path
        out.setdefault("model_kwargs", {})  # the presets' model_kwargs size the registered models, not this one
    return out


def cmd_train(args: argparse.Namespace) -> int:
    from interpretgan.config import TrainConfig
    from interpretgan.config.presets import resolve_train_config
    from interpretgan.pipeline.runs import Run, check_runs_root, runs_root, stored_config
    from interpretgan.pipeline.train import check_model_options, fit
    from interpretgan.training import load_train_data

    device = device_of(args.device)
    if args.resume:
        refuse_with_resume(args, {"dataset": args.dataset, "objective": args.objective, "preset": args.preset,
                                   "out": args.out, **_train_overrides(args)})
    run = Run.open(args.resume, kind="train") if args.resume else None
    if run is not None:
        cfg = stored_config(run, TrainConfig)
        if (run.path / "results.json").is_file():
            print(f"{run.path} finished training before (results.json); nothing to resume")
            return 0
    else:
        check_runs_root(runs_root(args.out))
        cfg = resolve_train_config(args.dataset or "mnist", args.objective or "natural", args.preset or "cpu",
                                   _train_overrides(args))
        check_model_options(cfg)
    # Data problems end the command before a run folder is made.
    data = load_train_data(cfg, args.data_root, verify=not args.no_verify, download=args.download)
    created = run is None
    if run is None:
        model = cfg.model.rpartition(":")[2] if is_reference(cfg.model) else f"{cfg.model}-{cfg.pool}"
        desc = f"{cfg.dataset}-{model}-{cfg.objective}-{cfg.preset}"
        run = Run.create(runs_root(args.out), desc, "train", cfg.to_dict())
    print(f"run folder: {run.path}")
    try:
        with log_to(run.path / "train.log"):
            res = fit(cfg, run, device=device, data=data, resume=bool(args.resume), progress=not args.no_progress)
    except KeyboardInterrupt:
        print(f"\ninterrupted; continue with: interpretgan train --resume {run.path}", file=sys.stderr)
        return 130
    except BaseException:
        remove_unresumable(run.path if created else None)
        raise
    print(f"clean test accuracy {res['clean_accuracy']:.2%} on {res['n_test']} images "
          f"({res['train_seconds']:.0f} s of training); results in {run.path / 'results.json'}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from interpretgan.config import TrainConfig
    from interpretgan.data import dataset_info, load_dataset
    from interpretgan.pipeline.checkpoints import load_model
    from interpretgan.pipeline.runs import Run, stored_config
    from interpretgan.training import evaluate

    device = device_of(args.device)
    run = Run.open(run_arg(args, args.run, "train"), kind="train")
    cfg = stored_config(run, TrainConfig)
    model = load_model(run.path, device, expected=cfg.model_spec())
    ds = load_dataset(cfg.dataset, args.split, root=args.data_root, image_size=cfg.image_size,
                      verify=not args.no_verify, download=args.download)
    ds = ds.subset(args.n, seed=cfg.seed)
    res = evaluate(model, ds.x.to(device), ds.y.to(device), cfg.eval_batch_size, dataset_info(cfg.dataset).num_classes)
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        per = "  ".join(f"{c}:{a:.1%}" for c, a in zip(ds.classes, res["per_class_accuracy"]))
        print(f"{run.path.name}: clean {args.split} accuracy {res['accuracy']:.2%} on {res['n']} images")
        print(f"  per class: {per}")
    return 0


def add_train_parser(sub: Any) -> None:
    p = sub.add_parser("train", help="train a classifier into a new run folder")
    add_common(p, download=True)
    p.add_argument("--dataset", help="mnist, mnist-sample, cifar10 or celeba (default: mnist)")
    p.add_argument("--model", help="registry name (default: smallcnn for MNIST, vgg16 otherwise), or your own "
                                   "classifier as path/to/file.py:build or package.module:build (a callable that "
                                   "takes no arguments and returns the nn.Module)")
    p.add_argument("--weights", help="starting weights of a --model reference (its state_dict as safetensors); "
                                     "with --epochs 0 the run holds them as they are")
    p.add_argument(
        "--layers",
        help="module paths of a --model reference to tap, comma-separated (e.g. features.2,features.5); "
        "explain train can choose others",
    )
    p.add_argument("--objective", choices=OBJECTIVES, help="default: natural")
    p.add_argument("--preset", choices=PRESET_NAMES, help="default: cpu")
    p.add_argument("--resume", metavar="RUN", help="continue an interrupted run folder")
    add_config_options(p, TrainConfig)
    p.set_defaults(func=cmd_train, torchrun=True)



def add_eval_parser(sub: Any) -> None:
    p = sub.add_parser("eval", help="clean accuracy of a trained run")
    add_common(p, out=False, download=True)
    p.add_argument("run")
    p.add_argument("--split", default="test")
    p.add_argument("--n", type=int, help="evaluate on a seeded subset of this size")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_eval)
