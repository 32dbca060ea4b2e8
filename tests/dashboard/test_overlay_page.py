"""The Runs table (dash-ag-grid: search, tags, selection) and runs on one chart, in headless
Chromium against the real API."""

from __future__ import annotations

import csv
import io
import time

import pytest
from dash.testing.wait import until

from mlbench_core.cli import main
from tests.dashboard.browser import screenshot, text_of, wait_for_points, wait_for_text
from tests.dashboard.data import seed_run
from tests.dashboard.test_pages import page  # noqa: F401 - the fixture

pytestmark = pytest.mark.timeout(240)

ROWS = "#runs-table .ag-center-cols-container .ag-row"


def _shown(browser) -> list[str]:  # noqa: ANN001
    """The names in the rows the grid shows now."""
    return browser.driver.execute_script(
        f"return [...document.querySelectorAll('{ROWS} [col-id=name]')]"
        ".map(c => c.innerText.trim()).sort()"
    )


def test_tags_set_from_the_cli_appear_and_filter_in_the_runs_table(
    page,  # noqa: F811
    api,
    settings_env,
    live_server,
    admin_token,
    capsys,
):
    seed_run(api, "base-a", tags=["baseline"])
    seed_run(api, "base-b")
    seed_run(api, "other", benchmark="1a", finish=False)
    settings_env.setenv("MLBENCH_API_URL", f"{live_server}/mlbench")
    settings_env.setenv("MLBENCH_API_TOKEN", admin_token)
    assert main(["tag", "base-b", "baseline", "pr-9", "--note", "second try"]) == 0
    assert "base-b: tags baseline, pr-9" in capsys.readouterr().out

    browser = page("/runs")
    wait_for_text(browser, "#runs-table", "pr-9")
    until(lambda: _shown(browser) == ["base-a", "base-b", "other"], timeout=15)
    assert "epoch" in text_of(browser, "#runs-table") or "starting" in text_of(
        browser, "#runs-table"
    )  # the going run's progress
    search = browser.find_element("#runs-search")
    search.send_keys("baseline")
    until(lambda: _shown(browser) == ["base-a", "base-b"], timeout=10, msg=str(_shown(browser)))
    search.send_keys(" pr-9")  # every word must match
    until(lambda: _shown(browser) == ["base-b"], timeout=10, msg=str(_shown(browser)))

    browser = page("/runs?tag=pr-9")
    until(lambda: _shown(browser) == ["base-b"], timeout=15, msg=str(_shown(browser)))
    browser = page("/runs")
    until(lambda: len(_shown(browser)) == 3, timeout=15)
    boxes = browser.find_elements(f"{ROWS} input[type=checkbox]")
    for box in boxes[:2]:
        box.click()
    until(lambda: "2 selected" in text_of(browser, "#runs-selected"), timeout=10)
    link = browser.find_element("#runs-overlay").get_attribute("href")
    assert "/overlay?runs=" in link and link.count(",") == 1
    screenshot(browser, "runs")


def _trace(browser, key: str) -> list:  # noqa: ANN001
    return browser.driver.execute_script(
        "const g = document.querySelector('#overlay-chart .js-plotly-plot');"
        f"return g && g.data ? g.data.map(t => t.{key}) : [];"
    )


def test_three_runs_on_one_chart_with_a_band_for_repeated_seeds(page, api, downloads):  # noqa: F811
    one = seed_run(api, "seed-1", seed=1, epochs=3, loss_scale=1.0)
    two = seed_run(api, "seed-2", seed=2, epochs=3, loss_scale=1.5)
    four = seed_run(api, "four-workers", workers=4, seed=1, epochs=3, loss_scale=0.5)
    ids = f"{one['id']},{two['id']},{four['id']}"
    browser = page(f"/overlay?runs={ids}&metric=train_loss&axis=samples")
    wait_for_points(browser, "overlay-chart", at_least=30)
    names = _trace(browser, "name")
    assert names[2] == "median of 2: seed-1, seed-2" and names[3] == "four-workers", names
    assert _trace(browser, "fill")[1] == "tonexty"  # the band between lowest and highest
    xs = _trace(browser, "x")
    median, low, high = (_trace(browser, "y")[i] for i in (2, 1, 0))
    assert xs[3][:2] == [640, 1280]  # samples seen, from the points' metadata
    assert median[0] == pytest.approx((low[0] + high[0]) / 2)  # two runs: the midpoint
    assert high[0] == pytest.approx(1.5 * low[0])
    head = browser.driver.execute_script(
        "return [...document.querySelectorAll('#overlay-diff-table th')].map(h => h.innerText)"
    )
    assert head[:3] == ["run", "workers", "seed"], head  # exactly what differs, then results
    assert "throughput (samples/s)" in head and "benchmark" not in head
    assert "benchmark" in text_of(browser, "#overlay-fixed")
    screenshot(browser, "overlay")

    browser.find_element("#overlay-group input").click()  # every run a line of its own
    until(lambda: len(_trace(browser, "name")) == 3, timeout=10, msg=str(_trace(browser, "name")))
    browser.find_element("#overlay-series-csv").click()
    target = downloads / "runs-series.csv"
    until(lambda: target.exists() and target.stat().st_size > 0, timeout=20)
    time.sleep(0.5)
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert {r["run"] for r in rows} == {"seed-1", "seed-2", "four-workers"}
    assert set(rows[0]) == {"run_id", "run", "samples", "train_loss"}
    browser.find_element("#overlay-table-csv").click()
    table = downloads / "runs-table.csv"
    until(lambda: table.exists() and table.stat().st_size > 0, timeout=20)
    time.sleep(0.5)
    assert table.read_text().splitlines()[0].startswith("run,workers,seed,state,")


def test_an_overlay_of_a_deleted_run_says_so_and_draws_the_rest(page, api):  # noqa: F811
    kept = seed_run(api, "kept", epochs=2)
    browser = page(f"/overlay?runs={kept['id']},999&axis=epoch")
    wait_for_text(browser, "#overlay-gone", "Run 999: deleted or never existed")
    assert wait_for_points(browser, "overlay-chart", at_least=2) == [2]  # one point an epoch
    assert _trace(browser, "name") == ["kept"]
    assert _trace(browser, "x")[0] == pytest.approx([1, 2], abs=0.01)
    assert "val_accuracy" in text_of(browser, "#overlay-metric")  # the goal's metric
