"""``interpretgan study pooling``: max vs average pooling under trades+atta (Tables 2 and 3);
``interpretgan study ablation``: what the GAN prior and the interpretability term contribute (issue 31)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from interpretgan.cli.common import add_common, count_or_all, device_of, int_list, run_arg, split_list
from interpretgan.config import PRESET_NAMES


def cmd_study_pooling(args: argparse.Namespace) -> int:
    from interpretgan.pipeline.runs import runs_root
    from interpretgan.pipeline.study import pooling_study
    from interpretgan.report.markdown import pooling_markdown

    seeds = int_list("--seeds", args.seeds)
    out = (
        Path(args.folder)
        if args.folder
        else runs_root(args.out) / f"study-pooling-{args.dataset}-{args.model}-{args.preset}"
    )
    res = pooling_study(
        args.dataset,
        args.model,
        args.preset,
        seeds=seeds,
        out=out,
        n_eval=-1 if args.n is None else args.n,
        device=device_of(args.device),
        data_root=args.data_root,
        verify=not args.no_verify,
        progress=not args.no_progress,
        autoattack_n=-1 if args.autoattack_n is None else count_or_all("--autoattack-n", args.autoattack_n),
        autoattack=args.autoattack,
    )
    print(pooling_markdown(res["table"], f"{args.model}: max vs avg pooling"))
    print(f"written to {res['folder']}")
    return 0


def cmd_study_ablation(args: argparse.Namespace) -> int:
    from interpretgan.pipeline.ablation import ablation_study, check_arms
    from interpretgan.pipeline.runs import Run, runs_root

    arms = check_arms(split_list(args.arms)) if args.arms else None
    run = Run.open(run_arg(args, args.run, "train"), kind="train")
    out = Path(args.folder) if args.folder else runs_root(args.out) / f"study-ablation-{run.path.name}-{args.preset}"
    ablation_study(run, out=out, **({"arms": arms} if arms else {}),
                   layers=split_list(args.layers) if args.layers else None, preset=args.preset,
                   device=device_of(args.device), data_root=args.data_root, verify=not args.no_verify,
                   progress=not args.no_progress)
    print((out / "ablation.md").read_text())
    print(f"written to {out}")
    return 0


def add_parser(sub: Any) -> None:
    p = sub.add_parser("study", help="studies across trained models")
    ssub = p.add_subparsers(dest="study_command", metavar="SUBCOMMAND", required=True)
    q = ssub.add_parser("pooling", help="max vs avg pooling under trades+atta (Tables 2 and 3)")
    add_common(q)
    q.add_argument("--dataset", default="mnist", choices=("mnist", "mnist-sample", "cifar10"))
    q.add_argument("--model", default="smallcnn", choices=("smallcnn", "vgg16", "wrn34_10"))
    q.add_argument("--preset", default="cpu", choices=PRESET_NAMES)
    q.add_argument("--seeds", default="0", help="comma-separated seeds (spread over seeds when several)")
    q.add_argument("--n", type=int, help="test images attacked (default: 1000 for cpu, all for paper)")
    q.add_argument(
        "--autoattack-n",
        metavar="N|all",
        help="test images of the AutoAttack column, the first of the same "
        "subset (0: none; default: 300 for cpu, all for paper)",
    )
    q.add_argument("--autoattack", metavar="SPEC", help="the AutoAttack spec (default: autoattack; the smoke preset "
                                                        "runs autoattack-apgd5-square50)")
    q.add_argument("--folder", help="the study folder (default: <out>/study-pooling-<dataset>-<model>-<preset>); "
                                    "re-running resumes it")
    q.set_defaults(func=cmd_study_pooling)

    a = ssub.add_parser("ablation", help="each layer explained by InterpretGAN and by the arms without its GAN "
                                         "prior or its interpretability term, side by side (issue 31)")
    add_common(a)
    a.add_argument("run", help="the classifier's train run folder (or pretrained:NAME); its stored PGD-40 set is D*")
    a.add_argument("--arms", help="comma-separated, of interpretgan, gan-only, mse, mse+ce, optim (default: all)")
    a.add_argument("--layers", help="comma-separated (default: conv1,conv2,conv4,fc1 for cpu, all otherwise)")
    a.add_argument("--preset", default="cpu", choices=PRESET_NAMES)
    a.add_argument("--folder", help="the study folder (default: <out>/study-ablation-<run>-<preset>); re-running "
                                    "resumes it")
    a.set_defaults(func=cmd_study_ablation)

