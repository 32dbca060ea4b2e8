"""The 0a report: units, one row per dtype and size, the cap's share, CSV and JSON."""

from __future__ import annotations

import csv
import io

import pytest

from mlbench_core.benchmarks.allreduce_report import COLUMNS, is_report, report


def _row(dtype: str, elements: int, size: int, median: float | None, skipped=None) -> dict:
    nbytes = elements * size
    algbw = nbytes / median if median else None
    return {
        "dtype": dtype, "elements": elements, "bytes": nbytes, "world_size": 2,
        "repeats": 0 if skipped else 20, "median_s": median,
        "p10_s": median and median * 0.9, "p90_s": median and median * 1.2,
        "min_s": median and median * 0.8,
        "rank_median_min_s": median and median * 0.95, "rank_median_max_s": median,
        "algbw_bytes_per_s": algbw, "busbw_bytes_per_s": algbw,  # 2(n-1)/n = 1 for n = 2
        "skipped": skipped,
    }  # fmt: skip


RESULT = {
    "benchmark": "0a",
    "world_size": 2,
    "bandwidth_cap_mbit_s": 100.0,
    "rows": [
        _row("float32", 1000, 4, 2e-3),
        _row("float32", 1, 4, 1e-4),
        _row("float16", 1, 2, 1e-4),
        _row("float16", 10**9, 2, None, skipped="too big"),
    ],
}


def test_one_row_per_dtype_and_size_in_the_run_order_with_units():
    shown = report(RESULT)
    assert shown.dtypes == ["float32", "float16"]
    assert [(r["dtype"], r["bytes"]) for r in shown.rows] == [
        ("float32", 4), ("float32", 4000), ("float16", 2), ("float16", 2 * 10**9),
    ]  # fmt: skip
    row = shown.rows[1]
    assert row["latency_p50_us"] == pytest.approx(2000.0)
    assert row["latency_p10_us"] == pytest.approx(1800.0)
    assert row["rank_p50_min_us"] == pytest.approx(1900.0)
    assert row["algbw_gbit_s"] == pytest.approx(4000 * 8 / 2e-3 / 1e9)  # 0.016 Gbit/s
    assert shown.cap_gbit_s == pytest.approx(0.1)
    assert row["of_cap"] == pytest.approx(0.16)
    assert shown.cells(row)[:4] == ["float32", "4,000", "1,000", "2,000.0"]
    assert shown.rows[3]["skipped"] == "too big" and shown.rows[3]["latency_p50_us"] is None
    titles = [c.title for c in COLUMNS]
    assert "p50 (µs)" in titles and "busbw (Gbit/s)" in titles


def test_without_a_cap_there_is_no_share_column():
    shown = report({**RESULT, "bandwidth_cap_mbit_s": None})
    assert shown.cap_gbit_s is None
    assert "of cap" not in [c.title for c in shown.columns()]
    assert all(r["of_cap"] is None for r in shown.rows)


def test_csv_and_json_carry_every_row():
    shown = report(RESULT)
    rows = list(csv.DictReader(io.StringIO(shown.to_csv())))
    assert len(rows) == 4 and rows[0]["dtype"] == "float32" and rows[0]["bytes"] == "4"
    assert float(rows[1]["busbw_gbit_s"]) == pytest.approx(0.016)
    assert rows[0]["cap_gbit_s"] == "0.1"
    data = shown.as_dict()
    assert data["units"]["latency_p50_us"] == "p50 (µs)"
    assert len(data["rows"]) == 4 and data["world_size"] == 2


def test_only_a_result_with_rows_is_a_report():
    assert is_report(RESULT)
    assert not is_report({"reached": True}) and not is_report(None) and not is_report("text")
