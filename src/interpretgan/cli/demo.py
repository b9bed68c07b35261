"""``interpretgan demo``: the whole chain on the pretrained zoo, or trained from scratch in miniature."""

from __future__ import annotations

import argparse
import time
from typing import Any

from interpretgan.cli.common import add_common, device_of


def cmd_demo(args: argparse.Namespace) -> int:
    from interpretgan.pipeline.demo import run_demo

    t0 = time.perf_counter()
    out = run_demo(out=args.out, data_root=args.data_root, preset=args.preset, device=device_of(args.device),
                   verify=not args.no_verify, progress=not args.no_progress, train=args.train)
    print(f"demo finished in {time.perf_counter() - t0:.0f} s")
    for label, path in out.items():
        print(f"  {label}: {path}")
    return 0


def add_parser(sub: Any) -> None:
    p = sub.add_parser("demo", help="the whole chain on the pretrained zoo (no GPU, no download, no training)")
    add_common(p)
    p.add_argument("--preset", choices=("smoke", "cpu"), default="cpu")
    p.add_argument("--train", action="store_true",
                   help="train everything from scratch on a miniature schedule instead of loading the zoo")
    p.set_defaults(func=cmd_demo)

