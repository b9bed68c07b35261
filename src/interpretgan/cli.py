"""The ``interpretgan`` command line: parses options, builds a config, calls library functions.

Every user mistake ends in one line on stderr (``interpretgan: error: ...``) and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from interpretgan.errors import ConfigError, InterpretganError

log = logging.getLogger("interpretgan")


# --- shared option groups ------------------------------------------------------------------------
def _add_common(p: argparse.ArgumentParser, *, out: bool = True, download: bool = False,
                out_help: str = "runs folder (default: $INTERPRETGAN_RUNS or ./runs)") -> None:
    p.add_argument("--data-root", help="dataset folder (default: $INTERPRETGAN_DATA)")
    p.add_argument("--no-verify", action="store_true", help="skip md5/content checks of the datasets")
    if download:
        p.add_argument("--download", action="store_true", help="fetch missing MNIST/CIFAR-10 files from the official sources")
    if out:
        p.add_argument("--out", help=out_help)
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: auto)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("-q", "--quiet", action="store_true", help="log warnings only")


def _device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"--device '{name}' is not a device; expected cpu, cuda, cuda:N or auto") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {name} was asked for but this machine has no CUDA GPU; use --device cpu")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ConfigError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA GPU(s), numbered from 0")
    return dev


@contextmanager
def _log_to(path: Path):
    """Also write the log of this command into ``path`` (the run folder's log file)."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    try:
        yield
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()


def _remove_unresumable(path: Path | None) -> None:
    """After a failure, remove the run folder this command created unless it holds a resume state
    (a failing command leaves nothing half-made behind)."""
    if path is not None and not any((path / "ckpt").glob("state*.pt")):
        import shutil

        shutil.rmtree(path, ignore_errors=True)


def _run_arg(args: argparse.Namespace, value: Any, kind: str) -> Any:
    """A run-folder argument, with ``pretrained:NAME`` made into the zoo entry's run folder."""
    from interpretgan.pretrained.zoo import resolve_run

    return resolve_run(value, kind, data_root=getattr(args, "data_root", None))


# --- commands -----------------------------------------------------------------------------------
def cmd_models(args: argparse.Namespace) -> int:
    from interpretgan.models import create_model, list_models, model_class

    if args.name is None:
        for name in list_models():
            doc = (model_class(name).__doc__ or "").strip().splitlines()[0]
            print(f"{name:10s} {doc}")
        return 0
    kwargs: dict[str, Any] = {"image_size": args.image_size}
    if args.in_channels is not None:
        kwargs["in_channels"] = args.in_channels
    if args.pool:
        kwargs["pool"] = args.pool
    model = create_model(args.name, **kwargs)
    if args.layers:
        print(f"{args.name} taps for a {model.config['in_channels']}x{args.image_size}x{args.image_size} input:")
        for layer, shape in model.tap_shapes(args.image_size).items():
            print(f"  {layer:8s} {tuple(shape)}")
    n = sum(p.numel() for p in model.parameters())
    print(f"{args.name}: {n:,} parameters, pooling {model.config['pool']}, layers {', '.join(model.layer_names)}")
    return 0


def cmd_data_check(args: argparse.Namespace) -> int:
    from interpretgan.data import check_datasets, resolve_data_root

    root = resolve_data_root(args.data_root)
    if root is not None and not root.is_dir():
        raise ConfigError(f"data root {root} is not a folder; expected --data-root or INTERPRETGAN_DATA to name "
                          "the folder holding the datasets")
    rows = check_datasets(root, verify=not args.no_verify)
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0 if all(r["ok"] for r in rows) else 1
    print(f"data root: {root if root else '(none: set --data-root or INTERPRETGAN_DATA)'}")
    for r in rows:
        counts = ", ".join(f"{k} {v}" for k, v in (r.get("counts") or {}).items())
        print(f"  {r['name']:13s} {counts or '-':36s} {r['verdict']}")
        if r.get("summary"):
            print(f"  {'':13s} {r['summary']}")
    return 0 if all(r["ok"] for r in rows) else 1


def _int_list(option: str, text: str) -> list[int]:
    """``"400,400,600"`` -> ``[400, 400, 600]``, or one sentence naming the option."""
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"{option} '{text}' is not a comma-separated list of integers; expected e.g. 0,1,2") from None


def _count_or_all(option: str, text: str | None) -> int | None:
    """``"300"`` -> 300, ``"all"`` -> None (every image), or one sentence naming the option."""
    if text is None or text.strip().lower() == "all":
        return None
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"{option} '{text}' is not a number of images; expected an integer >= 0 or 'all'") from None


def _refuse_with_resume(args: argparse.Namespace, options: dict[str, Any]) -> None:
    """``--resume`` continues a run with its recorded settings: options that would change them are refused."""
    given = ["RUN" if k == "run" else f"--{k.replace('_', '-')}" for k, v in options.items() if v not in (None, False)]
    if given:
        raise ConfigError(f"--resume continues {args.resume} with its recorded settings; {', '.join(given)} "
                          "would be ignored: drop them, or start a new run")


def _train_overrides(args: argparse.Namespace) -> dict[str, Any]:
    keys = ("model", "pool", "seed", "epochs", "batch_size", "lr", "n_train", "n_test", "image_size",
            "eps", "attack_step", "attack_steps", "inner_loss", "kl_target", "beta", "checkpoint_every")
    return {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}


def _check_model_options(cfg) -> None:
    """Build the model once on the meta device, so a bad name or option fails before a run folder exists."""
    import torch

    from interpretgan.data import dataset_info
    from interpretgan.models import create_model

    info = dataset_info(cfg.dataset)
    with torch.device("meta"):
        create_model(cfg.model, **cfg.model_options(info.num_classes, info.channels))


def cmd_train(args: argparse.Namespace) -> int:
    from interpretgan.config import TrainConfig, resolve_train_config
    from interpretgan.pipeline.runs import Run, check_runs_root, runs_root, stored_config
    from interpretgan.pipeline.train import fit
    from interpretgan.training import load_train_data

    device = _device(args.device)
    if args.resume:
        _refuse_with_resume(args, {"dataset": args.dataset, "objective": args.objective, "preset": args.preset,
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
        _check_model_options(cfg)
    # Data problems end the command before a run folder is made.
    data = load_train_data(cfg, args.data_root, verify=not args.no_verify, download=args.download)
    created = run is None
    if run is None:
        desc = f"{cfg.dataset}-{cfg.model}-{cfg.pool}-{cfg.objective}-{cfg.preset}"
        run = Run.create(runs_root(args.out), desc, "train", cfg.to_dict())
    print(f"run folder: {run.path}")
    try:
        with _log_to(run.path / "train.log"):
            res = fit(cfg, run, device=device, data=data, resume=bool(args.resume), progress=not args.no_progress)
    except KeyboardInterrupt:
        print(f"\ninterrupted; continue with: interpretgan train --resume {run.path}", file=sys.stderr)
        return 130
    except BaseException:
        _remove_unresumable(run.path if created else None)
        raise
    print(f"clean test accuracy {res['clean_accuracy']:.2%} on {res['n_test']} images "
          f"({res['train_seconds']:.0f} s of training); results in {run.path / 'results.json'}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from interpretgan.config import TrainConfig
    from interpretgan.data import dataset_info, load_dataset
    from interpretgan.pipeline.runs import Run, load_model, stored_config
    from interpretgan.training import evaluate

    device = _device(args.device)
    run = Run.open(_run_arg(args, args.run, "train"), kind="train")
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


def cmd_attack(args: argparse.Namespace) -> int:
    from interpretgan.pipeline.attack import format_results, plan_attack, run_attack_plan
    from interpretgan.pipeline.runs import Run

    run = Run.open(_run_arg(args, args.run, "train"), kind="train")
    # Everything is checked before the log (or anything else) is written.
    plan = plan_attack(
        run, args.attack or ["pgd"], split=args.split, n=args.n, eps=args.eps, alpha=args.alpha, steps=args.steps,
        random_start=not args.no_random_start, restarts=args.restarts, loss=args.loss, batch_size=args.batch_size,
        device=_device(args.device), data_root=args.data_root, verify=not args.no_verify,
        progress=not args.no_progress, seed=args.seed, crosscheck=args.crosscheck,
    )
    with _log_to(run.path / "attack.log"):
        res = run_attack_plan(plan)
    print(format_results(res))
    return 0


def cmd_explain_train(args: argparse.Namespace) -> int:
    from interpretgan.config import resolve_explain_config
    from interpretgan.data import load_dataset
    from interpretgan.pipeline.explain import create_explain_run, format_results, train_run
    from interpretgan.pipeline.runs import Run, check_runs_root, runs_root

    device = _device(args.device)
    if args.resume:
        _refuse_with_resume(args, {"run": args.run, "preset": args.preset, "out": args.out, "layers": args.layers,
                                   "separate": args.separate, "fuse": args.fuse, "seed": args.seed, "batch_size": args.batch_size,
                                   "scale_iterations": args.scale_iterations, "n_train": args.n_train, "n_test": args.n_test})
        run = Run.open(args.resume, kind="explain")
        if (run.path / "results.json").is_file():
            print(f"{run.path} finished training and evaluating its explainers before (results.json); nothing to resume")
            return 0
    else:
        check_runs_root(runs_root(args.out))
        if not args.run:
            raise ConfigError("explain train needs a classifier run folder (or --resume EXPLAIN_RUN)")
        cls_run = Run.open(_run_arg(args, args.run, "train"), kind="train")
        overrides = {
            "layers": [s.strip() for s in args.layers.split(",") if s.strip()] if args.layers else None,
            "joint": False if args.separate else None,
            "fuse": True if args.fuse else None,
            "seed": args.seed,
            "batch_size": args.batch_size,
            "scale_iterations": _int_list("--scale-iterations", args.scale_iterations) if args.scale_iterations else None,
            "n_train": args.n_train,
            "n_test": args.n_test,
        }
        if overrides["scale_iterations"] is not None:
            overrides["scale_epochs"] = []
        cfg = resolve_explain_config(cls_run.config["dataset"], args.preset or "cpu", overrides)
        # Data problems end the command before a run folder is made (training then reads the cache).
        load_dataset(cfg.dataset, "train", root=args.data_root, image_size=int(cls_run.config.get("image_size", 32)),
                     verify=not args.no_verify)
        run = create_explain_run(cls_run, cfg, runs_root(args.out))
    print(f"explainer run folder: {run.path}")
    try:
        with _log_to(run.path / "explain.log"):
            res = train_run(run, device=device, data_root=args.data_root, verify=not args.no_verify,
                            resume=bool(args.resume), progress=not args.no_progress, evaluate=not args.no_eval)
    except KeyboardInterrupt:
        print(f"\ninterrupted; continue with: interpretgan explain train --resume {run.path}", file=sys.stderr)
        return 130
    except BaseException:
        _remove_unresumable(None if args.resume else run.path)
        raise
    print(format_results(res))
    return 0


def cmd_explain_show(args: argparse.Namespace) -> int:
    from interpretgan.config import check_seed
    from interpretgan.pipeline.explain import drift_run, load_explainers, show_run
    from interpretgan.pipeline.runs import Run

    run = Run.open(_run_arg(args, args.run, "explain"), kind="explain")
    device = _device(args.device)
    # The grid is written before the drift table: check what would make the second fail first.
    check_seed(args.seed)
    for option, value in (("--n", args.n), ("--n-drift", args.n_drift)):
        if value < 1:
            raise ConfigError(f"{option} must be at least 1, got {value}")
    load_explainers(run, device, finished=True)
    with _log_to(run.path / "explain.log"):
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


def cmd_diagnose(args: argparse.Namespace) -> int:
    from interpretgan.config import check_seed
    from interpretgan.pipeline.diagnose import diagnose_run
    from interpretgan.report.markdown import vulnerability_markdown

    check_seed(args.seed)
    runs = [_run_arg(args, r, "explain") for r in args.runs]
    res = diagnose_run(runs, attack=args.attack, n_compute=args.n, n_boot=args.n_boot, seed=args.seed,
                       device=_device(args.device), data_root=args.data_root, verify=not args.no_verify,
                       out_dir=args.out_dir)
    print(f"D*: {res['n']} examples ({res['runs'][0]['source']}); f's accuracy on D* {res['runs'][0]['input_accuracy']:.2%}")
    print(vulnerability_markdown(res["table"]))
    for name, e in res["index_change"].items():
        paper = f" (paper {e['paper']:.1%})" if "paper" in e else ""
        print(f"max-pool index change {name}: {e['fraction']:.1%}{paper}")
    for key, path in res["files"].items():
        print(f"{key}: {path}")
    return 0


def cmd_study_pooling(args: argparse.Namespace) -> int:
    from interpretgan.pipeline.runs import runs_root
    from interpretgan.pipeline.study import pooling_study
    from interpretgan.report.markdown import pooling_markdown

    seeds = _int_list("--seeds", args.seeds)
    out = Path(args.folder) if args.folder else runs_root(args.out) / f"study-pooling-{args.dataset}-{args.model}-{args.preset}"
    res = pooling_study(args.dataset, args.model, args.preset, seeds=seeds, out=out,
                        n_eval=-1 if args.n is None else args.n, device=_device(args.device), data_root=args.data_root,
                        verify=not args.no_verify, progress=not args.no_progress,
                        autoattack_n=-1 if args.autoattack_n is None else _count_or_all("--autoattack-n", args.autoattack_n),
                        autoattack=args.autoattack)
    print(pooling_markdown(res["table"], f"{args.model}: max vs avg pooling"))
    print(f"written to {res['folder']}")
    return 0


def cmd_baselines(args: argparse.Namespace) -> int:
    from interpretgan.baselines import METHODS
    from interpretgan.config import check_seed
    from interpretgan.pipeline.baselines import baselines_run

    check_seed(args.seed)
    methods = [m.strip() for m in args.methods.split(",")] if args.methods else list(METHODS)
    run = _run_arg(args, args.run, "explain")
    res = baselines_run(run, attack=args.attack, n=args.n, methods=methods, device=_device(args.device),
                        data_root=args.data_root, verify=not args.no_verify, seed=args.seed, out_dir=args.out_dir)
    print(f"figure: {res['png']}")
    print(f"tensors: {res['tensors']}")
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    from interpretgan.pipeline.reproduce import reproduce

    t0 = time.perf_counter()
    res = reproduce(args.target, args.preset, out=args.out, device=_device(args.device), data_root=args.data_root,
                    verify=not args.no_verify, progress=not args.no_progress)
    print(f"reproduce {args.target} ({args.preset}) finished: this command {time.perf_counter() - t0:.0f} s, all stages "
          f"{sum(res['seconds'].values()):.0f} s (stages finished before a resume keep their first time); stage times:")
    for stage, seconds in res["seconds"].items():
        print(f"  {stage:32s} {seconds:8.0f} s")
    for key in ("report_md", "report_html", "results"):
        print(f"{key.replace('_', ' ')}: {res[key]}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from interpretgan.demo import run_demo

    t0 = time.perf_counter()
    out = run_demo(out=args.out, data_root=args.data_root, preset=args.preset, device=_device(args.device),
                   verify=not args.no_verify, progress=not args.no_progress, train=args.train)
    print(f"demo finished in {time.perf_counter() - t0:.0f} s")
    for label, path in out.items():
        print(f"  {label}: {path}")
    return 0


def cmd_pretrained(args: argparse.Namespace) -> int:
    from interpretgan.pretrained import list_pretrained

    if args.pretrained_command == "refresh":
        from interpretgan.pretrained.refresh import refresh_zoo

        out = refresh_zoo(args.folder, commit=args.commit, data_root=args.data_root, verify=not args.no_verify,
                          device=_device(args.device), progress=not args.no_progress, n_attack=args.n_attack)
        print(f"zoo refreshed from {args.folder}: {', '.join(out)}")
        return 0
    entries = list_pretrained()
    if args.json:
        print(json.dumps(entries, indent=2))
        return 0
    for e in entries:
        full, sample = e["figures"].get("mnist", {}), e["figures"].get("mnist-sample", {})
        print(f"pretrained:{e['name']}  ({e['kind']}; {e['command']}, commit {e['commit'][:10]})")
        if e["kind"] == "classifier":
            print(f"    MNIST test ({full.get('n')}): clean {full['clean']:.2%}, PGD-40 {full['pgd40']:.2%}   "
                  f"sample ({sample.get('n')}): clean {sample['clean']:.2%}, PGD-40 {sample['pgd40']:.2%}")
        else:
            layers = full["layers"]
            print(f"    explains pretrained:{e['classifier']}; on the MNIST test set ({full['n']}), per layer "
                  "consistency / Frechet distance (real-vs-real floor "
                  f"{full['frechet_floor']:.1f}):")
            print("    " + "  ".join(f"{n} {v['consistency']:.1%} / {v['frechet']:.1f}" for n, v in layers.items()))
    return 0


# --- parser -------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    from interpretgan import __version__
    from interpretgan.config import INNER_LOSSES, KL_TARGETS, OBJECTIVES, PRESET_NAMES

    parser = argparse.ArgumentParser(prog="interpretgan", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"interpretgan {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("demo", help="the whole chain on the pretrained zoo (no GPU, no download, no training)")
    _add_common(p)
    p.add_argument("--preset", choices=("smoke", "cpu"), default="cpu")
    p.add_argument("--train", action="store_true",
                   help="train everything from scratch on a miniature schedule instead of loading the zoo")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("pretrained", help="the shipped zoo (use pretrained:NAME wherever a run folder is taken)")
    p.add_argument("--json", action="store_true", help="print the provenance records as JSON")
    psub = p.add_subparsers(dest="pretrained_command", metavar="SUBCOMMAND")
    q = psub.add_parser("refresh", help="rebuild the zoo from a finished `reproduce mnist` folder (from a source checkout)")
    _add_common(q, out=False)
    q.add_argument("folder", help="the reproduce mnist folder (e.g. runs/reproduce-mnist-cpu)")
    q.add_argument("--commit", required=True, help="the git commit the reproduction ran at (recorded in the provenance)")
    q.add_argument("--n-attack", type=int, help="MNIST test images attacked with PGD-40 (default: all 10,000)")
    p.set_defaults(func=cmd_pretrained)

    p = sub.add_parser("models", help="list the model registry, or one model's layers")
    p.add_argument("name", nargs="?")
    p.add_argument("--layers", action="store_true", help="print each tap's name and output shape")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--in-channels", type=int)
    p.add_argument("--pool", choices=("max", "avg"))
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("data", help="dataset tools")
    dsub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)
    q = dsub.add_parser("check", help="counts and integrity of every dataset found")
    q.add_argument("--data-root")
    q.add_argument("--no-verify", action="store_true")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_data_check)

    p = sub.add_parser("train", help="train a classifier into a new run folder")
    _add_common(p, download=True)
    p.add_argument("--dataset", help="mnist, mnist-sample, cifar10 or celeba (default: mnist)")
    p.add_argument("--model", help="registry name (default: smallcnn for MNIST, vgg16 otherwise)")
    p.add_argument("--pool", choices=("max", "avg"))
    p.add_argument("--objective", choices=OBJECTIVES, help="default: natural")
    p.add_argument("--preset", choices=PRESET_NAMES, help="default: cpu")
    p.add_argument("--resume", metavar="RUN", help="continue an interrupted run folder")
    for name, typ in (("seed", int), ("epochs", int), ("batch-size", int), ("lr", float), ("n-train", int),
                      ("n-test", int), ("image-size", int), ("eps", float), ("attack-step", float),
                      ("attack-steps", int), ("beta", float), ("checkpoint-every", int)):
        p.add_argument(f"--{name}", type=typ)
    p.add_argument("--inner-loss", choices=INNER_LOSSES,
                   help="the inner attack's loss (default: KL for trades objectives, CE otherwise; "
                        "ATTA's reference code uses ce with trades+atta)")
    p.add_argument("--kl-target", choices=KL_TARGETS,
                   help="the TRADES KL term's f(x): the cross-entropy term's forward pass (shared, ATTA's code; "
                        "default) or a forward pass of its own with a fresh dropout mask (separate, TRADES' code)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("attack", help="robust accuracy, adversarial sets and label transitions of a trained run")
    _add_common(p, out=False)
    p.add_argument("run")
    p.add_argument("--attack", action="append", metavar="SPEC",
                   help="pgd, mpgd or fgsm, optionally with steps (pgd-100); apgd-ce, apgd-dlr, apgd-t (100 steps), "
                        "square (5,000 queries: square-1000 for fewer) or autoattack (APGD-CE, APGD-T, Square; "
                        "FAB-T not included); repeat for several (default: pgd)")
    p.add_argument("--eps", type=float, help="l-inf radius (default: the paper's for the dataset, e.g. 0.3 for MNIST)")
    p.add_argument("--alpha", type=float, help="step size (default: 0.01 MNIST, 2/255 CIFAR-10, 0.5/255 CelebA)")
    p.add_argument("--steps", type=int, help="steps when a spec gives none (default: 40 MNIST, 20 otherwise)")
    p.add_argument("--no-random-start", action="store_true")
    p.add_argument("--restarts", type=int, default=1, metavar="R",
                   help="random restarts (all but fgsm): an image is robust only if it survives all R (default: 1)")
    p.add_argument("--loss", default="ce", help="the loss of pgd/mpgd/fgsm: ce (cross-entropy), cw (Carlini-Wagner margin) or dlr")
    p.add_argument("--split", default="test")
    p.add_argument("--n", type=int, help="attack a seeded subset of this size (default: the whole split)")
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--crosscheck", type=int, default=0, metavar="N",
                   help="also run captum.robust.PGD on the first N examples and report both accuracies")
    p.set_defaults(func=cmd_attack)

    p = sub.add_parser("explain", help="InterpretGAN explainers: train per-layer explainers, draw grids")
    esub = p.add_subparsers(dest="explain_command", metavar="SUBCOMMAND", required=True)
    q = esub.add_parser("train", help="train the explainers of a classifier run into a new run folder")
    _add_common(q)
    q.add_argument("run", nargs="?", help="the classifier's train run folder")
    q.add_argument("--resume", metavar="EXPLAIN_RUN", help="continue an interrupted explainer run")
    q.add_argument("--preset", choices=PRESET_NAMES, help="default: cpu")
    q.add_argument("--layers", help="comma-separated layer names (default: all)")
    q.add_argument("--separate", action="store_true", help="train the layers one after another (the paper's way)")
    q.add_argument("--fuse", action="store_true", help="run all layers' G and D as grouped convolutions (GPU)")
    q.add_argument("--scale-iterations", help="iterations per scale, comma-separated (4x4 first)")
    q.add_argument("--no-eval", action="store_true", help="skip the consistency / Frechet evaluation")
    for name, typ in (("seed", int), ("batch-size", int), ("n-train", int), ("n-test", int)):
        q.add_argument(f"--{name}", type=typ)
    q.set_defaults(func=cmd_explain_train)
    q = esub.add_parser("show", help="the paper's Fig. 3 grid (natural vs adversarial, one column per layer)")
    _add_common(q, out=False)
    q.add_argument("run", help="an explainer run folder")
    q.add_argument("--attack", default="pgd", help="the attack whose D* to explain (default: pgd, the paper's PGD-40)")
    q.add_argument("--n", type=int, default=8, help="examples in the grid")
    q.add_argument("--n-drift", type=int, default=1000, help="adversarial examples for the per-layer drift table")
    q.add_argument("--seed", type=int, default=0)
    q.set_defaults(func=cmd_explain_show)

    p = sub.add_parser("diagnose", help="per-layer accuracy and vulnerability (Table 1), index change, transitions")
    _add_common(p, out=False)
    p.add_argument("runs", nargs="+", metavar="EXPLAIN_RUN", help="explain run(s) of one classifier (several: seeds)")
    p.add_argument("--attack", default="pgd", help="the attack of D* (default: pgd, the paper's PGD-40)")
    p.add_argument("--n", type=int, default=1000, help="test images to attack when the classifier run has no D*")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples for the intervals (0: none)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out-dir", help="where to write (default: <first run>/diagnose-<attack>)")
    p.set_defaults(func=cmd_diagnose)

    p = sub.add_parser("study", help="studies across trained models")
    ssub = p.add_subparsers(dest="study_command", metavar="SUBCOMMAND", required=True)
    q = ssub.add_parser("pooling", help="max vs avg pooling under trades+atta (Tables 2 and 3)")
    _add_common(q)
    q.add_argument("--dataset", default="mnist", choices=("mnist", "mnist-sample", "cifar10"))
    q.add_argument("--model", default="smallcnn", choices=("smallcnn", "vgg16", "wrn34_10"))
    q.add_argument("--preset", default="cpu", choices=PRESET_NAMES)
    q.add_argument("--seeds", default="0", help="comma-separated seeds (spread over seeds when several)")
    q.add_argument("--n", type=int, help="test images attacked (default: 1000 for cpu, all for paper)")
    q.add_argument("--autoattack-n", metavar="N|all", help="test images of the AutoAttack column, the first of the same "
                                                           "subset (0: none; default: 300 for cpu, all for paper)")
    q.add_argument("--autoattack", metavar="SPEC", help="the AutoAttack spec (default: autoattack; the smoke preset "
                                                        "runs autoattack-apgd5-square50)")
    q.add_argument("--folder", help="the study folder (default: <out>/study-pooling-<dataset>-<model>-<preset>); "
                                    "re-running resumes it")
    q.set_defaults(func=cmd_study_pooling)

    p = sub.add_parser("baselines", help="Captum attributions beside the InterpretGAN explanations (Fig. 3/5)")
    _add_common(p, out=False)
    p.add_argument("run", help="an explainer run folder")
    p.add_argument("--attack", default="pgd")
    p.add_argument("--n", type=int, default=4)
    p.add_argument("--methods", help="comma-separated subset of deeplift,saliency,input_x_gradient,integrated_gradients,occlusion")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out-dir", help="where to write (default: the run folder)")
    p.set_defaults(func=cmd_baselines)

    p = sub.add_parser("reproduce", help="the paper's results in one command, with report.md/html and results.json",
                       description="Run the chain of stages for TARGET into one folder: --out DIR names it (default: "
                                   "<runs root>/reproduce-TARGET-PRESET); re-running the same command skips finished stages.")
    _add_common(p, out_help="the chain's own folder (default: $INTERPRETGAN_RUNS or ./runs, then reproduce-TARGET-PRESET)")
    p.add_argument("target", choices=("mnist", "cifar10", "celeba"))
    p.add_argument("--preset", default="cpu", choices=PRESET_NAMES)
    p.set_defaults(func=cmd_reproduce)

    p = sub.add_parser("eval", help="clean accuracy of a trained run")
    _add_common(p, out=False, download=True)
    p.add_argument("run")
    p.add_argument("--split", default="test")
    p.add_argument("--n", type=int, help="evaluate on a seeded subset of this size")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_eval)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    logging.basicConfig(
        level=logging.WARNING if getattr(args, "quiet", False) else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return args.func(args)
    except InterpretganError as err:
        print(f"interpretgan: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # a full disk, a read-only folder: the system's reason, with the file it concerns
        where = f" {err.filename}" if err.filename else ""
        print(f"interpretgan: error: could not write or read{where} ({err.strerror or err}); expected a writable "
              "folder with free space", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterpretgan: interrupted; run the same command again to resume where it stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
