"""CIFAR-10 from the official python archive, with augmentation as batched tensor ops.

The archive ``cifar-10-python.tar.gz`` holds ``cifar-10-batches-py/data_batch_1`` … ``_5``
(50,000 training images) and ``test_batch`` (10,000): pickled dicts whose ``b"data"`` is an
``N x 3072`` uint8 array (the red, then green, then blue 32 x 32 plane of each image) and
``b"labels"`` a list of ``N`` ints in 0..9. They are read straight from the archive (nothing
is extracted) with an unpickler that builds numpy arrays and nothing else, and kept as a
``.npz`` beside the archive so later starts skip the decompression.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import pickle
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mlbench_core.datasets.download import READABLE, DatasetError, Source, fetch, folder_lock

__all__ = [
    "MEAN",
    "N_TEST",
    "N_TRAIN",
    "SOURCE",
    "STD",
    "Cifar10",
    "augment",
    "load_cifar10",
    "normalize",
    "read_cifar10",
]

SOURCE = Source(
    filename="cifar-10-python.tar.gz",
    url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    algorithm="md5",
    digest="c58f30108f718f92721af3b95e74349a",  # published on the dataset's page
)
FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
N_TRAIN, N_TEST, N_CLASSES = 50_000, 10_000, 10
SHAPE = (3, 32, 32)
PADDING = 4
# Per-channel mean and standard deviation of the 50,000 training images, pixels in [0, 1].
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)


@dataclass(frozen=True)
class Cifar10:
    """Images uint8 ``(N, 3, 32, 32)``, labels int64 ``(N,)``."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor


class _ArrayUnpickler(pickle.Unpickler):
    """Builds dicts, lists, bytes and numpy arrays; refuses every other global."""

    def find_class(self, module: str, name: str) -> Any:
        if module in ("numpy", "numpy.core.multiarray", "numpy._core.multiarray"):
            if name == "ndarray":
                return np.ndarray
            if name == "dtype":
                return np.dtype
            if name in ("_reconstruct", "scalar"):
                return getattr(_multiarray(), name)
        if (module, name) == ("_codecs", "encode"):  # how numpy pickles its raw bytes
            import codecs

            return codecs.encode
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a CIFAR-10 batch")


def _multiarray() -> Any:
    try:  # numpy 2 (``numpy.core`` still works there, with a deprecation warning)
        return importlib.import_module("numpy._core.multiarray")
    except ImportError:  # numpy 1
        return importlib.import_module("numpy.core.multiarray")


def _read_batch(archive: tarfile.TarFile, name: str) -> tuple[np.ndarray, np.ndarray]:
    member = f"{FOLDER}/{name}"
    try:
        f = archive.extractfile(member)
    except KeyError:
        f = None
    if f is None:
        raise DatasetError(f"{archive.name} has no {member}")
    with f:
        batch = _ArrayUnpickler(f, encoding="bytes").load()
    data = np.asarray(batch[b"data"], dtype=np.uint8)
    labels = np.asarray(batch[b"labels"], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != int(np.prod(SHAPE)) or len(labels) != len(data):
        raise DatasetError(f"{member}: data {data.shape} and {len(labels)} labels")
    if len(labels) and not (labels.min() >= 0 and labels.max() < N_CLASSES):
        raise DatasetError(f"{member}: labels outside 0..{N_CLASSES - 1}")
    return data.reshape(-1, *SHAPE), labels


def _parse(path: Path) -> dict[str, np.ndarray]:
    try:
        with tarfile.open(path, "r:gz") as archive:
            train = [_read_batch(archive, name) for name in TRAIN_BATCHES]
            test_images, test_labels = _read_batch(archive, TEST_BATCH)
    except (tarfile.TarError, OSError, EOFError, pickle.UnpicklingError) as exc:
        raise DatasetError(f"{path} is not a readable CIFAR-10 archive: {exc}") from exc
    return {
        "train_images": np.concatenate([images for images, _ in train]),
        "train_labels": np.concatenate([labels for _, labels in train]),
        "test_images": test_images,
        "test_labels": test_labels,
    }


def _cache_path(archive: Path) -> Path:
    return archive.with_name(archive.name.removesuffix(".tar.gz") + ".npz")


def read_cifar10(archive: Path, *, cache: bool = True) -> Cifar10:
    """The training and test sets in ``archive`` (the official ``cifar-10-python.tar.gz``).

    With ``cache``, the arrays are kept in a ``.npz`` beside the archive (tagged with the
    archive's size and mtime) and read from there while the archive is unchanged.
    """
    archive = Path(archive)
    stat = archive.stat()
    stamp = np.array([stat.st_size, stat.st_mtime_ns], dtype=np.int64)
    cached = _cache_path(archive)
    arrays: dict[str, np.ndarray] | None = None
    if cache and cached.is_file():
        with contextlib.suppress(Exception), np.load(cached) as npz:  # unreadable: parse again
            if np.array_equal(npz["stamp"], stamp):
                arrays = {key: npz[key] for key in npz.files if key != "stamp"}
    if arrays is None:
        arrays = _parse(archive)
        if cache:
            with contextlib.suppress(OSError):
                _write_npz(cached, stamp=stamp, **arrays)
    return Cifar10(**{key: torch.from_numpy(value) for key, value in arrays.items()})


def _write_npz(path: Path, **arrays: np.ndarray) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.chmod(tmp, READABLE)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def load_cifar10(
    data_dir: Path,
    *,
    base_url: str | None = None,
    progress: bool = True,
    cache: bool = True,
    source: Source = SOURCE,
) -> Cifar10:
    """CIFAR-10 from ``data_dir``, downloaded (and verified) first if need be."""
    path = fetch(source, data_dir, base_url=base_url, progress=progress)
    with folder_lock(path.parent):  # one worker writes the cache
        return read_cifar10(path, cache=cache)


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 images ``(N, 3, H, W)`` as float32, standardised by the CIFAR-10 channel mean and
    standard deviation."""
    mean = torch.tensor(MEAN, dtype=torch.float32, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(STD, dtype=torch.float32, device=images.device).view(1, 3, 1, 1)
    return (images.to(torch.float32) / 255.0 - mean) / std


def augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The standard CIFAR-10 training augmentation of a uint8 batch ``(N, 3, 32, 32)``: a
    random 32 x 32 crop of the image padded by 4 black pixels, flipped left-right with
    probability 1/2, then :func:`normalize`-d. The same ``generator`` state gives the same
    result; the draws are made on the CPU, the work on ``images``' device."""
    n, _, height, width = images.shape
    offsets = torch.randint(0, 2 * PADDING + 1, (2, n), generator=generator)
    flips = torch.randint(0, 2, (n,), generator=generator).bool()
    device = images.device
    top, left, flips = offsets[0].to(device), offsets[1].to(device), flips.to(device)
    padded = torch.nn.functional.pad(images, (PADDING, PADDING, PADDING, PADDING))
    rows = top[:, None] + torch.arange(height, device=device)  # (N, H)
    steps = torch.arange(width, device=device)
    cols = left[:, None] + torch.where(flips[:, None], width - 1 - steps, steps)  # (N, W)
    batch = torch.arange(n, device=device)[:, None, None]
    # advanced indices around a slice: the result is (N, H, W, C)
    crops = padded[batch, :, rows[:, :, None], cols[:, None, :]]
    return normalize(crops.permute(0, 3, 1, 2).contiguous())
