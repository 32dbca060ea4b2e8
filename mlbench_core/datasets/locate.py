"""Where a benchmark's dataset files come from: the data folder, a mirror, or the official
location, verified against the published digest or a digest pinned by the user."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlbench_core.datasets.download import DatasetError, Source, describe, fetch

__all__ = ["pinned", "obtain"]


def pinned(source: Source, checksums: Mapping[str, str]) -> Source:
    """``source`` with the digest pinned for its file name in ``checksums`` (``ALGO:HEX``, as
    given by ``MLBENCH_DATA_CHECKSUMS``): for a mirror that serves a repackaged file, or a
    file that publishes no digest. Without a pin, the published digest stands."""
    text = checksums.get(source.filename)
    if text is None:
        return source
    algorithm, sep, digest = text.partition(":")
    if not sep or algorithm not in ("md5", "sha256") or not digest:
        raise DatasetError(f"checksum for {source.filename} must be md5:HEX or sha256:HEX")
    return dataclasses.replace(source, algorithm=algorithm, digest=digest.lower())


def obtain(
    source: Source,
    data_dir: Path,
    *,
    base_url: str | None = None,
    checksums: Mapping[str, str] | None = None,
    progress: bool = True,
) -> tuple[Path, dict[str, Any]]:
    """The verified file of ``source`` in ``data_dir`` (downloaded if need be) and its record
    for the reproducibility record (name, size, sha256, where from, digest checked)."""
    source = pinned(source, checksums or {})
    path = fetch(source, data_dir, base_url=base_url, progress=progress)
    record = {
        **describe(path),
        "url": source.url_from(base_url),
        "verified": f"{source.algorithm}:{source.digest}" if source.digest else None,
    }
    return path, record
