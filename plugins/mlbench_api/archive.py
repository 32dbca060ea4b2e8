"""The zip archives of ``GET /api/metrics/{pod_name_or_run_id}?format=zip``.

Two layouts (query parameter ``layout``):

``mlbench`` (the default): the files the original mlbench server wrote, which the
mlbench-results repository keeps and its plotting scripts read. A run's archive holds
``result_<series>.json`` per series of the run, ``<pod>_<series>.json`` per series of each of
its pods, and ``official_result.txt`` (the run's official result text, when it has one); a
pod's archive holds ``result_<series>.json`` per series of the pod (the original wrote a
pod's series under the same prefix). Each series file is a JSON list, indented by 4, of
``{"date", "value", "cumulative"}`` as Django's JSON encoder wrote them: dates in UTC with
milliseconds (``2020-03-03T16:00:06.956Z``; ``2020-03-03T15:57:24Z`` at a whole second), the
value as text (``"0.6922997832298279"``). Series whose names contain ``TaskResult`` are left
out, as the original did. Series names are kept as they are (``result_train_loss @ 0.json``:
the scripts split such names on the blanks) except for the characters no file name should
hold: path separators, control characters and ``: * ? " < > |`` become ``_``, so every
entry is one file in the archive's top folder; names are unique regardless of case.

``mlbench2``: one ``<series>.json`` per series, ``{"name", "points"}`` with the API's points,
and ``result.json`` (the run's ``result``, or null).
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Iterable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from werkzeug.utils import secure_filename

__all__ = [
    "Layout",
    "attachment",
    "django_date",
    "mlbench2_zip",
    "mlbench_zip",
    "official_result",
]

SKIPPED = "TaskResult"  # the original left these series out of its archives
OFFICIAL_RESULT = "official_result.txt"
_UNSAFE = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]')
_MAX_NAME = 255  # bytes: the longest file name most file systems take


class Layout(StrEnum):
    MLBENCH = "mlbench"
    MLBENCH2 = "mlbench2"


def attachment(name: str, fallback: str) -> str:
    """The original's ``Content-Disposition`` of an archive: ``metrics_<secure name>.zip``."""
    return f"attachment; filename=metrics_{secure_filename(name) or fallback}.zip"


def django_date(value: datetime) -> str:
    """``value`` as the original server's archives wrote dates (Django's JSON encoder)."""
    value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    text = value.isoformat()
    if value.microsecond:
        text = text[:23] + text[26:]  # milliseconds, truncated
    return text.removesuffix("+00:00") + "Z"


def official_result(result: Any) -> str | None:
    """The run's official result text: the result itself when it is text, else its ``text``
    (a text result posted by an original worker), else none."""
    if isinstance(result, str):
        return result
    if isinstance(result, dict) and isinstance(result.get("text"), str):
        return result["text"]
    return None


class _Names:
    """File names unique in one archive, also on case-insensitive file systems."""

    def __init__(self, *reserved: str) -> None:
        self._used = {name.casefold() for name in reserved}

    def take(self, stem: str, suffix: str) -> str:
        n = 1
        while True:
            tail = suffix if n == 1 else f"-{n}{suffix}"
            name = _fit(stem, tail)
            if name.casefold() not in self._used:
                self._used.add(name.casefold())
                return name
            n += 1


def _fit(stem: str, tail: str) -> str:
    """``stem + tail``, the stem cut so that the name is at most 255 bytes (UTF-8)."""
    room = _MAX_NAME - len(tail.encode())
    while len(stem.encode()) > room:
        stem = stem[:-1]
    return stem + tail


def _original_points(points: list[dict[str, Any]]) -> str:
    return json.dumps(
        [
            {
                "date": django_date(p["date"]),
                "value": str(p["value"]),
                "cumulative": bool(p["cumulative"]),
            }
            for p in points
        ],
        indent=4,
    )


def mlbench_zip(
    own: dict[str, list[dict[str, Any]]],
    pods: Iterable[tuple[str, dict[str, list[dict[str, Any]]]]] = (),
    official: str | None = None,
) -> bytes:
    """The original layout, in the original's order: ``result_<series>.json`` for the
    owner's series (``own``), ``official_result.txt`` when ``official`` is given, then
    ``<pod>_<series>.json`` for each (pod name, series) of ``pods``. Points as
    :class:`~mlbench_api.store.series.SeriesReader` reads them.

    A name that needs no change keeps it even when a changed one would come out the same
    (series ``a_b`` is ``result_a_b.json``; ``a/b`` then ``result_a_b-2.json``)."""
    files = [
        (f"{prefix}_{name}", points)
        for prefix, series in [("result", own), *pods]
        for name, points in series.items()
        if SKIPPED not in name
    ]
    names = _member_names([stem for stem, _ in files])
    entries = [
        (name, _original_points(points)) for name, (_, points) in zip(names, files, strict=True)
    ]
    if official is not None:  # after the owner's series, as the original wrote it
        entries.insert(sum(SKIPPED not in name for name in own), (OFFICIAL_RESULT, official))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return buffer.getvalue()


def _member_names(stems: list[str]) -> list[str]:
    """``<stem>.json`` for each stem, made safe and unique; stems that need no change are
    named first, so that they keep their names."""
    taken = _Names(OFFICIAL_RESULT)
    clean = [_UNSAFE.sub("_", stem) for stem in stems]
    out = [""] * len(stems)
    for safe in (True, False):
        for i, stem in enumerate(stems):
            if (clean[i] == stem) is safe:
                out[i] = taken.take(clean[i], ".json")
    return out


def mlbench2_zip(series: dict[str, list[dict[str, Any]]], result: Any) -> bytes:
    """One JSON file per series, plus ``result.json`` (the run's official result)."""
    buffer = io.BytesIO()
    used: set[str] = set()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, points in series.items():
            stem = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "series"
            filename, n = f"{stem}.json", 1
            while filename in used or filename == "result.json":
                n += 1
                filename = f"{stem}-{n}.json"
            used.add(filename)
            archive.writestr(filename, json.dumps({"name": name, "points": points}))
        archive.writestr("result.json", json.dumps(result))
    return buffer.getvalue()
