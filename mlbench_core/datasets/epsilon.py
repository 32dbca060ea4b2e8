"""The epsilon binary classification set (LIBSVM's normalised version), memory-mapped.

The files are LIBSVM text, bzip2-compressed: one sample a line, ``label idx:val idx:val …``
with labels -1/+1 and 1-based feature indices (2,000 features; 400,000 training and 100,000
test samples, about 12 GB of text for the training file). The text is parsed once, line by
line, into ``.npy`` files beside it (features float32 ``(N, 2000)``, labels float32 0/1), which
later starts memory-map instead of parsing again.
"""

from __future__ import annotations

import bz2
import contextlib
import json
import os
import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from mlbench_core.datasets.download import DatasetError, Source, fetch, folder_lock

__all__ = [
    "N_FEATURES",
    "N_ROWS",
    "SOURCES",
    "TEST",
    "TRAIN",
    "convert_libsvm",
    "load_epsilon",
    "load_libsvm",
]

_BASE = "https://www.csie.ntu.edu.tw/~cjlin/libsvmtools/datasets/binary"
# LIBSVM publishes no digests. These sha256 digests are pinned by two independent benchmark
# suites that download these files and check them (e.g. Intel's scikit-learn_bench).
TRAIN = Source(
    filename="epsilon_normalized.bz2",
    url=f"{_BASE}/epsilon_normalized.bz2",
    algorithm="sha256",
    digest="aff916d4f97f18d286558ca088d2a9f7e1fcee9376539a5aa6ef5b7ef9dfa978",
)
TEST = Source(
    filename="epsilon_normalized.t.bz2",
    url=f"{_BASE}/epsilon_normalized.t.bz2",
    algorithm="sha256",
    digest="cb299295ad11e200696eaa3050f5d8cf700eaa9c65e6aa859bda959f8669458b",
)
SOURCES = {"train": TRAIN, "test": TEST}
N_FEATURES = 2000
N_ROWS = {"train": 400_000, "test": 100_000}
BLOCK = 1 << 22


def _chunks(path: Path) -> Iterator[bytes]:
    """The (decompressed) bytes of ``path`` in blocks, read by a background thread: the bz2
    module lets go of the GIL while decompressing, so that overlaps with parsing."""
    opener = bz2.open if path.suffix == ".bz2" else open
    blocks: queue.Queue[bytes | BaseException] = queue.Queue(maxsize=4)
    stop = threading.Event()

    def put(item: bytes | BaseException) -> None:
        while not stop.is_set():
            with contextlib.suppress(queue.Full):
                blocks.put(item, timeout=0.1)
                return

    def read() -> None:
        try:
            with opener(path, "rb") as f:
                while not stop.is_set():
                    block = f.read(BLOCK)
                    put(block)
                    if not block:
                        return
        except (OSError, EOFError) as exc:  # handed to the reader of the blocks
            put(DatasetError(f"{path} cannot be read: {exc}"))
        except BaseException as exc:
            put(exc)

    thread = threading.Thread(target=read, name=f"read {path.name}", daemon=True)
    thread.start()
    try:
        while True:
            item = blocks.get()
            if isinstance(item, BaseException):
                raise item
            if not item:
                return
            yield item
    finally:
        stop.set()
        thread.join()


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """Line number (1-based) and text of each non-blank line."""
    number, rest = 0, b""
    for block in _chunks(path):
        lines = (rest + block).split(b"\n")
        rest = lines.pop()
        for line in lines:
            number += 1
            if line.strip():
                yield number, line
    if rest.strip():
        yield number + 1, rest


def _count_rows(path: Path) -> int:
    return sum(1 for _ in _lines(path))


def _parse_line(line: bytes, n_features: int) -> tuple[float, np.ndarray, np.ndarray]:
    """Label, 0-based indices and values of one LIBSVM line."""
    label, *rest = line.split(None, 1)
    pairs = rest[0].replace(b":", b" ").split() if rest else []
    if len(pairs) % 2:
        raise ValueError("an index without a value")
    numbers = np.array(pairs, dtype=np.float64) if pairs else np.empty(0)
    indices, values = numbers[0::2], numbers[1::2]
    columns = indices.astype(np.int64)
    if np.any(columns != indices) or np.any(columns < 1) or np.any(columns > n_features):
        raise ValueError(f"a feature index outside 1..{n_features}")
    return float(label), columns - 1, values


def convert_libsvm(
    src: Path, x_path: Path, y_path: Path, n_features: int, n_rows: int | None = None
) -> None:
    """Parse the LIBSVM file ``src`` (plain or ``.bz2``) into ``x_path`` (float32
    ``(n_rows, n_features)``, absent features 0) and ``y_path`` (float32 ``(n_rows,)``: 1 for a
    positive label, 0 otherwise), both ``.npy``, streaming: memory use does not grow with the
    file. ``n_rows`` is counted in a first pass when not given; a file with another number of
    rows is refused. Each output appears under its name only once complete."""
    src, x_path, y_path = Path(src), Path(x_path), Path(y_path)
    if n_rows is None:
        n_rows = _count_rows(src)
    x_tmp = x_path.with_name(f".{x_path.name}.part")
    y_tmp = y_path.with_name(f".{y_path.name}.part")
    try:
        x = np.lib.format.open_memmap(
            x_tmp, mode="w+", dtype=np.float32, shape=(n_rows, n_features)
        )
        y = np.lib.format.open_memmap(y_tmp, mode="w+", dtype=np.float32, shape=(n_rows,))
        row = 0
        for number, line in _lines(src):
            if row == n_rows:
                raise DatasetError(f"{src} has more than the {n_rows} rows expected")
            try:
                label, columns, values = _parse_line(line, n_features)
            except ValueError as exc:
                raise DatasetError(f"{src}, line {number}: {exc}") from exc
            x[row, columns] = values  # the file is new: the rest of the row is already 0
            y[row] = 1.0 if label > 0 else 0.0
            row += 1
        if row != n_rows:
            raise DatasetError(f"{src} has {row} rows, {n_rows} expected")
        x.flush()
        y.flush()
        del x, y
        os.replace(y_tmp, y_path)
        os.replace(x_tmp, x_path)
    except BaseException:
        for tmp in (x_tmp, y_tmp):
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        raise


def _cache_paths(src: Path) -> tuple[Path, Path, Path]:
    stem = src.name.removesuffix(".bz2")
    return (
        src.with_name(f"{stem}.x.npy"),
        src.with_name(f"{stem}.y.npy"),
        src.with_name(f"{stem}.npy.json"),
    )


def _open_cached(x_path: Path, y_path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    # copy-on-write maps: writable for torch, yet the files are never changed
    x = np.load(x_path, mmap_mode="c")
    y = np.load(y_path, mmap_mode="c")
    return torch.from_numpy(x), torch.from_numpy(y)


def load_libsvm(
    src: Path, n_features: int, n_rows: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Features and labels of the LIBSVM file ``src``, as tensors memory-mapped from ``.npy``
    files beside it (written by :func:`convert_libsvm` on first use, and again whenever
    ``src``'s size or mtime changed)."""
    src = Path(src)
    x_path, y_path, meta_path = _cache_paths(src)
    stat = src.stat()
    meta = {
        "source": src.name,
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "features": n_features,
    }
    if n_rows is not None:
        meta["rows"] = n_rows

    def cached() -> bool:
        try:
            return json.loads(meta_path.read_text()) == meta and x_path.exists() and y_path.exists()
        except (OSError, ValueError):
            return False

    if not cached():
        with folder_lock(src.parent):
            if not cached():
                with contextlib.suppress(FileNotFoundError):
                    meta_path.unlink()
                convert_libsvm(src, x_path, y_path, n_features, n_rows)
                meta_path.write_text(json.dumps(meta) + "\n")
    return _open_cached(x_path, y_path)


def load_epsilon(
    data_dir: Path,
    split: Literal["train", "test"] = "train",
    *,
    base_url: str | None = None,
    progress: bool = True,
    source: Source | None = None,
    n_rows: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Epsilon's ``split``: features float32 ``(N, 2000)`` and labels float32 0/1 ``(N,)``,
    memory-mapped; the file is downloaded (and verified) and converted first if need be.
    ``source`` and ``n_rows`` replace the official file and its row count (for tests)."""
    if split not in SOURCES:
        raise ValueError(f"epsilon has no split {split!r}")
    path = fetch(source or SOURCES[split], data_dir, base_url=base_url, progress=progress)
    rows = n_rows if n_rows is not None else (None if source else N_ROWS[split])
    return load_libsvm(path, N_FEATURES, rows)
