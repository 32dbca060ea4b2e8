"""The wire spelling of dates."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from mlbench_core.api.wire import WIRE_FORMAT, wire_date


def test_datetimes_are_written_in_utc_with_microseconds_and_z():
    assert wire_date(datetime(2024, 5, 1, 12, 0, 0)) == "2024-05-01T12:00:00.000000Z"  # naive
    assert wire_date(datetime(2024, 5, 1, 12, 0, 0, 5, tzinfo=UTC)) == (
        "2024-05-01T12:00:00.000005Z"
    )
    plus_two = timezone(timedelta(hours=2))
    assert wire_date(datetime(2024, 5, 1, 0, 30, tzinfo=plus_two)) == (
        "2024-04-30T22:30:00.000000Z"
    )


def test_iso_strings_are_rewritten():
    assert wire_date("2024-05-01T14:00:01.500+02:00") == "2024-05-01T12:00:01.500000Z"
    assert wire_date(" 2024-05-01T12:00:00Z ") == "2024-05-01T12:00:00.000000Z"
    assert wire_date("2024-05-01") == "2024-05-01T00:00:00.000000Z"
    written = wire_date(datetime(2024, 5, 1, 12, tzinfo=UTC))
    assert wire_date(written) == written
    assert datetime.strptime(written, WIRE_FORMAT) == datetime(2024, 5, 1, 12)


def test_what_is_not_a_date_is_refused():
    with pytest.raises(ValueError, match="not an ISO 8601 date: 'yesterday'"):
        wire_date("yesterday")
    with pytest.raises(TypeError, match="a date must be a datetime"):
        wire_date(date(2024, 5, 1))
    with pytest.raises(TypeError):
        wire_date(1714564800)  # type: ignore[arg-type]
