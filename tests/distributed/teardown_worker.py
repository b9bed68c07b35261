"""Joins a torchrun job, runs a collective in it and in a layer team's group, builds an optimizer (which
imports torch._dynamo, and with it torch.distributed.nn.functional), leaves the job and fails if the process
then has more threads than before it joined; run under torchrun by tests/test_distributed.py.

A process group that outlives ``teardown`` keeps gloo's worker threads running into the interpreter's
shutdown, where one of them may free a tensor without the GIL and abort the process (seen in CI).
"""

import os

import torch

from interpretgan import distributed


def threads() -> int:
    return len(os.listdir("/proc/self/task"))


before = threads()
distributed.setup(torch.device("cpu"))
rank = distributed.rank()
distributed.all_reduce_sum(torch.ones(8))
distributed.layer_team(1).all_reduce_sum(torch.ones(8))  # more ranks than layers: a team's own group
torch.optim.Adam([torch.nn.Parameter(torch.ones(3))])
distributed.barrier()
distributed.teardown()
if threads() > before:
    raise SystemExit(f"rank {rank}: {threads() - before} thread(s) outlived teardown")
