"""Downloading dataset files once, verified, and recording what was used.

``fetch`` returns a file in ``data_dir``: the one already there when it verifies, else a fresh
download (streamed to a temporary file in the same folder, checked, then renamed into place, so
a file under its final name is always complete). Digests are cached in sidecar files
``<name>.<algo>`` holding the digest with the file's size and mtime, so a multi-gigabyte file
is hashed once, not at every start. ``describe`` gives the record of a file (name, size,
sha256) for the reproducibility record of a run.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "Algorithm",
    "DatasetError",
    "Source",
    "cached_digest",
    "describe",
    "fetch",
    "file_digest",
    "folder_lock",
]

Algorithm = Literal["md5", "sha256"]
CHUNK = 1 << 20
READABLE = 0o644  # temporary files are private (0600); finished ones are for every worker


class DatasetError(Exception):
    """A dataset file could not be had, or is not what it should be."""


@dataclass(frozen=True)
class Source:
    """One file of a dataset: its name, where it is published and its digest (if known)."""

    filename: str
    url: str
    algorithm: Algorithm = "sha256"
    digest: str | None = None

    def __post_init__(self) -> None:
        if self.algorithm not in ("md5", "sha256"):
            raise ValueError(f"unknown checksum algorithm {self.algorithm!r}")
        if "/" in self.filename or self.filename in ("", ".", ".."):
            raise ValueError(f"{self.filename!r} is not a plain file name")

    def url_from(self, base_url: str | None) -> str:
        """The URL to download from: ``base_url/filename`` (a mirror) or the official URL."""
        if base_url:
            return f"{base_url.rstrip('/')}/{self.filename}"
        return self.url


def file_digest(path: Path, algorithm: Algorithm = "sha256") -> str:
    """Hex digest of the file at ``path``."""
    hasher = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            hasher.update(chunk)
    return hasher.hexdigest()


def _sidecar(path: Path, algorithm: Algorithm) -> Path:
    return path.with_name(f"{path.name}.{algorithm}")


def _stamp(path: Path) -> dict[str, int]:
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _write_sidecar(path: Path, algorithm: Algorithm, digest: str) -> None:
    record = {"digest": digest, **_stamp(path)}
    _atomic_write_text(_sidecar(path, algorithm), json.dumps(record) + "\n")


def _atomic_write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, READABLE)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def cached_digest(path: Path, algorithm: Algorithm = "sha256") -> str:
    """Digest of ``path``, from its sidecar when size and mtime still match, else computed
    (and the sidecar written)."""
    sidecar = _sidecar(path, algorithm)
    try:
        record = json.loads(sidecar.read_text())
        if {k: record[k] for k in ("size", "mtime_ns")} == _stamp(path):
            return str(record["digest"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    digest = file_digest(path, algorithm)
    try:
        _write_sidecar(path, algorithm, digest)
    except OSError:  # a read-only data folder: verify every time, still correct
        pass
    return digest


def describe(path: Path) -> dict[str, Any]:
    """The record of a dataset file: ``filename``, ``size`` (bytes) and ``sha256``."""
    path = Path(path)
    return {"filename": path.name, "size": path.stat().st_size, "sha256": cached_digest(path)}


@contextlib.contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """An exclusive advisory lock on the folder ``folder`` (no lock file is left behind), so
    that workers sharing a data folder download or convert a file once. A no-op where
    ``fcntl`` is missing."""
    try:
        import fcntl
    except ImportError:  # not POSIX
        yield
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _remove(path: Path) -> None:
    """``path``, its sidecars and partial downloads left by a killed process (the caller holds
    the folder's lock, so none is in progress)."""
    partial = path.parent.glob(f".{glob.escape(path.name)}.*.part")
    for stale in (path, _sidecar(path, "md5"), _sidecar(path, "sha256"), *partial):
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()


def _verified(path: Path, source: Source) -> bool:
    if not path.is_file():
        return False
    if source.digest is None:  # nothing to check against: a file under its name is complete
        return True
    return cached_digest(path, source.algorithm) == source.digest.lower()


def fetch(
    source: Source,
    data_dir: Path,
    *,
    base_url: str | None = None,
    progress: bool = True,
    timeout: float = 60,
) -> Path:
    """The path of ``source``'s file in ``data_dir``, downloaded only when missing or bad.

    Downloads from ``base_url + "/" + filename`` when ``base_url`` is given (a mirror), else
    from ``source.url``. Raises :class:`DatasetError` on an HTTP or connection error (naming
    the URL) or when the digest does not match (naming file, expected and actual digest; the
    bad file is deleted). Needs no network when the file is present and verifies.
    """
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / source.filename
    if _verified(path, source):
        return path
    with folder_lock(data_dir):
        if _verified(path, source):  # another worker fetched it meanwhile
            return path
        _remove(path)
        _download(source, path, source.url_from(base_url), progress=progress, timeout=timeout)
    return path


def _download(source: Source, path: Path, url: str, *, progress: bool, timeout: float) -> None:
    """Stream ``url`` into ``path`` through a temporary file, checking the digest."""
    import requests
    from urllib3.exceptions import HTTPError as Urllib3Error

    hashers = {"sha256": hashlib.sha256(), source.algorithm: hashlib.new(source.algorithm)}
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    tmp = Path(tmp_name)
    total: int | None = None
    received = 0
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                # identity: the bytes as published, never transparently decompressed
                with requests.get(
                    url, stream=True, timeout=timeout, headers={"Accept-Encoding": "identity"}
                ) as response:
                    response.raise_for_status()
                    total = int(response.headers.get("Content-Length") or 0) or None
                    with _progress(path.name, total, progress) as advance:
                        for chunk in response.raw.stream(CHUNK, decode_content=False):
                            out.write(chunk)
                            for hasher in hashers.values():
                                hasher.update(chunk)
                            received += len(chunk)
                            advance(len(chunk))
            except (requests.RequestException, Urllib3Error) as exc:
                raise DatasetError(f"cannot download {url}: {exc}") from exc
        if total is not None and received != total:
            raise DatasetError(f"download of {url} stopped after {received} of {total} bytes")
        actual = hashers[source.algorithm].hexdigest()
        if source.digest is not None and actual != source.digest.lower():
            raise DatasetError(
                f"{source.filename} from {url} has {source.algorithm} {actual}, "
                f"expected {source.digest.lower()}; the download was deleted"
            )
        os.chmod(tmp, READABLE)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    # the digests were computed on the way in: no need to read the file again
    for algorithm, hasher in hashers.items():
        with contextlib.suppress(OSError):
            _write_sidecar(path, algorithm, hasher.hexdigest())  # type: ignore[arg-type]


@contextlib.contextmanager
def _progress(name: str, total: int | None, enabled: bool) -> Iterator[Any]:
    """A callable advancing a ``rich`` progress bar on stderr (or doing nothing)."""
    if not enabled:
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(name, total=total)
        yield lambda n: bar.update(task, advance=n)
