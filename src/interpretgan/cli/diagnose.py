"""``interpretgan diagnose`` and ``interpretgan baselines``: Table 1, and the Captum attributions beside it."""

from __future__ import annotations

import argparse
from typing import Any

from interpretgan.cli.common import add_common, device_of, run_arg


def cmd_diagnose(args: argparse.Namespace) -> int:
    from interpretgan.config import check_seed
    from interpretgan.pipeline.diagnose import diagnose_run
    from interpretgan.report.markdown import vulnerability_markdown

    check_seed(args.seed)
    runs = [run_arg(args, r, "explain") for r in args.runs]
    res = diagnose_run(runs, attack=args.attack, n_compute=args.n, n_boot=args.n_boot, seed=args.seed,
                       device=device_of(args.device), data_root=args.data_root, verify=not args.no_verify,
                       out_dir=args.out_dir)
    print(
        f"D*: {res['n']} examples ({res['runs'][0]['source']}); "
        f"f's accuracy on D* {res['runs'][0]['input_accuracy']:.2%}"
    )
    print(vulnerability_markdown(res["table"]))
    for name, e in res["index_change"].items():
        paper = f" (paper {e['paper']:.1%})" if "paper" in e else ""
        print(f"max-pool index change {name}: {e['fraction']:.1%}{paper}")
    for key, path in res["files"].items():
        print(f"{key}: {path}")
    return 0


def cmd_baselines(args: argparse.Namespace) -> int:
    from interpretgan.baselines import METHODS
    from interpretgan.config import check_seed
    from interpretgan.pipeline.baselines import baselines_run

    check_seed(args.seed)
    methods = [m.strip() for m in args.methods.split(",")] if args.methods else list(METHODS)
    run = run_arg(args, args.run, "explain")
    res = baselines_run(run, attack=args.attack, n=args.n, methods=methods, device=device_of(args.device),
                        data_root=args.data_root, verify=not args.no_verify, seed=args.seed, out_dir=args.out_dir)
    print(f"figure: {res['png']}")
    print(f"tensors: {res['tensors']}")
    return 0


def add_diagnose_parser(sub: Any) -> None:
    p = sub.add_parser("diagnose", help="per-layer accuracy and vulnerability (Table 1), index change, transitions")
    add_common(p, out=False)
    p.add_argument("runs", nargs="+", metavar="EXPLAIN_RUN", help="explain run(s) of one classifier (several: seeds)")
    p.add_argument("--attack", default="pgd", help="the attack of D* (default: pgd, the paper's PGD-40)")
    p.add_argument("--n", type=int, default=1000, help="test images to attack when the classifier run has no D*")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples for the intervals (0: none)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out-dir", help="where to write (default: <first run>/diagnose-<attack>)")
    p.set_defaults(func=cmd_diagnose)



def add_baselines_parser(sub: Any) -> None:
    p = sub.add_parser("baselines", help="Captum attributions beside the InterpretGAN explanations (Fig. 3/5)")
    add_common(p, out=False)
    p.add_argument("run", help="an explainer run folder")
    p.add_argument("--attack", default="pgd")
    p.add_argument("--n", type=int, default=4)
    p.add_argument(
        "--methods", help="comma-separated subset of deeplift,saliency,input_x_gradient,integrated_gradients,occlusion"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out-dir", help="where to write (default: the run folder)")
    p.set_defaults(func=cmd_baselines)

