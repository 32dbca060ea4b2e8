"""Small files in exactly the official formats of the datasets."""

from __future__ import annotations

import bz2
import hashlib
import io
import pickle
import tarfile
import zipfile

import numpy as np


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _py2_style_pickle(obj: object) -> bytes:
    """A protocol-2 pickle naming numpy's module as the official (numpy 1) files do."""
    data = pickle.dumps(obj, protocol=2)
    return data.replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")


def cifar10_batch(images: np.ndarray, labels: list[int], label: bytes) -> bytes:
    """One ``data_batch_*`` / ``test_batch``: ``images`` uint8 (N, 3, 32, 32)."""
    return _py2_style_pickle(
        {
            b"batch_label": label,
            b"labels": labels,
            b"data": images.reshape(len(images), 3072),
            b"filenames": [f"img_{i}.png".encode() for i in range(len(images))],
        }
    )


def cifar10_archive(batches: dict[str, bytes]) -> bytes:
    """A ``cifar-10-python.tar.gz`` holding ``batches`` (name → pickle) and the meta file."""
    members = {
        **batches,
        "batches.meta": _py2_style_pickle({b"label_names": [b"airplane"] * 10}),
        "readme.html": b"<html></html>",
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def cifar10_set(
    seed: int, per_batch: int = 4, n_test: int = 6
) -> tuple[bytes, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """An archive of random images, and the training/test images and labels in it."""
    rng = np.random.default_rng(seed)
    n_train = 5 * per_batch
    train_x = rng.integers(0, 256, (n_train, 3, 32, 32), dtype=np.uint8)
    train_y = rng.integers(0, 10, n_train)
    test_x = rng.integers(0, 256, (n_test, 3, 32, 32), dtype=np.uint8)
    test_y = rng.integers(0, 10, n_test)
    batches = {
        f"data_batch_{i + 1}": cifar10_batch(
            train_x[i * per_batch : (i + 1) * per_batch],
            [int(v) for v in train_y[i * per_batch : (i + 1) * per_batch]],
            f"training batch {i + 1} of 5".encode(),
        )
        for i in range(5)
    }
    batches["test_batch"] = cifar10_batch(test_x, [int(v) for v in test_y], b"testing batch")
    return cifar10_archive(batches), train_x, train_y, test_x, test_y


def libsvm_text(x: np.ndarray, y: np.ndarray) -> str:
    """LIBSVM lines for dense ``x`` (zeros left out) and labels -1/+1."""
    lines = []
    for row, label in zip(x, y, strict=True):
        pairs = " ".join(f"{j + 1}:{v!r}" for j, v in enumerate(row.tolist()) if v != 0)
        lines.append(f"{int(label):+d} {pairs}".rstrip())
    return "\n".join(lines) + "\n"


def libsvm_bz2(x: np.ndarray, y: np.ndarray) -> bytes:
    return bz2.compress(libsvm_text(x, y).encode("ascii"))


def wikitext2_zip(train: str, valid: str, test: str) -> bytes:
    """A ``wikitext-2-v1.zip`` with the three token files."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for split, text in (("train", train), ("valid", valid), ("test", test)):
            z.writestr(f"wikitext-2/wiki.{split}.tokens", text.encode("utf-8"))
    return buffer.getvalue()
