"""/api/pods: listing and recording worker pods."""

from __future__ import annotations

import pytest


def test_no_pods(api):
    assert api.get("/api/pods").json() == []
    assert api.get("/api/pods/").json() == []


def test_put_creates_then_updates_only_given_fields(api, make_run):
    run = make_run()
    created = api.put(
        "/api/pods/run-a-worker-0",
        json={"run_id": run["id"], "rank": 0, "labels": {"app": "mlbench", "component": "worker"}},
    )
    assert created.status_code == 200, created.text
    pod = created.json()
    assert pod["phase"] == "Pending" and pod["label_map"]["component"] == "worker"
    # As the original API (and the seed's example) gave them: the text of the dict.
    assert pod["labels"] == "{'app': 'mlbench', 'component': 'worker'}"
    updated = api.put(
        "/api/pods/run-a-worker-0/", data={"phase": "Running", "ip": "10.0.0.5", "node": "n1"}
    ).json()
    assert (
        updated["run_id"],
        updated["rank"],
        updated["phase"],
        updated["ip"],
        updated["node"],
    ) == (
        run["id"],
        0,
        "Running",
        "10.0.0.5",
        "n1",
    )
    assert updated["labels"] == pod["labels"] and updated["updated_at"] >= pod["updated_at"]
    assert updated["label_map"] == pod["label_map"]
    assert api.get("/api/pods/").json() == [updated]


def test_labels_as_json_text_in_a_form(api):
    pod = api.put("/api/pods/p", data={"labels": '{"app": "mlbench"}'}).json()
    assert (pod["labels"], pod["label_map"]) == ("{'app': 'mlbench'}", {"app": "mlbench"})


def test_a_pod_without_labels_has_the_text_of_an_empty_dict(api):
    pod = api.put("/api/pods/p", json={"phase": "Running"}).json()
    assert (pod["labels"], pod["label_map"]) == ("{}", {})
    assert api.get("/api/pods").json()[0]["labels"] == "{}"


def test_list_pods_of_one_run(api, make_run):
    a, b = make_run("a"), make_run("b")
    api.put("/api/pods/a-0", json={"run_id": a["id"], "rank": 0})
    api.put("/api/pods/b-0", json={"run_id": b["id"], "rank": 0})
    assert [p["name"] for p in api.get(f"/api/pods?run_id={b['id']}").json()] == ["b-0"]


@pytest.mark.parametrize(
    ("name", "body", "field"),
    [
        ("Bad_Name", {}, "name"),
        ("p", {"phase": "Sleeping"}, "phase"),
        ("p", {"rank": -1}, "rank"),
        ("p", {"labels": ["x"]}, "labels"),
        ("p", {"extra": 1}, "extra"),
    ],
)
def test_bad_pod_is_422(api, name, body, field):
    response = api.put(f"/api/pods/{name}", json=body)
    assert response.status_code == 422
    assert field in response.json()["message"]
    assert api.get("/api/pods").json() == []


def test_pod_of_unknown_run_is_404(api):
    assert api.put("/api/pods/p", json={"run_id": 42}).status_code == 404
    assert api.get("/api/pods").json() == []
