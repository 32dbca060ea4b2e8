"""/api/nightly: one report per night, newest first, replaced by a re-run of the night."""

from __future__ import annotations

import pytest

REPORT = {"entries": {"digits-2w-light": {"verdict": "ok"}}}


def test_reports_are_stored_listed_newest_first_and_replaced(api):
    assert api.get("/api/nightly/").json() == []
    for date in ("2026-11-21", "2026-11-23", "2026-11-22"):
        body = {"verdict": "ok", "report": {**REPORT, "date": date}, "dag_run_id": f"d-{date}"}
        response = api.put(f"/api/nightly/{date}/", json=body)
        assert response.status_code == 200, response.text
    listed = api.get("/api/nightly").json()
    assert [r["date"] for r in listed] == ["2026-11-23", "2026-11-22", "2026-11-21"]
    assert [r["date"] for r in api.get("/api/nightly", params={"limit": 1}).json()] == [
        "2026-11-23"
    ]
    again = {"verdict": "regression", "report": {"entries": {}}}
    assert api.put("/api/nightly/2026-11-22", json=again).status_code == 200
    got = api.get("/api/nightly/2026-11-22/").json()
    assert (got["verdict"], got["report"], got["dag_run_id"]) == (
        "regression",
        {"entries": {}},
        None,
    )
    assert len(api.get("/api/nightly").json()) == 3


@pytest.mark.parametrize(
    ("date", "body", "status", "field"),
    [
        ("2026-11-2", {"verdict": "ok", "report": {}}, 422, "date"),
        ("2026-11-23", {"verdict": "great", "report": {}}, 422, "verdict"),
        ("2026-11-23", {"verdict": "ok"}, 422, "report"),
    ],
)
def test_bad_reports_are_422_naming_the_field(api, date, body, status, field):
    response = api.put(f"/api/nightly/{date}", json=body)
    assert response.status_code == status
    assert field in response.json()["message"]
    assert api.get("/api/nightly").json() == []


def test_an_unknown_night_is_404(api):
    response = api.get("/api/nightly/2020-01-01")
    assert response.status_code == 404 and "2020-01-01" in response.json()["detail"]
