"""What every command shares: the common options, the device, the log file, run-folder arguments."""

from __future__ import annotations

import argparse
import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from interpretgan.errors import ConfigError


# --- shared option groups ------------------------------------------------------------------------
def add_common(p: argparse.ArgumentParser, *, out: bool = True, download: bool = False,
                out_help: str = "runs folder (default: $INTERPRETGAN_RUNS or ./runs)") -> None:
    p.add_argument("--data-root", help="dataset folder (default: $INTERPRETGAN_DATA)")
    p.add_argument("--no-verify", action="store_true", help="skip md5/content checks of the datasets")
    if download:
        p.add_argument(
            "--download", action="store_true", help="fetch missing MNIST/CIFAR-10 files from the official sources"
        )
    if out:
        p.add_argument("--out", help=out_help)
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: auto)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("-q", "--quiet", action="store_true", help="log warnings only")


def device_of(name: str):
    """``--device`` as a torch device; under torchrun, the job is joined here (on CUDA, each rank takes
    its local rank's GPU)."""
    import torch

    from interpretgan import distributed

    if name == "auto":
        return distributed.setup(torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"--device '{name}' is not a device; expected cpu, cuda, cuda:N or auto") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {name} was asked for but this machine has no CUDA GPU; use --device cpu")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ConfigError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA GPU(s), numbered from 0")
    return distributed.setup(dev)


@contextmanager
def log_to(path: Path):
    """Also write the log of this command into ``path`` (the run folder's log file; rank 0's in a
    torchrun job)."""
    from interpretgan import distributed

    if not distributed.is_main():
        yield
        return
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    try:
        yield
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()


def remove_unresumable(path: Path | None) -> None:
    """After a failure, remove the run folder this command created unless it holds a resume state
    (a failing command leaves nothing half-made behind)."""
    from interpretgan import distributed

    if path is not None and distributed.is_main() and not any((path / "ckpt").glob("state*.pt")):
        import shutil

        shutil.rmtree(path, ignore_errors=True)


def run_arg(args: argparse.Namespace, value: Any, kind: str) -> Any:
    """A run-folder argument, with ``pretrained:NAME`` made into the zoo entry's run folder."""
    from interpretgan.pipeline.zoo import resolve_run

    return resolve_run(value, kind, data_root=getattr(args, "data_root", None))


def split_list(text: str) -> list[str]:
    """``"features.2, features.5"`` -> ``["features.2", "features.5"]``."""
    return [s.strip() for s in text.split(",") if s.strip()]


def add_model_options(p: argparse.ArgumentParser) -> None:
    """``--model REF --weights FILE`` (and the data it runs on): a classifier trained elsewhere, in place of a
    run folder."""
    p.add_argument(
        "--model",
        metavar="REF",
        help="your classifier instead of a run folder: path/to/file.py:build or "
        "package.module:build (a callable that takes no arguments and returns the nn.Module)",
    )
    p.add_argument("--weights", help="with --model: its state_dict as a safetensors file")
    p.add_argument("--dataset", help="with --model: mnist, mnist-sample, cifar10 or celeba (default: mnist)")
    p.add_argument(
        "--image-size", type=int, help="with --model: the side its inputs have (default: the dataset's, 32 for MNIST)"
    )


def refuse_without_model(args: argparse.Namespace, options: tuple[str, ...], why: str) -> None:
    """One sentence (ending in ``why``) when one of ``options``, which apply to ``--model`` only, was given
    without it."""
    given = [o for o in options if getattr(args, o, None) is not None]
    if args.model is None and given:
        raise ConfigError(f"--{given[0].replace('_', '-')} goes with --model REF{why}")


def classifier_run_arg(args: argparse.Namespace) -> Any:
    """The train run a command works on: its positional RUN (``pretrained:NAME`` too), or the run that
    holds ``--model REF --weights FILE`` as they are (made once per weights file under the runs root)."""
    refuse_without_model(args, ("weights", "dataset", "image_size"), "; with a run folder it is recorded there")
    if args.model is None:
        if not args.run:
            raise ConfigError("expected a classifier run folder, pretrained:NAME, or --model REF --weights FILE")
        return run_arg(args, args.run, "train")
    if args.run:
        raise ConfigError(f"give a run folder ({args.run}) or --model {args.model}, not both")
    if args.weights is None:
        raise ConfigError(f"--model {args.model} needs --weights FILE.safetensors here; to train it from scratch, "
                          f"run interpretgan train --model {args.model}")
    from interpretgan.pipeline.runs import check_runs_root, runs_root
    from interpretgan.pipeline.train import reference_run

    root = check_runs_root(runs_root(getattr(args, "out", None)))
    run = reference_run(root, args.model, args.weights, dataset=args.dataset or "mnist", image_size=args.image_size,
                        device=device_of(args.device), data_root=args.data_root, verify=not args.no_verify,
                        progress=not args.no_progress)
    print(f"model run folder: {run.path}")
    return run.path


def _config_fields(cls: type) -> list[tuple[Any, Any, bool]]:
    """(field, scalar type, is a list) of each field of ``cls`` declared with :func:`interpretgan.config.option`:
    ``int | None`` -> (int, False), ``list[str]`` -> (str, True)."""
    import dataclasses
    import typing

    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        if f.metadata.get("cli"):
            hint = hints[f.name]
            is_list = typing.get_origin(hint) is list
            args = [a for a in typing.get_args(hint) if a is not type(None)]
            out.append((f, args[0] if args else hint, is_list))
    return out


def add_config_options(p: argparse.ArgumentParser, cls: type) -> None:
    """``--name`` for each field of the config dataclass ``cls`` declared with :func:`interpretgan.config.option`,
    with the type, choices and help declared there; a list field takes comma-separated values."""
    for f, kind, is_list in _config_fields(cls):
        flag = f"--{f.name.replace('_', '-')}"
        if is_list:
            p.add_argument(flag, metavar="A,B,...", help=f.metadata["help"])
        elif kind is bool:
            p.add_argument(flag, action="store_true", default=None, help=f.metadata["help"])
        else:
            p.add_argument(flag, type=kind, choices=f.metadata["choices"], help=f.metadata["help"])


def config_overrides(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The options of :func:`add_config_options` that the user gave, as field values (lists parsed)."""
    out: dict[str, Any] = {}
    for f, kind, is_list in _config_fields(cls):
        value = getattr(args, f.name, None)
        if value is not None and is_list:
            value = int_list(f"--{f.name.replace('_', '-')}", value) if kind is int else split_list(value)
        if value is not None:
            out[f.name] = value
    return out


def int_list(option: str, text: str) -> list[int]:
    """``"400,400,600"`` -> ``[400, 400, 600]``, or one sentence naming the option."""
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"{option} '{text}' is not a comma-separated list of integers; expected e.g. 0,1,2") from None


def count_or_all(option: str, text: str | None) -> int | None:
    """``"300"`` -> 300, ``"all"`` -> None (every image), or one sentence naming the option."""
    if text is None or text.strip().lower() == "all":
        return None
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"{option} '{text}' is not a number of images; expected an integer >= 0 or 'all'") from None


def refuse_with_resume(args: argparse.Namespace, options: dict[str, Any]) -> None:
    """``--resume`` continues a run with its recorded settings: options that would change them are refused."""
    given = ["RUN" if k == "run" else f"--{k.replace('_', '-')}" for k, v in options.items() if v not in (None, False)]
    if given:
        raise ConfigError(f"--resume continues {args.resume} with its recorded settings; {', '.join(given)} "
                          "would be ignored: drop them, or start a new run")
