"""``interpretgan reproduce``: the paper's results in one command."""

from __future__ import annotations

import argparse
import time
from typing import Any

from interpretgan.cli.common import add_common, device_of, refuse_without_model, split_list
from interpretgan.config import FITS, PRESET_NAMES
from interpretgan.devices import PRECISIONS


def own_model_arg(args: argparse.Namespace) -> Any:
    """``--model REF --layers ... [--weights --image-size --fit]`` as an OwnModel (None without ``--model``)."""
    from interpretgan.pipeline.chains import OwnModel

    refuse_without_model(args, ("weights", "layers", "image_size", "fit"),
                         " (your classifier); the paper's chains fix their own models")
    if args.model is None:
        return None
    from interpretgan.models.external import normalise_reference
    from interpretgan.pipeline.train import weights_file

    return OwnModel(normalise_reference(args.model), tuple(split_list(args.layers or "")),
                    weights=None if args.weights is None else weights_file(args.weights), image_size=args.image_size,
                    fit=args.fit)


def cmd_reproduce(args: argparse.Namespace) -> int:
    from interpretgan.devices import check_precision
    from interpretgan.pipeline.chains import CHAINS, with_arithmetic
    from interpretgan.pipeline.reproduce import reproduce

    check_precision(args.precision)
    spec = with_arithmetic(CHAINS[args.target][args.preset], args.precision, args.channels_last, args.compile)
    t0 = time.perf_counter()
    res = reproduce(args.target, args.preset, out=args.out, device=device_of(args.device), data_root=args.data_root,
                    verify=not args.no_verify, progress=not args.no_progress, own=own_model_arg(args), spec=spec,
                    ablation=args.ablation)
    print(
        f"reproduce {args.target} ({args.preset}) finished: this command {time.perf_counter() - t0:.0f} s, all stages "
        f"{sum(res['seconds'].values()):.0f} s (stages finished before a resume keep their first time); stage times:"
    )
    for stage, seconds in res["seconds"].items():
        print(f"  {stage:32s} {seconds:8.0f} s")
    for key in ("report_md", "report_html", "results"):
        print(f"{key.replace('_', ' ')}: {res[key]}")
    return 0


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "reproduce",
        help="the paper's results in one command, with report.md/html and results.json",
        description="Run the chain of stages for TARGET into one folder: --out DIR names it (default: "
        "<runs root>/reproduce-TARGET-PRESET); re-running the same command skips finished stages.",
    )
    add_common(
        p, out_help="the chain's own folder (default: $INTERPRETGAN_RUNS or ./runs, then reproduce-TARGET-PRESET)"
    )
    p.add_argument("target", choices=("mnist", "cifar10", "celeba"))
    p.add_argument("--preset", default="cpu", choices=PRESET_NAMES)
    p.add_argument("--model", metavar="REF", help="mnist or cifar10 with your classifier in place of the paper's: "
                                                  "path/to/file.py:build or package.module:build (default folder: "
                                                  "reproduce-TARGET-CALLABLE-PRESET)")
    p.add_argument("--layers", help="with --model: the module paths to explain, comma-separated, in forward order")
    p.add_argument("--weights", help="with --model: your trained state_dict (safetensors), the natural model as it is "
                                     "(default: train one); the trades+atta model is trained from scratch")
    p.add_argument("--image-size", type=int, help="with --model: the side its inputs have (default: the preset's, 32)")
    p.add_argument("--fit", choices=FITS, help="with --model: how inputs reach the GAN's 4*2^k side (default: resize)")
    p.add_argument("--precision", choices=PRECISIONS, help="train the classifiers and the explainers and run the "
                                                         "attacks under bf16 autocast (the attacks keep the layer that "
                                                         "reads the pixels in fp32; default: fp32; the default "
                                                         "folder's name gets -bf16)")
    p.add_argument("--channels-last", action="store_true", help="every stage in NHWC memory order "
                                                                "(the default folder's name gets -cl)")
    p.add_argument("--compile", action="store_true", help="torch.compile the classifiers' training steps, f's forward "
                                                          "in the explainers' loop and the attacked forward")
    p.add_argument("--ablation", action="store_true", help="mnist: also the explainer ablation of both explained "
                                                           "models (interpretgan study ablation), with its section "
                                                           "in the report")
    p.set_defaults(func=cmd_reproduce, torchrun=True)

