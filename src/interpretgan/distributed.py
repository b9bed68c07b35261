"""One process or several: the rank and world size a stage runs in, and the few collective operations
the stages use.

``torchrun --nproc_per_node N -m interpretgan ...`` starts N processes with ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK`` and the rendezvous address in their environment; :func:`setup` joins them into one
process group (gloo on CPU, nccl on CUDA). Without torchrun every helper here is the one-process
identity, so library code calls them unconditionally.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from interpretgan.errors import ConfigError


def launched() -> bool:
    """Whether this process was started by torchrun with more than one process in the job."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def setup(device: torch.device) -> torch.device:
    """Join the torchrun job (once) and return this rank's device: ``cuda:LOCAL_RANK`` for a CUDA
    ``device``, ``device`` itself otherwise. One process: ``device`` unchanged."""
    if not launched():
        return device
    if device.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if local >= torch.cuda.device_count():
            raise ConfigError(f"torchrun started local rank {local} but this machine has "
                              f"{torch.cuda.device_count()} CUDA GPU(s); expected --nproc_per_node at most that")
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        # This module's functions take group.WORLD as a default argument: imported after the group exists (torch
        # imports it with torch._dynamo, on the first optimizer), they keep the group alive past teardown, and
        # gloo's threads then run into the interpreter's shutdown, where one may abort the process.
        importlib.import_module("torch.distributed.nn.functional")
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def teardown() -> None:
    """Leave the job: every process group is destroyed, the layer teams' too (a group still referenced here
    would keep its threads running into the interpreter's shutdown)."""
    _teams.clear()
    if dist.is_initialized():
        dist.destroy_process_group()


_alone = 0  # depth of alone() blocks: rank 0 working as if it were the only process


def active() -> bool:
    """Whether a process group with more than one process is running (and this rank is not working alone)."""
    return not _alone and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() and not _alone else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() and not _alone else 1


@contextmanager
def alone() -> Iterator[None]:
    """Rank 0 works by itself for the block, as a one-process job (no collective runs; it writes what a
    single process writes), while the others wait for it (a stage that is not spread over the ranks)."""
    global _alone
    _alone += 1
    try:
        yield
    finally:
        _alone -= 1


def is_main() -> bool:
    """Rank 0: the one process that writes run folders, logs and prints."""
    return rank() == 0


def barrier() -> None:
    if active():
        dist.barrier()


def share(n: int, part: int | None = None, parts: int | None = None) -> slice:
    """The contiguous rows of ``n`` that rank ``part`` of ``parts`` takes (this rank of this job by
    default): sizes differ by at most one, as :func:`torch.tensor_split`'s."""
    part, parts = rank() if part is None else part, world_size() if parts is None else parts
    q, r = divmod(n, parts)
    start = part * q + min(part, r)
    return slice(start, start + q + (part < r))


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """``t`` summed over the ranks, in place (one process: ``t`` as it is)."""
    if active():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def gather_rows(full: torch.Tensor, rows: slice) -> torch.Tensor:
    """Every rank's ``full[rows]`` put together: each rank holds its own rows of ``full`` (the others
    may hold anything) and receives everyone's. One process: ``full`` unchanged."""
    if not active():
        return full
    mine = torch.zeros_like(full)
    mine[rows] = full[rows]
    return all_reduce_sum(mine)


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every rank (a path, a small dict); one process: ``obj``."""
    if not active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def all_gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order; one process: ``[obj]``."""
    if not active():
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


@dataclass(frozen=True)
class Team:
    """The ranks that train one explainer together (data-parallel inside a layer), and this rank's place
    among them. A team of one (any one-process job) reduces nothing."""

    ranks: tuple[int, ...]
    part: int
    group: Any = None  # the team's process group

    @property
    def parts(self) -> int:
        return len(self.ranks)

    def all_reduce_sum(self, t: torch.Tensor) -> torch.Tensor:
        """``t`` summed over the team, in place."""
        if self.parts > 1:
            dist.all_reduce(t, op=dist.ReduceOp.SUM, group=self.group)
        return t

    def all_reduce_grads(self, params: Iterator[torch.nn.Parameter]) -> None:
        """The team's gradients summed into every member's, as one flat all-reduce (the way stylegan2-ada
        syncs its networks: DDP cannot wrap a critic whose gradient penalty runs a double backward)."""
        if self.parts == 1:
            return
        grads = [p.grad for p in params if p.grad is not None]  # the same on every member: one scale's layers
        flat = self.all_reduce_sum(torch.cat([g.reshape(-1) for g in grads]))
        for g, part in zip(grads, flat.split([g.numel() for g in grads])):
            g.copy_(part.view_as(g))


_teams: dict[tuple[int, int], list[Any]] = {}  # (world size, layers) -> every team's process group


def layer_team(layers: int) -> Team:
    """This rank's team when the job trains ``layers`` explainers: with more ranks than layers, rank ``r``
    works on layer ``r % layers`` with the other ranks of that residue (the first of them writes); with
    as many ranks or fewer, a team of one (the layers are dealt over the ranks instead)."""
    world, r = world_size(), rank()
    if world <= layers:
        return Team((r,), 0)
    members = [tuple(range(i, world, layers)) for i in range(layers)]
    if (world, layers) not in _teams:  # every rank creates every group, in the same order (a collective)
        _teams[(world, layers)] = [dist.new_group(list(m)) for m in members]
    mine = members[r % layers]
    return Team(mine, mine.index(r), _teams[(world, layers)][r % layers])
