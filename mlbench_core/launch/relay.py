"""The mlbench API inside each rank's network namespace, without an address on the host.

A rank in a namespace of its own cannot reach the host's loopback, where the API listens.
The launcher therefore opens, for each rank, a listening socket *inside* the rank's
namespace at ``127.0.0.1:<the API's port>`` (a thread joins the namespace with ``setns``
just long enough to create the socket: a socket stays in the namespace it was made in), and
copies every connection accepted there to the API from the launcher's own namespace. The
workers keep the API URL they would have on the host; their API traffic crosses the rank's
loopback, which is never shaped, so metrics and logs neither count against nor are slowed
by the rank's bandwidth cap.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

__all__ = ["ApiRelay", "in_namespace"]

log = logging.getLogger(__name__)
T = TypeVar("T")
CLONE_NEWNET = 0x40000000
CHUNK = 1 << 16
_libc = ctypes.CDLL(None, use_errno=True)


def setns(fd: int) -> None:
    """Move the calling thread into the network namespace open as ``fd``."""
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns: {os.strerror(errno)}")


def in_namespace(path: Path, make: Callable[[], T]) -> T:
    """``make()`` called on a thread inside the network namespace at ``path``."""
    outcome: dict[str, object] = {}

    def body() -> None:
        try:
            target = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                setns(target)  # this thread only: it ends after make()
            finally:
                os.close(target)
            outcome["value"] = make()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            outcome["error"] = exc

    thread = threading.Thread(target=body, name="mlbench-setns", daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]


def _listener(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            if writer.can_write_eof():
                writer.write_eof()
        except (ConnectionError, OSError):
            writer.close()


class ApiRelay:
    """Relays ``127.0.0.1:<port>`` in each added namespace to the API at ``api_url``.

    ``url`` is what workers use: ``api_url`` with its host replaced by ``127.0.0.1`` (the
    same URL when the API is on the loopback already).
    """

    def __init__(self, api_url: str) -> None:
        parts = urlsplit(api_url)
        if parts.scheme != "http" or parts.hostname is None:
            raise ValueError(f"the API relay needs an http:// URL, not {api_url!r}")
        self.target = (parts.hostname, parts.port or 80)
        netloc = f"127.0.0.1:{self.target[1]}"
        self.url = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
        self._loop = asyncio.new_event_loop()
        self._servers: list[asyncio.AbstractServer] = []
        self._thread = threading.Thread(target=self._loop.run_forever, name="mlbench-relay")
        self._thread.daemon = True
        self._thread.start()

    def add(self, namespace: Path) -> None:
        """Listen inside the network namespace at ``namespace``."""
        sock = in_namespace(namespace, lambda: _listener(self.target[1]))
        future = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._connection, sock=sock), self._loop
        )
        self._servers.append(future.result(10))

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_writer = None
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        except OSError as exc:
            log.warning("mlbench relay: cannot reach the API at %s:%s: %s", *self.target, exc)
        finally:
            for side in (writer, up_writer):
                if side is not None:
                    side.close()

    def close(self) -> None:
        """Stop listening and drop every connection (their sockets leave the namespaces)."""
        if not self._thread.is_alive():
            return

        async def stop() -> None:
            for server in self._servers:
                server.close()
            current = asyncio.current_task()
            tasks = [t for t in asyncio.all_tasks() if t is not current]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for server in self._servers:
                await server.wait_closed()

        try:
            asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()
