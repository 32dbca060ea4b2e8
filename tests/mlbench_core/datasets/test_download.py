"""fetch: download from a mirror, verify, cache the verification, work offline, fail clearly."""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from mlbench_core.datasets import SOURCES, DatasetError, Source, describe, fetch, file_digest
from mlbench_core.datasets.download import cached_digest

PAYLOAD = bytes(range(256)) * 4096 + b"tail"  # ~1 MiB: more than one chunk


def source_for(data: bytes, name: str = "blob.bin", algorithm: str = "sha256") -> Source:
    digest = hashlib.new(algorithm, data).hexdigest()
    return Source(name, "https://example.invalid/never-used", algorithm, digest)  # type: ignore[arg-type]


def test_downloads_from_the_mirror_verifies_and_records_both_digests(mirror, tmp_path):
    mirror.put("blob.bin", PAYLOAD)
    data_dir = tmp_path / "data"  # created by fetch
    path = fetch(source_for(PAYLOAD, algorithm="md5"), data_dir, base_url=mirror.url + "/")
    assert path == data_dir / "blob.bin" and path.read_bytes() == PAYLOAD
    assert mirror.requests["blob.bin"] == 1
    assert sorted(p.name for p in data_dir.iterdir()) == [
        "blob.bin",
        "blob.bin.md5",
        "blob.bin.sha256",
    ]
    assert describe(path) == {
        "filename": "blob.bin",
        "size": len(PAYLOAD),
        "sha256": hashlib.sha256(PAYLOAD).hexdigest(),
    }


def test_a_present_file_is_not_downloaded_again_and_needs_no_network(mirror, dead_url, tmp_path):
    mirror.put("blob.bin", PAYLOAD)
    source = source_for(PAYLOAD)
    fetch(source, tmp_path, base_url=mirror.url, progress=False)
    fetch(source, tmp_path, base_url=mirror.url, progress=False)
    assert mirror.requests["blob.bin"] == 1
    assert fetch(source, tmp_path, base_url=dead_url).read_bytes() == PAYLOAD


def test_the_sidecar_spares_rehashing_until_size_or_mtime_change(mirror, tmp_path):
    mirror.put("blob.bin", PAYLOAD)
    source = source_for(PAYLOAD)
    path = fetch(source, tmp_path, base_url=mirror.url, progress=False)
    stat = path.stat()
    # Same size and mtime, other bytes: taken on the sidecar's word (not read again).
    path.write_bytes(b"x" * len(PAYLOAD))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    fetch(source, tmp_path, base_url=mirror.url, progress=False)
    assert mirror.requests["blob.bin"] == 1
    # A new mtime: hashed again, found bad, downloaded again.
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert fetch(source, tmp_path, base_url=mirror.url, progress=False).read_bytes() == PAYLOAD
    assert mirror.requests["blob.bin"] == 2


def test_a_checksum_mismatch_raises_names_both_digests_and_leaves_no_file(mirror, tmp_path):
    mirror.put("blob.bin", PAYLOAD)
    wrong = "0" * 64
    source = Source("blob.bin", "https://example.invalid/x", "sha256", wrong)
    with pytest.raises(DatasetError) as error:
        fetch(source, tmp_path, base_url=mirror.url, progress=False)
    message = str(error.value)
    assert "blob.bin" in message and wrong in message
    assert hashlib.sha256(PAYLOAD).hexdigest() in message
    assert list(tmp_path.iterdir()) == []


def test_http_and_connection_errors_name_the_url(mirror, dead_url, tmp_path):
    source = source_for(PAYLOAD, name="missing.bin")
    with pytest.raises(DatasetError, match=f"{mirror.url}/missing.bin"):
        fetch(source, tmp_path, base_url=mirror.url, progress=False)
    with pytest.raises(DatasetError, match=f"{dead_url}/missing.bin"):
        fetch(source, tmp_path, base_url=dead_url, progress=False, timeout=5)
    assert list(tmp_path.iterdir()) == []


def test_without_a_digest_any_download_is_kept_and_its_sha256_recorded(mirror, tmp_path, capsys):
    mirror.put("blob.bin", PAYLOAD)
    source = Source("blob.bin", "https://example.invalid/x")
    path = fetch(source, tmp_path, base_url=mirror.url, progress=True)
    assert "blob.bin" in capsys.readouterr().err  # the progress bar is on stderr
    assert cached_digest(path) == file_digest(path) == hashlib.sha256(PAYLOAD).hexdigest()
    assert (tmp_path / "blob.bin.sha256").is_file()


def test_sources_are_checked_and_resolve_against_a_mirror():
    with pytest.raises(ValueError):
        Source("a/b", "https://x")
    with pytest.raises(ValueError):
        Source("a", "https://x", "sha1")  # type: ignore[arg-type]
    cifar = SOURCES["cifar10"][0]
    assert cifar.url_from(None) == cifar.url
    assert cifar.url_from("http://m/data/") == "http://m/data/cifar-10-python.tar.gz"
    assert {name: len(files) for name, files in SOURCES.items()} == {
        "cifar10": 1,
        "epsilon": 2,
        "wikitext2": 1,
    }


def test_file_digest_supports_md5_and_sha256(tmp_path: Path):
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    assert file_digest(path, "md5") == hashlib.md5(b"abc").hexdigest()
    assert file_digest(path) == hashlib.sha256(b"abc").hexdigest()


def test_a_lost_connection_raises_and_leaves_no_file(mirror, tmp_path):
    source = Source("blob.truncated", "https://example.invalid/x")
    with pytest.raises(DatasetError, match=f"{mirror.url}/blob.truncated"):
        fetch(source, tmp_path, base_url=mirror.url, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_leftovers_of_a_killed_download_are_removed_and_files_are_world_readable(mirror, tmp_path):
    mirror.put("blob.bin", PAYLOAD)
    leftover = tmp_path / ".blob.bin.abc123.part"
    leftover.write_bytes(b"half")
    path = fetch(source_for(PAYLOAD), tmp_path, base_url=mirror.url, progress=False)
    assert not leftover.exists()
    assert path.stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "blob.bin.sha256").stat().st_mode & 0o777 == 0o644


def test_workers_fetching_at_once_download_once(mirror, tmp_path):
    mirror.put("blob.bin", PAYLOAD)
    source = source_for(PAYLOAD)

    def one(_: int) -> Path:
        return fetch(source, tmp_path, base_url=mirror.url, progress=False)

    with ThreadPoolExecutor(4) as pool:
        paths = list(pool.map(one, range(4)))
    assert {p.read_bytes() == PAYLOAD for p in paths} == {True}
    assert mirror.requests["blob.bin"] == 1
