"""Fixtures of the dataset tests: a local mirror of the datasets' hosts."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tests.support.mirror import Mirror, serve


@pytest.fixture
def mirror(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mirror]:
    with serve(tmp_path_factory.mktemp("mirror")) as served:  # not under tmp_path (data dir)
        yield served


@pytest.fixture
def dead_url() -> str:
    """A URL on 127.0.0.1 where nothing listens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"
