"""Ship workers' output lines to the run's logs in the API, in order, in batches."""

from __future__ import annotations

import collections
import logging
import queue
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import IO

from mlbench_core.api.client import ApiClient, new_key
from mlbench_core.api.errors import ApiError, retry_for
from mlbench_core.api.wire import wire_date
from mlbench_core.settings import get_settings

log = logging.getLogger(__name__)
_DONE = object()


class LogShipper:
    """Reads pipes of ranks line by line (or gets lines through :meth:`put`); posts them in
    batches from one sender thread.

    ``echo`` (e.g. ``print``) also gets each line, prefixed with its rank, so the Airflow task
    log shows the workers' output as well. The last lines of each rank's stderr are kept for
    error messages (``tail``).
    """

    def __init__(
        self,
        client: ApiClient,
        run_id: int,
        *,
        interval: float = 0.5,
        batch: int = 1000,
        echo: Callable[[str], None] | None = None,
        retry_for: float | None = None,
    ) -> None:
        self.client, self.run_id = client, run_id
        # how long a batch waits for an API that is away (default MLBENCH_API_WAIT)
        self.retry_for = get_settings().api_wait if retry_for is None else retry_for
        self.interval, self.batch, self.echo = interval, batch, echo
        self.queue: queue.Queue = queue.Queue()
        self.readers: list[threading.Thread] = []
        self.stderr_tail: dict[int, collections.deque[str]] = {}
        self.failed = 0
        self.sender = threading.Thread(target=self._send_loop, name="log-sender", daemon=True)
        self.sender.start()

    def follow(self, rank: int, stream: str, pipe: IO[bytes]) -> None:
        """Start reading ``pipe`` (a rank's stdout or stderr) until it closes."""
        tail = self.stderr_tail.setdefault(rank, collections.deque(maxlen=20))
        thread = threading.Thread(
            target=self._read,
            args=(rank, stream, pipe, tail),
            name=f"log-{rank}-{stream}",
            daemon=True,
        )
        thread.start()
        self.readers.append(thread)

    def _read(self, rank: int, stream: str, pipe: IO[bytes], tail: collections.deque) -> None:
        with pipe:
            for raw in iter(pipe.readline, b""):
                line = raw.decode("utf-8", errors="replace").rstrip("\n")
                if stream == "stderr":
                    tail.append(line)
                self.put(rank, stream, line)

    def put(self, rank: int, stream: str, line: str, date: datetime | None = None) -> None:
        """Queue one line of ``rank`` (written at ``date``, default now) for posting."""
        line = line.replace("\x00", "")
        if self.echo is not None:
            self.echo(f"[rank {rank} {stream}] {line}")
        self.queue.put(
            {
                "rank": rank,
                "stream": stream,
                "line": line[:65_536],
                "date": wire_date(date or datetime.now(UTC)),
            }
        )

    def _send_loop(self) -> None:
        done = False
        while not done:
            lines: list[dict] = []
            try:
                item = self.queue.get(timeout=self.interval)
                while True:
                    if item is _DONE:
                        done = True
                        break
                    lines.append(item)
                    if len(lines) >= self.batch:
                        break
                    item = self.queue.get_nowait()
            except queue.Empty:
                pass
            if lines:
                self._post(lines)

    def _post(self, lines: list[dict]) -> None:
        """Post one batch, retrying for up to ``retry_for`` seconds (the API may be
        restarting); every attempt carries the same idempotency key, so the batch is
        appended once."""
        key = new_key()

        def waits(exc: ApiError) -> None:
            log.warning("mlbench: log lines of run %s wait for the API: %s", self.run_id, exc)

        try:
            retry_for(lambda: self.client.post_logs(self.run_id, lines, key=key),
                      self.retry_for, waits)  # fmt: skip
        except ApiError as exc:
            self.failed += len(lines)
            log.error("mlbench: %d log lines of run %s lost: %s", len(lines), self.run_id, exc)

    def tail(self, rank: int) -> str:
        return "\n".join(self.stderr_tail.get(rank, ()))

    def close(self, timeout: float | None = None) -> None:
        """Wait for the pipes to close and every line to be posted (at most ``timeout``
        seconds each; default: as long as a batch waits for the API, and 10 s more)."""
        timeout = self.retry_for + 10 if timeout is None else timeout
        for reader in self.readers:
            reader.join(timeout)
        self.queue.put(_DONE)
        self.sender.join(timeout)
