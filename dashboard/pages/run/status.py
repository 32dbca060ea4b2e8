"""The run page's story: its name and state, where it is (phase, epoch, ETA), why it failed
with the failing rank's last lines, its facts, the all-reduce report of a 0a run, and the
result and reproducibility record as tables (raw JSON one click away). A deleted run (or an
id that never was one) shows that, once, and nothing live."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Any

from dash import Dash, Input, Output, State, dcc, html, no_update
from plotly.utils import PlotlyJSONEncoder

from dashboard import figures, live
from dashboard.api import access, guarded, href
from dashboard.components import GRAPH_CONFIG, facts, state_badge
from dashboard.downloads import report_links
from mlbench_core import run_fields
from mlbench_core.api import ApiClient, NotFound
from mlbench_core.benchmarks.allreduce_report import Report, is_report, report
from mlbench_core.launch import limits
from mlbench_core.progress import EPOCH, VALIDATING, progress
from mlbench_core.result_view import record_sections, result_rows
from mlbench_core.text import (
    TERMINAL,
    duration,
    parse_date,
    result_summary,
    show_date,
    show_seconds,
)

STOPPABLE = ("INITIALIZED", "STARTED")
SETTLED_AFTER_S = 60  # a run ended this long ago gets nothing more (late log lines included)
FAILING_LINES = 15  # of the failing rank's log, under the reason
HIDDEN, SHOWN = {"display": "none"}, {}
RANK = re.compile(r"\brank (\d+)\b")


def _info(run: dict[str, Any], where: str) -> html.Dl:
    meta = run.get("job_metadata") or {}
    warnings = meta.get("warnings")
    return facts(
        [
            ("state", state_badge(run.get("state"))),
            ("progress", where),
            ("benchmark", run.get("benchmark") or run.get("image_name")),
            ("workers", str(run.get("num_workers"))),
            *limits.rows(run),
            ("backend", f"{run.get('backend')}{' + GPU' if run.get('gpu_enabled') else ''}"),
            ("goal", run_fields.goal_label(run)),
            *run_fields.choices(run),
            ("created (UTC)", show_date(run.get("created_at"))),
            ("started (UTC)", show_date(run.get("started_at"))),
            ("finished (UTC)", show_date(run.get("finished_at"))),
            ("duration", show_seconds(duration(run))),
            ("DAG run", run.get("job_id")),
            ("warnings", "; ".join(map(str, warnings)) if isinstance(warnings, list) else warnings),
        ]
    )


def _raw(value: Any) -> html.Details:
    text = value if isinstance(value, str) else json.dumps(value, indent=2, sort_keys=True)
    return html.Details([html.Summary("raw JSON"), html.Pre(text, className="json")])


def _rows_table(rows: list[tuple[str, str]], ident: str | None = None) -> html.Table:
    attrs = {"id": ident} if ident else {}
    body = [html.Tr([html.Th(label), html.Td(text)]) for label, text in rows]
    return html.Table(html.Tbody(body), className="table fields", **attrs)


def _result(run: dict[str, Any]) -> list[Any]:
    result = run.get("result")
    if result in (None, {}, ""):
        waiting = "The run ended without a result." if run.get("state") in TERMINAL else (
            "No result yet: rank 0 records it when the run ends."
        )  # fmt: skip
        return [html.P(waiting, className="muted")]
    return [
        html.P(result_summary(result), className="summary"),
        _rows_table(result_rows(result), "run-result-table"),
        _raw(result),
    ]


def _record(record: Any) -> list[Any]:
    if record in (None, {}, ""):
        return [
            html.P(
                "No record yet: rank 0 writes it (versions, hardware, seed, hyperparameters, "
                "data) when training starts.",
                className="muted",
            )
        ]
    sections = [
        html.Div([html.H4(title), _rows_table(rows)], className="record-part")
        for title, rows in record_sections(record)
    ]
    return [html.Div(sections, className="grid two", id="run-record-tables"), _raw(record)]


def report_view(run_id: int, shown: Report) -> list[Any]:
    """The 0a report: the chart, the table (one row per dtype and size), the downloads."""
    columns = shown.columns()
    head = html.Thead(html.Tr([html.Th(c.title) for c in columns]))
    body = html.Tbody([html.Tr([html.Td(cell) for cell in shown.cells(r)]) for r in shown.rows])
    cap = (
        f"Capped at {shown.cap_gbit_s:g} Gbit/s per rank's link (dashed line)."
        if shown.cap_gbit_s is not None
        else "No bandwidth cap."
    )
    links = [
        html.A(label, href=href(path), className="button", download="", id=f"run-report-{i}")
        for i, (label, path) in enumerate(report_links(run_id))
    ]
    return [
        html.P(
            f"{cap} Bus bandwidth = algbw x 2(n-1)/n (nccl-tests' definition); latency "
            "p10/p50/p90 over the repetitions, each as long as its slowest rank; 'ranks "
            "min/max': the ranks' own p50s. 1 Gbit/s = 125 MB/s.",
            className="muted",
        ),
        dcc.Graph(
            figure=figures.allreduce(shown),
            id="run-report-chart",
            config=GRAPH_CONFIG,
            className="graph",
        ),
        html.Div(
            html.Table([head, body], className="table", id="run-report-table"),
            className="scroll",
        ),
        html.Div(links, className="actions"),
    ]


def _failing_rank(client: ApiClient, run: dict[str, Any], reason: str) -> int | None:
    pods = client.get_pods(run_id=run["id"])
    failed = sorted(
        p["rank"] for p in pods if p.get("phase") == "Failed" and p.get("rank") is not None
    )
    if failed:
        return failed[0]
    found = RANK.search(reason)
    return int(found.group(1)) if found else None


def _story(client: ApiClient, run: dict[str, Any], where: str) -> list[Any]:
    """What the user must see first: why it failed (and how the failing rank's output
    ended), why it waits, or where it is."""
    state = run.get("state")
    meta = run.get("job_metadata") or {}
    if state == "FAILED":
        reason = str(meta.get("failure") or "no reason was recorded")
        parts: list[Any] = [html.H4("Why it failed"), html.Pre(reason, className="reason")]
        rank = _failing_rank(client, run, reason)
        if rank is not None:
            page = client.get_logs(run["id"], rank=rank, limit=FAILING_LINES, tail=True)
            if page["lines"]:
                text = "\n".join(x["line"] for x in page["lines"])
                parts += [
                    html.H4(f"The last lines of rank {rank}"),
                    html.Pre(text, className="logs", id="run-failure-lines"),
                ]
        return [html.Div(parts, className="story failed", id="run-failure")]
    if state == "CANCELLED":
        return [html.Div(f"Stopped ({where}).", className="story cancelled")]
    if state in STOPPABLE:
        return [html.Div(where.capitalize(), className="story going", id="run-progress")]
    return []


def _gone(run_id: int) -> tuple:
    header = html.H2(f"Run {run_id} was deleted or never existed")
    note = html.P(
        ["Nothing to show here. ", dcc.Link("All runs", href=href("/runs"))], id="run-gone"
    )
    return header, [note], None, HIDDEN, None, None, [], None, HIDDEN, HIDDEN, HIDDEN, True


def register(app: Dash) -> None:
    @app.callback(
        Output("run-error", "children"),
        Output("run-header", "children"),
        Output("run-story", "children"),
        Output("run-info", "children"),
        Output("run-stop-box", "style"),
        Output("run-result", "children"),
        Output("run-record", "children"),
        Output("run-log-rank", "options"),
        Output("run-report", "children"),
        Output("run-report-box", "style"),
        Output("run-charts-box", "style"),
        Output("run-content", "style"),
        Output("run-interval", "disabled"),
        Output("run-status-seen", "data"),
        Input("run-interval", "n_intervals"),
        State("run-id", "data"),
        State("run-status-seen", "data"),
    )
    @guarded(outputs=14, error_at=0)
    def status(_n: int | None, run_id: int, seen: list[str] | None) -> tuple:
        """The parts afresh, those unchanged since the last poll left alone (redrawing them
        would reset what the user has opened or selected in them)."""
        parts = _parts(run_id)
        digests = [_digest(part) for part in parts]
        if seen and len(seen) == len(digests):
            parts = tuple(
                no_update if old == new else part
                for part, old, new in zip(parts, seen, digests, strict=True)
            )
        return (*parts, digests)


def settled(run: dict[str, Any], now: datetime | None = None) -> bool:
    """Whether the run ended long enough ago that polling it would read nothing new (the
    page's clock is then stopped: an old run's page costs one read)."""
    ended = parse_date(run.get("finished_at")) if run.get("state") in TERMINAL else None
    if ended is None:
        return False
    return ((now or datetime.now(UTC)) - ended).total_seconds() > SETTLED_AFTER_S


def _digest(value: Any) -> str:
    text = json.dumps(value, cls=PlotlyJSONEncoder, sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()


def _parts(run_id: int) -> tuple:
    """Every output of the status callback but its error box and digests."""
    api = access()
    try:
        run, marks = live.together(
            lambda: live.call(api, "get_run", run_id),
            lambda: live.call(api, "get_run_metrics", run_id, metric_filter=EPOCH),
        )
    except NotFound:
        return _gone(run_id)
    with api.client() as client:
        latest = client.get_run_metrics(run_id, last_n=1)
        marks[VALIDATING] = latest.get(VALIDATING, [])
        where = progress(run, marks, has_points=bool(latest)).text()
        story = _story(client, run, where)
    header = html.H2([run["name"], " ", state_badge(run["state"])])
    ranks = [{"label": "all ranks", "value": "all"}] + [
        {"label": f"rank {r}", "value": r} for r in range(int(run.get("num_workers") or 0))
    ]
    result = run.get("result")
    zero_a = is_report(result) or run.get("benchmark") == "0a"
    shown = report_view(run_id, report(result)) if is_report(result) else [
        html.P("The report appears when the run has measured every size.", className="muted")
    ]  # fmt: skip
    return (
        header, story, _info(run, where),
        SHOWN if run["state"] in STOPPABLE else HIDDEN,
        _result(run), _record(run.get("record")), ranks,
        shown, SHOWN if zero_a else HIDDEN, HIDDEN if zero_a else SHOWN,
        SHOWN, settled(run),
    )  # fmt: skip
