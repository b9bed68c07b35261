"""Tests of interpretgan.data: the embedded sample, real-format parsing, integrity, cache and download.

Real-data tests read the root named by INTERPRETGAN_DATA and skip when it is unset or lacks the
dataset. Everything else builds small fake files in tmp_path.
"""

from __future__ import annotations

import collections
import gzip
import hashlib
import io
import logging
import os
import pickle
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from interpretgan.data import (
    DATASETS,
    ArrayDataset,
    celeba,
    check_datasets,
    cifar10,
    dataset_info,
    integrity,
    iterate_batches,
    load_dataset,
    mnist,
    resolve_data_root,
    sample,
)
from interpretgan.errors import ConfigError, DataError


def paper_resize(x28: torch.Tensor, size: int = 32) -> torch.Tensor:
    """The resize the brief prescribes, written out independently of the library."""
    up = F.interpolate(x28.float(), size=(size, size), mode="bilinear", antialias=False, align_corners=False)
    return up.round().clamp(0, 255).to(torch.uint8)


# ----------------------------------------------------------------------------------------------
# Fake files in the official formats
# ----------------------------------------------------------------------------------------------


def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    dims = b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return magic.to_bytes(4, "big") + dims + array.astype(np.uint8).tobytes()


def write_file(path: Path, data: bytes, gz: bool) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data, mtime=0)
    path.write_bytes(data)
    return path


def fake_mnist(root: Path, n: int = 30, *, gz: bool = True, folder: str = "MNIST/raw", seed: int = 0) -> dict:
    """Write train and test IDX files of ``n`` digits each; return the arrays written."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, (images_stem, labels_stem) in mnist.FILES.items():
        x = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        y = (np.arange(n) % 10).astype(np.uint8)
        write_file(root / folder / images_stem, idx_bytes(x, 2051), gz)
        write_file(root / folder / labels_stem, idx_bytes(y, 2049), gz)
        arrays[split] = (x, y)
    return arrays


def cifar_batch(n: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {
        b"batch_label": b"fake",
        b"labels": [int(v) for v in rng.integers(0, 10, n)],
        b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
        b"filenames": [b"f%d.png" % i for i in range(n)],
    }


def fake_cifar_members(n: int = 4) -> dict[str, bytes]:
    names = [*cifar10.BATCHES["train"], "test_batch"]
    return {name: pickle.dumps(cifar_batch(n, i), protocol=3) for i, name in enumerate(names)}


def write_tar(path: Path, members: dict[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(f"{cifar10.FOLDER}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


CELEBA_ATTRS = ["Attractive", "Male", "Smiling"]


def fake_celeba(root: Path, present: dict[str, int], listed_extra: int = 2, size=(48, 40)) -> dict:
    """A CelebA folder whose images are ``size`` (w, h) JPEGs: red borders around a green centre square.

    ``present`` gives the number of existing images per split; each split also lists
    ``listed_extra`` ids without an image. Returns {split: (found names, male labels)}.
    """
    folder = root / "celeba"
    (folder / celeba.IMAGE_FOLDER).mkdir(parents=True)
    rows, partition, out = [], [], {}
    number = 1
    w, h = size
    side = min(w, h)
    for split, code in celeba.SPLIT_CODES.items():
        names, males = [], []
        for i in range(present[split] + listed_extra):
            name = f"{number:06d}.jpg"
            number += 1
            male = i % 3 == 0
            rows.append(f"{name} {' '.join('1' if (a == 'Male' and male) else '-1' for a in CELEBA_ATTRS)}")
            partition.append(f"{name} {code}")
            if i < present[split]:
                img = Image.new("RGB", (w, h), (255, 0, 0))
                left, top = (w - side) // 2, (h - side) // 2
                img.paste((0, 255, 0), (left, top, left + side, top + side))
                img.save(folder / celeba.IMAGE_FOLDER / name, quality=100, subsampling=0)
                names.append(name)
                males.append(int(male))
        out[split] = (names, males)
    (folder / celeba.ATTR_FILE).write_text(f"{len(rows)}\n{' '.join(CELEBA_ATTRS)}\n" + "\n".join(rows) + "\n")
    (folder / celeba.PARTITION_FILE).write_text("\n".join(partition) + "\n")
    return out


def tree(path: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(path)): (p.stat().st_size, p.stat().st_mtime_ns) for p in path.rglob("*")}


@pytest.fixture(autouse=True)
def private_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Whatever a test does not send elsewhere is cached in its own folder, never in ~/.cache."""
    cache = tmp_path / "default-cache"
    monkeypatch.setenv("INTERPRETGAN_CACHE", str(cache))
    return cache


@pytest.fixture
def no_data_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INTERPRETGAN_DATA", raising=False)


# ----------------------------------------------------------------------------------------------
# Registry, root resolution, batching, ArrayDataset
# ----------------------------------------------------------------------------------------------


def test_registry_names_and_info() -> None:
    assert list(DATASETS) == ["mnist", "cifar10", "celeba", "mnist-sample"]
    assert dataset_info("celeba").splits == ("train", "val", "test")
    assert dataset_info("celeba").classes == ("female", "male")
    assert (dataset_info("cifar10").channels, dataset_info("cifar10").default_image_size) == (3, 32)
    assert dataset_info("mnist").default_image_size == 32
    assert dataset_info("celeba").default_image_size == 64


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        (dict(name="imagenet"), "unknown dataset 'imagenet'"),
        (dict(name="mnist", split="val"), "no split 'val'"),
        (dict(name="mnist-sample", image_size=0), "image_size"),
    ],
)
def test_bad_options_raise_config_error(kwargs: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        load_dataset(**kwargs)


def test_missing_root_names_the_option(no_data_env: None, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="--data-root or set INTERPRETGAN_DATA"):
        load_dataset("mnist")
    with pytest.raises(DataError, match="not a folder"):
        load_dataset("cifar10", root=tmp_path / "nowhere")
    with pytest.raises(DataError, match="no MNIST files found"):
        load_dataset("mnist", root=tmp_path)


def test_resolve_data_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("INTERPRETGAN_DATA", str(tmp_path / "env"))
    assert resolve_data_root(tmp_path / "opt") == tmp_path / "opt"
    assert resolve_data_root(None) == tmp_path / "env"
    monkeypatch.delenv("INTERPRETGAN_DATA")
    assert resolve_data_root(None) is None


def test_cache_dir_resolution(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, private_cache: Path) -> None:
    from interpretgan.data.cache import resolve_cache_dir

    fake_mnist(tmp_path / "root")
    load_dataset("mnist", "test", root=tmp_path / "root", verify=False)
    assert [p.name.split("-v")[0] for p in private_cache.glob("*.x.npy")] == ["mnist-test-32px"]
    assert resolve_cache_dir(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.setenv("INTERPRETGAN_CACHE", str(tmp_path / "env"))
    assert resolve_cache_dir(None) == tmp_path / "env"
    monkeypatch.delenv("INTERPRETGAN_CACHE")
    assert resolve_cache_dir(None) == Path.home() / ".cache" / "interpretgan"


def test_iterate_batches() -> None:
    batches = list(iterate_batches(10, 4, shuffle=False))
    assert [b.tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert all(b.dtype == torch.int64 for b in batches)
    assert [len(b) for b in iterate_batches(10, 4, shuffle=False, drop_last=True)] == [4, 4]
    shuffled = torch.cat(list(iterate_batches(10, 3, shuffle=True, generator=torch.Generator().manual_seed(5))))
    assert shuffled.tolist() == torch.randperm(10, generator=torch.Generator().manual_seed(5)).tolist()
    assert list(iterate_batches(0, 3, shuffle=True)) == []
    with pytest.raises(ConfigError, match="batch size"):
        next(iterate_batches(10, 0, shuffle=False))


def test_array_dataset_subset_and_float_batch() -> None:
    ds = load_dataset("mnist-sample", "test")
    assert ds.subset(None) is ds and ds.subset(len(ds)) is ds
    small = ds.subset(50, seed=1)
    assert len(small) == 50 and small.name == ds.name and small.classes == ds.classes
    assert torch.equal(small.x, ds.subset(50, seed=1).x)
    assert not torch.equal(small.y, ds.subset(50, seed=2).y)
    x, y = small.float_batch(torch.arange(8))
    assert x.dtype == torch.float32 and x.shape == (8, 1, 32, 32) and y.shape == (8,)
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert torch.equal(x * 255, small.x[:8].float())
    with pytest.raises(ConfigError):
        ds.subset(0)
    with pytest.raises(DataError, match="expected uint8"):
        ArrayDataset(torch.zeros(2, 1, 4, 4), torch.zeros(2, dtype=torch.int64), "t", "train", ["a"])


# ----------------------------------------------------------------------------------------------
# Embedded sample
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("split, per_class", [("train", 500), ("test", 100)])
def test_sample_shapes_counts_and_range(no_data_env: None, split: str, per_class: int) -> None:
    ds = load_dataset("mnist-sample", split, image_size=28)
    assert ds.x.shape == (10 * per_class, 1, 28, 28) and ds.x.dtype == torch.uint8
    assert ds.y.dtype == torch.int64 and ds.class_counts() == [per_class] * 10
    assert int(ds.x.min()) == 0 and int(ds.x.max()) == 255
    assert 0.10 < ds.x.float().mean().item() / 255 < 0.16  # MNIST's mean pixel is 0.13
    assert ds.meta["verdict"] == "ok (sha256)"
    digits, labels, _ = sample.read_sample(split)
    assert torch.equal(ds.x[:, 0], torch.from_numpy(digits))
    big = load_dataset("mnist-sample", split)
    assert big.x.shape == (10 * per_class, 1, 32, 32)
    assert torch.equal(big.x, paper_resize(ds.x))
    assert torch.equal(big.y, ds.y)


def test_sample_build_is_seeded_and_stratified() -> None:
    labels = np.arange(200) % 10
    index = sample.select(labels, 5, seed=0)
    assert np.array_equal(index, sample.select(labels, 5, seed=0))
    assert np.bincount(labels[index]).tolist() == [5] * 10 and np.all(np.diff(index) > 0)


def test_sample_checksum_mismatch_raises(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    tampered = tmp_path / sample.SAMPLE_FILE
    data = bytearray(sample.sample_path().read_bytes())
    data[len(data) // 2] ^= 0xFF
    tampered.write_bytes(bytes(data))
    monkeypatch.setattr(sample, "sample_path", lambda: tampered)
    with pytest.raises(DataError, match=rf"{sample.SAMPLE_FILE} has sha256 .*expected {sample.SAMPLE_SHA256}"):
        load_dataset("mnist-sample")
    with pytest.raises(DataError, match=rf"{sample.SAMPLE_FILE} is not a readable sample file"):
        load_dataset("mnist-sample", verify=False)


# ----------------------------------------------------------------------------------------------
# MNIST IDX files
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("gz, folder", [(True, "MNIST/raw"), (False, "mnist"), (True, "")])
def test_mnist_fake_layouts_load(tmp_path: Path, gz: bool, folder: str) -> None:
    arrays = fake_mnist(tmp_path / "root", gz=gz, folder=folder)
    ds = load_dataset("mnist", "test", root=tmp_path / "root", image_size=28, verify=False, cache_dir=tmp_path / "c")
    x, y = arrays["test"]
    assert torch.equal(ds.x[:, 0], torch.from_numpy(x)) and ds.y.tolist() == y.tolist()
    assert ds.meta["verdict"] == "skipped checks"
    ds32 = load_dataset("mnist", "test", root=tmp_path / "root", verify=False, cache_dir=tmp_path / "c")
    assert torch.equal(ds32.x, paper_resize(ds.x))


def test_mnist_md5_either_archive_or_decompressed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake_mnist(tmp_path)
    raw = tmp_path / "MNIST" / "raw"
    stems = mnist.FILES["test"]
    images_raw = gzip.decompress((raw / f"{stems[0]}.gz").read_bytes())
    monkeypatch.setitem(mnist.RAW_MD5, stems[0], hashlib.md5(images_raw).hexdigest())  # decompressed md5 only
    monkeypatch.setitem(mnist.GZ_MD5, stems[1], hashlib.md5((raw / f"{stems[1]}.gz").read_bytes()).hexdigest())
    ds = load_dataset("mnist", "test", root=tmp_path, cache_dir=tmp_path / "c")
    assert ds.meta["verdict"] == "ok (official md5)"


def test_mnist_not_official_fails_content_checks(tmp_path: Path) -> None:
    fake_mnist(tmp_path)
    expected = r"train-labels-idx1-ubyte.gz is not the official data: .*number of labels is 30 instead of 60000"
    with pytest.raises(DataError, match=expected):
        load_dataset("mnist", root=tmp_path, cache_dir=tmp_path / "c")


def test_mnist_content_checks_look_at_the_images_too(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    written = fake_mnist(tmp_path)  # 30 digits, 3 of each, uniform noise images (mean about 0.5)
    monkeypatch.setitem(mnist.CLASS_COUNTS, "test", (3,) * 10)  # the labels pass ...
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte.gz is not the official data: .*pixel mean is 0\.[45]"):
        load_dataset("mnist", "test", root=tmp_path, cache_dir=tmp_path / "c")
    noise = written["test"][0].mean() / 255  # ... and images with the official mean pass the mean ...
    monkeypatch.setitem(mnist.PIXEL_MEANS, "test", round(float(noise), 4))
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte.gz is not the official data: .*fingerprint of images"):
        load_dataset("mnist", "test", root=tmp_path, cache_dir=tmp_path / "c")
    # ... but every MNIST file has an official md5: content that passes every check still stops
    x, y = written["test"]
    idx = [0, 1, 15, 29]
    monkeypatch.setitem(
        mnist.FINGERPRINTS, "test", (hashlib.sha256(x[idx].tobytes()).hexdigest()[:16], y[idx].tolist())
    )
    with pytest.raises(
        DataError, match=r"md5 differs, though its counts, pixel mean and fingerprint match.*--no-verify"
    ):
        load_dataset("mnist", "test", root=tmp_path, cache_dir=tmp_path / "c")
    assert (
        load_dataset("mnist", "test", root=tmp_path, verify=False, cache_dir=tmp_path / "c").meta["verdict"]
        == "skipped checks"
    )


def test_mnist_test_images_in_place_of_the_train_images_blame_the_images(tmp_path: Path) -> None:
    fake_mnist(tmp_path)
    raw = tmp_path / "MNIST" / "raw"
    labels = np.zeros(60000, dtype=np.uint8)
    write_file(raw / "train-labels-idx1-ubyte", idx_bytes(labels, mnist.LABELS_MAGIC), gz=True)
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.gz holds 30 images, expected the 60000 train images"):
        load_dataset("mnist", "train", root=tmp_path, verify=False, cache_dir=tmp_path / "c")


def test_mnist_unverified_cache_entry_is_not_trusted_later(tmp_path: Path) -> None:
    fake_mnist(tmp_path)
    load_dataset("mnist", "test", root=tmp_path, verify=False, cache_dir=tmp_path / "c")
    with pytest.raises(DataError, match="is not the official data"):
        load_dataset("mnist", "test", root=tmp_path, verify=True, cache_dir=tmp_path / "c")


def _break(path: Path, how: str) -> None:
    data = gzip.decompress(path.read_bytes())
    if how == "truncate":
        data = data[:-100]
    elif how == "magic":
        data = (1234).to_bytes(4, "big") + data[4:]
    elif how == "drop-label":
        n = int.from_bytes(data[4:8], "big") - 1
        data = data[:4] + n.to_bytes(4, "big") + data[8:-1]
    path.write_bytes(gzip.compress(data) if how != "not-gzip" else b"definitely not gzip")


@pytest.mark.parametrize(
    "stem, how, fragment",
    [
        ("t10k-images-idx3-ubyte", "truncate", "is truncated"),
        ("t10k-images-idx3-ubyte", "magic", "magic number 1234, expected 2051"),
        ("t10k-labels-idx1-ubyte", "magic", "magic number 1234, expected 2049"),
        ("t10k-labels-idx1-ubyte", "drop-label", "holds 29 labels, expected 30"),
        ("t10k-images-idx3-ubyte", "not-gzip", "not a valid gzip file"),
    ],
)
@pytest.mark.parametrize("verify", [True, False])
def test_mnist_broken_files_name_the_file(tmp_path: Path, stem: str, how: str, fragment: str, verify: bool) -> None:
    fake_mnist(tmp_path)
    _break(tmp_path / "MNIST" / "raw" / f"{stem}.gz", how)
    with pytest.raises(DataError, match=rf"{stem}\.gz .*{fragment}"):
        load_dataset("mnist", "test", root=tmp_path, verify=verify, cache_dir=tmp_path / "c")


def test_mnist_missing_file_and_bad_labels(tmp_path: Path) -> None:
    fake_mnist(tmp_path, gz=False)
    raw = tmp_path / "MNIST" / "raw"
    labels = np.full(30, 12, dtype=np.uint8)
    (raw / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(labels, 2049))
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte holds the label 12, expected digits 0-9"):
        load_dataset("mnist", "test", root=tmp_path, verify=False, cache_dir=tmp_path / "c")
    (raw / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\[.gz\] not found"):
        load_dataset("mnist", "test", root=tmp_path, verify=False, cache_dir=tmp_path / "c")


# ----------------------------------------------------------------------------------------------
# CIFAR-10 pickles
# ----------------------------------------------------------------------------------------------


def test_cifar_fake_archive_and_folder_load_identically(tmp_path: Path) -> None:
    members = fake_cifar_members(4)
    write_tar(tmp_path / "a" / cifar10.ARCHIVE, members)
    folder = tmp_path / "b" / cifar10.FOLDER
    folder.mkdir(parents=True)
    for name, data in members.items():
        (folder / name).write_bytes(data)
    a = load_dataset("cifar10", root=tmp_path / "a", verify=False, cache_dir=tmp_path / "c")
    b = load_dataset("cifar10", root=tmp_path / "b", verify=False, cache_dir=tmp_path / "c")
    expected = np.concatenate([cifar_batch(4, i)[b"data"] for i in range(5)]).reshape(-1, 3, 32, 32)
    assert torch.equal(a.x, torch.from_numpy(expected)) and torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    assert a.x.shape == (20, 3, 32, 32) and a.y.dtype == torch.int64
    test = load_dataset("cifar10", "test", root=tmp_path / "a", image_size=16, verify=False, cache_dir=tmp_path / "c")
    assert test.x.shape == (4, 3, 16, 16) and test.y.tolist() == cifar_batch(4, 5)[b"labels"]


def test_cifar_fake_fails_content_checks_but_passes_official_md5(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    archive = write_tar(tmp_path / cifar10.ARCHIVE, fake_cifar_members(4))
    with pytest.raises(DataError, match=rf"{cifar10.ARCHIVE} is not the official data: .*number of labels is 20"):
        load_dataset("cifar10", root=tmp_path, cache_dir=tmp_path / "c")
    monkeypatch.setattr(cifar10, "ARCHIVE_MD5", hashlib.md5(archive.read_bytes()).hexdigest())
    ds = load_dataset("cifar10", root=tmp_path, cache_dir=tmp_path / "c")
    assert ds.meta["verdict"] == "ok (official md5)"


def test_cifar_content_checks_look_at_the_test_images(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    write_tar(tmp_path / cifar10.ARCHIVE, fake_cifar_members(4))
    labels = cifar_batch(4, 5)[b"labels"]  # the test batch: its labels pass, its noise images do not
    counts = tuple(labels.count(c) for c in range(10))
    monkeypatch.setitem(cifar10.CLASS_COUNTS, "test", counts)
    monkeypatch.setitem(cifar10.FIRST_LABELS, "test", labels[:5])
    with pytest.raises(DataError, match=r"per-channel pixel mean of the test images is \[0\.[45]"):
        load_dataset("cifar10", "test", root=tmp_path, cache_dir=tmp_path / "c")
    images = np.asarray(cifar_batch(4, 5)[b"data"]).reshape(-1, 3, 32, 32)
    means = tuple(round(float(images[:, c].mean(dtype=np.float64)) / 255.0, 4) for c in range(3))
    monkeypatch.setitem(cifar10.CHANNEL_MEANS, "test", means)  # the means pass; the fingerprint does not
    with pytest.raises(DataError, match=r"is not the official data: .*fingerprint of images \[0, 1, 2, 3\]"):
        load_dataset("cifar10", "test", root=tmp_path, cache_dir=tmp_path / "c")
    idx = [0, 1, 2, 3]
    monkeypatch.setitem(
        cifar10.FINGERPRINTS, "test", (hashlib.sha256(images[idx].tobytes()).hexdigest()[:16], [9, 9, 9, 9])
    )
    with pytest.raises(DataError, match=r"labels of images \[0, 1, 2, 3\] is \["):  # images shuffled against labels
        load_dataset("cifar10", "test", root=tmp_path, cache_dir=tmp_path / "c")
    monkeypatch.setitem(cifar10.FINGERPRINTS, "test", (hashlib.sha256(images[idx].tobytes()).hexdigest()[:16],
                                                       [labels[i] for i in idx]))
    assert (
        load_dataset("cifar10", "test", root=tmp_path, cache_dir=tmp_path / "c").meta["verdict"]
        == "ok (content checks)"
    )


class _Join:
    """Pickles as a call of os.path.join: harmless, but a global the unpickler must refuse."""

    def __reduce__(self):
        return (os.path.join, ("a", "b"))


@pytest.mark.parametrize(
    "payload, refused",
    [
        (collections.OrderedDict(a=1), "collections.OrderedDict"),
        ({b"data": _Join(), b"labels": []}, f"{os.path.join.__module__}.join"),
    ],
)
def test_cifar_pickle_with_forbidden_global_is_refused(tmp_path: Path, payload: object, refused: str) -> None:
    members = fake_cifar_members(2)
    members["data_batch_3"] = pickle.dumps(payload, protocol=3)
    write_tar(tmp_path / cifar10.ARCHIVE, members)
    with pytest.raises(DataError, match=rf"data_batch_3 in .*{cifar10.ARCHIVE} asks the unpickler for {refused}"):
        load_dataset("cifar10", root=tmp_path, verify=False, cache_dir=tmp_path / "c")


@pytest.mark.parametrize(
    "damage, fragment",
    [
        ("truncate", "is not a valid .tar.gz or is truncated"),
        ("drop-member", "lacks cifar-10-batches-py/data_batch_4"),
        ("bad-pickle", "data_batch_4 in .* is not a valid pickle"),
        ("bad-shape", "data_batch_4 in .* holds data of shape \\(2, 100\\)"),
    ],
)
def test_cifar_broken_archive_names_the_file(tmp_path: Path, damage: str, fragment: str) -> None:
    members = fake_cifar_members(2)
    if damage == "drop-member":
        del members["data_batch_4"]
    elif damage == "bad-pickle":
        members["data_batch_4"] = members["data_batch_4"][:100]
    elif damage == "bad-shape":
        members["data_batch_4"] = pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, protocol=3)
    archive = write_tar(tmp_path / cifar10.ARCHIVE, members)
    if damage == "truncate":
        archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(DataError, match=fragment) as info:
        load_dataset("cifar10", root=tmp_path, verify=False, cache_dir=tmp_path / "c")
    assert str(archive) in str(info.value)


# ----------------------------------------------------------------------------------------------
# CelebA folders
# ----------------------------------------------------------------------------------------------


def test_celeba_fake_found_listed_labels_and_crop(tmp_path: Path) -> None:
    expected = fake_celeba(tmp_path, {"train": 6, "val": 2, "test": 3})
    for split, (names, males) in expected.items():
        ds = load_dataset("celeba", split, root=tmp_path, image_size=16, verify=False, cache_dir=tmp_path / "c")
        assert ds.x.shape == (len(names), 3, 16, 16) and ds.y.tolist() == males
        assert ds.meta["found"] == len(names) and ds.meta["listed"] == len(names) + 2
        # the red borders are cropped away: only the green centre square is left
        mean = ds.x.float().mean(dim=(0, 2, 3))
        assert mean[1] > 240 and mean[0] < 15, mean


def test_celeba_fake_fails_content_checks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake_celeba(tmp_path, {"train": 2, "val": 1, "test": 1})
    with pytest.raises(DataError, match=rf"{celeba.ATTR_FILE} is not the official data: .*number of rows is 10"):
        load_dataset("celeba", root=tmp_path, cache_dir=tmp_path / "c")

    # rows, widths and split sizes as the official ones: the Male column is checked too
    monkeypatch.setattr(celeba, "OFFICIAL_ROWS", 10)
    monkeypatch.setattr(celeba, "NUM_ATTRIBUTES", len(CELEBA_ATTRS))
    monkeypatch.setattr(celeba, "OFFICIAL_SPLIT_SIZES", {"train": 4, "val": 3, "test": 3})
    with pytest.raises(DataError, match=r"number of 'Male' faces is 4 instead of 84434"):
        load_dataset("celeba", root=tmp_path, cache_dir=tmp_path / "c")
    monkeypatch.setattr(celeba, "OFFICIAL_MALES", 4)
    assert load_dataset("celeba", root=tmp_path, cache_dir=tmp_path / "c").meta["verdict"] == "ok (content checks)"


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_celeba_corrupt_jpeg_names_the_file(tmp_path: Path, damage: str) -> None:
    fake_celeba(tmp_path, {"train": 3, "val": 1, "test": 1})
    image = tmp_path / "celeba" / celeba.IMAGE_FOLDER / "000002.jpg"
    image.write_bytes(b"not a jpeg" if damage == "garbage" else image.read_bytes()[:200])
    with pytest.raises(DataError, match=r"CelebA image .*000002\.jpg cannot be decoded"):
        load_dataset("celeba", root=tmp_path, verify=False, cache_dir=tmp_path / "c")


def test_celeba_bad_annotations_name_the_file(tmp_path: Path) -> None:
    fake_celeba(tmp_path, {"train": 2, "val": 1, "test": 1})
    attr = tmp_path / "celeba" / celeba.ATTR_FILE
    lines = attr.read_text().splitlines()
    attr.write_text("\n".join([*lines[:3], lines[3] + " 1", *lines[4:]]))
    with pytest.raises(DataError, match=rf"{celeba.ATTR_FILE} line 4 is malformed"):
        load_dataset("celeba", root=tmp_path, verify=False, cache_dir=tmp_path / "c")
    attr.unlink()
    with pytest.raises(DataError, match=rf"{celeba.ATTR_FILE} not found"):
        load_dataset("celeba", root=tmp_path, verify=False, cache_dir=tmp_path / "c")
    (tmp_path / "celeba" / celeba.PARTITION_FILE).write_text("000001.jpg 7\n")
    with pytest.raises(DataError, match=rf"{celeba.PARTITION_FILE} line 1 is '000001.jpg 7'"):
        load_dataset("celeba", root=tmp_path, verify=False, cache_dir=tmp_path / "c")


def test_celeba_download_is_refused_in_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="CelebA cannot be downloaded automatically .*Google Drive"):
        load_dataset("celeba", root=tmp_path, download=True)


def test_cache_reuse_invalidation_and_read_only_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    root, cache = tmp_path / "root", tmp_path / "cache"
    fake_celeba(root, {"train": 4, "val": 1, "test": 1})
    before = tree(root)
    first = load_dataset("celeba", root=root, image_size=16, verify=False, cache_dir=cache)
    assert first.meta["from_cache"] is False

    decoded: list[Path] = []
    real_decode = celeba.decode_image

    def no_decode(path: Path, size: int) -> np.ndarray:
        raise AssertionError(f"decoded {path} although it is cached")

    monkeypatch.setattr(celeba, "decode_image", no_decode)
    again = load_dataset("celeba", root=root, image_size=16, verify=False, cache_dir=cache)
    assert again.meta["from_cache"] is True and torch.equal(again.x, first.x) and torch.equal(again.y, first.y)

    # a changed image (new content, new mtime) invalidates the entry
    image = root / "celeba" / celeba.IMAGE_FOLDER / "000001.jpg"
    Image.new("RGB", (48, 40), (0, 0, 255)).save(image)
    os.utime(image, ns=(1, 1))
    monkeypatch.setattr(celeba, "decode_image", lambda p, s: decoded.append(p) or real_decode(p, s))
    changed = load_dataset("celeba", root=root, image_size=16, verify=False, cache_dir=cache)
    assert len(decoded) == 4 and changed.meta["from_cache"] is False
    assert changed.x[0, 2].float().mean() > 200 and torch.equal(changed.x[1:], first.x[1:])
    assert len(list(cache.glob("celeba-train-16px-*.x.npy"))) == 1  # the stale entry is gone
    before[f"celeba/{celeba.IMAGE_FOLDER}/000001.jpg"] = tree(root)[f"celeba/{celeba.IMAGE_FOLDER}/000001.jpg"]
    assert tree(root) == before  # nothing written inside the data root


def test_cache_entry_is_not_reused_after_an_in_place_rewrite_with_the_old_mtime(tmp_path: Path) -> None:
    # Same size, same mtime, new content: a size-and-mtime key would serve the old images.
    root, cache = tmp_path / "root", tmp_path / "cache"
    written = fake_mnist(root, gz=False)
    first = load_dataset("mnist", "test", root=root, image_size=28, verify=False, cache_dir=cache)
    assert first.meta["from_cache"] is False and torch.equal(first.x[:, 0], torch.from_numpy(written["test"][0]))
    images = root / "MNIST/raw" / mnist.FILES["test"][0]
    before = images.stat()
    time.sleep(0.05)  # past the file system's timestamp granularity, so the ctime moves
    new = 255 - written["test"][0]
    with open(images, "r+b") as f:
        f.write(idx_bytes(new, 2051))
    os.utime(images, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (images.stat().st_size, images.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    again = load_dataset("mnist", "test", root=root, image_size=28, verify=False, cache_dir=cache)
    assert again.meta["from_cache"] is False and torch.equal(again.x[:, 0], torch.from_numpy(new))
    assert len(list(cache.glob("mnist-test-28px-*.x.npy"))) == 1  # the stale entry is gone


def test_unwritable_cache_only_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    fake_mnist(tmp_path / "root")
    blocker = tmp_path / "cache-is-a-file"
    blocker.write_text("")
    with caplog.at_level(logging.WARNING, logger="interpretgan.data"):
        ds = load_dataset("mnist", "test", root=tmp_path / "root", verify=False, cache_dir=blocker)
    assert len(ds) == 30 and "could not write the cache entry" in caplog.text


# ----------------------------------------------------------------------------------------------
# Downloads (the fetch is replaced by a local copy: this machine has no internet)
# ----------------------------------------------------------------------------------------------


def offline_fetch(monkeypatch: pytest.MonkeyPatch, files: dict[str, Path], corrupt: bool = False) -> list[str]:
    urls: list[str] = []

    def fetch(url: str, dest: Path) -> None:
        urls.append(url)
        data = files[url.rsplit("/", 1)[-1]].read_bytes()
        dest.write_bytes(data[:-10] + b"corrupted!" if corrupt else data)

    monkeypatch.setattr(integrity, "fetch_url", fetch)
    return urls


def test_mnist_download_checks_the_official_md5(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake_mnist(tmp_path / "src")
    files = {p.name: p for p in (tmp_path / "src" / "MNIST" / "raw").iterdir()}
    for name, path in files.items():
        monkeypatch.setitem(mnist.GZ_MD5, name.removesuffix(".gz"), hashlib.md5(path.read_bytes()).hexdigest())

    offline_fetch(monkeypatch, files, corrupt=True)
    with pytest.raises(DataError, match=r"download of .*t10k-images-idx3-ubyte.gz has md5 .*the file was deleted"):
        load_dataset("mnist", "test", root=tmp_path / "bad", download=True, verify=False)
    assert not any(p.is_file() for p in (tmp_path / "bad").rglob("*"))

    urls = offline_fetch(monkeypatch, files)
    ds = load_dataset("mnist", "test", root=tmp_path / "good", download=True, verify=False, cache_dir=tmp_path / "c")
    assert urls == [mnist.MIRROR + f"{stem}.gz" for stem in mnist.FILES["test"]]
    assert len(ds) == 30 and sorted(p.name for p in (tmp_path / "good" / "MNIST" / "raw").iterdir()) == [
        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    assert load_dataset("mnist", "test", root=tmp_path / "good", download=True, verify=False, cache_dir=tmp_path / "c")
    assert len(urls) == 2  # present files are not fetched again


def test_cifar_download_checks_the_official_md5(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    archive = write_tar(tmp_path / "src" / cifar10.ARCHIVE, fake_cifar_members(2))
    offline_fetch(monkeypatch, {cifar10.ARCHIVE: archive})
    got = hashlib.md5(archive.read_bytes()).hexdigest()
    with pytest.raises(DataError, match=f"has md5 {got}, expected the official {cifar10.ARCHIVE_MD5}"):
        load_dataset("cifar10", root=tmp_path / "bad", download=True, verify=False)
    assert list((tmp_path / "bad").iterdir()) == []
    monkeypatch.setattr(cifar10, "ARCHIVE_MD5", hashlib.md5(archive.read_bytes()).hexdigest())
    urls = offline_fetch(monkeypatch, {cifar10.ARCHIVE: archive})
    ds = load_dataset("cifar10", "test", root=tmp_path / "good", download=True, verify=False, cache_dir=tmp_path / "c")
    assert urls == [cifar10.URL] and len(ds) == 2 and (tmp_path / "good" / cifar10.ARCHIVE).is_file()


# ----------------------------------------------------------------------------------------------
# Real data (INTERPRETGAN_DATA)
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def real_root() -> Path:
    value = os.environ.get("INTERPRETGAN_DATA")
    if not value:
        pytest.skip("INTERPRETGAN_DATA is not set: no real datasets to test")
    root = Path(value)
    if not root.is_dir():
        pytest.skip(f"INTERPRETGAN_DATA={value} is not a folder")
    return root


@pytest.fixture(scope="session")
def real_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data-cache")


def _real(real_root: Path, real_cache: Path, name: str, module) -> dict[str, ArrayDataset]:
    if module.find(real_root) is None:
        pytest.skip(f"INTERPRETGAN_DATA={real_root} holds no {name}")
    return {split: load_dataset(name, split, root=real_root, cache_dir=real_cache) for split in DATASETS[name].splits}


@pytest.fixture(scope="session")
def real_mnist(real_root: Path, real_cache: Path) -> dict[str, ArrayDataset]:
    return _real(real_root, real_cache, "mnist", mnist)


@pytest.fixture(scope="session")
def real_cifar(real_root: Path, real_cache: Path) -> dict[str, ArrayDataset]:
    return _real(real_root, real_cache, "cifar10", cifar10)


@pytest.fixture(scope="session")
def real_celeba(real_root: Path, real_cache: Path) -> dict[str, ArrayDataset]:
    return _real(real_root, real_cache, "celeba", celeba)


def test_real_mnist(real_mnist: dict[str, ArrayDataset], real_root: Path, tmp_path: Path) -> None:
    train, test = real_mnist["train"], real_mnist["test"]
    assert train.x.shape == (60000, 1, 32, 32) and test.x.shape == (10000, 1, 32, 32)
    assert train.class_counts() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert test.class_counts() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert train.y[:5].tolist() == [5, 0, 4, 1, 9] and test.y[:5].tolist() == [7, 2, 1, 0, 4]
    assert train.meta["verdict"] == test.meta["verdict"] == "ok (official md5)"
    originals = load_dataset("mnist", "test", root=real_root, image_size=28, cache_dir=tmp_path)
    assert originals.x.shape == (10000, 1, 28, 28)
    assert torch.equal(test.x[:100], paper_resize(originals.x[:100]))
    # the embedded sample holds official digits
    digits, labels, _ = sample.read_sample("test")
    index = np.load(sample.sample_path())["index_test"]
    assert torch.equal(originals.x[index, 0], torch.from_numpy(digits))


def test_real_cifar(real_cifar: dict[str, ArrayDataset]) -> None:
    train, test = real_cifar["train"], real_cifar["test"]
    assert train.x.shape == (50000, 3, 32, 32) and test.x.shape == (10000, 3, 32, 32)
    assert train.class_counts() == [5000] * 10 and test.class_counts() == [1000] * 10
    assert train.y[:5].tolist() == [6, 9, 9, 4, 1] and test.y[:5].tolist() == [3, 8, 8, 0, 6]
    std, mean = zip(*(torch.std_mean(train.x[:, c].float() / 255) for c in range(3)))  # one channel at a time
    assert torch.allclose(torch.stack(mean), torch.tensor([0.4914, 0.4822, 0.4465]), atol=1e-3)
    assert torch.allclose(torch.stack(std), torch.tensor([0.2470, 0.2435, 0.2616]), atol=1e-3)
    assert train.meta["verdict"] in ("ok (official md5)", "ok (content checks)")


def test_real_celeba(real_celeba: dict[str, ArrayDataset], real_root: Path, real_cache: Path,
                     monkeypatch: pytest.MonkeyPatch) -> None:
    found = {split: len(ds) for split, ds in real_celeba.items()}
    assert found == {"train": 8000, "val": 1000, "test": 2000}
    assert {s: ds.meta["listed"] for s, ds in real_celeba.items()} == celeba.OFFICIAL_SPLIT_SIZES
    train = real_celeba["train"]
    assert train.x.shape == (8000, 3, 64, 64) and train.meta["found"] == 8000
    assert 0.40 < train.y.float().mean().item() < 0.44  # 42 % of train faces are male
    assert train.meta["verdict"] == "ok (official md5)"
    monkeypatch.setattr(celeba, "decode_image", lambda p, s: pytest.fail(f"decoded {p} although it is cached"))
    again = load_dataset("celeba", root=real_root, cache_dir=real_cache)
    assert again.meta["from_cache"] and torch.equal(again.x, train.x)


def test_real_mnist_download_passes_official_and_rejects_recompressed(
    real_root: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    folder = mnist.find(real_root)
    if folder is None or not (folder / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"INTERPRETGAN_DATA={real_root} holds no MNIST .gz files")
    offline_fetch(monkeypatch, {p.name: p for p in folder.glob("*.gz")})
    ds = load_dataset("mnist", "test", root=tmp_path / "dl", download=True, cache_dir=tmp_path / "c")
    assert len(ds) == 10000 and ds.meta["verdict"] == "ok (official md5)"
    train_gz = folder / "train-images-idx3-ubyte.gz"
    if hashlib.md5(train_gz.read_bytes()).hexdigest() != mnist.GZ_MD5["train-images-idx3-ubyte"]:
        # the README's recompressed train-images archive is not the official download
        with pytest.raises(DataError, match="train-images-idx3-ubyte.gz has md5"):
            load_dataset("mnist", "train", root=tmp_path / "dl", download=True, cache_dir=tmp_path / "c")
        assert not (tmp_path / "dl" / "MNIST" / "raw" / "train-images-idx3-ubyte.gz").exists()


def test_check_datasets_real(real_root: Path, real_cache: Path, real_mnist, real_cifar, real_celeba,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(celeba, "decode_image", lambda p, s: pytest.fail("check_datasets did not use the cache"))
    reports = {r["name"]: r for r in check_datasets(real_root, cache_dir=real_cache)}
    assert list(reports) == ["mnist", "cifar10", "celeba", "mnist-sample"]
    assert all(r["ok"] for r in reports.values()), reports
    assert reports["mnist"]["verdict"] == "ok (official md5)"
    assert reports["mnist"]["counts"] == {"train": 60000, "test": 10000}
    assert reports["mnist"]["class_counts"]["train"]["5"] == 5421
    assert reports["mnist"]["summary"] == "train 5421-6742 per class, test 892-1135 per class"
    assert reports["cifar10"]["verdict"] == "ok (content checks)"
    assert reports["cifar10"]["class_counts"]["test"]["cat"] == 1000
    assert reports["celeba"]["counts"] == {"train": 8000, "val": 1000, "test": 2000}
    assert reports["celeba"]["listed"] == celeba.OFFICIAL_SPLIT_SIZES
    assert reports["celeba"]["verdict"] == "ok (official md5)"
    assert reports["mnist-sample"]["verdict"] == "ok (sha256)"
    assert reports["mnist-sample"]["counts"] == {"train": 5000, "test": 1000}


def test_check_datasets_reports_errors_and_sample(no_data_env: None, tmp_path: Path) -> None:
    only_sample = check_datasets(None)
    assert [r["name"] for r in only_sample] == ["mnist-sample"] and only_sample[0]["ok"]
    fake_mnist(tmp_path)
    _break(tmp_path / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz", "truncate")
    reports = {r["name"]: r for r in check_datasets(tmp_path, verify=False, cache_dir=tmp_path / "c")}
    assert list(reports) == ["mnist", "mnist-sample"]
    assert not reports["mnist"]["ok"] and "t10k-images-idx3-ubyte.gz is truncated" in reports["mnist"]["verdict"]
    assert reports["mnist"]["counts"] == {"train": 30}  # the train split was read before the test split failed
    assert reports["mnist-sample"]["verdict"] == "skipped checks"
