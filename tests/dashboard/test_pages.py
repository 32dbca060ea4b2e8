"""Every page in headless Chromium against the real API with data (the plugin-mounted
dashboard, logged in with the Airflow UI's cookie). Saves the screenshots of the README."""

from __future__ import annotations

import io
import json
import shutil
import time
import zipfile
from datetime import UTC, datetime

import pytest
from dash.testing.wait import until
from selenium.webdriver.common.keys import Keys

from mlbench_core.api import ApiClient
from tests.dashboard.browser import (
    figure_layout,
    log_in,
    open_page,
    screenshot,
    text_of,
    traces,
    wait_for_points,
    wait_for_text,
)
from tests.dashboard.data import seed_run
from tests.mlbench_core.launch.test_facilities import require_facilities

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def page(browser, live_server, admin_token, api):
    """Opens a dashboard page, logged in as the Airflow admin."""
    log_in(browser, live_server, admin_token)

    def visit(path: str):
        open_page(browser, live_server, path)
        return browser

    return visit


def test_workers_page_empty_state(page):
    browser = page("/")
    wait_for_text(browser, "#workers-empty-state", "No workers yet")
    assert "mlbench run" in text_of(browser, "#workers-empty-state")
    screenshot(browser, "workers-empty")


def test_workers_page_lists_pods_with_live_charts(page, api):
    seed_run(api, "cifar-2w", finish=False)
    browser = page("/")
    wait_for_text(browser, "#workers-table", "cifar-2w-w1")
    assert "Running" in text_of(browser, "#workers-table")
    for chart in ("workers-cpu", "workers-memory", "workers-net-in", "workers-net-out"):
        counts = wait_for_points(browser, chart, at_least=20)
        assert len(counts) == 2  # one line per worker
    before = traces(browser, "workers-cpu")
    last = api.get_pod_metrics("cifar-2w-w0", last_n=1)["container_cpu_usage_seconds_total"][0]
    api.post_metric("container_cpu_usage_seconds_total", last["value"] + 7.0,
                    pod_name="cifar-2w-w0", date=datetime.now(UTC), cumulative=True)  # fmt: skip
    until(lambda: traces(browser, "workers-cpu")[0] == before[0] + 1, timeout=15,
          msg="the new sample was not appended")  # fmt: skip
    screenshot(browser, "workers")


def test_runs_page_new_run_form(page, api):
    seed_run(api, "digits-2w")
    browser = page("/runs")
    wait_for_text(browser, "#runs-table", "digits-2w")
    wait_for_text(browser, "#runs-table", "val_accuracy 95 reached in 40.0 s")
    wait_for_text(browser, "#runs-new-benchmark", "digits")

    name = browser.find_element("#runs-new-name")
    name.send_keys("Bad_Name!")
    workers = browser.find_element("#runs-new-workers")
    browser.clear_input(workers)
    workers.send_keys("0")
    browser.find_element("#runs-new-submit").click()
    wait_for_text(browser, "#runs-new-name-error", "DNS label")
    wait_for_text(browser, "#runs-new-workers-error", "greater than or equal to 1")
    screenshot(browser, "runs-field-errors")
    assert [r["name"] for r in api.get_runs()] == ["digits-2w"]

    browser.clear_input(name)
    name.send_keys("fresh-run")
    browser.clear_input(workers)
    workers.send_keys("2")
    browser.find_element("#runs-new-submit").click()
    wait_for_text(browser, "#runs-new-message", "Created fresh-run")
    assert text_of(browser, "#runs-new-name-error") == ""
    wait_for_text(browser, "#runs-table", "fresh-run", timeout=3)  # at once, not at a poll
    assert "fresh-run" in [r["name"] for r in api.get_runs()]
    screenshot(browser, "runs")


def test_the_form_sets_every_field_of_a_run(page, api):
    browser = page("/runs")
    wait_for_text(browser, "#runs-new-benchmark", "digits")
    browser.select_dcc_dropdown("#runs-new-benchmark", value="1a: ResNet-20 on CIFAR-10")
    wait_for_text(browser, "#runs-new-benchmark", "1a")
    browser.find_element("#runs-new-name").send_keys("short-form")
    browser.find_element("#runs-new-synthetic input").click()
    browser.find_element("#runs-new-epochs").send_keys("1")
    browser.find_element("#runs-new-steps").send_keys("20")
    browser.select_dcc_dropdown("#runs-new-aggregation", value="ddp")
    browser.find_element("#runs-new-section-advanced summary").click()
    browser.find_element("#runs-new-seed").send_keys("7")
    settings = browser.find_element("#runs-new-settings")
    settings.send_keys("nope=1")
    browser.find_element("#runs-new-submit").click()
    wait_for_text(browser, "#runs-new-settings-error", "benchmark 1a has no setting 'nope'")
    assert api.get_runs() == []
    browser.clear_input(settings)
    settings.send_keys("lr=0.05\nbatch_size=64")
    browser.find_element("#runs-new-submit").click()
    wait_for_text(browser, "#runs-new-message", "Created short-form")
    [run] = api.get_runs()
    assert (run["benchmark"], run["synthetic"], run["aggregation"]) == ("1a", True, "ddp")
    assert (run["epochs"], run["steps_per_epoch"], run["seed"]) == (1, 20, 7)
    assert run["settings"] == {"lr": 0.05, "batch_size": 64}


def test_a_synthetic_run_shows_no_goal(page, api):
    run = seed_run(api, "synthetic-2w", synthetic=True)
    browser = page("/runs")
    wait_for_text(browser, "#runs-table", "throughput only: 1234.5 samples/s")
    browser = page(f"/runs/{run['id']}")
    wait_for_text(browser, "#run-header", "synthetic-2w")
    wait_for_text(browser, "#run-info", "throughput only")
    wait_for_points(browser, "run-graph-time", at_least=40)
    assert not figure_layout(browser, "run-graph-time").get("shapes")  # no goal line


def test_the_form_says_what_the_backend_enforces(page, api, tmp_path, monkeypatch):
    require_facilities()
    browser = page("/runs")
    wait_for_text(browser, "#runs-new-capabilities", "bandwidth cap: enforced (tc token buckets")
    assert browser.find_element("#runs-new-bandwidth").get_attribute("disabled") is None
    # where no cap can hold, there is no bandwidth to ask for
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ip").symlink_to(shutil.which("ip") or "/usr/sbin/ip")
    monkeypatch.setenv("PATH", str(bin_dir))  # no tc
    browser = page("/runs")
    wait_for_text(browser, "#runs-new-capabilities", "bandwidth cap: unavailable ('tc' not found")
    bandwidth = browser.find_element("#runs-new-bandwidth")
    assert bandwidth.get_attribute("disabled") == "true"
    assert bandwidth.get_attribute("placeholder") == "cannot be enforced here"
    gpu = browser.find_element("#runs-new-gpu input")
    assert gpu.get_attribute("disabled") == "true"  # the local backend has no GPUs


def test_run_details_graphs_logs_result_and_downloads(page, api, downloads):
    run = seed_run(api, "resnet-2w")
    browser = page(f"/runs/{run['id']}")
    wait_for_text(browser, "#run-header", "resnet-2w")
    time_counts = wait_for_points(browser, "run-graph-time", at_least=44)
    assert time_counts == [40, 4]  # train_loss, val_accuracy (the goal metric)
    assert wait_for_points(browser, "run-graph-epoch", at_least=44) == [40, 4]
    goal = [s for s in figure_layout(browser, "run-graph-time")["shapes"] if s.get("y0") == 95]
    assert goal, "the goal is drawn as a line"
    assert wait_for_points(browser, "run-split", at_least=12) == [4, 4, 4]
    for chart in ("run-res-cpu", "run-res-memory", "run-res-net-in", "run-res-net-out"):
        assert len(wait_for_points(browser, chart, at_least=20)) == 2
    wait_for_text(browser, "#run-logs", "[0] rank 0: epoch 1/4 done")
    assert "a warning on stderr" in text_of(browser, "#run-logs")
    wait_for_text(browser, "#run-result", "val_accuracy 95 reached in 40.0 s")
    wait_for_text(browser, "#run-result-table", "time to target 40.0 s")
    assert "compute (rank 0)" in text_of(browser, "#run-result-table")
    wait_for_text(browser, "#run-record-tables", "torch 2.13.0")
    wait_for_text(browser, "#run-info", "FINISHED")
    assert "done after epoch 4" in text_of(browser, "#run-info")
    assert not browser.find_element("#run-stop-box").is_displayed()  # nothing to stop
    assert not browser.find_element("#run-report-box").is_displayed()

    screenshot(browser, "run-details")

    browser.find_element("#run-split-mode label[data-option-index='1']").click()
    until(lambda: len(traces(browser, "run-split") or []) == 9, timeout=15,
          msg=f"no phases: {traces(browser, 'run-split')} {text_of(browser, '#run-metrics-error')}"
          f" {browser.find_element('#run-split-mode').get_attribute('outerHTML')}")  # fmt: skip

    labels = [browser.find_element(f"#run-download-{i}").text for i in range(4)]
    assert labels[1:3] == [
        "Metrics (zip, mlbench-results layout)",
        "Metrics (zip, mlbench 2 layout)",
    ]
    for link, filename in (
        ("#run-download-0", f"run-{run['id']}-metrics.json"),
        ("#run-download-1", "metrics_resnet-2w.zip"),  # named as the original server named it
        ("#run-download-2", f"run-{run['id']}-metrics.zip"),
        ("#run-download-3", f"run-{run['id']}-resources.json"),
    ):
        browser.find_element(link).click()
        target = downloads / filename
        until(lambda t=target: t.exists() and t.stat().st_size > 0, timeout=20,
              msg=f"{filename} was not downloaded")  # fmt: skip
    time.sleep(0.5)  # let the last file be closed
    assert len(json.loads((downloads / f"run-{run['id']}-metrics.json").read_text())["epoch"]) == 4
    archive = zipfile.ZipFile(io.BytesIO((downloads / f"run-{run['id']}-metrics.zip").read_bytes()))
    assert json.loads(archive.read("result.json"))["reached"] is True
    original = zipfile.ZipFile(io.BytesIO((downloads / "metrics_resnet-2w.zip").read_bytes()))
    assert "result.json" not in original.namelist()  # result_<series>.json, <pod>_<series>.json
    resources = json.loads((downloads / f"run-{run['id']}-resources.json").read_text())
    assert set(resources) == {"resnet-2w-w0", "resnet-2w-w1"}


LIMITS = {
    "backend": "local",
    "cpu": {"requested": 0.5, "status": "enforced", "by": "CFS quota 50000 us per 100000 us"},
    "bandwidth": {"requested": 10, "status": "enforced", "by": "tc tbf rate 10 Mbit/s"},
    "network": "a network namespace per rank",
}


def test_the_run_page_and_the_runs_table_say_what_held(page, api):
    run = seed_run(api, "capped", finish=False)
    api.update_run(run["id"], job_metadata={"limits": LIMITS})
    browser = page(f"/runs/{run['id']}")
    wait_for_text(browser, "#run-info", "enforced (tc tbf rate 10 Mbit/s)")
    assert "1 CPU per worker: enforced (CFS quota 50000 us per 100000 us)" in text_of(
        browser, "#run-info"
    )
    assert "a network namespace per rank" in text_of(browser, "#run-info")
    queued = api.create_run("queued", 2, benchmark="digits", oversubscribe=True)
    reason = "waiting for 2 CPUs: 0 of the machine's 2 are free; held by 'capped' (2)"
    api.update_run(queued["id"], job_metadata={"waiting": {"reason": reason}})
    browser = page(f"/runs/{queued['id']}")
    wait_for_text(browser, "#run-info", reason)
    assert "not applied yet" in text_of(browser, "#run-info")
    browser = page("/runs")
    wait_for_text(browser, "#runs-table", "1 CPU enforced, no cap")
    assert "1 CPU, no cap (not applied yet)" in text_of(browser, "#runs-table")


def _allreduce_rows() -> list[dict]:
    rows = []
    for dtype, width in (("float32", 4), ("float16", 2)):
        for elements in (1, 1000, 100000, 500000):
            nbytes = elements * width
            median = 2e-4 + nbytes / 1.15e6
            rows.append({"dtype": dtype, "elements": elements, "bytes": nbytes,
                         "world_size": 2, "repeats": 20, "median_s": median,
                         "p10_s": median * 0.95, "p90_s": median * 1.1, "min_s": median * 0.9,
                         "rank_median_min_s": median * 0.97, "rank_median_max_s": median,
                         "algbw_bytes_per_s": nbytes / median,
                         "busbw_bytes_per_s": nbytes / median, "skipped": None})  # fmt: skip
    return rows


def test_the_0a_page_shows_the_size_table_and_chart_with_the_cap(page, api, downloads):
    run = api.create_run("ar-capped", 2, benchmark="0a", max_bandwidth=10)
    api.update_run(run["id"], state="STARTED")
    api.put_result(run["id"], {"benchmark": "0a", "world_size": 2, "total_time_s": 12.0,
                               "rows": _allreduce_rows(), "bandwidth_cap_mbit_s": 10.0,
                               "busbw_at_largest": {"float32": {"bytes": 2000000,
                                                                "busbw_mbit_s": 9.2,
                                                                "of_cap": 0.92}}})  # fmt: skip
    api.update_run(run["id"], state="FINISHED")
    browser = page(f"/runs/{run['id']}")
    wait_for_text(
        browser, "#run-result", "bus bandwidth 9.2 Mbit/s (float32, cap 10 Mbit/s: 92% of it)"
    )
    wait_for_text(browser, "#run-report-table", "busbw (Gbit/s)")
    table = browser.find_elements("#run-report-table tbody tr")
    assert len(table) == 8  # one row per dtype and size
    assert text_of(browser, "#run-report-table tbody tr").startswith("float32 4 1 ")
    assert wait_for_points(browser, "run-report-chart", at_least=16) == [4, 4, 4, 4]
    shapes = figure_layout(browser, "run-report-chart")["shapes"]
    assert [s["y0"] for s in shapes] == [0.01]  # the 10 Mbit/s cap, in Gbit/s
    assert not browser.find_element("#run-charts-box").is_displayed()  # no empty epoch charts
    assert "{'dtype'" not in text_of(browser, "#run-result")
    screenshot(browser, "run-allreduce")
    browser.find_element("#run-report-0").click()
    target = downloads / f"run-{run['id']}-allreduce.csv"
    until(lambda: target.exists() and target.stat().st_size > 0, timeout=20)
    time.sleep(0.5)
    lines = target.read_text().splitlines()
    assert lines[0].startswith("dtype,bytes,elements,latency_p50_us") and len(lines) == 9


def test_a_failed_run_says_why_with_the_failing_ranks_last_lines(page, api):
    run = seed_run(api, "broken", finish=False)
    api.post_logs(
        run["id"],
        [{"rank": 1, "stream": "stderr", "line": f"frame {i}"} for i in range(30)]
        + [{"rank": 1, "stream": "stderr", "line": "RuntimeError: out of memory"}],
    )
    reason = "rank 1 exited with code 1; the other ranks were stopped"
    api.update_run(run["id"], state="FAILED", job_metadata={"failure": reason})
    browser = page(f"/runs/{run['id']}")
    wait_for_text(browser, "#run-failure", reason)
    wait_for_text(browser, "#run-failure-lines", "RuntimeError: out of memory")
    lines = text_of(browser, "#run-failure-lines").splitlines()
    assert lines[-1] == "RuntimeError: out of memory" and len(lines) == 15
    assert not browser.find_element("#run-stop-box").is_displayed()
    screenshot(browser, "run-failed")


def test_run_details_follow_new_points_and_lines(page, api):
    run = seed_run(api, "going", finish=False)
    browser = page(f"/runs/{run['id']}")
    wait_for_points(browser, "run-graph-time", at_least=44)
    wait_for_text(browser, "#run-logs", "rank 1: epoch 4/4 done")
    now = datetime.now(UTC)
    api.post_metrics([ApiClient.metric("train_loss", 0.01, run_id=run["id"], date=now)])
    api.post_logs(run["id"], [{"rank": 0, "stream": "stdout", "line": "a brand new line"}])
    until(lambda: traces(browser, "run-graph-time") == [41, 4], timeout=15,
          msg=f"new point not appended: {traces(browser, 'run-graph-time')}")  # fmt: skip
    assert traces(browser, "run-graph-epoch")[0] == 41
    wait_for_text(browser, "#run-logs", "a brand new line", timeout=15)


def test_run_details_stop_and_delete_with_confirmation(page, api):
    run = seed_run(api, "doomed", finish=False)
    browser = page(f"/runs/{run['id']}")
    wait_for_text(browser, "#run-info", "STARTED")
    wait_for_text(browser, "#run-story", "Training epoch")
    browser.find_element("#run-stop button").click()
    until(lambda: _alert(browser), timeout=10).accept()
    wait_for_text(browser, "#run-notice", "CANCELLED")
    assert api.get_run(run["id"])["state"] == "CANCELLED"
    until(lambda: not browser.find_element("#run-stop-box").is_displayed(), timeout=15,
          msg="Stop is still offered on a cancelled run")  # fmt: skip

    browser.find_element("#run-delete button").click()
    until(lambda: _alert(browser), timeout=10).accept()
    until(lambda: browser.driver.current_url.endswith("/mlbench/runs"), timeout=15)
    assert [r["name"] for r in api.get_runs()] == []


def _alert(browser):
    try:
        return browser.driver.switch_to.alert
    except Exception:  # noqa: BLE001 - not open yet
        return None


def test_worker_details_page(page, api):
    seed_run(api, "wk-run")
    browser = page("/workers/wk-run-w1")
    wait_for_text(browser, "#worker-info", "Succeeded")
    assert wait_for_points(browser, "worker-graphs", at_least=80) == [20, 21, 20, 20]
    screenshot(browser, "worker-details")


def test_compare_page_speedup_of_three_runs(page, api):
    for workers, seconds in ((1, 100.0), (2, 60.0), (4, 40.0)):
        seed_run(api, f"scale-{workers}w", workers=workers, epochs=2, reach_at=seconds,
                 split={"compute_s": seconds * 0.7, "communication_s": seconds * 0.2 * workers,
                        "data_loading_s": 2.0})  # fmt: skip
    seed_run(api, "not-finished", finish=False, epochs=1)
    browser = page("/compare")
    wait_for_points(browser, "compare-speedup", at_least=6)
    speedup = browser.driver.execute_script(
        "return document.querySelector('#compare-speedup .js-plotly-plot').data[1].y"
    )
    assert speedup == pytest.approx([1.0, 100 / 60, 2.5])
    wait_for_text(browser, "#compare-results", "2.50x")
    efficiency = browser.driver.execute_script(
        "return document.querySelector('#compare-efficiency .js-plotly-plot').data[0].y"
    )
    assert efficiency == pytest.approx([100.0, 100 * 100 / 120, 62.5])
    assert len(browser.find_elements("#compare-runs input[type=checkbox]")) == 3
    assert wait_for_points(browser, "compare-split", at_least=9)
    screenshot(browser, "compare")


def _plot(browser, graph: str, trace: int) -> list:
    return browser.driver.execute_script(
        f"const g = document.querySelector('#{graph} .js-plotly-plot');"
        f"return g && g.data && g.data[{trace}] ? g.data[{trace}].y : null;"
    )


def test_compare_never_pools_full_light_and_synthetic_runs(page, api):
    for workers, full, light, rate in ((1, 100.0, 30.0, 1000.0), (2, 60.0, 45.0, 1500.0)):
        seed_run(api, f"full-{workers}w", workers=workers, epochs=2, reach_at=full)
        seed_run(api, f"light-{workers}w", workers=workers, epochs=2, reach_at=light, light=True)
        seed_run(api, f"synth-{workers}w", workers=workers, epochs=2, synthetic=True,
                 throughput=rate)  # fmt: skip
    browser = page("/compare")
    wait_for_points(browser, "compare-speedup", at_least=4)
    expected = {"full": 100 / 60, "light": 30 / 45, "synth": 1.5}
    for kind in ("light", "synth", "full"):
        _choose_config(browser, kind)
        until(lambda k=kind: _plot(browser, "compare-speedup", 1)
              == pytest.approx([1.0, expected[k]]), timeout=15,
              msg=f"{kind}: {_plot(browser, 'compare-speedup', 1)}")  # fmt: skip
        options = browser.driver.execute_script(
            "return [...document.querySelectorAll('#compare-runs label')].map(l => l.innerText)"
        )
        assert len(options) == 2 and all(o.startswith(kind) for o in options), options
        fixed = text_of(browser, "#compare-fixed")
        assert ("light" in fixed) == (kind == "light") and ("synthetic" in fixed) == (
            kind == "synth"
        )
        apart = text_of(browser, "#compare-apart-table")
        assert apart.count("-1w") == 2 and apart.count("-2w") == 2 and kind + "-" not in apart
        assert "(here " in apart
    screenshot(browser, "compare-configurations")


def _choose_config(browser, kind: str) -> None:
    """Follow the link of a configuration."""
    labels = {"full": "goal full, data real", "light": "goal light, data real",
              "synth": "goal none, data synthetic"}  # fmt: skip
    wanted = f"{labels[kind]} (2 runs)"
    links = until(lambda: browser.find_elements("#compare-config a"), timeout=10)
    texts = [link.text.strip() for link in links]
    assert wanted in texts, texts
    links[texts.index(wanted)].click()
    until(lambda: wanted in text_of(browser, "#compare-config a.current"), timeout=10)


def test_a_deleted_run_says_so_once_and_nothing_is_live(page, browser, live_server):
    browser = page("/runs/999999")
    wait_for_text(browser, "#run-header", "Run 999999 was deleted or never existed")
    assert not browser.find_element("#run-content").is_displayed()
    time.sleep(3)  # a poll or two later: still one message, no error boxes
    assert "Traceback" not in browser.driver.page_source
    assert browser.driver.page_source.count("Not found") == 0
    assert text_of(browser, "#run-error") == ""

    log_in(browser, live_server, None)
    open_page(browser, live_server, "/runs")
    wait_for_text(browser, "#runs-error", "Not logged in")
    assert "Traceback" not in browser.driver.page_source


def test_tags_and_note_are_edited_on_the_run_page(page, api):
    run = seed_run(api, "labelled", tags=["first"])
    browser = page(f"/runs/{run['id']}")
    until(lambda: browser.find_element("#run-tags").get_attribute("value") == "first", timeout=15)
    tags = browser.find_element("#run-tags")
    tags.send_keys(Keys.CONTROL, "a")  # React keeps a value clear() removes
    tags.send_keys("baseline, pr-4")
    browser.find_element("#run-note").send_keys("the reference run")
    browser.find_element("#run-labels-save").click()
    wait_for_text(browser, "#run-labels-message", "Saved.")
    stored = api.get_run(run["id"])
    assert (stored["tags"], stored["note"]) == (["baseline", "pr-4"], "the reference run")
    tags.send_keys(Keys.CONTROL, "a")
    tags.send_keys("fine, " + "x" * 41)
    browser.find_element("#run-labels-save").click()
    wait_for_text(browser, "#run-labels-message", "tags")
    assert api.get_run(run["id"])["tags"] == ["baseline", "pr-4"]  # refused: nothing changed
