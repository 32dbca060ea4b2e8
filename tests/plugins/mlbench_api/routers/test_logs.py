"""/api/runs/{id}/logs, /result and /record: worker output in order, resumable; the official
result; the reproducibility record."""

from __future__ import annotations

import pytest


@pytest.fixture
def run(make_run) -> dict:
    return make_run()


def test_lines_come_back_in_order_and_resume_after_an_id(api, run):
    url = f"/api/runs/{run['id']}/logs"
    first = [
        {"rank": r, "stream": "stdout", "line": f"r{r} line {i}"} for i in range(3) for r in (0, 1)
    ]
    posted = api.post(url, json={"lines": first})
    assert posted.status_code == 201, posted.text
    page = api.get(url).json()
    assert [ln["line"] for ln in page["lines"]] == [ln["line"] for ln in first]
    assert page["next"] == posted.json()["next"] == page["lines"][-1]["id"]
    api.post(url, json={"lines": [{"rank": 1, "stream": "stderr", "line": "Traceback: boom"}]})
    later = api.get(url, params={"after": page["next"]}).json()
    assert [(ln["rank"], ln["stream"], ln["line"]) for ln in later["lines"]] == [
        (1, "stderr", "Traceback: boom")
    ]
    assert api.get(url, params={"after": later["next"]}).json() == {
        "lines": [],
        "next": later["next"],
    }
    rank1 = api.get(url, params={"rank": 1, "limit": 2}).json()
    assert [ln["line"] for ln in rank1["lines"]] == ["r1 line 0", "r1 line 1"]
    newest = api.get(url, params={"rank": 1, "limit": 2, "tail": "true"}).json()
    assert [ln["line"] for ln in newest["lines"]] == ["r1 line 2", "Traceback: boom"]
    assert newest["next"] == later["next"]


def test_bad_log_input_is_422_and_unknown_run_404(api, run):
    url = f"/api/runs/{run['id']}/logs"
    for bad in (
        {"lines": []},
        {"lines": [{"rank": -1, "line": "x"}]},
        {"lines": [{"rank": 0, "stream": "stdin", "line": "x"}]},
        {"lines": [{"rank": 0, "line": "a\x00b"}]},
    ):
        assert api.post(url, json=bad).status_code == 422, bad
    assert api.get(url).json()["lines"] == []
    assert (
        api.post("/api/runs/999/logs", json={"lines": [{"rank": 0, "line": "x"}]}).status_code
        == 404
    )
    assert api.get("/api/runs/999/logs").status_code == 404


def test_an_after_beyond_64_bits_is_422_not_500(api, run):
    url = f"/api/runs/{run['id']}/logs"
    assert api.get(url, params={"after": 2**63 - 1}).json()["lines"] == []
    answer = api.get(url, params={"after": 2**63})
    assert answer.status_code == 422 and "after" in answer.text


def test_deleting_the_run_deletes_its_logs(api, make_run, store):
    from sqlalchemy import text

    doomed = make_run("doomed")
    api.post(f"/api/runs/{doomed['id']}/logs", json={"lines": [{"rank": 0, "line": "x"}]})
    assert api.delete(f"/api/runs/{doomed['id']}").status_code == 204
    with store.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM logs")).scalar() == 0


def test_result_is_recorded(api, run):
    result = {"time_to_target_s": 41.5, "split": {"compute": 0.7, "communication": 0.2}}
    response = api.put(f"/api/runs/{run['id']}/result/", json={"result": result})
    assert response.status_code == 200
    assert api.get(f"/api/runs/{run['id']}").json()["result"] == result
    assert api.put(f"/api/runs/{run['id']}/result", json={}).status_code == 422


def test_reproducibility_record_is_recorded_and_replaced(api, run):
    assert api.get(f"/api/runs/{run['id']}").json()["record"] is None
    record = {"versions": {"torch": "2.13.0"}, "seed": 0, "world_size": 2}
    response = api.put(f"/api/runs/{run['id']}/record/", json={"record": record})
    assert response.status_code == 200
    assert response.json()["record"] == record
    api.put(f"/api/runs/{run['id']}/record", json={"record": {"seed": 1}})
    assert api.get(f"/api/runs/{run['id']}").json()["record"] == {"seed": 1}
    bad = api.put(f"/api/runs/{run['id']}/record", json={"record": "text"})
    assert bad.status_code == 422 and "record" in bad.json()["message"]
    assert api.put("/api/runs/999999/record", json={"record": {}}).status_code == 404
