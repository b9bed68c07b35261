"""The ``interpretgan`` command line: parses options, builds a config, calls library functions.

Every user mistake ends in one line on stderr (``interpretgan: error: ...``) and exit status 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from interpretgan.cli import attack, data, demo, diagnose, explain, models, pretrained, reproduce, study, train
from interpretgan.errors import InterpretganError


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command, one module each (``interpretgan.cli.<command>``)."""
    from interpretgan import __version__

    parser = argparse.ArgumentParser(prog="interpretgan", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"interpretgan {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo.add_parser(sub)
    pretrained.add_parser(sub)
    models.add_parser(sub)
    data.add_parser(sub)
    train.add_train_parser(sub)
    attack.add_parser(sub)
    explain.add_parser(sub)
    diagnose.add_diagnose_parser(sub)
    study.add_parser(sub)
    diagnose.add_baselines_parser(sub)
    reproduce.add_parser(sub)
    train.add_eval_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    from interpretgan import distributed

    if distributed.launched():
        if not getattr(args, "torchrun", False):
            print(f"interpretgan: error: '{args.command}' does not run under torchrun; expected train, attack, "
                  "explain train or reproduce", file=sys.stderr)
            return 2
        if os.environ.get("RANK", "0") != "0":  # rank 0 alone prints and logs (warnings and errors from all)
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (for the life of the process)
            args.quiet = args.no_progress = True
    try:
        return _call(args)
    finally:
        distributed.teardown()


def _call(args: argparse.Namespace) -> int:
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
