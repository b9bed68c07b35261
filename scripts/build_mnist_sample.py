"""Build the embedded MNIST sample (src/interpretgan/data/mnist_sample.npz) from the official files.

    python scripts/build_mnist_sample.py --data-root DIR

Takes 500 digits per class from the official train set and 100 per class from the official test set
(seeded, so a rebuild from the same files gives the same bytes), stores them at 28x28 uint8 with their
labels and their indices in the official files, and prints the file's sha256, to be recorded as
SAMPLE_SHA256 in src/interpretgan/data/sample.py.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np

try:
    import interpretgan  # noqa: F401
except ImportError:  # running from a checkout without an install
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from interpretgan.data import integrity, mnist, sample
from interpretgan.errors import InterpretganError


def build(data_root: Path, out: Path, seed: int) -> str:
    arrays = {}
    for split, per_class in sample.PER_CLASS.items():
        digits, labels, verdict = mnist.read_split(data_root, split, verify=True)
        if verdict != integrity.OFFICIAL_MD5:
            raise SystemExit(f"error: the MNIST {split} files under {data_root} are not the official ones ({verdict}).")
        index = sample.select(labels, per_class, seed)
        arrays[f"x_{split}"] = digits[index]
        arrays[f"y_{split}"] = labels[index]
        arrays[f"index_{split}"] = index.astype(np.int32)
    sample.write_sample(out, arrays)
    return hashlib.sha256(out.read_bytes()).hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, required=True, help="folder holding MNIST/raw/")
    parser.add_argument("--out", type=Path, default=sample.sample_path(), help="where to write the .npz")
    parser.add_argument("--seed", type=int, default=sample.SEED)
    args = parser.parse_args()
    try:
        digest = build(args.data_root, args.out, args.seed)
    except InterpretganError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    size = args.out.stat().st_size
    print(f"wrote {args.out} ({size} bytes)")
    print(f"sha256 {digest}")
    if digest != sample.SAMPLE_SHA256:
        print("this differs from SAMPLE_SHA256 in src/interpretgan/data/sample.py: record the new value there")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
