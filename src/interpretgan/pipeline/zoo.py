"""Reading the shipped zoo: names, provenance, integrity, in-memory loading, and run folders made from it.

``interpretgan/pretrained/zoo/<name>/provenance.json`` describes one entry: ``kind`` (``classifier`` or ``explainers``),
the run config it was trained with, ``files`` (relative path -> sha256) and ``figures`` per dataset
(``mnist``: the full test set; ``mnist-sample``: the embedded sample's 1,000 test images). A
classifier is ``model.safetensors`` + ``model.json``; an explainer set is ``<layer>/explainer.*``
per layer (C_i and G_i; the critic is not shipped) and names its classifier.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from interpretgan.data.integrity import file_digest
from interpretgan.errors import ConfigError, RunError
from interpretgan.io import UMASK, read_json, write_json
from interpretgan.pipeline.checkpoints import load_model
from interpretgan.pipeline.runs import runs_root

log = logging.getLogger(__name__)

# The shipped files sit in the public package interpretgan.pretrained, beside the API that loads them.
ZOO_DIR = Path(__file__).parents[1] / "pretrained" / "zoo"
PREFIX = "pretrained:"
PROVENANCE = "provenance.json"
#: Run kinds a command may ask for, and the zoo kind that provides each.
_ZOO_KIND = {"train": "classifier", "explain": "explainers"}


def names(zoo: Path | None = None) -> list[str]:
    """The entries of the zoo, sorted."""
    zoo = zoo or ZOO_DIR
    return sorted(p.name for p in zoo.iterdir() if (p / PROVENANCE).is_file()) if zoo.is_dir() else []


def provenance(name: str, zoo: Path | None = None) -> dict[str, Any]:
    """The provenance record of one entry (ConfigError listing the known names when it is unknown)."""
    zoo = zoo or ZOO_DIR
    path = zoo / name / PROVENANCE
    if not path.is_file() or name != Path(name).name or name.startswith("."):  # a name, never a path
        known = ", ".join(names(zoo)) or "none (the zoo is empty)"
        raise ConfigError(f"unknown pretrained model '{name}'; known: {known}")
    return read_json(path)


def list_pretrained(zoo: Path | None = None) -> list[dict[str, Any]]:
    """Every entry's provenance record, in name order."""
    zoo = zoo or ZOO_DIR
    return [provenance(n, zoo) for n in names(zoo)]


def is_pretrained(value: Any) -> bool:
    """Whether a command-line run argument names a zoo entry (``pretrained:NAME``)."""
    return isinstance(value, str) and value.startswith(PREFIX)


def verify(name: str, zoo: Path | None = None) -> dict[str, Any]:
    """Check every file of ``name`` against its provenance sha256; return the provenance.

    RunError naming the first missing or changed file: nothing may run on weights that are not
    the ones whose figures the provenance gives.
    """
    zoo = zoo or ZOO_DIR
    prov = provenance(name, zoo)
    for rel, expected in prov["files"].items():
        path = zoo / name / rel
        if not path.is_file():
            raise RunError(f"{path} is missing from the pretrained zoo; expected the file its provenance lists "
                           "(reinstall interpretgan)")
        got = file_digest(path, "sha256")
        if got != expected:
            raise RunError(f"{path} does not match its provenance hash (sha256 {got[:12]}..., expected "
                           f"{expected[:12]}...): it was changed after shipping, so nothing runs on it")
    return prov


def load(
    name: str, device: str | torch.device = "cpu", zoo: Path | None = None
) -> nn.Module | tuple[nn.Module, dict[str, nn.Module]]:
    """A classifier entry as its TappedModel, or an explainer entry as ``(classifier, {layer: Explainer})``.

    Everything is checked against the provenance hashes first and returned in eval mode on ``device``.
    """
    from interpretgan.explain.explainer import load_explainer

    zoo = zoo or ZOO_DIR
    prov = verify(name, zoo)
    if prov["kind"] == "classifier":
        return load_model(zoo / name, device)
    classifier = load(prov["classifier"], device, zoo)
    return classifier, {layer: load_explainer(zoo / name / layer, device) for layer in prov["layers"]}


def entry_for(name: str, kind: str, zoo: Path | None = None) -> str:
    """The entry that serves a command asking for a ``kind`` run (``train`` or ``explain``) given ``name``.

    A classifier name stands for its explainer set where an explain run is asked for, so
    ``diagnose pretrained:mnist-smallcnn-max-trades+atta`` works as the README shows.
    """
    zoo = zoo or ZOO_DIR
    prov = provenance(name, zoo)
    wanted = _ZOO_KIND[kind]
    if prov["kind"] == wanted:
        return name
    if wanted == "explainers" and prov.get("explainers"):
        return prov["explainers"]
    if wanted == "explainers":
        sets = [n for n in names(zoo) if provenance(n, zoo)["kind"] == "explainers"]
        raise ConfigError(f"pretrained:{name} is a classifier without shipped explainers; this command takes an "
                          f"explainer set: {', '.join('pretrained:' + s for s in sets) or 'none shipped'}")
    raise ConfigError(f"pretrained:{name} is an explainer set; this command takes a classifier "
                      f"(pretrained:{prov['classifier']})")


def materialize(name: str, kind: str, *, dataset: str | None = None, root: str | Path | None = None,
                zoo: Path | None = None) -> Path:
    """The run folder of kind ``kind`` that stands for zoo entry ``name``; made once under ``<runs root>/pretrained``.

    ``dataset`` (default: the one the entry was trained on) is the dataset the commands run on it
    read, e.g. ``mnist-sample`` where no MNIST files are at hand. The folder is built beside its
    final place and renamed, so an interruption never leaves half of one; a folder made before is
    reused after its copied weights are checked against the provenance hashes.
    """
    zoo = zoo or ZOO_DIR
    entry = entry_for(name, kind, zoo)
    prov = verify(entry, zoo)
    dataset = dataset or prov["config"]["dataset"]
    folder = runs_root(root) / "pretrained" / dataset / entry
    classifier = None
    if kind == "explain":
        classifier = materialize(prov["classifier"], "train", dataset=dataset, root=root, zoo=zoo)
    copies = _copies(entry, prov, zoo)
    if (folder / "config.json").is_file():
        for src, rel, digest in copies:
            if not (folder / rel).is_file() or file_digest(folder / rel, "sha256") != digest:
                raise RunError(
                    f"{folder / rel} differs from the shipped file {src}; delete {folder} to have it made again"
                )
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{entry}.", dir=folder.parent))
    try:
        for src, rel, _ in copies:
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, tmp / rel)
        config = {"kind": kind, **prov["config"], "dataset": dataset}
        if classifier is not None:
            config["classifier_run"] = str(classifier.resolve())
        write_json(tmp / "results.json", _results(entry, prov, dataset))
        write_json(tmp / "config.json", config)
        os.chmod(tmp, 0o777 & ~UMASK)
        os.rename(tmp, folder)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if (folder / "config.json").is_file():  # another process made it first
            return materialize(name, kind, dataset=dataset, root=root, zoo=zoo)
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("pretrained:%s made into %s", entry, folder)
    return folder


def _results(entry: str, prov: dict[str, Any], dataset: str) -> dict[str, Any]:
    """The run's results.json: the provenance figures measured on ``dataset`` (else on the training dataset)."""
    measured = dataset if dataset in prov["figures"] else prov["config"]["dataset"]
    fig = prov["figures"][measured]
    if prov["kind"] == "classifier":
        out: dict[str, Any] = {"clean_accuracy": fig["clean"], "n": fig["n"], "pgd40_accuracy": fig["pgd40"],
                               "n_attack": fig["n_attack"]}
    else:
        out = {**fig, "n_test": fig["n"]}
    return {**out, "pretrained": entry, "measured_on": measured}


def _copies(entry: str, prov: dict[str, Any], zoo: Path) -> list[tuple[Path, str, str]]:
    """(shipped file, path inside the run folder, its provenance sha256) for every weight file of a run
    made from ``entry``: a made folder is checked against the recorded hashes, not by hashing the zoo again."""
    if prov["kind"] == "classifier":
        return [(zoo / entry / f, f"ckpt/{f}", prov["files"][f]) for f in ("model.safetensors", "model.json")]
    cls = prov["classifier"]
    cls_files = provenance(cls, zoo)["files"]
    out = [
        (zoo / cls / f"model{ext}", f"ckpt/classifier{ext}", cls_files[f"model{ext}"])
        for ext in (".safetensors", ".json")
    ]
    out += [(zoo / entry / layer / f, f"ckpt/{layer}/{f}", prov["files"][f"{layer}/{f}"]) for layer in prov["layers"]
            for f in ("explainer.safetensors", "explainer.json")]
    return out


def resolve_run(value: Any, kind: str, *, data_root: Any = None) -> Any:
    """``pretrained:NAME`` -> the run folder made from it (other values are returned unchanged).

    The folder reads MNIST from the data root when the files are there, else the embedded sample's
    test digits (said in a warning), so the zoo works with no download.
    """
    if not is_pretrained(value):
        return value
    from interpretgan.data import mnist, resolve_data_root

    name = value[len(PREFIX):]
    prov = provenance(name)
    dataset = prov["config"]["dataset"]
    if dataset == "mnist":
        root = resolve_data_root(data_root)
        if root is None or mnist.find(root) is None:
            log.warning(
                "no MNIST files under the data root: pretrained:%s runs on the embedded sample's test digits", name
            )
            dataset = "mnist-sample"
    return materialize(name, kind, dataset=dataset)
