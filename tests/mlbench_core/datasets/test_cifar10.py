"""CIFAR-10: the official archive format, downloaded, parsed, cached; augmentation."""

from __future__ import annotations

import dataclasses
import io
import pickle
import tarfile
from collections import OrderedDict

import numpy as np
import pytest
import torch

from mlbench_core.datasets import DatasetError, augment, load_cifar10, normalize
from mlbench_core.datasets.cifar10 import MEAN, SOURCE, STD, read_cifar10
from tests.mlbench_core.datasets import formats


def test_downloads_and_parses_the_archive_in_order(mirror, tmp_path):
    archive, train_x, train_y, test_x, test_y = formats.cifar10_set(seed=1)
    mirror.put(SOURCE.filename, archive)
    source = dataclasses.replace(SOURCE, digest=formats.md5(archive))
    data = load_cifar10(tmp_path, base_url=mirror.url, progress=False, source=source)
    assert data.train_images.dtype == torch.uint8 and data.train_images.shape == (20, 3, 32, 32)
    assert data.train_labels.dtype == torch.int64
    assert np.array_equal(data.train_images.numpy(), train_x)
    assert np.array_equal(data.train_labels.numpy(), train_y)
    assert np.array_equal(data.test_images.numpy(), test_x)
    assert np.array_equal(data.test_labels.numpy(), test_y)
    assert (tmp_path / "cifar-10-python.npz").is_file()


def test_the_cache_is_used_while_the_archive_is_unchanged(tmp_path):
    archive = tmp_path / SOURCE.filename
    archive.write_bytes(formats.cifar10_set(seed=2)[0])
    first = read_cifar10(archive)
    cache = tmp_path / "cifar-10-python.npz"
    stamp = cache.stat().st_mtime_ns
    again = read_cifar10(archive)
    assert cache.stat().st_mtime_ns == stamp
    assert torch.equal(first.train_images, again.train_images)
    # Another archive (new size and mtime): parsed again, not served from the old cache.
    archive.write_bytes(formats.cifar10_set(seed=3, per_batch=3)[0])
    assert len(read_cifar10(archive).train_labels) == 15


def test_the_official_digest_refuses_another_file(mirror, tmp_path):
    mirror.put(SOURCE.filename, formats.cifar10_set(seed=1)[0])
    with pytest.raises(DatasetError, match="c58f30108f718f92721af3b95e74349a"):
        load_cifar10(tmp_path, base_url=mirror.url, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_a_batch_with_other_objects_than_arrays_is_refused(tmp_path):
    evil = pickle.dumps({b"data": OrderedDict(), b"labels": []}, protocol=2)
    batches = {f"data_batch_{i}": evil for i in range(1, 6)} | {"test_batch": evil}
    archive = tmp_path / SOURCE.filename
    archive.write_bytes(formats.cifar10_archive(batches))
    with pytest.raises(DatasetError, match="OrderedDict"):
        read_cifar10(archive, cache=False)


def test_a_missing_batch_is_named(tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz"):
        pass
    archive = tmp_path / SOURCE.filename
    archive.write_bytes(buffer.getvalue())
    with pytest.raises(DatasetError, match="cifar-10-batches-py/data_batch_1"):
        read_cifar10(archive)


def test_normalize_uses_the_channel_mean_and_std():
    images = torch.full((2, 3, 32, 32), 255, dtype=torch.uint8)
    out = normalize(images)
    assert out.dtype == torch.float32 and out.shape == images.shape
    for c in range(3):
        assert torch.allclose(out[:, c], torch.tensor((1 - MEAN[c]) / STD[c]))


def test_augment_crops_flips_and_normalizes_deterministically():
    images = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8)
    out = augment(images, torch.Generator().manual_seed(7))
    assert out.shape == (64, 3, 32, 32) and out.dtype == torch.float32
    assert torch.equal(out, augment(images, torch.Generator().manual_seed(7)))
    assert not torch.equal(out, augment(images, torch.Generator().manual_seed(8)))
    # Each output is a shifted (and maybe mirrored) window of the zero-padded image.
    padded = torch.nn.functional.pad(images, (4, 4, 4, 4))
    expected_pad = normalize(torch.zeros(1, 3, 1, 1, dtype=torch.uint8))
    for k in range(8):
        found = False
        for flip in (False, True):
            source = padded[k].flip(-1) if flip else padded[k]
            for top in range(9):
                for left in range(9):
                    window = source[:, top : top + 32, left : left + 32].unsqueeze(0)
                    if torch.equal(normalize(window)[0], out[k]):
                        found = True
        assert found, f"image {k} is no crop of its padded original"
    # Some crops reach into the padding, whose pixels are black before normalisation.
    assert (out == expected_pad.expand_as(out)).all(dim=1).any()


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
def test_augment_works_on_the_images_device(device):
    images = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8, device=device)
    out = augment(images, torch.Generator().manual_seed(1))
    assert out.device == images.device
    assert torch.equal(out.cpu(), augment(images.cpu(), torch.Generator().manual_seed(1)))
