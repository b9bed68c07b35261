"""The one training loop. Objectives (natural, TRADES, ATTA, PGD-AT) plug into it.

Data sits on the chosen device as uint8 tensors and is indexed per batch, so the loop has no
DataLoader worker overhead. After every epoch the loop evaluates, appends a metrics record and
writes a checkpoint atomically; ``resume=True`` continues from the last one and ends with the
same weights as an uninterrupted run with the same seed (the RNG states are checkpointed).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from interpretgan.config import TrainConfig
from interpretgan.errors import RunError
from interpretgan.data import ArrayDataset, dataset_info, iterate_batches, load_dataset
from interpretgan.models import TappedModel, create_model
from interpretgan.runs import Run, find_run, require_same_config, save_model
from interpretgan.io import load_state, load_tensors, save_state, write_json
from interpretgan.training.augment import sample_crop_flip
from interpretgan.training.objectives import make_objective

log = logging.getLogger(__name__)

CROP_PAD = 4  # random-crop padding for augmented (CIFAR-10) training


@dataclass
class TrainData:
    train: ArrayDataset
    test: ArrayDataset
    num_classes: int
    channels: int


def load_train_data(cfg: TrainConfig, data_root: Any = None, verify: bool = True, download: bool = False) -> TrainData:
    """The train and test sets of ``cfg.dataset`` at ``cfg.image_size``, cut to ``n_train``/``n_test``."""
    info = dataset_info(cfg.dataset)
    train, test = (
        load_dataset(cfg.dataset, split, root=data_root, image_size=cfg.image_size, verify=verify, download=download)
        .subset(n, seed=cfg.seed)
        for split, n in (("train", cfg.n_train), ("test", cfg.n_test))
    )
    return TrainData(train, test, info.num_classes, info.channels)


def build_model(cfg: TrainConfig, data: TrainData) -> TappedModel:
    torch.manual_seed(cfg.seed)
    return create_model(cfg.model, **cfg.model_options(data.num_classes, data.channels))


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int, num_classes: int) -> dict[str, Any]:
    """Clean accuracy of ``model`` on uint8 images ``x`` (N, C, H, W) with labels ``y`` (same device).

    Returns ``accuracy``, ``per_class_accuracy`` and ``loss`` (mean cross-entropy).
    """
    was_training = model.training
    model.eval()
    try:
        correct = torch.zeros(num_classes, device=x.device)
        total = torch.zeros(num_classes, device=x.device)
        loss = torch.zeros((), device=x.device)
        for idx in iterate_batches(len(y), batch_size, shuffle=False):
            idx = idx.to(x.device)
            xb, yb = x[idx].float().div_(255), y[idx]
            logits = model(xb)
            loss += F.cross_entropy(logits, yb, reduction="sum")
            total += torch.bincount(yb, minlength=num_classes)
            correct += torch.bincount(yb[logits.argmax(1) == yb], minlength=num_classes)
    finally:
        model.train(was_training)
    n = int(total.sum())
    return {
        "accuracy": float(correct.sum()) / max(n, 1),
        "per_class_accuracy": (correct / total.clamp(min=1)).tolist(),
        "loss": float(loss) / max(n, 1),
        "n": n,
    }


def fit(
    cfg: TrainConfig,
    run: Run,
    *,
    device: str | torch.device = "cpu",
    data: TrainData | None = None,
    data_root: Any = None,
    verify: bool = True,
    resume: bool = False,
    progress: bool = True,
    stop_after_epochs: int | None = None,
) -> dict[str, Any]:
    """Train ``cfg.model`` on ``cfg.dataset`` with ``cfg.objective`` into the run folder ``run``.

    Args:
        device: where the model, the data and the optimizer state live (chosen by the caller).
        data: already loaded data (else loaded from ``data_root``).
        resume: continue from ``run/ckpt/state.pt`` if it exists.
        stop_after_epochs: stop (as if interrupted) once this many epochs are done in total.
    Returns:
        The final results (also written to ``run/results.json``).
    """
    device = torch.device(device)
    data = data or load_train_data(cfg, data_root, verify)
    model = build_model(cfg, data).to(device)
    train_x, train_y = data.train.x.to(device), data.train.y.to(device)
    test_x, test_y = data.test.x.to(device), data.test.y.to(device)

    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=cfg.lr_milestones, gamma=cfg.lr_gamma)
    objective = make_objective(cfg)
    pad = CROP_PAD if cfg.augment else 0
    objective.setup(model, train_x, pad, device, cfg.seed)
    shuffle_gen = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)  # dropout draws from the global generator

    start_epoch = 0
    state_path = run.ckpt_dir / "state.pt"
    if resume and state_path.is_file():
        start_epoch = _restore(state_path, run, model, optimizer, scheduler, objective, shuffle_gen, device)
        log.info("resuming %s at epoch %d of %d", run.path, start_epoch, cfg.epochs)
    elif resume:
        log.info("no checkpoint in %s: starting from scratch", run.path)
    if resume:  # epochs after the checkpoint ran before the interruption: their records go
        run.truncate_metrics(lambda r: r.get("epoch", -1) < start_epoch)

    n_batches = (len(train_y) + cfg.batch_size - 1) // cfg.batch_size
    last_epoch = cfg.epochs if stop_after_epochs is None else min(cfg.epochs, stop_after_epochs)
    for epoch in range(start_epoch, last_epoch):
        model.train()
        objective.on_epoch_start(epoch)
        t0 = time.perf_counter()
        sums: dict[str, torch.Tensor] = {}
        bar = tqdm(total=n_batches, desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not progress, leave=False)
        for idx in iterate_batches(len(train_y), cfg.batch_size, shuffle=True, generator=shuffle_gen):
            idx = idx.to(device)
            x, y = train_x[idx].float().div_(255), train_y[idx]
            aug = sample_crop_flip(len(idx), *x.shape[1:], pad, shuffle_gen, device) if pad else None
            if aug is not None:
                x = aug.apply(x)
            loss, stats = objective.loss(model, x, y, idx, aug)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            for k, v in stats.items():
                v = v * len(idx) if k != "correct" else v  # means -> sums
                sums[k] = sums[k] + v if k in sums else v
            bar.update(1)
        bar.close()
        lr = scheduler.get_last_lr()[0]
        # Checked once an epoch (no per-batch device sync), always before the epoch's checkpoint:
        # non-finite weights are never written.
        if not all(torch.isfinite(v).all() for v in sums.values()):
            raise RunError(f"training diverged: the loss of epoch {epoch + 1} is not finite (lr {lr:g}); "
                           "expected a finite loss: lower --lr or --attack-step")
        scheduler.step()
        seconds = time.perf_counter() - t0
        n = len(train_y)
        record: dict[str, Any] = {
            "epoch": epoch,
            "lr": lr,
            "seconds": seconds,
            "images_per_s": n / seconds,
            "train_accuracy": float(sums.pop("correct")) / n,
            **{f"train_{k}": float(v) / n for k, v in sums.items()},
        }
        ev = evaluate(model, test_x, test_y, cfg.eval_batch_size, data.num_classes)
        record["test_accuracy"], record["test_loss"] = ev["accuracy"], ev["loss"]
        run.append_metrics(record)
        log.info(
            "epoch %d/%d  loss %.4f  train acc %.4f  test acc %.4f  (%.1f s)",
            epoch + 1, cfg.epochs, record.get("train_loss", float("nan")), record["train_accuracy"], ev["accuracy"], seconds,
        )
        if (epoch + 1) % cfg.checkpoint_every == 0 or epoch + 1 == last_epoch:
            _checkpoint(run, model, optimizer, scheduler, objective, shuffle_gen, epoch + 1)

    if last_epoch < cfg.epochs:
        return {"interrupted_at_epoch": last_epoch}
    model.eval()
    final = evaluate(model, test_x, test_y, cfg.eval_batch_size, data.num_classes)
    results = {
        "clean_accuracy": final["accuracy"],
        "per_class_accuracy": final["per_class_accuracy"],
        "n_test": final["n"],
        "n_train": len(train_y),
        "epochs": cfg.epochs,
        "train_seconds": sum(r["seconds"] for r in run.read_metrics()),
    }
    write_json(run.path / "results.json", results)
    return results


def _checkpoint(run, model, optimizer, scheduler, objective, shuffle_gen, epochs_done: int) -> None:
    """The resume state (with its own copy of the weights, so that it is consistent whatever happens
    between the two writes), then ``model.safetensors``; each file is written atomically."""
    rng = {"cpu": torch.get_rng_state(), "shuffle": shuffle_gen.get_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    save_state(
        run.ckpt_dir / "state.pt",
        {
            "epochs_done": epochs_done,
            "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": rng,
            "objective": {k: v.detach().cpu() for k, v in objective.state_dict().items()},
        },
    )
    save_model(run.ckpt_dir, model, metadata={"epochs_done": epochs_done})


def _restore(state_path, run, model, optimizer, scheduler, objective, shuffle_gen, device) -> int:
    state = load_state(state_path)
    try:
        return _restore_state(state, run, model, optimizer, scheduler, objective, shuffle_gen, device)
    except (KeyError, TypeError, ValueError, RuntimeError) as err:  # another model's state, or parts missing
        detail = f"no {err.args[0]!r} entry" if isinstance(err, KeyError) else (str(err).strip().splitlines() or [""])[0][:120]
        raise RunError(f"{state_path} does not fit this run's model and settings ({detail}); "
                       "expected the training state this run wrote") from None


def _restore_state(state, run, model, optimizer, scheduler, objective, shuffle_gen, device) -> int:
    if "model" in state:
        model.load_state_dict(state["model"])  # copies onto the model's device
    else:  # a resume state written before the weights were part of it
        model.load_state_dict(load_tensors(run.ckpt_dir / "model.safetensors", device))
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"]["cpu"])
    shuffle_gen.set_state(state["rng"]["shuffle"])
    if "cuda" in state["rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["rng"]["cuda"])
    objective.load_state_dict({k: v.to(device) if k != "generator" else v for k, v in state["objective"].items()})
    return int(state["epochs_done"])


def fit_in(root: str | Path, description: str, cfg: TrainConfig, *, device: str | torch.device = "cpu",
           data: TrainData | None = None, data_root: Any = None, verify: bool = True, progress: bool = True) -> Run:
    """Train ``cfg`` into ``root/<NNNNN>-<description>``, resuming that run when it exists (multi-stage jobs).

    A finished run (``results.json``) with the same config is returned as it is; an unfinished one
    continues from its checkpoint; a run with another config is an error, never overwritten.
    """
    run = find_run(root, description)
    if run is not None:
        require_same_config(run, {k: v for k, v in run.config.items() if k != "kind"}, cfg.to_dict(), "was trained")
        if (run.path / "results.json").is_file():
            return run
    else:
        run = Run.create(root, description, "train", cfg.to_dict())
    fit(cfg, run, device=device, data=data, data_root=data_root, verify=verify, resume=True, progress=progress)
    return run
