"""Download links of the dashboard: files fetched from the API with the caller's token.

A plain link cannot carry the API token of a standalone dashboard, and a Dash callback would
hold a whole file in memory and in base64; these Flask routes stream the API's answer instead.
Errors come back as one line of text with the API's status, never as a traceback.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import flask
import requests

from dashboard import overlay
from dashboard.api import access, error_message
from mlbench_core.api import ApiError, ApiUnavailable
from mlbench_core.benchmarks.allreduce_report import Report, is_report, report

__all__ = ["register"]

CHUNK = 64 * 1024


def _attachment(filename: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{filename}"'}


def _failure(exc: Exception) -> flask.Response:
    status = exc.status if isinstance(exc, ApiError) and exc.status >= 400 else 502
    return flask.Response(error_message(exc) + "\n", status=status, mimetype="text/plain")


def _stream(
    path: str, params: dict[str, Any], filename: str | None, mimetype: str
) -> flask.Response:
    """The API's answer to ``GET path`` passed through as an attachment, chunk by chunk,
    named ``filename`` (None: as the API names it)."""
    client = access().client(timeout=300)
    try:
        answer = client.stream(path, params=params)
    except requests.RequestException as exc:  # one the client does not type (a bad URL)
        client.close()
        url = client.base_url + path
        return _failure(ApiUnavailable(f"GET {url}: cannot reach the API ({exc})"))
    except ApiError as exc:
        client.close()
        return _failure(exc)

    def body() -> Iterator[bytes]:
        try:
            yield from answer.iter_content(CHUNK)
        finally:
            answer.close()
            client.close()

    if filename is None:
        named = answer.headers.get("Content-Disposition") or 'attachment; filename="download"'
        headers = {"Content-Disposition": named}
    else:
        headers = _attachment(filename)
    return flask.Response(body(), mimetype=mimetype, headers=headers)


def run_metrics_json(run_id: int) -> flask.Response:
    """Every point of every series of the run, as the API returns them."""
    return _stream(
        f"/metrics/{run_id}",
        {"metric_type": "run"},
        f"run-{run_id}-metrics.json",
        "application/json",
    )


def run_metrics_zip(run_id: int) -> flask.Response:
    """The API's zip in mlbench 2's layout: one JSON file per series and ``result.json``."""
    return _stream(
        f"/metrics/{run_id}",
        {"metric_type": "run", "format": "zip", "layout": "mlbench2"},
        f"run-{run_id}-metrics.zip",
        "application/zip",
    )


def run_results_zip(run_id: int) -> flask.Response:
    """The API's zip in the original mlbench's layout (mlbench-results'):
    ``result_<series>.json``, ``<pod>_<series>.json``, ``official_result.txt``; named as the
    API names it (``metrics_<run name>.zip``)."""
    return _stream(
        f"/metrics/{run_id}",
        {"metric_type": "run", "format": "zip", "layout": "mlbench"},
        None,
        "application/zip",
    )


def run_resources_json(run_id: int) -> flask.Response:
    """Every series of every worker of the run: ``{pod: {series: [{date, value}]}}``."""
    try:
        with access().client(timeout=300) as client:
            pods = client.get_pods(run_id=run_id)
            body = {pod["name"]: client.get_pod_metrics(pod["name"]) for pod in pods}
    except Exception as exc:  # noqa: BLE001 - answered as a message
        return _failure(exc)
    return flask.Response(
        json.dumps(body),
        mimetype="application/json",
        headers=_attachment(f"run-{run_id}-resources.json"),
    )


def _report(run_id: int) -> Report | flask.Response:
    try:
        with access().client() as client:
            result = client.get_run(run_id).get("result")
    except Exception as exc:  # noqa: BLE001 - answered as a message
        return _failure(exc)
    if not is_report(result):
        return flask.Response(
            f"run {run_id} has no all-reduce report\n", status=404, mimetype="text/plain"
        )
    return report(result)


def run_report_csv(run_id: int) -> flask.Response:
    """An all-reduce run's report: one CSV row per data type and size."""
    shown = _report(run_id)
    if isinstance(shown, flask.Response):
        return shown
    return flask.Response(
        shown.to_csv(), mimetype="text/csv", headers=_attachment(f"run-{run_id}-allreduce.csv")
    )


def run_report_json(run_id: int) -> flask.Response:
    """An all-reduce run's report as JSON: units, the cap, the rows."""
    shown = _report(run_id)
    if isinstance(shown, flask.Response):
        return shown
    return flask.Response(
        json.dumps(shown.as_dict(), indent=1),
        mimetype="application/json",
        headers=_attachment(f"run-{run_id}-allreduce.json"),
    )


def worker_metrics_zip(name: str) -> flask.Response:
    """The API's zip of one worker's series."""
    return _stream(
        f"/metrics/{quote(name, safe='')}",
        {"format": "zip", "layout": "mlbench2"},
        f"{name}-metrics.zip",
        "application/zip",
    )


def _overlay_args() -> tuple[list[dict[str, Any]], str, str]:
    """The runs, metric and axis an overlay download names (``?runs=1,2&metric=&axis=``)."""
    args = flask.request.args
    axis = args.get("axis") or "time"
    if axis not in overlay.AXES:
        raise ValueError(f"axis: one of {', '.join(overlay.AXES)}, got {axis!r}")
    metric = args.get("metric") or ""
    if not metric:
        raise ValueError("metric: which series to export")
    ids = overlay.run_ids(args.get("runs"))
    if not ids:
        raise ValueError("runs: run ids separated by commas, e.g. runs=1,2,3")
    runs, gone = overlay.fetch(ids)
    if gone:
        raise LookupError(f"runs: {', '.join(gone)} deleted or never existed")
    return runs, metric, axis


def _csv(build: Any, filename: str) -> flask.Response:
    try:
        body = build(*_overlay_args())
    except (ValueError, LookupError) as exc:
        status = 404 if isinstance(exc, LookupError) else 400
        return flask.Response(f"{exc}\n", status=status, mimetype="text/plain")
    except Exception as exc:  # noqa: BLE001 - answered as a message
        return _failure(exc)
    return flask.Response(body, mimetype="text/csv", headers=_attachment(filename))


def overlay_table_csv() -> flask.Response:
    """The overlay's table: what differs between the runs, and their results."""

    def build(runs: list[dict[str, Any]], metric: str, axis: str) -> str:
        columns, rows, _fixed = overlay.differences(runs, metric, overlay.drawn(runs, metric, axis))
        return overlay.table_csv(columns, rows)

    return _csv(build, "runs-table.csv")


def overlay_series_csv() -> flask.Response:
    """Every point the overlay draws: run, x on the chosen axis, value."""

    def build(runs: list[dict[str, Any]], metric: str, axis: str) -> str:
        return overlay.series_csv(overlay.drawn(runs, metric, axis), metric, axis)

    return _csv(build, "runs-series.csv")


def register(server: flask.Flask) -> None:
    """Add the download routes (under ``/download/``) to the dashboard's Flask server."""
    server.add_url_rule(
        "/download/runs/<int:run_id>/metrics.json", "run_metrics_json", run_metrics_json
    )
    server.add_url_rule(
        "/download/runs/<int:run_id>/metrics.zip", "run_metrics_zip", run_metrics_zip
    )
    server.add_url_rule(
        "/download/runs/<int:run_id>/metrics-results.zip", "run_results_zip", run_results_zip
    )
    server.add_url_rule(
        "/download/runs/<int:run_id>/resources.json", "run_resources_json", run_resources_json
    )
    server.add_url_rule(
        "/download/workers/<name>/metrics.zip", "worker_metrics_zip", worker_metrics_zip
    )
    server.add_url_rule("/download/overlay/table.csv", "overlay_table_csv", overlay_table_csv)
    server.add_url_rule("/download/overlay/series.csv", "overlay_series_csv", overlay_series_csv)
    for form, view in (("csv", run_report_csv), ("json", run_report_json)):
        server.add_url_rule(f"/download/runs/<int:run_id>/allreduce.{form}", view.__name__, view)


def run_links(run_id: int) -> list[tuple[str, str]]:
    """(label, path) of the run's downloads, paths relative to the dashboard."""
    return [
        ("Metrics (JSON)", f"/download/runs/{run_id}/metrics.json"),
        ("Metrics (zip, mlbench-results layout)", f"/download/runs/{run_id}/metrics-results.zip"),
        ("Metrics (zip, mlbench 2 layout)", f"/download/runs/{run_id}/metrics.zip"),
        ("Workers' resource usage (JSON)", f"/download/runs/{run_id}/resources.json"),
    ]


def report_links(run_id: int) -> list[tuple[str, str]]:
    """(label, path) of an all-reduce run's report downloads."""
    return [
        ("Report (CSV)", f"/download/runs/{run_id}/allreduce.csv"),
        ("Report (JSON)", f"/download/runs/{run_id}/allreduce.json"),
    ]
