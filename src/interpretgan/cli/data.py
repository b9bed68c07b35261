"""``interpretgan data check``: counts and integrity of every dataset found."""

from __future__ import annotations

import argparse
import json
from typing import Any

from interpretgan.errors import ConfigError


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


def add_parser(sub: Any) -> None:
    p = sub.add_parser("data", help="dataset tools")
    dsub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)
    q = dsub.add_parser("check", help="counts and integrity of every dataset found")
    q.add_argument("--data-root")
    q.add_argument("--no-verify", action="store_true")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_data_check)

