"""``interpretgan attack``: robust accuracy, adversarial sets and label transitions of a train run."""

from __future__ import annotations

import argparse
from typing import Any

from interpretgan.cli.common import add_common, add_model_options, classifier_run_arg, device_of, log_to
from interpretgan.devices import PRECISIONS


def cmd_attack(args: argparse.Namespace) -> int:
    from interpretgan.pipeline.attack import format_results, plan_attack, run_attack_plan
    from interpretgan.pipeline.runs import Run

    run = Run.open(classifier_run_arg(args), kind="train")
    # Everything is checked before the log (or anything else) is written.
    plan = plan_attack(
        run, args.attack or ["pgd"], split=args.split, n=args.n, eps=args.eps, alpha=args.alpha, steps=args.steps,
        random_start=not args.no_random_start, restarts=args.restarts, loss=args.loss, batch_size=args.batch_size,
        device=device_of(args.device), data_root=args.data_root, verify=not args.no_verify,
        progress=not args.no_progress, seed=args.seed, crosscheck=args.crosscheck,
        precision=args.precision, channels_last=args.channels_last, compile=args.compile,
    )
    with log_to(run.path / "attack.log"):
        res = run_attack_plan(plan)
    print(format_results(res))
    return 0


def add_parser(sub: Any) -> None:
    p = sub.add_parser("attack", help="robust accuracy, adversarial sets and label transitions of a trained run")
    add_common(p, out=False)
    p.add_argument("run", nargs="?", help="a train run folder or pretrained:NAME (or --model REF --weights FILE)")
    add_model_options(p)
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
    p.add_argument(
        "--loss", default="ce", help="the loss of pgd/mpgd/fgsm: ce (cross-entropy), cw (Carlini-Wagner margin) or dlr"
    )
    p.add_argument("--split", default="test")
    # --n-images: torchrun takes a bare --n for an abbreviation of its own options
    p.add_argument("--n", "--n-images", dest="n", type=int,
                   help="attack a seeded subset of this size (default: the whole split; under torchrun: --n-images)")
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--crosscheck", type=int, default=0, metavar="N",
                   help="also run captum.robust.PGD on the first N examples and report both accuracies")
    p.add_argument("--precision", choices=PRECISIONS,
                   help="the attacks' forward and backward passes: fp32 (default) or bf16 (autocast; the layer that "
                        "reads the pixels stays fp32, and the fp32 model judges every example)")
    p.add_argument("--channels-last", action="store_true", help="the attacks' batches and weights in NHWC order")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the attacked forward (the first batches compile)")
    p.set_defaults(func=cmd_attack, torchrun=True)

