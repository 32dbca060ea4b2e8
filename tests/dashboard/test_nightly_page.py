"""The nightly page (``/nightly``) in headless Chromium against the real API: the empty state,
then a night's entries with verdicts, changes and trends; saves its screenshot."""

from __future__ import annotations

import pytest

from tests.dashboard.browser import log_in, open_page, screenshot, text_of, wait_for_text

pytestmark = pytest.mark.timeout(240)
METRICS = ("time_to_target_s", "throughput", "communication_share", "peak_memory_bytes")


def entry(seconds: float, status: str, relative: float) -> dict:
    typical = {"throughput": 21500.0, "communication_share": 0.21, "peak_memory_bytes": 4.5e8}
    verdicts = {
        m: {"status": "ok", "today": typical.get(m, 1.0), "relative": 0.004} for m in METRICS
    }
    verdicts["time_to_target_s"] = {"status": status, "today": seconds, "relative": relative}
    return {
        "verdict": status,
        "runs": [{"name": "r1", "state": "FINISHED"}, {"name": "r2", "state": "FINISHED"}],
        "failed": 0,
        "baseline": "median of the last 3 nightlies",
        "values": {"time_to_target_s": seconds},
        "verdicts": verdicts,
    }


def test_nightly_page_shows_entries_verdicts_and_trends(browser, live_server, admin_token, api):
    log_in(browser, live_server, admin_token)
    open_page(browser, live_server, "/nightly")
    wait_for_text(browser, "#nightly-summary", "No nightly report yet")
    for day, seconds in (("2026-11-20", 5.0), ("2026-11-21", 5.1), ("2026-11-22", 4.9)):
        report = {"entries": {"digits-2w-light": entry(seconds, "ok", 0.0)}}
        api.put_nightly_report(day, "ok", report)
    slow = {
        "entries": {
            "digits-1w-light": entry(3.0, "ok", 0.01),
            "digits-2w-light": entry(9.0, "regression", 0.8),
        }
    }
    api.put_nightly_report("2026-11-23", "regression", slow, "scheduled__2026-11-23")
    open_page(browser, live_server, "/nightly")
    wait_for_text(browser, "#nightly-results", "digits-2w-light")
    assert "Night 2026-11-23" in text_of(browser, "#nightly-summary")
    table = text_of(browser, "#nightly-results")
    assert "regression" in table and "9 (+80.0%)" in table
    assert "median of the last 3 nightlies" in table
    sparklines = browser.find_elements(".sparkline")
    assert len(sparklines) == 2  # one trend per entry
    screenshot(browser, "nightly")
