"""The adversarial sets D* on disk: one safetensors file per attack, identified by an explicit spec dict
(its metadata: format, attack, seed, batch size, size, a digest of the clean inputs and of the model's
weights) that a reuse must match. :func:`~interpretgan.attacks.evaluate.evaluate_attacks` writes them;
the explainers (Section 4.1) and the per-layer diagnosis (Section 5.1, Eq. 5) read them back."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import NamedTuple

import torch
from torch import Tensor, nn

from interpretgan.errors import DataError, RunError
from interpretgan.io import load_tensors, tensor_metadata

#: Written into every saved adversarial set; bump when the layout changes.
FORMAT = "interpretgan-adversarial-v1"

class AdversarialSet(NamedTuple):
    """An adversarial set D*, on the CPU.

    ``x_adv``: ``(N, C, H, W)`` float32 in [0, 1]; ``y``: true labels ``(N,)`` int64; ``pred``: the
    model's prediction on ``x_adv`` ``(N,)`` int64; ``index``: position of each example in the
    evaluated input ``(N,)`` int64.
    """

    x_adv: Tensor
    y: Tensor
    pred: Tensor
    index: Tensor


def load_adversarial_set(path: Path | str) -> AdversarialSet:
    """Read a D* written by :func:`evaluate_attacks`: ``(x_adv, y, pred, index)`` on the CPU."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"adversarial set '{path}' does not exist; run the attack evaluation with a work_dir first")
    t = load_tensors(path)
    missing = [k for k in AdversarialSet._fields if k not in t]
    if missing:
        raise DataError(
            f"adversarial set '{path}' lacks the key(s) {', '.join(missing)}; expected x_adv, y, pred, index"
        )
    return AdversarialSet(t["x_adv"], t["y"], t["pred"], t["index"])


def model_fingerprint(model: nn.Module) -> str:
    """A digest of the model's state dict (weights and buffers): which weights made an adversarial set."""
    return digest(*model.state_dict().values())


def adversarial_set_model(path: str | Path) -> str | None:
    """The :func:`model_fingerprint` recorded in a saved adversarial set (None for sets saved before it was)."""
    return tensor_metadata(Path(path)).get("model")


def digest(*tensors: Tensor) -> str:
    """A sha256 of the tensors' dtypes, shapes and bytes (on the host)."""
    h = hashlib.sha256()
    for t in tensors:
        t = t.detach().cpu().contiguous()  # explicit host copy, only to fingerprint
        h.update(str((t.dtype, tuple(t.shape))).encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()


def check_metadata(path: Path, expected: dict[str, str]) -> None:
    """One sentence naming the first key of ``expected`` that the file at ``path`` was not written with."""
    meta = tensor_metadata(path)
    meta.setdefault("arithmetic", "fp32")  # sets written before attacks had other arithmetic were fp32
    for key, value in expected.items():
        if key == "model" and key not in meta:
            raise RunError(f"'{path}' was written before adversarial sets recorded the model that made them; "
                           "delete it, or its attack folder, to recompute")
        if key == "model" and meta.get(key) != value:
            raise RunError(f"'{path}' was made by other weights than the model's now (was it trained further since?); "
                           "delete it, or its attack folder, to recompute")
        if meta.get(key) != value:
            raise RunError(
                f"'{path}' was made with {key}={meta.get(key)!r}, not {value!r}; use a fresh work_dir or delete "
                "the file to recompute"
            )
