"""A local HTTP server standing in for the datasets' hosts (nothing leaves 127.0.0.1)."""

from __future__ import annotations

import functools
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class Mirror:
    """Files in ``root`` served at ``url``; ``requests`` counts the GETs by file name."""

    def __init__(self, root: Path, url: str, requests: Counter[str]) -> None:
        self.root, self.url, self.requests = root, url, requests

    def put(self, name: str, data: bytes) -> Path:
        path = self.root / name
        path.write_bytes(data)
        return path


class _Handler(SimpleHTTPRequestHandler):
    counter: Counter[str]

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.counter[self.path.lstrip("/")] += 1
        if self.path.endswith(".truncated"):  # a connection lost after 10 of 100 bytes
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.write(b"x" * 10)
            self.close_connection = True
            return
        super().do_GET()

    def end_headers(self) -> None:
        # Some servers label .gz files as gzip-encoded: the client must keep the bytes as is.
        if self.path.endswith(".gz"):
            self.send_header("Content-Encoding", "gzip")
        super().end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@contextmanager
def serve(root: Path) -> Iterator[Mirror]:
    """Serve the files in ``root`` until the block ends."""
    counter: Counter[str] = Counter()
    handler = type("Handler", (_Handler,), {"counter": counter})
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=root))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield Mirror(root, f"http://127.0.0.1:{server.server_address[1]}", counter)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
