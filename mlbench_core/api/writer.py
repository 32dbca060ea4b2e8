"""Background, batching delivery of metrics for training workers.

``MetricsWriter.write`` only validates and queues: it never waits on the network. A daemon
thread sends the queue in batches through :meth:`ApiClient.post_metrics`, retrying while the
API is unreachable or failing (5xx, 408, 429), with capped exponential backoff. Delivery is
exactly once: each batch carries an idempotency key kept across its retries, so a request
that timed out after the server stored it is sent again and stored once.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from mlbench_core.api.client import ApiClient, DateLike, new_key
from mlbench_core.api.errors import ApiError, render_detail
from mlbench_core.api.schemas import MAX_BATCH, MetricIn
from mlbench_core.api.wire import wire_date

__all__ = ["MetricsWriter", "WriterStats"]

log = logging.getLogger(__name__)

LOG_INTERVAL = 10.0  # seconds between two warnings of the same kind
_STOPPED = object()  # outcome of a send that close() interrupted
_Item = tuple[int, float, dict[str, Any]]  # (sequence number, queued at (monotonic), metric)


@dataclass(frozen=True)
class WriterStats:
    """Counts of a :class:`MetricsWriter` (a snapshot).

    ``written`` metrics were accepted by ``write``; each of them is ``delivered``, ``failed``
    (refused by the server, given up, or abandoned at close) or still ``pending``. ``dropped``
    ones were refused by ``write`` because ``max_pending`` were waiting (or after close).
    ``retries`` counts repeated requests.
    """

    written: int = 0
    delivered: int = 0
    failed: int = 0
    dropped: int = 0
    retries: int = 0
    pending: int = 0


class _RateLimit:
    """Allows one event per ``interval`` seconds and counts the ones it suppressed."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.last = -math.inf
        self.suppressed = 0

    def ready(self) -> int | None:
        """The number suppressed since the last allowed event, or None to stay quiet."""
        now = time.monotonic()
        if now - self.last < self.interval:
            self.suppressed += 1
            return None
        self.last, suppressed, self.suppressed = now, self.suppressed, 0
        return suppressed


class _Flush:
    """A ``flush`` call waiting for sequence numbers ``lo`` (exclusive) to ``hi``."""

    __slots__ = ("lo", "hi", "ok")

    def __init__(self, lo: int, hi: int) -> None:
        self.lo, self.hi, self.ok = lo, hi, True


def _finite(value: Any) -> float:
    if isinstance(value, bool | str | bytes):
        raise ValueError(f"value must be a finite number, not {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"value must be a finite number, not {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"value must be a finite number, not {number}")
    return number


class MetricsWriter:
    """Sends metrics in batches from a daemon thread; ``write`` never blocks.

    A batch goes out when ``batch_size`` metrics are pending or ``flush_interval`` seconds
    after the oldest pending one was written, in the order written. At most ``max_pending``
    metrics wait (queued or being sent); more are dropped and counted, with a warning.
    Unreachable API, 5xx, 408 and 429 are retried with backoff from ``backoff`` doubling up to
    ``max_backoff`` seconds, ``max_retries`` times (None: until :meth:`close`). Other 4xx
    answers fail the batch for good (an error is logged); a batch of several owners that fails
    with 403/404 is sent again per owner, so one deleted run or unknown pod fails only its own
    metrics. Dates stamped by ``write`` strictly increase, so series read back in write order.

    Use it as a context manager, or call :meth:`close`: queued metrics are lost when the
    process exits without it. Leaving the ``with`` block is ``close()`` without a timeout,
    which waits as long as the API stays unreachable; call ``close(timeout)`` to bound it.
    """

    def __init__(
        self,
        client: ApiClient,
        *,
        batch_size: int = 1000,
        flush_interval: float = 1.0,
        max_pending: int = 100_000,
        max_retries: int | None = None,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
    ) -> None:
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size must be within 1 and {MAX_BATCH}")
        if flush_interval < 0 or backoff < 0 or max_backoff < backoff:
            raise ValueError("need flush_interval >= 0 and 0 <= backoff <= max_backoff")
        if max_pending < 1 or (max_retries is not None and max_retries < 0):
            raise ValueError("need max_pending >= 1 and max_retries None or >= 0")
        self.client = client
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_pending = max_pending
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff

        self._cond = threading.Condition()
        self._queue: deque[_Item] = deque()
        self._written = 0  # also the sequence number of the last written metric
        self._delivered = 0
        self._failed = 0
        self._dropped = 0
        self._retries = 0
        self._urgent_upto = 0  # metrics up to this sequence number go out without waiting
        self._flushes: set[_Flush] = set()
        self._last_stamp: datetime | None = None
        self._closing = False  # write() drops
        self._stopping = False  # the thread ends
        self._abandoned = False  # close() has counted what was left as failed
        self._drop_log = _RateLimit(LOG_INTERVAL)
        self._fail_logs: dict[str, _RateLimit] = {}  # by error message
        self._retry_log = _RateLimit(LOG_INTERVAL)
        self._thread = threading.Thread(target=self._run, name="mlbench-metrics", daemon=True)
        self._thread.start()

    # -- caller side ------------------------------------------------------------------------

    def write(
        self,
        name: str,
        value: float,
        *,
        run_id: int | None = None,
        pod_name: str | None = None,
        date: DateLike | None = None,
        cumulative: bool = False,
        metadata: Mapping[str, Any] | str | None = None,
    ) -> bool:
        """Queue one metric of a run or a pod; False if it was dropped.

        Raises ``ValueError`` for a metric the server would refuse (non-finite or
        non-numeric value, empty name, not exactly one owner). Never waits on the network.
        """
        number = _finite(value)
        try:
            metric = MetricIn.model_validate(
                {
                    "name": name,
                    "value": number,
                    "run_id": run_id,
                    "pod_name": pod_name,
                    "date": date,
                    "cumulative": cumulative,
                    "metadata": metadata,
                }
            )
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
            raise ValueError(f"invalid metric {name!r}: {render_detail(errors)}") from None
        data = metric.model_dump(mode="json", exclude_none=True)
        if metric.date is not None:
            data["date"] = wire_date(metric.date)
        with self._cond:
            if not (self._closing or self._pending() >= self.max_pending):
                if metric.date is None:
                    now = datetime.now(UTC)
                    if self._last_stamp is not None and now <= self._last_stamp:
                        now = self._last_stamp + timedelta(microseconds=1)
                    self._last_stamp = now
                    data["date"] = wire_date(now)
                self._written += 1
                self._queue.append((self._written, time.monotonic(), data))
                if len(self._queue) in (1, self.batch_size):
                    self._cond.notify_all()
                return True
            self._dropped += 1
            dropped = self._dropped
            suppressed = self._drop_log.ready()
            why = "the writer is closed" if self._closing else f"{self.max_pending} are pending"
        if suppressed is not None:
            log.warning(
                "mlbench metrics writer: dropped metric %r (%s); %d dropped in all",
                name,
                why,
                dropped,
            )
        return False

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until the metrics pending now are delivered or failed; True if all delivered."""
        with self._cond:
            waiter = _Flush(self._delivered + self._failed, self._written)
            if waiter.lo >= waiter.hi:
                return True
            self._flushes.add(waiter)
            self._urgent_upto = max(self._urgent_upto, waiter.hi)
            self._cond.notify_all()
            try:
                done = self._cond.wait_for(
                    lambda: self._delivered + self._failed >= waiter.hi, timeout
                )
            finally:
                self._flushes.discard(waiter)
            return done and waiter.ok

    def close(self, timeout: float | None = None) -> WriterStats:
        """Flush, then stop the thread; what is still undelivered at ``timeout`` counts as
        failed (with an error logged). Later writes are dropped. Returns the final stats."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._closing = True
        self.flush(timeout)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if threading.current_thread() is not self._thread:
            self._thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        with self._cond:
            self._abandoned = True
            left = self._abandon()
            stats = self._snapshot()
        if left:
            log.error(
                "mlbench metrics writer: closed with %d metrics undelivered; counted as failed",
                left,
            )
        return stats

    @property
    def stats(self) -> WriterStats:
        """The current counts."""
        with self._cond:
            return self._snapshot()

    def __enter__(self) -> MetricsWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- shared state (call with the lock held) ----------------------------------------------

    def _pending(self) -> int:
        return self._written - self._delivered - self._failed

    def _snapshot(self) -> WriterStats:
        return WriterStats(
            written=self._written,
            delivered=self._delivered,
            failed=self._failed,
            dropped=self._dropped,
            retries=self._retries,
            pending=self._pending(),
        )

    def _abandon(self) -> int:
        """Count every pending metric as failed; their number."""
        left = self._pending()
        self._failed += left
        self._queue.clear()
        for waiter in self._flushes:
            if waiter.hi > waiter.lo:
                waiter.ok = False
        self._cond.notify_all()
        return left

    # -- the sending thread -----------------------------------------------------------------

    def _run(self) -> None:
        try:
            while (batch := self._next_batch()) is not None:
                self._send(batch)
        except BaseException:
            log.exception("mlbench metrics writer: the sending thread failed")
            with self._cond:
                self._closing = self._stopping = True
                left = self._abandon()
            log.error("mlbench metrics writer: %d metrics counted as failed", left)

    def _next_batch(self) -> list[_Item] | None:
        """The next batch to send, once one is due; None when stopping."""
        with self._cond:
            while not self._stopping:
                if not self._queue:
                    self._cond.wait()
                    continue
                first_seq, queued_at, _ = self._queue[0]
                due = queued_at + self.flush_interval - time.monotonic()
                if (
                    len(self._queue) >= self.batch_size
                    or first_seq <= self._urgent_upto
                    or due <= 0
                ):
                    size = min(self.batch_size, len(self._queue))
                    return [self._queue.popleft() for _ in range(size)]
                self._cond.wait(due)
            return None

    def _send(self, batch: list[_Item]) -> None:
        metrics = [data for _, _, data in batch]
        outcome = self._post(metrics)
        if outcome is _STOPPED:
            return
        if outcome is None:
            self._settle(batch, failed=[])
            return
        groups = self._owner_groups(metrics)
        if not (isinstance(outcome, ApiError) and outcome.status in (403, 404) and len(groups) > 1):
            self._report_failure(len(batch), outcome)
            self._settle(batch, failed=range(len(batch)))
            return
        failed: list[int] = []
        done: list[int] = []
        for indexes in groups:
            result = self._post([metrics[i] for i in indexes])
            if result is _STOPPED:  # settle what is known; close() fails the rest
                sent = sorted(done)
                lost = set(failed)
                self._settle(
                    [batch[i] for i in sent], failed=[k for k, i in enumerate(sent) if i in lost]
                )
                return
            if result is not None:
                self._report_failure(len(indexes), result)
                failed.extend(indexes)
            done.extend(indexes)
        self._settle(batch, failed=failed)

    @staticmethod
    def _owner_groups(metrics: list[dict[str, Any]]) -> list[list[int]]:
        groups: dict[tuple[str, Any], list[int]] = {}
        for i, data in enumerate(metrics):
            owner = ("run", data["run_id"]) if "run_id" in data else ("pod", data.get("pod_name"))
            groups.setdefault(owner, []).append(i)
        return list(groups.values())

    def _post(self, metrics: list[dict[str, Any]]) -> Any:
        """None once delivered; the error that fails it for good; or ``_STOPPED``. Every
        attempt carries the same idempotency key: a batch the server stored although its
        answer was lost (a timeout) is not stored again."""
        attempt = 0
        delay = self.backoff
        key = new_key()
        while True:
            try:
                self.client.post_metrics(metrics, key=key)
            except ApiError as exc:
                error = exc
            except Exception as exc:  # noqa: BLE001 - a bug or bad data: fail, don't retry
                log.exception("mlbench metrics writer: cannot send %d metrics", len(metrics))
                return exc
            else:
                if attempt:
                    log.info(
                        "mlbench metrics writer: delivered %d metrics after %d retries",
                        len(metrics),
                        attempt,
                    )
                return None
            if not error.retryable:
                return error
            if self.max_retries is not None and attempt >= self.max_retries:
                log.error(
                    "mlbench metrics writer: giving up on %d metrics after %d retries",
                    len(metrics),
                    attempt,
                )
                return error
            attempt += 1
            suppressed = self._retry_log.ready()
            if suppressed is not None:
                log.warning(
                    "mlbench metrics writer: %s; retrying %d metrics in %.1f s%s",
                    error,
                    len(metrics),
                    delay,
                    f" ({suppressed} retries not logged)" if suppressed else "",
                )
            with self._cond:
                if self._stopping:
                    return _STOPPED
                self._retries += 1
                self._cond.wait_for(lambda: self._stopping, delay * random.uniform(0.5, 1.0))
                if self._stopping:
                    return _STOPPED
            delay = min(max(delay, 1e-3) * 2, self.max_backoff)

    def _report_failure(self, count: int, error: BaseException) -> None:
        """Log a failed batch; the same error at most once per LOG_INTERVAL."""
        key = str(error)
        if key not in self._fail_logs and len(self._fail_logs) >= 100:
            self._fail_logs.clear()
        suppressed = self._fail_logs.setdefault(key, _RateLimit(LOG_INTERVAL)).ready()
        if suppressed is None:
            return
        log.error(
            "mlbench metrics writer: %d metrics failed: %s%s",
            count,
            error,
            f" ({suppressed} failed batches not logged)" if suppressed else "",
        )

    def _settle(self, batch: list[_Item], *, failed: Any) -> None:
        """Count ``batch`` as sent: its metrics at indexes ``failed`` failed, others delivered."""
        failed_seqs = [batch[i][0] for i in failed]
        with self._cond:
            late = self._abandoned
            if not late:
                self._failed += len(failed_seqs)
                self._delivered += len(batch) - len(failed_seqs)
                for waiter in self._flushes:
                    if any(waiter.lo < seq <= waiter.hi for seq in failed_seqs):
                        waiter.ok = False
                self._cond.notify_all()
        if late and len(batch) > len(failed_seqs):
            log.warning(
                "mlbench metrics writer: %d metrics counted as failed at close() were "
                "delivered after all",
                len(batch) - len(failed_seqs),
            )
