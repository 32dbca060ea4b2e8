"""Epsilon: LIBSVM text (bz2) downloaded, parsed once into .npy, memory-mapped after."""

from __future__ import annotations

import bz2
import dataclasses
import hashlib
import os

import numpy as np
import pytest
import torch

from mlbench_core.datasets import DatasetError, load_epsilon, load_libsvm
from mlbench_core.datasets.epsilon import N_FEATURES, TRAIN, convert_libsvm
from tests.mlbench_core.datasets import formats


def sample(seed: int, n: int, n_features: int = N_FEATURES) -> tuple[np.ndarray, np.ndarray]:
    """Sparse rows (a dense one first, an empty one last) and labels -1/+1."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, n_features)).astype(np.float32)
    x[1:] *= rng.random((n - 1, n_features)) < 0.01
    x[-1] = 0
    x[1, [0, n_features - 1]] = (0.5, -0.25)  # the first and the last feature
    y = np.where(rng.random(n) < 0.5, -1, 1)
    return x, y


def test_downloads_parses_and_maps_the_bz2_file(mirror, tmp_path):
    x, y = sample(seed=1, n=6)
    data = formats.libsvm_bz2(x, y)
    mirror.put(TRAIN.filename, data)
    source = dataclasses.replace(TRAIN, digest=hashlib.sha256(data).hexdigest())
    features, labels = load_epsilon(tmp_path, base_url=mirror.url, progress=False, source=source)
    assert features.dtype == labels.dtype == torch.float32
    assert features.shape == (6, N_FEATURES) and labels.shape == (6,)
    assert np.array_equal(features.numpy(), x)
    assert np.array_equal(labels.numpy(), (y > 0).astype(np.float32))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "epsilon_normalized.bz2",
        "epsilon_normalized.bz2.sha256",
        "epsilon_normalized.npy.json",
        "epsilon_normalized.x.npy",
        "epsilon_normalized.y.npy",
    ]


def test_the_npy_cache_is_reused_without_reading_the_text_again(mirror, tmp_path):
    x, y = sample(seed=2, n=5)
    data = formats.libsvm_bz2(x, y)
    mirror.put(TRAIN.filename, data)
    source = dataclasses.replace(TRAIN, digest=hashlib.sha256(data).hexdigest())
    load_epsilon(tmp_path, base_url=mirror.url, progress=False, source=source)
    cache = tmp_path / "epsilon_normalized.x.npy"
    before = cache.stat()
    # The text is now garbage of the same size and mtime: neither hashed nor parsed again.
    src = tmp_path / TRAIN.filename
    stat = src.stat()
    src.write_bytes(b"\0" * len(data))
    os.utime(src, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    features, labels = load_epsilon(tmp_path, base_url=mirror.url, progress=False, source=source)
    assert np.array_equal(features.numpy(), x)
    after = cache.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert mirror.requests[TRAIN.filename] == 1
    # The tensors map the file (copy-on-write): changing them leaves the cache as it was.
    features[0, 0] = 123.0
    assert np.load(cache, mmap_mode="r")[0, 0] == x[0, 0]


def test_a_changed_source_is_converted_again(tmp_path):
    src = tmp_path / "a.svm"
    src.write_text("+1 1:1.5\n-1 2:2\n")
    x, _ = load_libsvm(src, n_features=3)
    assert x.tolist() == [[1.5, 0, 0], [0, 2, 0]]
    src.write_text("+1 3:4\n")
    x, y = load_libsvm(src, n_features=3)
    assert x.tolist() == [[0, 0, 4]] and y.tolist() == [1.0]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("+1 0:1\n", "line 1: a feature index outside 1..3"),
        ("+1 1:1\n-1 4:1\n", "line 2: a feature index outside 1..3"),
        ("+1 1.5:1\n", "outside"),
        ("+1 1:1 2\n", "an index without a value"),
        ("+1 1:abc\n", "line 1"),
    ],
)
def test_malformed_lines_are_named(tmp_path, text, problem):
    src = tmp_path / "bad.svm.bz2"
    src.write_bytes(bz2.compress(text.encode()))
    with pytest.raises(DatasetError, match=problem):
        convert_libsvm(src, tmp_path / "x.npy", tmp_path / "y.npy", n_features=3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.svm.bz2"]


def test_a_corrupt_bz2_file_is_named(tmp_path):
    src = tmp_path / "corrupt.svm.bz2"
    src.write_bytes(bz2.compress(b"+1 1:1\n" * 1000)[:-20] + b"garbage!" * 4)
    with pytest.raises(DatasetError, match="corrupt.svm.bz2 cannot be read"):
        load_libsvm(src, n_features=2, n_rows=1000)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corrupt.svm.bz2"]


def test_a_row_count_other_than_expected_is_refused(tmp_path):
    src = tmp_path / "rows.svm"
    src.write_text("+1 1:1\n-1 1:2\n\n")  # blank lines do not count
    for expected in (1, 3):
        with pytest.raises(DatasetError, match="rows"):
            convert_libsvm(src, tmp_path / "x.npy", tmp_path / "y.npy", 2, n_rows=expected)
    convert_libsvm(src, tmp_path / "x.npy", tmp_path / "y.npy", 2, n_rows=2)
    assert np.load(tmp_path / "y.npy").tolist() == [1.0, 0.0]


def test_unknown_split_is_refused(tmp_path):
    with pytest.raises(ValueError, match="split"):
        load_epsilon(tmp_path, "validation")  # type: ignore[arg-type]
