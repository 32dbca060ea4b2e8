"""Live series: a first load, downsampled by the API (``summarize``), then polls that fetch
only the points newer than a cursor (``since``).

Each owner (a run, or a worker pod) has its own cursor: the newest date seen of any of its
series. One writer posts an owner's metrics in order, so a point older than the cursor never
arrives later. A poll first asks for each series' newest point after the cursor (one cheap
``last_n=1`` read) and fetches the new points only when there are some. Asking for the newest
point first means that a point arriving between the two reads is fetched twice at worst,
never lost; so is a point that arrives while a page's first load reads its series one by one
after reading the cursor. A chart must not draw such a point twice (a stacked bar would
double, an epoch mark twice would stop the epoch axis): :func:`unseen` keeps only the points
newer than what each series has drawn, :func:`drawn_to` records that.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from dashboard.api import Access
from dashboard.series import Series, newest_date
from mlbench_core.api import ApiClient

__all__ = [
    "Owner",
    "SUMMARIES",
    "SummaryCache",
    "fetch_many",
    "fetch_summaries",
    "load",
    "load_all",
    "newest",
    "newest_per_pod",
    "poll",
    "poll_all",
    "tails",
    "drawn_to",
    "unseen",
]

MAX_PARALLEL = 8  # requests in flight for one page update (the API answers them concurrently)


@dataclass(frozen=True)
class Owner:
    """Whose series: a run (``kind="run"``, ``key`` its id) or a pod (``key`` its name)."""

    kind: str
    key: str

    @classmethod
    def run(cls, run_id: int) -> Owner:
        return cls("run", str(run_id))

    @classmethod
    def pod(cls, name: str) -> Owner:
        return cls("pod", name)

    def fetch(self, client: ApiClient, **params: Any) -> Series:
        """``GET /api/metrics/{owner}`` with ``params`` (since, summarize, last_n, ...)."""
        if self.kind == "run":
            return client.get_run_metrics(int(self.key), **params)
        return client.get_pod_metrics(self.key, **params)


def newest(client: ApiClient, owner: Owner, since: str | None = None) -> str | None:
    """The newest date of ``owner``'s points (after ``since``), or None."""
    return newest_date(owner.fetch(client, since=since, last_n=1))


def newest_per_pod(client: ApiClient) -> dict[str, str]:
    """Each pod's newest date, in one request (pods without points are left out)."""
    out = {}
    for pod, series in client.get_all_metrics(last_n=1).items():
        date = newest_date(series)
        if date is not None:
            out[pod] = date
    return out


def fetch_many(access: Access, owner: Owner, names: Sequence[str], **params: Any) -> Series:
    """Series ``names`` of ``owner``, one request each, in parallel."""

    def one(name: str) -> Series:
        with access.client() as client:
            return owner.fetch(client, metric_filter=name, **params)

    out: Series = {}
    if not names:
        return out
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(names))) as pool:
        for part in pool.map(one, names):
            out.update(part)
    return out


@dataclass
class _Summary:
    cursor: str  # the owner's newest date when the points were read
    points: list[dict[str, Any]]


class SummaryCache:
    """Downsampled series read earlier, by owner (and its version: a run's creation date, as
    ids can be reused), series name and number of points.

    Opening a run again (a reload, another viewer) then costs a read of the points after the
    cached cursor instead of a downsampling of the whole series. Only callers that have just
    read the owner's cursor with their own token use it (:func:`fetch_summaries`), so the API
    has checked their access first.
    """

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._entries: OrderedDict[tuple, _Summary] = OrderedDict()
        self._reading: dict[tuple, threading.Event] = {}
        self._lock = threading.Lock()

    def claim(self, key: tuple) -> bool:
        """Whether the caller may read ``key`` (no one else is reading it); it then calls
        :meth:`put` or :meth:`release`."""
        with self._lock:
            if key in self._reading:
                return False
            self._reading[key] = threading.Event()
            return True

    def release(self, key: tuple) -> None:
        with self._lock:
            done = self._reading.pop(key, None)
        if done is not None:
            done.set()

    def wait(self, key: tuple, timeout: float = 60.0) -> None:
        """Wait until no one is reading ``key``."""
        with self._lock:
            reading = self._reading.get(key)
        if reading is not None:
            reading.wait(timeout)

    def get(self, key: tuple) -> _Summary | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def put(self, key: tuple, entry: _Summary) -> None:
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        self.release(key)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


SUMMARIES = SummaryCache()


def fetch_summaries(
    access: Access,
    owner: Owner,
    names: Sequence[str],
    *,
    summarize: int,
    cursor: str | None,
    version: str = "",
    cache: SummaryCache = SUMMARIES,
) -> Series:
    """Series ``names`` of ``owner`` downsampled to about ``summarize`` points, where
    ``cursor`` is the owner's newest date, just read. A series cached at a cursor no newer
    gets only the points after it (none when the cursor has not moved); one that grew past
    twice ``summarize`` points is read whole again."""
    out: Series = {}
    todo: list[tuple[str, _Summary | None]] = []
    for name in names:
        key = (access.url, owner.kind, owner.key, version, name, summarize)
        if cursor is not None:
            cache.wait(key)  # a read of the same series under way (a prefetch): use it
        entry = cache.get(key) if cursor is not None else None
        if entry is not None and entry.cursor <= cursor and len(entry.points) <= 2 * summarize:
            if entry.cursor == cursor:
                if entry.points:
                    out[name] = list(entry.points)
                continue
            todo.append((name, entry))
        else:
            todo.append((name, None))

    def one(item: tuple[str, _Summary | None]) -> tuple[str, list[dict[str, Any]]]:
        name, entry = item
        key = (access.url, owner.kind, owner.key, version, name, summarize)
        claimed = cursor is not None and cache.claim(key)
        try:
            since = entry.cursor if entry is not None else None
            with access.client() as client:
                part = owner.fetch(client, metric_filter=name, since=since, summarize=summarize)
            points = (entry.points if entry is not None else []) + part.get(name, [])
            if claimed:
                cache.put(key, _Summary(cursor, points))
            return name, points
        finally:
            if claimed:
                cache.release(key)

    if todo:
        with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(todo))) as pool:
            for name, points in pool.map(one, todo):
                if points:
                    out[name] = list(points)
    return out


def load(
    access: Access,
    owner: Owner,
    *,
    names: Sequence[str] | None = None,
    summarize: int | None = None,
    last_n: int | None = None,
) -> tuple[Series, str | None]:
    """The series of ``owner`` (only ``names`` when given) and the cursor to poll from."""
    with access.client() as client:
        cursor = newest(client, owner)
        if cursor is None:
            return {}, None
        if names is None:
            return owner.fetch(client, summarize=summarize, last_n=last_n), cursor
    return fetch_many(access, owner, names, summarize=summarize, last_n=last_n), cursor


def poll(
    access: Access, owner: Owner, cursor: str | None, *, summarize: int | None = None
) -> tuple[Series, str | None]:
    """The points of ``owner`` newer than ``cursor`` (all series) and the next cursor."""
    if cursor is None:
        return load(access, owner, summarize=summarize)
    with access.client() as client:
        latest = newest(client, owner, since=cursor)
        if latest is None:
            return {}, cursor
        return owner.fetch(client, since=cursor, summarize=summarize), latest


def drawn_to(
    series: Mapping[str, Sequence[Mapping[str, Any]]], before: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The newest date drawn of each series: ``before``'s, moved on by ``series``."""
    out = dict(before or {})
    for name, points in series.items():
        if points and points[-1]["date"] > out.get(name, ""):
            out[name] = points[-1]["date"]
    return out


def unseen(series: Series, drawn: Mapping[str, str]) -> Series:
    """The points of ``series`` newer than what each series has drawn (:func:`drawn_to`);
    series left without points are dropped."""
    out: Series = {}
    for name, points in series.items():
        last = drawn.get(name, "")
        kept = [p for p in points if p["date"] > last]
        if kept:
            out[name] = kept
    return out


def tails(series: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, dict[str, Any]]:
    """The last point of each series (what a rate of the next points starts from)."""
    return {name: dict(points[-1]) for name, points in series.items() if points}


def call(access: Access, method: str, *args: Any, **kwargs: Any) -> Any:
    """``method`` of the API client with ``args``, on a client of its own (for :func:`together`)."""
    with access.client() as client:
        return getattr(client, method)(*args, **kwargs)


def together(*calls: Callable[[], Any]) -> list[Any]:
    """The results of ``calls``, made concurrently (each call opens its own client)."""
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(calls))) as pool:
        return [future.result() for future in [pool.submit(call) for call in calls]]


def _each(owners: Sequence[Owner], work: Callable[[Owner], Any]) -> dict[Owner, Any]:
    if not owners:
        return {}
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(owners))) as pool:
        return dict(zip(owners, pool.map(work, owners), strict=True))


def load_all(
    access: Access, owners: Sequence[Owner], **params: Any
) -> dict[Owner, tuple[Series, str | None]]:
    """:func:`load` for several owners, in parallel."""
    return _each(owners, lambda owner: load(access, owner, **params))


def poll_all(
    access: Access, cursors: Mapping[Owner, str | None], *, summarize: int | None = None
) -> dict[Owner, tuple[Series, str | None]]:
    """:func:`poll` for several owners (each from its cursor), in parallel."""
    return _each(
        list(cursors), lambda owner: poll(access, owner, cursors[owner], summarize=summarize)
    )
