"""``interpretgan pretrained``: the shipped zoo, and its refresh from a reproduction."""

from __future__ import annotations

import argparse
import json
from typing import Any

from interpretgan.cli.common import add_common, device_of


def cmd_pretrained(args: argparse.Namespace) -> int:
    from interpretgan.pretrained import list_pretrained

    if args.pretrained_command == "refresh":
        from interpretgan.pipeline.refresh import refresh_zoo

        out = refresh_zoo(args.folder, commit=args.commit, data_root=args.data_root, verify=not args.no_verify,
                          device=device_of(args.device), progress=not args.no_progress, n_attack=args.n_attack)
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


def add_parser(sub: Any) -> None:
    p = sub.add_parser("pretrained", help="the shipped zoo (use pretrained:NAME wherever a run folder is taken)")
    p.add_argument("--json", action="store_true", help="print the provenance records as JSON")
    psub = p.add_subparsers(dest="pretrained_command", metavar="SUBCOMMAND")
    q = psub.add_parser(
        "refresh", help="rebuild the zoo from a finished `reproduce mnist` folder (from a source checkout)"
    )
    add_common(q, out=False)
    q.add_argument("folder", help="the reproduce mnist folder (e.g. runs/reproduce-mnist-cpu)")
    q.add_argument(
        "--commit", required=True, help="the git commit the reproduction ran at (recorded in the provenance)"
    )
    q.add_argument("--n-attack", type=int, help="MNIST test images attacked with PGD-40 (default: all 10,000)")
    p.set_defaults(func=cmd_pretrained)

