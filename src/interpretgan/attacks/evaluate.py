"""Robust accuracy of a classifier under attacks, and the adversarial sets D* the paper reuses.

:func:`evaluate_attacks` attacks a test set batch by batch, reports accuracy, per-class accuracy,
attack success rate and the label transitions of Appendix D (Fig. 7) (:mod:`~interpretgan.attacks.metrics`),
and, given a ``work_dir``, keeps every adversarial example as float32 in ``<work_dir>/<attack>.safetensors``
(:mod:`~interpretgan.attacks.store`, resumable chunk by chunk): the D* on which the explainers
(Section 4.1) and the per-layer diagnosis (Section 5.1, Eq. 5) are evaluated.
(``interpretgan.baselines.crosscheck_with_captum`` compares our PGD with ``captum.robust.PGD``, an
independent implementation.)
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from interpretgan import distributed
from interpretgan.attacks.arithmetic import AttackForward, attack_forward
from interpretgan.attacks.base import Attack, eval_mode
from interpretgan.attacks.metrics import summarize_predictions
from interpretgan.attacks.store import (
    FORMAT,
    AdversarialSet,
    check_metadata,
    digest,
    load_adversarial_set,
    model_fingerprint,
)
from interpretgan.errors import ConfigError
from interpretgan.io import load_tensors, save_tensors

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def evaluate_attacks(
    model: nn.Module,
    x_uint8_or_float: Tensor,
    y: Tensor,
    attacks: Mapping[str, Attack],
    *,
    batch_size: int,
    device: torch.device | str,
    num_classes: int,
    work_dir: Path | str | None = None,
    progress: bool = False,
    seed: int = 0,
    precision: str | None = None,
    channels_last: bool = False,
    compile: bool = False,
) -> dict[str, Any]:
    """Attack a labelled set with each attack; report robust accuracies and keep the sets D*.

    Args:
        model: classifier ``(N, C, H, W)`` in [0, 1] -> logits ``(N, num_classes)``, already on
            ``device`` (it is not moved). It runs in eval mode; every submodule's ``training`` flag
            is restored afterwards.
        x_uint8_or_float: images ``(N, C, H, W)``, uint8 in [0, 255] (divided by 255) or floating in
            [0, 1]; attacks run in float32. Any device: each batch is moved to ``device``
            explicitly (that is the device the caller chose for the work).
        y: true labels ``(N,)``, integers in ``[0, num_classes)``.
        attacks: ``{name: attack}``; untargeted attacks; names are used as file names.
        batch_size: examples per batch; one batch is one resumable chunk.
        device: where the attacks run.
        num_classes: number of classes ``K``.
        work_dir: if given, each finished chunk of each attack is written atomically to
            ``<work_dir>/<name>.chunks/NNNNNN.safetensors``; when all are done they are joined into
            ``<work_dir>/<name>.safetensors`` (keys ``x_adv`` float32, ``y``, ``pred``, ``index``;
            see :func:`load_adversarial_set`) and the chunk folder is removed. A rerun skips
            finished chunks and finished attacks. Saved files are checked against the attack's
            settings, ``seed``, ``batch_size`` and a digest of the clean inputs and labels (for
            which inputs on an accelerator are copied to the host) and of the model's state dict
            (weights and buffers); a mismatch raises :class:`~interpretgan.errors.RunError`, so
            a set made by other weights (e.g. before a training run was resumed) is never reused.
        progress: show a tqdm bar per attack.
        seed: the random start of chunk ``k`` of attack ``name`` is drawn from a generator on
            ``device`` seeded from ``(seed, name, k)``, so a resumed run equals an uninterrupted
            one bit for bit (on accelerators, given deterministic kernels).
        precision, channels_last, compile: the arithmetic of the attacks' forward and backward passes
            (:class:`~interpretgan.attacks.arithmetic.AttackForward`: bf16 keeps the input layer in
            fp32); the clean and adversarial predictions are always the fp32 model's. Saved sets
            record the precision and are not reused under another.

    Returns:
        ``{"n", "clean_accuracy", "attacks": {name: AttackResult.to_dict()},
        "worst_case": {"accuracy", "attacks"}, "adversarial": {name: AdversarialSet},
        "files": {name: path}}``. ``worst_case["accuracy"]`` is the fraction of examples that
        no attack fools, i.e. classified correctly under every attack (the per-example worst
        case over the attacks; the clean prediction is not part of it). Everything except
        ``"adversarial"`` is JSON-serialisable; ``"files"`` is empty without ``work_dir``.
    """
    x, device = x_uint8_or_float, torch.device(device)
    check_evaluation_inputs(x, y, attacks, batch_size, num_classes)
    n = int(x.shape[0])
    chunks = [(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]
    work = Path(work_dir) if work_dir is not None else None
    digests = [digest(x[s:e], y[s:e]) for s, e in chunks] if work is not None else []
    model_id = model_fingerprint(model) if work is not None else ""
    attacked = attack_forward(model, _batch(x, 0, 1, device), precision=precision, channels_last=channels_last,
                              compile=compile)
    tag = precision or "fp32"  # what a saved set records: memory order and compiling change only rounding
    if work is not None:
        work.mkdir(parents=True, exist_ok=True)

    try:
        with eval_mode(model):
            clean_pred = torch.cat([_predict(model, _batch(x, s, e, device), num_classes).cpu() for s, e in chunks])
            y_cpu = y.to("cpu", torch.int64)
            clean_correct = clean_pred == y_cpu
            results: dict[str, Any] = {}
            sets: dict[str, AdversarialSet] = {}
            files: dict[str, str] = {}
            robust = torch.ones(n, dtype=torch.bool)
            for name, attack in attacks.items():
                adv = _attack_set(model, attacked, tag, attack, name, x, y, chunks, digests, model_id, device,
                                  num_classes, work, seed, progress)
                sets[name] = adv
                results[name] = summarize_predictions(name, y_cpu, adv.pred, clean_correct, num_classes).to_dict()
                robust &= adv.pred == y_cpu
                if work is not None:
                    files[name] = str(work / f"{name}.safetensors")
                log.info("%s: robust accuracy %.4f", name, results[name]["accuracy"])
    finally:
        if isinstance(attacked, AttackForward):
            attacked.remove()  # the caller's model leaves without the input layer's hooks
    return {
        "n": n,
        "clean_accuracy": float(clean_correct.sum()) / n,
        "attacks": results,
        "worst_case": {"accuracy": float(robust.sum()) / n, "attacks": list(attacks)},
        "adversarial": sets,
        "files": files,
    }


# --- helpers ---------------------------------------------------------------------------------


def check_evaluation_inputs(
    x: Tensor, y: Tensor, attacks: Mapping[str, Attack], batch_size: int, num_classes: int
) -> None:
    if not isinstance(x, Tensor) or x.dim() != 4 or not (x.dtype == torch.uint8 or x.is_floating_point()):
        raise ValueError(
            f"evaluate_attacks needs images (N, C, H, W) as uint8 or float, got {getattr(x, 'dtype', type(x))} "
            f"of shape {tuple(getattr(x, 'shape', ()))}"
        )
    if x.shape[0] == 0:
        raise ValueError("evaluate_attacks needs at least one image, got an empty tensor")
    if not isinstance(y, Tensor) or y.dim() != 1 or y.shape[0] != x.shape[0]:
        raise ValueError(
            f"evaluate_attacks needs labels of shape ({x.shape[0]},), got {tuple(getattr(y, 'shape', ()))}"
        )
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ConfigError(f"num_classes must be an integer >= 2, got {num_classes!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes}), got values in [{int(y.min())}, {int(y.max())}]")
    if not attacks:
        raise ConfigError("evaluate_attacks needs at least one attack")
    for name, attack in attacks.items():
        if not _NAME.match(name):
            raise ConfigError(f"attack name '{name}' must be letters, digits, '_', '.' or '-' (it names a file)")
        if not isinstance(attack, Attack):
            raise ConfigError(f"attack '{name}' must be an interpretgan Attack, got {type(attack).__name__}")
        if attack.targeted:
            raise ConfigError(
                f"attack '{name}' is targeted; evaluate_attacks measures untargeted robustness against the true labels"
            )


def _batch(x: Tensor, s: int, e: int, device: torch.device) -> Tensor:
    """Rows ``s:e`` of ``x`` on ``device`` as float32 in [0, 1] (uint8 travels as uint8: 4x fewer bytes)."""
    xb = x[s:e].to(device)
    return xb.float().div_(255.0) if xb.dtype == torch.uint8 else xb.float()


@torch.no_grad()
def _predict(model: nn.Module, xb: Tensor, num_classes: int) -> Tensor:
    logits = model(xb)
    if logits.dim() != 2 or logits.shape[1] != num_classes:
        raise ValueError(f"the model returns logits of shape {tuple(logits.shape)}, expected (N, {num_classes})")
    return logits.argmax(1)


def _chunk_seed(seed: int, name: str, chunk: int) -> int:
    h = hashlib.sha256(f"{seed}/{name}/{chunk}".encode()).digest()
    return int.from_bytes(h[:8], "little") & ((1 << 63) - 1)


def _attack_set(
    model: nn.Module,
    attacked: nn.Module,
    tag: str,
    attack: Attack,
    name: str,
    x: Tensor,
    y: Tensor,
    chunks: list[tuple[int, int]],
    digests: list[str],
    model_id: str,
    device: torch.device,
    num_classes: int,
    work: Path | None,
    seed: int,
    progress: bool,
) -> AdversarialSet:
    n = chunks[-1][1]
    meta = {"format": FORMAT, "name": name, "attack": repr(attack), "seed": str(seed),
            "batch_size": str(chunks[0][1] - chunks[0][0]), "n": str(n), "arithmetic": tag}
    final = chunk_dir = None
    if work is not None:
        meta["digest"] = hashlib.sha256("".join(digests).encode()).hexdigest()
        meta["model"] = model_id
        final = work / f"{name}.safetensors"
        if final.exists():
            check_metadata(final, meta)
            log.info("%s: reusing the finished adversarial set %s", name, final)
            return load_adversarial_set(final)
        chunk_dir = work / f"{name}.chunks"
        chunk_dir.mkdir(exist_ok=True)

    # In a torchrun job each rank attacks every world_size-th chunk; a chunk's random start depends on
    # (seed, name, k) alone, so the gathered set is the one a single process makes.
    parts: dict[int, tuple[Tensor, Tensor]] = {}
    resumed = 0
    mine = range(distributed.rank(), len(chunks), distributed.world_size())
    for k in tqdm(mine, desc=name, disable=not progress, leave=False):
        s, e = chunks[k]
        chunk_meta = {**meta, "chunk": str(k), "start": str(s), "end": str(e), "digest": digests[k]} if work else {}
        path = chunk_dir / f"{k:06d}.safetensors" if chunk_dir is not None else None
        if path is not None and path.exists():
            check_metadata(path, chunk_meta)
            t = load_tensors(path)
            parts[k] = t["x_adv"], t["pred"]
            resumed += 1
            continue
        xb = _batch(x, s, e, device)
        yb = y[s:e].to(device=device, dtype=torch.int64)
        gen = torch.Generator(device=device)
        gen.manual_seed(_chunk_seed(seed, name, k))
        x_adv = attack.with_generator(gen)(attacked, xb, yb)
        pred = _predict(model, x_adv, num_classes)
        x_adv, pred = x_adv.to("cpu", torch.float32), pred.to("cpu")  # explicit: results live on the host
        if path is not None:
            save_tensors(path, {"x_adv": x_adv, "pred": pred}, metadata=chunk_meta)
        parts[k] = x_adv, pred
    if resumed:
        log.info("%s: resumed %d of %d chunks from %s", name, resumed, len(chunks), chunk_dir)
    if distributed.active():
        parts = {k: v for rank_parts in distributed.all_gather_objects(parts) for k, v in rank_parts.items()}

    adv = AdversarialSet(
        x_adv=torch.cat([parts[k][0] for k in range(len(chunks))]),
        y=y.to("cpu", torch.int64).clone(),
        pred=torch.cat([parts[k][1] for k in range(len(chunks))]),
        index=torch.arange(n, dtype=torch.int64),
    )
    if final is not None and distributed.is_main():  # the others have the set in memory and go on
        save_tensors(final, adv._asdict(), metadata=meta)
        shutil.rmtree(chunk_dir, ignore_errors=True)
    return adv
