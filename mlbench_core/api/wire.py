"""How dates go on the wire: ISO 8601 in UTC with microseconds and a ``Z``
(``2024-05-01T12:00:00.000000Z``), the one spelling the API writes and the clients send.

Dates of one owner's series compare correctly as text in this spelling (fixed width, one
time zone), which the dashboard relies on.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = ["WIRE_FORMAT", "wire_date"]

WIRE_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_ZERO = timedelta(0)


def wire_date(value: datetime | str) -> str:
    """``value`` (a datetime, naive = UTC, or an ISO 8601 string) in the wire spelling.

    ``ValueError`` for a string that is not ISO 8601, ``TypeError`` for anything else.
    """
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"not an ISO 8601 date: {value!r}") from None
    elif not isinstance(value, datetime):
        raise TypeError(f"a date must be a datetime or an ISO 8601 string, not {value!r}")
    if value.tzinfo is not None and value.utcoffset() != _ZERO:
        value = value.astimezone(UTC)
    return value.strftime(WIRE_FORMAT)
