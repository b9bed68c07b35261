"""Seconds per component of AutoAttack on 24 MNIST test images of the zoo's trades+atta SmallCNN (see README.md)."""
import os
import time

import torch
torch.set_num_threads(1)
from interpretgan.pretrained import load
from interpretgan.data import load_dataset
from interpretgan.attacks import PGD, AutoAttack
m = load("mnist-smallcnn-max-trades+atta").eval()
ds = load_dataset("mnist", "test", root=os.environ["INTERPRETGAN_DATA"]).subset(1000, seed=0)
x, y = ds.float_batch(slice(0, 24))
g = torch.Generator().manual_seed(0)
t = time.perf_counter(); a = PGD(0.3, 0.01, 100, random_start=True)(m, x, y); tp = time.perf_counter() - t
print("pgd100", tp, (m(a).argmax(1) == y).float().mean().item(), flush=True)
aa = AutoAttack(0.3, generator=g)
for name, part in aa.parts.items():
    t = time.perf_counter(); out = part.with_generator(g)(m, x, y); s = time.perf_counter() - t
    print(name, round(s, 1), (m(out).argmax(1) == y).float().mean().item(), flush=True)
