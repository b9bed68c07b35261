"""The training loop of the per-layer explainers (Section 3, Fig. 2, Appendix C), in memory or into a store.

For every chosen layer i of a frozen classifier f: a compression net C_i, a progressive generator
G_i and its critic D_i, trained on natural training images with the WGAN-GP loss plus the
interpretability term (:mod:`interpretgan.explain.losses`): D_i sees real training images
(average-pooled to the current scale), C_i and G_i are trained together by one Adam optimizer,
D_i by another (lr 1e-3, betas (0, 0.99)). At a scale below the full resolution, G_i's output is
upsampled (nearest) before it is fed to f; while a scale fades in, the real images are blended
between the new resolution and the previous one with the same alpha as G's output (as in
ProGAN and pytorch_GAN_zoo).

**One loop for all layers** (``cfg.joint``, the default): every iteration draws one batch, runs f
once (one :meth:`TappedModel.taps` call gives every layer's latent and f's label), then steps each
layer's explainer. With ``cfg.fuse`` the layers' G and D run as one stack of grouped convolutions.
``joint=False`` trains the layers one after another (the paper's way), each with the same batches.
Every layer has its own initialisation seed and its own random generator (for the gradient
penalty's interpolation), so an unfused joint run and the separate runs give the same weights.

:func:`train_explainers` returns the trained explainers. Given an :class:`ExplainStore` (a run
folder's: :class:`interpretgan.explain.runs.RunStore`), it also writes each layer's explainer and
the loop's resume state every ``checkpoint_every`` iterations and its ``train`` / ``collapse``
records every ``log_every``, and resumes from them: a resumed loop ends with the same weights as
an uninterrupted one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any, Protocol

import torch
from torch import Tensor
from tqdm.auto import tqdm

from interpretgan import distributed
from interpretgan.config import ExplainConfig
from interpretgan.data import ArrayDataset
from interpretgan.devices import concrete_device, eval_mode, to_channels_last
from interpretgan.errors import ConfigError, RunError
from interpretgan.explain.compression import CompressionNet, compression_configs
from interpretgan.explain.explainer import (
    GP_SPACE,
    Explainer,
    Schedule,
    _layer_seed,
    build_layer_modules,
    detect_collapse,
)
from interpretgan.explain.fit import gan_side
from interpretgan.explain.group import LayerGroup
from interpretgan.explain.losses import (
    classifier_target,
)
from interpretgan.explain.progan import (
    num_scales,
    scale_side,
    stddev_group,
)
from interpretgan.io import RecordList
from interpretgan.models import TappedModel

log = logging.getLogger(__name__)

#: The parts ``cfg.compile`` leaves eager, and why (the one compiled part is f's forward through the
#: explanations, which carries the interpretability term's gradient to G_i).
EAGER_PARTS = {
    "critic": "the gradient penalty differentiates D_i's gradient, and compiled graphs do not run a double backward",
    "generator": "its scale and fade-in alpha change every iteration, and each new value would compile it again",
    "compression": "seven small nets of one layer each gain less than their compile time",
}


class ExplainStore(Protocol):
    """Where a training loop keeps its progress: records, each layer's explainer and its resume state."""

    def iteration(self, layer: str) -> int | None:
        """The iteration of ``layer``'s stored explainer (None without one)."""

    def check_versions(self, generator_config: Mapping[str, Any], init: str) -> None:
        """Refuse to continue explainers stored by another version of the generator or compression net."""

    def loop_state(self, tag: str, device_type: str) -> dict[str, Any] | None:
        """The resume state of the loop ``tag`` (None without one); an error when it was written training on
        another device type than ``device_type``, whose random streams differ."""

    def keep_records(self, keep: Any) -> None:
        """Keep only the records for which ``keep(record)`` is true."""

    def record(self, record: dict[str, Any]) -> None: ...

    def records(self) -> list[dict[str, Any]]: ...

    def save_explainer(self, layer: str, compression: CompressionNet, generator_state: Mapping[str, Tensor],
                       discriminator_state: Mapping[str, Tensor], *, generator_config: dict[str, Any],
                       discriminator_config: dict[str, Any], meta: dict[str, Any]) -> None: ...

    def save_loop_state(self, tag: str, state: dict[str, Any]) -> None: ...

    def loop_tags(self) -> list[str]:
        """The tags of the loops whose resume state the store holds."""


class MemoryStore(RecordList):
    """An :class:`ExplainStore` that keeps the records in a list and writes nothing (training in memory)."""

    def iteration(self, layer: str) -> int | None:
        return None

    def check_versions(self, generator_config: Mapping[str, Any], init: str) -> None:
        pass

    def loop_state(self, tag: str, device_type: str) -> dict[str, Any] | None:
        return None

    def save_explainer(self, *args: Any, **kwargs: Any) -> None:
        pass

    def save_loop_state(self, tag: str, state: dict[str, Any]) -> None:
        pass

    def loop_tags(self) -> list[str]:
        return []


class _BatchStream:
    """Seeded random batches of ``batch_size`` indices (a new permutation per epoch, last partial batch
    dropped); its state is the generator, the current permutation and the position in it, so a
    resumed run continues mid-epoch with the same batches."""

    def __init__(self, n: int, batch_size: int, seed: int) -> None:
        if n < batch_size:
            raise ConfigError(
                f"the explainers need at least one full batch: {n} training images < batch size {batch_size}"
            )
        self.n, self.batch_size = n, batch_size
        self.generator = torch.Generator().manual_seed(seed)
        self.perm = torch.empty(0, dtype=torch.int64)
        self.pos = 0

    def next(self) -> Tensor:
        if self.pos + self.batch_size > len(self.perm):
            self.perm = torch.randperm(self.n, generator=self.generator)
            self.pos = 0
        idx = self.perm[self.pos : self.pos + self.batch_size]
        self.pos += self.batch_size
        return idx

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "perm": self.perm, "pos": self.pos}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self.perm, self.pos = state["perm"], int(state["pos"])


def train_explainers(
    classifier: TappedModel,
    train: ArrayDataset,
    cfg: ExplainConfig,
    store: ExplainStore | None = None,
    *,
    device: str | torch.device = "cpu",
    progress: bool = True,
    resume: bool = False,
    stop_after_iterations: int | None = None,
) -> dict[str, Any]:
    """Train the explainers of ``cfg.layers`` (all when empty) of the frozen ``classifier``.

    Args:
        classifier: f, already on ``device``; it is kept in eval mode and its weights are not
            changed (their ``requires_grad`` flags and the training mode are restored afterwards).
        train: the natural training images (uint8 ``(N, C, H, W)`` at the classifier's image size);
            a seeded subset of ``cfg.n_train`` is used when set. Copied to ``device`` as uint8.
        store: where records, explainers and resume states go (None: in memory, nothing written).
        device: where the explainers, the data and the optimizer states live.
        resume: continue from the store's resume states (layers already finished are skipped).
        stop_after_iterations: stop, as if interrupted, once a loop has done this many iterations
            (a checkpoint is written there).
    Returns:
        ``{"layers": [...], "iterations": total per layer, "interrupted": bool, "seconds": float,
        "explainers": {layer: Explainer}}``; ``explainers`` (in eval mode, on ``device``) holds the
        layers this call trained, i.e. all of them unless a resumed store had some finished already.

    In a torchrun job (:mod:`interpretgan.distributed`) each rank trains the layers dealt to it
    (:func:`_rank_loops`) and returns those.
    """
    device = concrete_device(device)
    store = MemoryStore() if store is None else store
    layers = classifier.check_layers(cfg.layers or classifier.layer_names)
    if not layers:
        raise ConfigError("no layer to explain")
    p = next(classifier.parameters())
    if p.device != device:
        raise ConfigError(f"the classifier is on {p.device} but the explainers are to train on {device}; move it first")
    c, h, w = classifier.input_shape
    if tuple(train.x.shape[1:]) != (c, h, w):
        raise ConfigError(
            f"the training images are {'x'.join(map(str, train.x.shape[1:]))} but the classifier takes {c}x{h}x{w}"
        )
    train = train.subset(cfg.n_train, seed=cfg.seed)
    schedule = Schedule.from_config(cfg, num_scales(gan_side(h, w)), len(train))
    comp_cfgs = compression_configs(classifier, layers, cfg.latent_dim, width=cfg.compression_width)
    if cfg.ema_decay and 1 / (1 - cfg.ema_decay) > schedule.iterations[-1]:
        log.warning("--ema-decay %g averages the weights over about %d iterations, more than the last scale's %d: "
                    "the explainers kept lag behind the training; a smaller decay suits this schedule",
                    cfg.ema_decay, round(1 / (1 - cfg.ema_decay)), schedule.iterations[-1])
    train_x = train.x.to(device)

    frozen = [q.requires_grad for q in classifier.parameters()]
    interrupted = False
    explainers: dict[str, Explainer] = {}
    loops = [("joint", layers)] if cfg.joint else [(layer, [layer]) for layer in layers]
    team = distributed.layer_team(len(layers))
    if distributed.active():
        loops = _rank_loops(loops, layers)
        if team.part > 0:  # a layer's team shares one explainer: its first rank alone records and writes it
            store = _ReadOnlyStore(store)
    if cfg.compile and distributed.is_main():  # a run folder's config.json records it (create_explain_run)
        log.info("explain train --compile: f's forward through the explanations is compiled; %s",
                 "; ".join(f"{part} stays eager: {why}" for part, why in EAGER_PARTS.items()))
    try:
        with eval_mode(classifier):
            classifier.requires_grad_(False)  # f is frozen: gradients flow through it, never into it
            to_channels_last(classifier, cfg.channels_last)
            for tag, loop_layers in loops:
                groups, complete = _train_loop(
                    tag,
                    loop_layers,
                    classifier,
                    train_x,
                    cfg,
                    comp_cfgs,
                    schedule,
                    store,
                    device,
                    team,
                    progress=progress,
                    resume=resume,
                    stop_after=stop_after_iterations,
                )
                for g in groups:
                    explainers.update({layer: g.explainer(i, schedule, device) for i, layer in enumerate(g.layers)})
                if not complete:
                    interrupted = True
                    break
    finally:
        for q, flag in zip(classifier.parameters(), frozen):
            q.requires_grad_(flag)
        if cfg.channels_last:  # f goes back to its callers in the order it came in
            classifier.to(memory_format=torch.contiguous_format)
    # The seconds of the training records, so that a resumed run counts the time before the
    # interruption and a run resumed when already finished does not report the few ms of this call.
    seconds = sum(r["seconds"] for r in store.records() if r.get("event") == "train"
                  and any(r.get("loop") == tag and r.get("layer") == ls[0] for tag, ls in loops))
    return {"layers": layers, "iterations": schedule.total, "interrupted": interrupted, "seconds": seconds,
            "explainers": {n: explainers[n] for n in layers if n in explainers}}


def _rank_loops(loops: list[tuple[str, list[str]]], layers: list[str]) -> list[tuple[str, list[str]]]:
    """This rank's share of ``loops`` in a torchrun job: the layers dealt round-robin over the ranks (each
    layer's explainer is independent of the others', so the weights are the one-process ones). A joint
    loop becomes one joint loop per rank, named after the job's size. With more ranks than layers, rank
    ``r`` trains layer ``r % len(layers)`` together with the other ranks of its
    :func:`~interpretgan.distributed.layer_team`, each on its rows of every batch."""
    rank, world = distributed.rank(), distributed.world_size()
    joint = len(loops) == 1 and len(layers) > 1
    if world > len(layers):
        i = rank % len(layers)
        return [(f"joint-{i}of{world}" if joint else loops[i][0], [layers[i]])]
    if joint:
        return [(f"joint-{rank}of{world}", layers[rank::world])]
    return loops[rank::world]


def _team_rows(batch: int, group: int, team: distributed.Team) -> Tensor | None:
    """The rows of every batch that this member of ``team`` takes, in the order its critic sees them: whole
    minibatch-stddev groups (example ``b`` is in group ``b % (batch // group)``), so that the critic's
    statistic is the one-process one. None for a team of one."""
    if team.parts == 1:
        return None
    g = stddev_group(batch, group)
    m = batch // g
    if m < team.parts:
        raise ConfigError(f"--batch-size {batch} makes {m} minibatch-stddev group(s) of {g}, fewer than the "
                          f"{team.parts} processes training one layer together; expected a batch of at least "
                          f"{team.parts * g}")
    mine = torch.arange(m)[distributed.share(m, team.part, team.parts)]
    return (torch.arange(g)[:, None] * m + mine[None, :]).reshape(-1)


class _ReadOnlyStore:
    """A team member's view of the store: it resumes from the team's files and writes nothing."""

    def __init__(self, store: ExplainStore) -> None:
        self.store = store

    def __getattr__(self, name: str) -> Any:
        if name in ("record", "keep_records", "save_explainer", "save_loop_state"):
            return lambda *args, **kwargs: None
        return getattr(self.store, name)


def _resume_state(store: ExplainStore, tag: str, grouping: list[list[str]], device_type: str) -> dict[str, Any] | None:
    """The resume state of the loop ``tag``, whose groups hold the layers in ``grouping``.

    A joint loop's is put together group by group from every joint loop's state in the store, the latest
    for each group: a torchrun job deals the layers over its ranks (loops ``joint-<r>of<w>``, one process:
    ``joint``), so a job resumed with another number of processes finds its layers in other loops' states.
    """
    if not (tag == "joint" or tag.startswith("joint-")):
        return store.loop_state(tag, device_type)
    states = [store.loop_state(t, device_type) for t in store.loop_tags() if t == "joint" or t.startswith("joint-")]
    found: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}  # group index -> (loop state, group state)
    stored: set[str] = set()  # the layers any joint state holds
    for state in filter(None, states):
        for gs in state["groups"]:
            stored.update(gs["layers"])
            for i, layers in enumerate(grouping):
                if gs["layers"] == layers and (i not in found or state["iteration"] > found[i][0]["iteration"]):
                    found[i] = state, gs
    if not found and not stored & set(sum(grouping, [])):
        return None  # nothing of these layers was trained yet
    missing = [layers for i, layers in enumerate(grouping) if i not in found]
    reached = {int(found[i][0]["iteration"]) for i in found}
    if missing or len(reached) > 1:
        what = (f"the stored loop states lack {', '.join('+'.join(m) for m in missing)} in this grouping" if missing
                else f"the stored loop states of these layers stand at iterations {sorted(reached)}")
        raise RunError(f"cannot resume the joint loop of {', '.join(sum(grouping, []))}: {what}; resume with the "
                       "number of processes (and --fuse setting) that wrote them")
    first = found[0][0]  # every rank drew the same batches: any loop's stream and log count serve
    return {**first, "groups": [found[i][1] for i in range(len(grouping))],
            "log_sums": {layer: sums for st, _ in found.values() for layer, sums in st["log_sums"].items()
                         if any(layer in layers for layers in grouping)}}


def _train_loop(tag: str, layers: list[str], classifier: TappedModel, train_x: Tensor, cfg: ExplainConfig,
                comp_cfgs: dict[str, dict[str, Any]], schedule: Schedule, store: ExplainStore, device: torch.device,
                team: distributed.Team, *, progress: bool, resume: bool,
                stop_after: int | None) -> tuple[list[LayerGroup], bool]:
    """One loop over ``schedule`` for ``layers``: ``(its groups, whether it reached the end)``;
    no groups when a resumed store holds every layer finished."""
    all_names = classifier.layer_names
    if resume and all(store.iteration(layer) == schedule.total for layer in layers):
        log.info("explainers of %s already trained: skipping", ", ".join(layers))
        return [], True
    c_img, size = train_x.shape[1], gan_side(*train_x.shape[-2:])
    seeds = [_layer_seed(cfg.seed, all_names.index(layer)) for layer in layers]
    members = [build_layer_modules(cfg, comp_cfgs[layer], c_img, size, seed) for layer, seed in zip(layers, seeds)]
    rows = _team_rows(cfg.batch_size, cfg.mbstd_group, team)
    if cfg.fuse and len(layers) > 1:
        groups = [LayerGroup(layers, members, seeds, cfg, device, train_x.shape[-2:])]
    else:
        groups = [
            LayerGroup([layer], [m], [seed], cfg, device, train_x.shape[-2:], team, rows)
            for layer, m, seed in zip(layers, members, seeds)
        ]
    stream = _BatchStream(train_x.shape[0], cfg.batch_size, cfg.seed)
    if resume:  # explainers checkpointed by another version of the generator or compression net cannot be continued
        store.check_versions(members[0][1].config, members[0][0].config["init"])

    start = 0
    sums: dict[str, dict[str, Tensor]] = {}  # per-layer statistics of the current log interval
    count = 0
    state = _resume_state(store, tag, [g.layers for g in groups], device.type) if resume else None
    if state is not None:
        for g, gs in zip(groups, state["groups"], strict=True):
            g.load_state_dict(gs)
        stream.load_state_dict(state["stream"])
        start = int(state["iteration"])
        sums = {layer: {k: v.to(device) for k, v in acc.items()} for layer, acc in state["log_sums"].items()}
        count = int(state["log_count"])
        log.info("resuming explainers of %s at iteration %d of %d", ", ".join(layers), start, schedule.total)
        if start and any(store.iteration(layer) != start for layer in layers):
            # a layer's files were deleted or are older than the loop's state: rewrite them from it,
            # else a loop already at its end would never write them again
            _checkpoint(store, groups, schedule, start, stream, tag, sums, count)
    if resume:
        store.keep_records(
            lambda r: r.get("event") != "eval" and not (r.get("layer") in layers and r.get("iteration", 0) > start)
        )

    names = list(dict.fromkeys([*layers, all_names[-1]]))  # one forward pass gives latents and f's logits
    f_hat = torch.compile(classifier) if cfg.compile else classifier  # f on the explanations
    stop = schedule.total if stop_after is None else min(schedule.total, stop_after)
    t_log = time.perf_counter()
    warned: set[tuple[str, str, int]] = set()
    bar = tqdm(total=schedule.total, initial=start, desc=f"explain {tag}", disable=not progress, leave=False)
    try:
        for it in range(start, stop):
            scale, alpha = schedule.at(it)
            idx = stream.next()
            idx = (idx if rows is None else idx[rows]).to(device)  # a team member's rows of the batch
            x = train_x[idx].float().div_(255)
            if cfg.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.no_grad():
                taps = classifier.taps(x, names)
            target = classifier_target(taps[all_names[-1]], cfg.interp_target)
            for g in groups:
                stats = g.step(x, [taps[layer] for layer in g.layers], target, scale, alpha, f_hat)
                for i, layer in enumerate(g.layers):
                    acc = sums.setdefault(layer, {})
                    for k, v in stats.items():
                        acc[k] = acc[k] + v[i] if k in acc else v[i]
            count += 1
            bar.update(1)
            done = it + 1
            scale_ends = done < schedule.total and schedule.at(done)[0] != scale  # one record never spans two scales
            if done % cfg.log_every == 0 or done == schedule.total or scale_ends:
                now = time.perf_counter()
                records = _log_records(store, sums, count, done, scale, alpha, tag, now - t_log, cfg, warned)
                bar.set_postfix(_postfix(records, scale, alpha), refresh=False)
                sums, count, t_log = {}, 0, now
            if done % cfg.checkpoint_every == 0 or done == schedule.total or done == stop:
                _checkpoint(store, groups, schedule, done, stream, tag, sums, count)
    finally:
        bar.close()
    return groups, stop == schedule.total


def _log_records(
    store: ExplainStore,
    sums: dict[str, dict[str, Tensor]],
    count: int,
    done: int,
    scale: int,
    alpha: float,
    tag: str,
    seconds: float,
    cfg: ExplainConfig,
    warned: set[tuple[str, str, int]],
) -> list[dict[str, Any]]:
    records = []
    side = scale_side(scale)
    for layer, acc in sums.items():
        means = {k: float(v) / count for k, v in acc.items()}
        record = {"event": "train", "layer": layer, "iteration": done, "scale": scale, "side": side, "alpha": alpha,
                  "loop": tag, **means, "seconds": seconds}
        store.record(record)
        records.append(record)
        for reason, value, threshold in detect_collapse(means["fake_std"], means["critic_loss"],
                                                        min_std=cfg.collapse_std, max_critic=cfg.collapse_critic):
            store.record({"event": "collapse", "layer": layer, "iteration": done, "scale": scale, "side": side,
                                "reason": reason, "value": value, "threshold": threshold})
            if (layer, reason, scale) not in warned:
                warned.add((layer, reason, scale))
                what = ("generator output nearly constant (per-pixel std %.4g < %.4g)" if reason == "constant_output"
                        else "critic running away (|critic loss| %.4g > %.4g)")
                log.warning("layer %s, iteration %d, %dx%d: " + what, layer, done, side, side, value, threshold)
    return records


def _postfix(records: list[dict[str, Any]], scale: int, alpha: float) -> dict[str, str]:
    n = max(len(records), 1)
    mean = lambda k: sum(r[k] for r in records) / n  # noqa: E731
    layer = records[0]["layer"] if len(records) == 1 else f"{len(records)} layers"
    side = scale_side(scale)
    return {"layer": layer, "scale": f"{side}x{side}", "alpha": f"{alpha:.2f}", "D": f"{mean('critic_loss'):.3f}",
            "G": f"{mean('generator_loss'):.3f}", "cons": f"{mean('consistency'):.2f}"}


def _checkpoint(
    store: ExplainStore,
    groups: list[LayerGroup],
    schedule: Schedule,
    done: int,
    stream: _BatchStream,
    tag: str,
    log_sums: dict[str, dict[str, Tensor]],
    log_count: int,
) -> None:
    """Per-layer weights first (always loadable), then the loop's resume state."""
    scale, alpha = schedule.at(done - 1)
    for g in groups:
        for i, layer in enumerate(g.layers):
            comp, g_state, d_state = g.member(i)
            store.save_explainer(layer, comp, g_state, d_state, generator_config=g.generator.config,
                                 discriminator_config=g.discriminator.config,
                                 meta={"iteration": done, "total_iterations": schedule.total, "scale": scale,
                                       "alpha": alpha, "schedule": list(schedule.iterations), "gp_space": GP_SPACE,
                                       "ema_decay": g.decay,
                                       **g.image_fit})
    store.save_loop_state(tag, {"iteration": done, "device_type": groups[0].rngs[0].device.type,
                                "groups": [g.state_dict() for g in groups], "stream": stream.state_dict(),
                                "log_sums": log_sums, "log_count": log_count})
