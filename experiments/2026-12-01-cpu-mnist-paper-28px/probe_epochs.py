"""Clean, PGD-40 and PGD-100 accuracy on the first 500 MNIST test images of one epoch's checkpoint.

    python probe_epochs.py FOLDER IMAGE_SIZE

FOLDER is a copy of a run's ``ckpt/`` (``model.json`` and ``model.safetensors``) taken after an
epoch; eps 0.3, step 0.01, seeded random start, through the library's ``evaluate_attacks``.
Prints one JSON line.
"""

import json
import sys

from interpretgan.attacks import make_attack
from interpretgan.attacks.evaluate import evaluate_attacks
from interpretgan.data import load_dataset
from interpretgan.runs import load_model

path, size = sys.argv[1], int(sys.argv[2])
ds = load_dataset("mnist", "test", image_size=size)
attacks = {f"pgd{steps}": make_attack("pgd", eps=0.3, alpha=0.01, steps=steps) for steps in (40, 100)}
res = evaluate_attacks(load_model(path), ds.x[:500], ds.y[:500], attacks, batch_size=500, device="cpu", num_classes=10)
print(json.dumps({"path": path, "clean": res["clean_accuracy"], **{k: a["accuracy"] for k, a in res["attacks"].items()}}))
