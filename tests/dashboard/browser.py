"""Helpers of the browser tests: log in, open a page, wait for drawn charts, screenshots."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from dash.testing.wait import until
from selenium.common.exceptions import StaleElementReferenceException

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
WIDTH = 1400

_TRACES = """
const g = document.querySelector('#' + arguments[0] + ' .js-plotly-plot');
if (!g || !g.data) { return null; }
return g.data.map(t => (t.x || []).length);
"""


def log_in(browser: Any, server: str, token: str | None) -> None:
    """Set (or, with None, drop) the Airflow UI's login cookie for ``server``."""
    browser.driver.get(f"{server}/mlbench/api/")
    browser.driver.delete_all_cookies()
    if token is not None:
        browser.driver.add_cookie({"name": "_token", "value": token, "path": "/"})


def open_page(browser: Any, server: str, path: str) -> None:
    browser.wait_for_page(f"{server}/mlbench{path}", timeout=30)


def traces(browser: Any, graph_id: str) -> list[int] | None:
    """Points per trace of a drawn chart (None while it is not drawn)."""
    return browser.driver.execute_script(_TRACES, graph_id)


def wait_for_points(browser: Any, graph_id: str, at_least: int = 1, timeout: float = 30) -> list:
    """Wait until the chart has drawn ``at_least`` points in all; its points per trace."""
    until(
        lambda: sum(traces(browser, graph_id) or [0]) >= at_least,
        timeout=timeout,
        msg=f"#{graph_id} drew no {at_least} points: {traces(browser, graph_id)}",
    )
    return traces(browser, graph_id)


def figure_layout(browser: Any, graph_id: str) -> dict:
    return browser.driver.execute_script(
        "const g = document.querySelector('#' + arguments[0] + ' .js-plotly-plot');"
        "return g ? JSON.parse(JSON.stringify(g.layout)) : null;",
        graph_id,
    )


def text_of(browser: Any, selector: str) -> str:
    """The text of the first element ``selector`` finds ('' when none); read again when a
    poll replaced the element meanwhile."""
    for _ in range(5):
        found = browser.find_elements(selector)
        try:
            return found[0].text if found else ""
        except StaleElementReferenceException:
            continue
    return ""


def wait_for_text(browser: Any, selector: str, text: str, timeout: float = 30) -> None:
    until(
        lambda: text in text_of(browser, selector),
        timeout=timeout,
        msg=f"{selector} never showed {text!r}; it shows {text_of(browser, selector)!r}",
    )


def screenshot(browser: Any, name: str) -> Path:
    """The whole page, from its top, as ``docs/screenshots/<name>.png``."""
    driver = browser.driver
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    height, chrome = driver.execute_script(
        "window.scrollTo(0, 0);"
        "return [Math.max(document.body.scrollHeight, document.documentElement.scrollHeight),"
        " window.outerHeight - window.innerHeight];"
    )
    driver.set_window_size(WIDTH, min(max(int(height), 700), 4000) + int(chrome) + 16)
    time.sleep(0.8)  # charts follow the new size
    driver.execute_script("window.scrollTo(0, 0);")
    path = SCREENSHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    driver.set_window_size(WIDTH, 1000)
    return path
