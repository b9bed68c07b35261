"""The one training loop. Objectives (natural, TRADES, ATTA, PGD-AT) plug into it.

Data sits on the chosen device as uint8 tensors and is indexed per batch, so the loop has no
DataLoader worker overhead. After every epoch the loop evaluates and hands a record to its store
(:class:`TrainStore`; none: in memory), and every ``checkpoint_every`` epochs a checkpoint;
``resume=True`` continues from the last one and ends with the same weights as an uninterrupted run
with the same seed (the RNG states are checkpointed).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from interpretgan import distributed
from interpretgan.config import TrainConfig
from interpretgan.data import ArrayDataset, dataset_info, iterate_batches, load_dataset
from interpretgan.devices import autocast, to_channels_last
from interpretgan.errors import RunError
from interpretgan.io import RecordList
from interpretgan.models import TappedModel, create_model
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
    return create_model(cfg.model, **cfg.build_options(data.num_classes, data.channels))


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int, num_classes: int, *,
             shared: bool = False) -> dict[str, Any]:
    """Clean accuracy of ``model`` on uint8 images ``x`` (N, C, H, W) with labels ``y`` (same device).

    ``shared``: in a torchrun job each rank evaluates its share of the images and the counts are summed
    (every rank gets the whole set's figures). Returns ``accuracy``, ``per_class_accuracy`` and ``loss``
    (mean cross-entropy).
    """
    if shared and distributed.active():
        rows = distributed.share(len(y))
        x, y = x[rows], y[rows]
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
    if shared:
        for t in (correct, total, loss):
            distributed.all_reduce_sum(t)
    n = int(total.sum())
    return {
        "accuracy": float(correct.sum()) / max(n, 1),
        "per_class_accuracy": (correct / total.clamp(min=1)).tolist(),
        "loss": float(loss) / max(n, 1),
        "n": n,
    }


class TrainStore(Protocol):
    """Where :func:`train_classifier` keeps its progress: epoch records, the resume state, the results."""

    def resume_state(self, device: torch.device) -> tuple[dict[str, Any], str] | None:
        """The last checkpoint's state and where it is (for messages); None without one."""

    def keep_records(self, keep: Any) -> None:
        """Keep only the records for which ``keep(record)`` is true."""

    def record(self, record: dict[str, Any]) -> None: ...

    def records(self) -> list[dict[str, Any]]: ...

    def checkpoint(self, state: dict[str, Any], model: nn.Module, epochs_done: int) -> None:
        """The resume state (with its own copy of the weights), then the weights alone."""

    def finish(self, results: dict[str, Any]) -> None: ...


class MemoryTrainStore(RecordList):
    """A :class:`TrainStore` that keeps the records in a list and writes nothing (training in memory)."""

    def resume_state(self, device: torch.device) -> tuple[dict[str, Any], str] | None:
        return None

    def checkpoint(self, state: dict[str, Any], model: nn.Module, epochs_done: int) -> None:
        pass

    def finish(self, results: dict[str, Any]) -> None:
        pass


class _FollowerStore(MemoryTrainStore):
    """The store of ranks other than 0 in a torchrun job: they resume from the run's checkpoint and
    write nothing (rank 0 writes the folder)."""

    def __init__(self, source: TrainStore) -> None:
        super().__init__()
        self.source = source

    def resume_state(self, device: torch.device) -> tuple[dict[str, Any], str] | None:
        return self.source.resume_state(device)


def _data_parallel(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` in DistributedDataParallel in a torchrun job (gradients averaged over the ranks during
    the backward pass), ``model`` itself otherwise."""
    if not distributed.active():
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def train_classifier(
    cfg: TrainConfig,
    store: TrainStore | None = None,
    *,
    device: str | torch.device = "cpu",
    data: TrainData | None = None,
    data_root: Any = None,
    verify: bool = True,
    resume: bool = False,
    progress: bool = True,
    stop_after_epochs: int | None = None,
) -> dict[str, Any]:
    """Train ``cfg.model`` on ``cfg.dataset`` with ``cfg.objective``, in memory or into ``store``.

    Args:
        store: where records, checkpoints and results go (None: in memory, nothing written; a run
            folder's is :class:`interpretgan.pipeline.train.RunTrainStore`).
        device: where the model, the data and the optimizer state live (chosen by the caller).
        data: already loaded data (else loaded from ``data_root``).
        resume: continue from the store's last checkpoint if it has one.
        stop_after_epochs: stop (as if interrupted) once this many epochs are done in total.
    Returns:
        The final results (``clean_accuracy``, ``per_class_accuracy``, ``n_test``, ``n_train``,
        ``epochs``, ``train_seconds``; given to ``store.finish``) and ``"model"``, the trained model
        in eval mode; ``{"interrupted_at_epoch": k, "model": ...}`` when stopped early.

    In a torchrun job (:mod:`interpretgan.distributed`) the loop is data-parallel: every rank draws the
    same global batch of ``cfg.batch_size`` and trains on its share, with gradients averaged by DDP
    and weighted so that the step is the one-process step on the whole batch; ATTA's perturbations
    are exchanged after every step so that each rank holds all of them; rank 0 alone writes ``store``.
    """
    parallel = distributed.active()
    store = MemoryTrainStore() if store is None else store
    if not distributed.is_main():
        store = _FollowerStore(store)
    device = torch.device(device)
    data = data or load_train_data(cfg, data_root, verify)
    model = to_channels_last(build_model(cfg, data).to(device), cfg.channels_last)
    # The steps run the compiled module (in DDP when distributed); the weights stay the model's own.
    net = _data_parallel(torch.compile(model) if cfg.compile else model, device)
    train_x, train_y = data.train.x.to(device), data.train.y.to(device)
    test_x, test_y = data.test.x.to(device), data.test.y.to(device)

    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=cfg.lr_milestones, gamma=cfg.lr_gamma)
    objective = make_objective(cfg)
    pad = CROP_PAD if cfg.augment else 0
    objective.setup(model, train_x, pad, device, cfg.seed)
    shuffle_gen = torch.Generator().manual_seed(cfg.seed)
    # Dropout draws from the global generator: a mask of its own on every rank (rank 0's is the one-process one).
    torch.manual_seed(cfg.seed + distributed.rank())

    start_epoch = 0
    found = store.resume_state(device) if resume else None
    if found is not None:
        start_epoch = _restore(*found, model, optimizer, scheduler, objective, shuffle_gen, device, cfg.seed)
        log.info("resuming %s at epoch %d of %d", found[1], start_epoch, cfg.epochs)
    elif resume:
        log.info("no checkpoint to resume from: starting from scratch")
    if resume:  # epochs after the checkpoint ran before the interruption: their records go
        store.keep_records(lambda r: r.get("epoch", -1) < start_epoch)

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
            # The whole batch's crops are drawn on every rank, so that the generator stays in step.
            aug = sample_crop_flip(len(idx), *train_x.shape[1:], pad, shuffle_gen, device) if pad else None
            part = (distributed.share(len(idx)), len(idx)) if parallel else None
            mine = idx[part[0]] if part else idx
            x, y = train_x[mine].float().div_(255), train_y[mine]
            if aug is not None:
                aug = aug.rows(part[0]) if part else aug
                x = aug.apply(x)
            if cfg.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with autocast(device, cfg.precision):  # the inner attack's forward passes too
                loss, stats = objective.loss(net, x, y, mine, aug, part)
            if part:  # DDP averages over the ranks: weigh each share by its size (the last batch may be uneven)
                loss = loss * (len(mine) * distributed.world_size() / len(idx))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if part:
                objective.after_step(idx, part[0])
            for k, v in stats.items():
                v = v * len(mine) if k != "correct" else v  # means -> sums
                sums[k] = sums[k] + v if k in sums else v
            bar.update(1)
        bar.close()
        for v in sums.values():
            distributed.all_reduce_sum(v)
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
        ev = evaluate(model, test_x, test_y, cfg.eval_batch_size, data.num_classes, shared=True)
        record["test_accuracy"], record["test_loss"] = ev["accuracy"], ev["loss"]
        store.record(record)
        log.info(
            "epoch %d/%d  loss %.4f  train acc %.4f  test acc %.4f  (%.1f s)",
            epoch + 1,
            cfg.epochs,
            record.get("train_loss", float("nan")),
            record["train_accuracy"],
            ev["accuracy"],
            seconds,
        )
        if (epoch + 1) % cfg.checkpoint_every == 0 or epoch + 1 == last_epoch:
            _checkpoint(store, model, optimizer, scheduler, objective, shuffle_gen, epoch + 1)

    if last_epoch < cfg.epochs:
        return {"interrupted_at_epoch": last_epoch, "model": model.eval()}
    if cfg.epochs == 0:  # the starting weights as they are: the checkpoint the loop writes after an epoch
        _checkpoint(store, model, optimizer, scheduler, objective, shuffle_gen, 0)
    model.eval()
    final = evaluate(model, test_x, test_y, cfg.eval_batch_size, data.num_classes, shared=True)
    results = {
        "clean_accuracy": final["accuracy"],
        "per_class_accuracy": final["per_class_accuracy"],
        "n_test": final["n"],
        "n_train": len(train_y),
        "epochs": cfg.epochs,
        "train_seconds": sum(r["seconds"] for r in store.records()),
    }
    store.finish(results)
    distributed.barrier()  # the other ranks go on once rank 0 has written the results
    return {**results, "model": model}


def _checkpoint(store: TrainStore, model, optimizer, scheduler, objective, shuffle_gen, epochs_done: int) -> None:
    rng = {"cpu": torch.get_rng_state(), "shuffle": shuffle_gen.get_state()}
    if distributed.active():  # each rank's dropout generator, for a resume with as many ranks
        rng["cpu_ranks"] = distributed.all_gather_objects(torch.get_rng_state())
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    store.checkpoint({
        "epochs_done": epochs_done,
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": rng,
        "objective": {k: v.detach().cpu() for k, v in objective.state_dict().items()},
    }, model, epochs_done)


def _restore(state: dict[str, Any], where: str, model, optimizer, scheduler, objective, shuffle_gen, device,
             seed: int) -> int:
    try:
        model.load_state_dict(state["model"])  # copies onto the model's device
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"]["cpu"])
        ranks = state["rng"].get("cpu_ranks") or []
        if len(ranks) == distributed.world_size() > 1:
            torch.set_rng_state(ranks[distributed.rank()])
        elif distributed.rank() > 0:  # another world size: fresh dropout masks for the ranks after 0
            torch.manual_seed(seed + 1000 * int(state["epochs_done"]) + distributed.rank())
        shuffle_gen.set_state(state["rng"]["shuffle"])
        if "cuda" in state["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        objective.load_state_dict({k: v.to(device) if k != "generator" else v for k, v in state["objective"].items()})
        return int(state["epochs_done"])
    except (KeyError, TypeError, ValueError, RuntimeError) as err:  # another model's state, or parts missing
        detail = (
            f"no {err.args[0]!r} entry"
            if isinstance(err, KeyError)
            else (str(err).strip().splitlines() or [""])[0][:120]
        )
        raise RunError(f"{where} does not fit this run's model and settings ({detail}); "
                       "expected the training state this run wrote") from None
