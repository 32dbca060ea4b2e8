"""The nightly page's rows and trends, from reports as the API stores them."""

from __future__ import annotations

from dashboard.nightly import entry_rows, trend


def report(seconds: float, status: str = "ok") -> dict:
    verdicts = {
        "time_to_target_s": {"status": status, "today": seconds, "relative": 0.25},
        "throughput": {"status": "ok", "today": 12345.6, "relative": -0.01},
        "communication_share": {"status": "ok", "today": 0.1234, "relative": None},
        "peak_memory_bytes": {"status": "insufficient-history", "today": 4 * 2**20},
    }
    return {
        "entries": {
            "digits-2w-light": {
                "verdict": status,
                "runs": [{}, {}],
                "failed": 0,
                "baseline": "median of the last 3 nightlies",
                "verdicts": verdicts,
                "values": {"time_to_target_s": seconds},
            },
            "digits-1w-light": {
                "verdict": "insufficient-history",
                "verdicts": {"time_to_target_s": {"status": "no-data", "reason": "no value"}},
            },
        }
    }


def test_rows_show_values_changes_and_statuses():
    first, second = entry_rows(report(5.0, "regression"))
    assert first["entry"] == "digits-2w-light" and first["verdict"] == "regression"
    assert first["time_to_target_s"] == "5 (+25.0%)"
    assert first["time_to_target_s_status"] == "regression"
    assert first["throughput"] == "12,346 (-1.0%)"
    assert first["communication_share"] == "12.3 %"
    assert first["peak_memory_bytes"] == "4"  # MiB
    assert (first["runs"], first["failed"]) == (2, 0)
    assert second["time_to_target_s"] == "no value"
    assert second["throughput_status"] == "no-data"


def test_trend_is_oldest_first_and_skips_nights_without_the_entry():
    reports = [
        {"date": "2026-11-23", "report": report(6.0)},
        {"date": "2026-11-21", "report": report(5.0)},
        {"date": "2026-11-22", "report": {"entries": {}}},
    ]
    assert trend(reports, "digits-2w-light") == (["2026-11-21", "2026-11-23"], [5.0, 6.0])
    assert trend(reports, "nope") == ([], [])
