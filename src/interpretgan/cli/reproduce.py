"""``interpretgan reproduce``: the paper's results in one command."""

from __future__ import annotations

import argparse
import time
from typing import Any

from interpretgan.cli.common import add_common, device_of
from interpretgan.config import PRESET_NAMES


def cmd_reproduce(args: argparse.Namespace) -> int:
    from interpretgan.pipeline.reproduce import reproduce

    t0 = time.perf_counter()
    res = reproduce(args.target, args.preset, out=args.out, device=device_of(args.device), data_root=args.data_root,
                    verify=not args.no_verify, progress=not args.no_progress)
    print(f"reproduce {args.target} ({args.preset}) finished: this command {time.perf_counter() - t0:.0f} s, all stages "
          f"{sum(res['seconds'].values()):.0f} s (stages finished before a resume keep their first time); stage times:")
    for stage, seconds in res["seconds"].items():
        print(f"  {stage:32s} {seconds:8.0f} s")
    for key in ("report_md", "report_html", "results"):
        print(f"{key.replace('_', ' ')}: {res[key]}")
    return 0


def add_parser(sub: Any) -> None:
    p = sub.add_parser("reproduce", help="the paper's results in one command, with report.md/html and results.json",
                       description="Run the chain of stages for TARGET into one folder: --out DIR names it (default: "
                                   "<runs root>/reproduce-TARGET-PRESET); re-running the same command skips finished stages.")
    add_common(p, out_help="the chain's own folder (default: $INTERPRETGAN_RUNS or ./runs, then reproduce-TARGET-PRESET)")
    p.add_argument("target", choices=("mnist", "cifar10", "celeba"))
    p.add_argument("--preset", default="cpu", choices=PRESET_NAMES)
    p.set_defaults(func=cmd_reproduce)

