"""PGD-40 images/s of interpretgan's PGD beside captum.robust.PGD and beside a bare gradient loop.

All three run on the same SmallCNN (MNIST, 32x32, the paper's Fig. 6 model, random init: speed
does not depend on the weights) and the same batch (the MNIST test set from $INTERPRETGAN_DATA,
else the embedded MNIST sample), in the same process, interleaved, after a warm-up; the median of
the repeats is compared.

- ours:   ``PGD(eps=0.3, alpha=0.01, steps=40, random_start=True)(model, x, y)``
- captum: ``captum.robust.PGD(model, CE, 0, 1).perturb(x, 0.3, 0.01, 40, y, random_start=True)``
- bare:   40 x (forward + cross-entropy + ``autograd.grad`` to the input), nothing else: the
          floor any PGD-40 must pay.

Then APGD-CE-100 (Croce & Hein 2020), ours beside IBM ART 1.20's ``AutoProjectedGradientDescent``
(a test-only dependency; the keys are null without it), interleaved the same way:

- ours: ``APGD(eps=0.3, steps=100)(model, x, y)``, ``y`` the model's own predictions (see below)
- ART:  ``AutoProjectedGradientDescent(PyTorchClassifier(model, ...), eps=0.3, eps_step=0.6,
        max_iter=100, nb_random_init=1, loss_type="cross_entropy").generate(x, y)``

Our PGD-40 also runs, interleaved with the above, in the arithmetic ``interpretgan attack`` offers
(:class:`~interpretgan.attacks.arithmetic.AttackForward`, each on its own copy of the model):
``--precision bf16`` (the input layer in fp32), ``--channels-last``, both, and ``--compile``
(compiled during the warm-up). Keys ``bf16_speedup``, ``channels_last_speedup``,
``bf16_channels_last_speedup``, ``compile_speedup`` (fp32 eager time / the variant's) and
``best_speedup`` (the largest; issue 30's goal on a CPU is at least 1.4).

Goals: ``speedup_vs_captum`` (captum time / ours) >= 1.5; ``overhead_vs_bare``
(ours / bare - 1) <= 0.10; ``apgd_speedup_vs_art`` (ART time / ours) >= 2. Last line: one JSON object.

    python benchmarks/attack_speed.py [--quick] [--device cpu|cuda] [--batch-size 256] [--repeats 7]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import time
import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from interpretgan.attacks import APGD, PGD
from interpretgan.attacks.arithmetic import AttackForward

#: The arithmetic variants of our PGD-40: their key and AttackForward's options.
VARIANTS = {
    "bf16": {"precision": "bf16"},
    "channels_last": {"channels_last": True},
    "bf16_channels_last": {"precision": "bf16", "channels_last": True},
    "compile": {"compile": True},
}

EPS, ALPHA, STEPS = 0.3, 0.01, 40
APGD_STEPS = 100


def load_batch(n: int) -> tuple[torch.Tensor, torch.Tensor, str]:
    """``n`` MNIST test images (n, 1, 32, 32) in [0, 1] and labels, on the CPU."""
    from interpretgan.data import load_dataset

    name = "mnist" if os.environ.get("INTERPRETGAN_DATA") else "mnist-sample"
    data = load_dataset(name, "test", image_size=32)
    reps = -(-n // len(data))  # the sample holds 1,000 images: repeat it for larger batches
    x, y = data.x.repeat(reps, 1, 1, 1)[:n], data.y.repeat(reps)[:n]
    return x.float().div_(255), y, name


def bare_loop(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The floor: STEPS x (forward, CE, gradient to the input), no step, no projection."""
    x = x.detach().clone().requires_grad_(True)
    grad = x
    for _ in range(STEPS):
        grad = torch.autograd.grad(F.cross_entropy(model(x), y, reduction="sum"), x)[0]
    return grad


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--quick",
        action="store_true",
        help="batch 32, 3 repeats (2 for APGD), 1 warm-up (under a minute on 2 idle CPU cores)",
    )
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch-size", type=int, default=None, help="default 256 (32 with --quick)")
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    repeats, warmup = (3, 1) if args.quick else (args.repeats, 2)
    args.batch_size = args.batch_size or (32 if args.quick else 256)
    device = torch.device(args.device)

    from captum.robust import PGD as CaptumPGD

    from interpretgan.models import create_model

    torch.manual_seed(0)
    model = create_model("smallcnn", pool="max", in_channels=1, num_classes=10, image_size=32).to(device).eval()
    x, y, data_name = load_batch(args.batch_size)
    x, y = x.to(device), y.to(device)
    print(f"SmallCNN (random init) on {args.batch_size} {data_name} test images at 32x32, device {device}, "
          f"torch {torch.__version__}, threads {torch.get_num_threads()}; PGD-{STEPS} eps={EPS} alpha={ALPHA}")

    ours_attack = PGD(EPS, ALPHA, STEPS, random_start=True)
    captum_attack = CaptumPGD(model, loss_func=lambda out, t: F.cross_entropy(out, t, reduction="none"),
                              lower_bound=0.0, upper_bound=1.0)
    warnings.filterwarnings("ignore", message="Input Tensor .* did not already require gradients")
    runners: dict[str, Callable[[], object]] = {
        "ours": lambda: ours_attack(model, x, y),
        "captum": lambda: captum_attack.perturb(x, EPS, ALPHA, STEPS, y, random_start=True, norm="Linf"),
        "bare": lambda: bare_loop(model, x, y),
    }
    for key, options in VARIANTS.items():
        fwd = AttackForward(copy.deepcopy(model), example=x, **options)
        runners[key] = lambda fwd=fwd: ours_attack(fwd, x, y)

    def timed(fn: Callable[[], object]) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - t0

    def measure(runners: dict[str, Callable[[], object]], repeats: int, warmup: int) -> dict[str, list[float]]:
        for _ in range(warmup):
            for fn in runners.values():
                timed(fn)
        times: dict[str, list[float]] = {k: [] for k in runners}
        for r in range(repeats):  # interleaved, so drifting load hits all alike
            for name, fn in runners.items():
                times[name].append(timed(fn))
            print(f"repeat {r}: " + ", ".join(f"{k} {v[-1] * 1000:.1f} ms" for k, v in times.items()))
        return times

    times = measure(runners, repeats, warmup)
    med = {k: statistics.median(v) for k, v in times.items()}
    apgd = apgd_versus_art(model, x, y, device, measure, repeats=max(1, repeats - 1) if args.quick else repeats,
                           warmup=warmup)
    speedups = {f"{key}_speedup": med["ours"] / med[key] for key in VARIANTS}
    result = {
        **speedups,
        "best_speedup": max(speedups.values()),
        "speedup_vs_captum": med["captum"] / med["ours"],
        "overhead_vs_bare": med["ours"] / med["bare"] - 1.0,
        "images_per_s": args.batch_size / med["ours"],
        "captum_images_per_s": args.batch_size / med["captum"],
        "bare_images_per_s": args.batch_size / med["bare"],
        "median_s": med,
        "min_s": {k: min(v) for k, v in times.items()},
        "timings_s": times,
        "batch_size": args.batch_size,
        "steps": STEPS,
        "repeats": repeats,
        "device": str(device),
        "data": data_name,
        "threads": torch.get_num_threads(),
        **apgd,
    }
    print(f"ours {result['images_per_s']:.0f} img/s, captum {result['captum_images_per_s']:.0f} img/s, "
          f"bare loop {result['bare_images_per_s']:.0f} img/s")
    print(f"speedup vs captum x{result['speedup_vs_captum']:.2f} (goal >= 1.5), "
          f"overhead vs bare {100 * result['overhead_vs_bare']:+.1f}% (goal <= +10%)")
    print("PGD-40 over fp32 eager: " + ", ".join(f"{k} x{v:.2f}" for k, v in speedups.items())
          + f" (best x{result['best_speedup']:.2f}, goal >= 1.4)")
    if result["apgd_speedup_vs_art"] is not None:
        print(
            f"APGD-CE-{APGD_STEPS}: ours {result['apgd_ce100_s'] * 1000:.0f} ms, "
            f"ART {result['art_apgd_ce100_s'] * 1000:.0f} ms, "
            f"speedup x{result['apgd_speedup_vs_art']:.2f} (goal >= 2)"
        )
    print(json.dumps(result))


def apgd_versus_art(model: nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device,
                    measure: Callable[..., dict[str, list[float]]], *, repeats: int, warmup: int) -> dict[str, object]:
    """Median seconds of our APGD-CE-100 and ART's on the same batch, and their ratio (keys null without ART)."""
    keys = ("apgd_ce100_s", "art_apgd_ce100_s", "apgd_speedup_vs_art")
    try:
        from art.attacks.evasion import AutoProjectedGradientDescent
        from art.estimators.classification import PyTorchClassifier
    except ImportError:
        print("adversarial-robustness-toolbox is not installed (pip install -e '.[test]'): APGD vs ART skipped")
        return dict.fromkeys(keys)
    classifier = PyTorchClassifier(model, loss=nn.CrossEntropyLoss(), input_shape=tuple(x.shape[1:]), nb_classes=10,
                                   clip_values=(0.0, 1.0), device_type="gpu" if device.type == "cuda" else "cpu")
    art_attack = AutoProjectedGradientDescent(classifier, eps=EPS, eps_step=2 * EPS, max_iter=APGD_STEPS,
                                              nb_random_init=1, batch_size=x.shape[0], loss_type="cross_entropy",
                                              verbose=False)
    ours_attack = APGD(EPS, APGD_STEPS)
    # Labels: the model's own predictions. ART attacks only the images it still classifies right (on a
    # random-init model, hardly any), so with the true labels it would skip its work and time nothing.
    with torch.no_grad():
        y = model(x).argmax(1)
    x_np, y_np = x.cpu().numpy(), y.cpu().numpy()  # ART takes numpy arrays: its copies are part of its cost
    times = measure(
        {"apgd_ours": lambda: ours_attack(model, x, y), "apgd_art": lambda: art_attack.generate(x_np, y_np)},
        repeats,
        warmup,
    )
    ours, art = statistics.median(times["apgd_ours"]), statistics.median(times["apgd_art"])
    return {keys[0]: ours, keys[1]: art, keys[2]: art / ours, "apgd_timings_s": times}


if __name__ == "__main__":
    main()
