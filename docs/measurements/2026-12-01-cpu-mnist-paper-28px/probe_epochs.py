"""Clean, PGD-40 and PGD-100 accuracy on the first 500 MNIST test images of one epoch's checkpoint.

    python probe_epochs.py FOLDER IMAGE_SIZE

FOLDER is a copy of a run's ``ckpt/`` (``model.json`` and ``model.safetensors``) taken after an
epoch; eps 0.3, step 0.01, random start seeded with 0. Prints one JSON line.
"""

import json
import sys

import torch

from interpretgan.attacks.pgd import PGD
from interpretgan.data import load_dataset
from interpretgan.runs import load_model

torch.set_num_threads(1)
path, size = sys.argv[1], int(sys.argv[2])
ds = load_dataset("mnist", "test", image_size=size)
x, y = ds.x[:500].float() / 255, ds.y[:500]
model = load_model(path)
out = {"path": path}
with torch.no_grad():
    out["clean"] = (model(x).argmax(1) == y).float().mean().item()
for steps in (40, 100):
    attack = PGD(0.3, 0.01, steps, random_start=True, generator=torch.Generator().manual_seed(0))
    x_adv = attack(model, x, y)
    with torch.no_grad():
        out[f"pgd{steps}"] = (model(x_adv).argmax(1) == y).float().mean().item()
print(json.dumps(out))
