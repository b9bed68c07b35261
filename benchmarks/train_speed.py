"""Images/s of a SmallCNN training epoch through interpretgan's loop beside a bare PyTorch loop.

Both train the same model from the same initial weights on the same batches (MNIST at 32x32 from
$INTERPRETGAN_DATA, else the embedded sample), alternating, several repeats; the median of each is
compared. Last line: JSON with ``images_per_s`` (ours), ``bare_images_per_s`` and
``overhead_vs_bare`` (our epoch time / bare epoch time; the goal is under 1.10).

    python benchmarks/train_speed.py [--quick] [--device cpu] [--n 60000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

import torch
import torch.nn.functional as F

from interpretgan.config.presets import resolve_train_config
from interpretgan.data import iterate_batches
from interpretgan.pipeline.runs import Run
from interpretgan.pipeline.train import fit
from interpretgan.training import build_model, load_train_data


def bare_epoch(model, x, y, batch_size, lr, seed, device) -> float:
    """The loop a researcher would write by hand: index, scale, forward, CE, backward, SGD step."""
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    g = torch.Generator().manual_seed(seed)
    model.train()
    _sync(device)
    t0 = time.perf_counter()
    for idx in iterate_batches(len(y), batch_size, shuffle=True, generator=g):
        idx = idx.to(device)
        xb, yb = x[idx].float().div_(255), y[idx]
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    _sync(device)
    return time.perf_counter() - t0


def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="10,000 images, 2 repeats (under a minute on 2 cores)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--n", type=int, default=60000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    n, repeats = (10000, 2) if args.quick else (args.n, args.repeats)
    dataset = "mnist" if os.environ.get("INTERPRETGAN_DATA") else "mnist-sample"
    cfg = resolve_train_config(
        dataset, "natural", "cpu", {"epochs": 1, "n_train": n, "n_test": 500, "lr_milestones": []}
    )
    data = load_train_data(cfg)
    device = torch.device(args.device)
    x, y = data.train.x.to(device), data.train.y.to(device)
    print(
        f"{dataset}: {len(y)} training images at 32x32, batch {cfg.batch_size}, device {device}, "
        f"torch threads {torch.get_num_threads()}"
    )

    ours, bare = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeats):
            run = Run.create(tmp, f"bench{r}", "train", cfg.to_dict())
            fit(cfg, run, device=device, data=data, progress=False)
            ours.append(run.read_metrics()[0]["seconds"])
            model = build_model(cfg, data).to(device)
            bare.append(bare_epoch(model, x, y, cfg.batch_size, cfg.lr, cfg.seed, device))
            print(f"repeat {r}: interpretgan {ours[-1]:.2f} s, bare {bare[-1]:.2f} s")
    t_ours, t_bare = statistics.median(ours), statistics.median(bare)
    result = {
        "images_per_s": len(y) / t_ours,
        "bare_images_per_s": len(y) / t_bare,
        "overhead_vs_bare": t_ours / t_bare,
        "n_images": len(y),
        "repeats": repeats,
        "device": str(device),
    }
    print(f"interpretgan {result['images_per_s']:.0f} img/s, bare {result['bare_images_per_s']:.0f} img/s, "
          f"overhead x{result['overhead_vs_bare']:.3f} (goal < 1.10)")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
