"""/api/nightly: one report per nightly DAG run, newest first; a retry of a DAG run replaces
its report, another nightly of the same day is kept beside it."""

from __future__ import annotations

import pytest

REPORT = {"entries": {"digits-2w-light": {"verdict": "ok"}}}


def test_reports_are_stored_listed_newest_first_and_replaced_by_a_retry(api):
    assert api.get("/api/nightly/").json() == []
    for date in ("2026-11-21", "2026-11-23", "2026-11-22"):
        body = {"verdict": "same", "report": {**REPORT, "date": date}, "dag_run_id": f"d-{date}"}
        response = api.put(f"/api/nightly/{date}/", json=body)
        assert response.status_code == 200, response.text
    listed = api.get("/api/nightly").json()
    assert [r["date"] for r in listed] == ["2026-11-23", "2026-11-22", "2026-11-21"]
    assert [r["date"] for r in api.get("/api/nightly", params={"limit": 1}).json()] == [
        "2026-11-23"
    ]
    retry = {"verdict": "regression", "report": {"entries": {}}, "dag_run_id": "d-2026-11-22"}
    assert api.put("/api/nightly/2026-11-22", json=retry).status_code == 200
    got = api.get("/api/nightly/2026-11-22/").json()
    assert (got["verdict"], got["report"], got["dag_run_id"]) == (
        "regression",
        {"entries": {}},
        "d-2026-11-22",
    )
    assert len(api.get("/api/nightly").json()) == 3


def test_two_nightlies_of_one_day_are_both_kept(api):
    first = {"verdict": "same", "report": {"n": 1}, "dag_run_id": "manual__1"}
    second = {"verdict": "regression", "report": {"n": 2}, "dag_run_id": "manual__2"}
    a = api.put("/api/nightly/2026-11-23", json=first).json()
    b = api.put("/api/nightly/2026-11-23", json=second).json()
    assert a["id"] != b["id"]
    listed = api.get("/api/nightly").json()
    assert [(r["dag_run_id"], r["report"]) for r in listed] == [
        ("manual__2", {"n": 2}),
        ("manual__1", {"n": 1}),
    ]
    assert api.get("/api/nightly/2026-11-23").json()["dag_run_id"] == "manual__2"  # newest
    one = api.get("/api/nightly/2026-11-23", params={"dag_run_id": "manual__1"}).json()
    assert one["report"] == {"n": 1}
    missing = api.get("/api/nightly/2026-11-23", params={"dag_run_id": "nope"})
    assert missing.status_code == 404 and "DAG run nope" in missing.json()["detail"]
    # without a DAG run id, the day's report without one is replaced, the others kept
    for n in (3, 4):
        body = {"verdict": "same", "report": {"n": n}}
        assert api.put("/api/nightly/2026-11-23", json=body).status_code == 200
    assert sorted(r["report"]["n"] for r in api.get("/api/nightly").json()) == [1, 2, 4]


@pytest.mark.parametrize(
    ("date", "body", "status", "field"),
    [
        ("2026-11-2", {"verdict": "same", "report": {}}, 422, "date"),
        ("2026-11-23", {"verdict": "great", "report": {}}, 422, "verdict"),
        ("2026-11-23", {"verdict": "same"}, 422, "report"),
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
