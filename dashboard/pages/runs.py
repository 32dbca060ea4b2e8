"""Runs (``/runs``): the runs in a sortable, filterable table, and the New run form."""

from __future__ import annotations

from typing import Any

from dash import Dash, Input, Output, Patch, State, dcc, html, no_update

from dashboard import live
from dashboard.api import access, error_message, field_errors, guarded, href
from dashboard.components import error_box, link_cell, poller
from dashboard.grid import column, grid
from mlbench_core import run_fields
from mlbench_core.api import BadRequest, Conflict, ValidationFailed
from mlbench_core.api.schemas import split_tags
from mlbench_core.launch import limits
from mlbench_core.launch.backend import Capabilities
from mlbench_core.progress import ENDED, progress
from mlbench_core.text import duration, result_summary, show_date

PAGE = {"path": "/runs", "name": "Runs", "title": "mlbench: runs"}

STATES = ("FINISHED", "FAILED", "STARTED", "CANCELLED", "INITIALIZED")
COLUMNS = [
    column("name", "name", link=True, minWidth=190),
    column("benchmark", "benchmark", minWidth=110),
    column("workers", "workers", kind="number", minWidth=100),
    column("limits", "limits per worker", minWidth=170),
    column("state", "state", minWidth=120,
           cellClassRules={f"state-{s.lower()}": f"params.value == '{s}'" for s in STATES}),
    column("progress", "progress", minWidth=170),
    column("created", "created (UTC)", minWidth=170, sort="desc"),
    column("duration", "duration (s)", kind="number", minWidth=110),
    column("result", "result", minWidth=220, tooltipField="result"),
    column("tags", "tags", minWidth=120, tooltipField="note"),
]  # fmt: skip

# The form's inputs: every field a person sets (run_fields.FORM_FIELDS, from RunCreate),
# each as ``runs-new-<suffix>``; types, bounds, labels and hints come from RunCreate.
SUFFIX = {
    "num_workers": "workers",
    "num_cpus": "cpus",
    "max_bandwidth": "bandwidth",
    "image_name": "image",
    "custom_image_command": "command",
    "gpu_enabled": "gpu",
    "light_target": "light",
    "steps_per_epoch": "steps",
}
FIELDS = {field: SUFFIX.get(field, field) for field in run_fields.FORM_FIELDS}
SCHEMA = run_fields.form_schema()
STEP = {"num_cpus": 0.5}
# Checkbox labels (the capabilities callback disables those the backend lacks).
CHECK = {"gpu_enabled": " use GPUs", "oversubscribe": " allow"}
PLACEHOLDER = {
    "max_bandwidth": "none",
    "steps_per_epoch": "a whole pass",
    "settings": "lr=0.05\nbatch_size=64",
    "tags": "baseline, pr-123",
    "note": "why this run, what to look at",
}


def _control(field: str, schema: dict[str, Any]) -> Any:
    """The input of one field, bounded as RunCreate bounds it."""
    ident = f"runs-new-{FIELDS[field]}"
    kind = run_fields.field_kind(schema)
    default = schema.get("default")
    if kind == "boolean":
        label = CHECK.get(field, f" {schema['title'].lower()}")
        return dcc.Checklist(
            id=ident, value=["yes"] if default else [], options=[{"label": label, "value": "yes"}]
        )
    if kind == "object" or schema.get("format") == "multiline":
        return dcc.Textarea(
            id=ident, value="", placeholder=PLACEHOLDER.get(field, ""), className="settings"
        )
    if kind == "array":
        return dcc.Input(id=ident, type="text", value="", placeholder=PLACEHOLDER.get(field, ""))
    if "enum" in schema:
        choices = [c for c in schema["enum"] if c is not None]
        if len(choices) <= 3 and None not in schema["enum"]:
            return dcc.RadioItems(
                id=ident, value=default, inline=True,
                options=[{"label": f" {c}", "value": c} for c in choices],
            )  # fmt: skip
        return dcc.Dropdown(id=ident, value=default, clearable=True,
                            placeholder=run_fields.DEFAULT_SHOWN,
                            options=[{"label": c, "value": c} for c in choices])  # fmt: skip
    if kind in ("integer", "number"):
        # No min/max attributes: the browser would turn a value out of bounds into "no
        # value" before the API could say what is wrong with it; the hint states them.
        step = 1 if kind == "integer" else STEP.get(field, "any")
        optional = "null" in schema["type"]
        placeholder = PLACEHOLDER.get(field, run_fields.DEFAULT_SHOWN) if optional else None
        return dcc.Input(id=ident, type="number", value=default, step=step,
                         placeholder=placeholder)  # fmt: skip
    return dcc.Input(
        id=ident,
        type="text",
        value=default or "",
        maxLength=schema.get("maxLength"),
        placeholder="resnet-4w" if field == "name" else "",
        debounce=False,
    )


def _field(field: str) -> html.Div:
    schema, suffix = SCHEMA[field], FIELDS[field]
    hint = schema.get("description", "") + run_fields.bounds_text(schema)
    return html.Div(
        [
            html.Label(schema["title"], htmlFor=f"runs-new-{suffix}"),
            _control(field, schema),
            html.Small(hint, className="hint") if hint else None,
            html.Div(id=f"runs-new-{suffix}-error", className="field-error"),
        ],
        className="field",
    )


def new_run_form() -> html.Section:
    main = [f for f in FIELDS if "section" not in SCHEMA[f]]
    sections: dict[str, list[str]] = {}
    for field in FIELDS:
        if "section" in SCHEMA[field]:
            sections.setdefault(SCHEMA[field]["section"], []).append(field)
    return html.Section(
        [
            html.H3("New run"),
            html.Ul(id="runs-new-capabilities", className="hint capabilities"),
            html.Div([_field(f) for f in main], className="form-grid"),
            *(
                html.Details(
                    [html.Summary(title), html.Div([_field(f) for f in fields],
                                                   className="form-grid")],
                    id=f"runs-new-section-{title.split()[-1].lower()}",
                )
                for title, fields in sections.items()
            ),
            html.Button("Create run", id="runs-new-submit", className="button primary"),
            html.Div(id="runs-new-message", className="form-message"),
        ],
        className="card",
        id="runs-new",
    )  # fmt: skip


def parse_settings(text: str | None) -> dict[str, str]:
    """``KEY=VALUE`` lines (or comma-separated pairs) of the settings box; ValueError naming
    a line that is not one."""
    pairs = {}
    for item in (text or "").replace(",", "\n").splitlines():
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"needs KEY=VALUE, got {item.strip()!r}")
        pairs[key.strip()] = value.strip()
    return pairs


def form_values(values: dict[str, Any]) -> dict[str, Any]:
    """The form's inputs as RunCreate fields (the API judges them, naming each field)."""
    fields: dict[str, Any] = {}
    for field, value in values.items():
        kind = run_fields.field_kind(SCHEMA[field])
        if kind == "boolean":
            fields[field] = bool(value)
        elif kind == "object":
            fields[field] = parse_settings(value)
        elif kind == "array":
            fields[field] = split_tags(value or "")
        elif isinstance(value, str):
            fields[field] = value.strip() or None
        else:
            fields[field] = value
    if fields.get("settings"):
        fields["settings"] = run_fields.typed_settings(fields.get("benchmark"), fields["settings"])
    return fields


def layout(tag: str | None = None, q: str | None = None, **_query: Any) -> html.Div:
    """``?q=`` or ``?tag=`` start the search with that text."""
    search = q or tag or ""
    return html.Div(
        [
            html.H2("Runs"),
            error_box("runs-error"),
            html.Div(
                [
                    dcc.Input(
                        id="runs-search",
                        type="search",
                        value=search,
                        debounce=False,
                        placeholder="search: name, benchmark, state, tag, limits, result",
                    ),
                    dcc.Link(
                        "Selected runs on one chart",
                        id="runs-overlay",
                        href="",
                        className="button disabled",
                    ),
                    html.Span(id="runs-selected", className="muted"),
                ],
                className="toolbar",
            ),
            grid(
                "runs-table",
                COLUMNS,
                row_id="id",
                selectable=True,
                dashGridOptions={"quickFilterText": search},
            ),
            html.P(
                "No runs yet: create one with the form below.", id="runs-empty", className="muted"
            ),
            new_run_form(),
            dcc.Store(id="runs-created"),
            dcc.Store(id="runs-page", data=0),
            poller("runs-interval"),
        ]
    )


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def run_rows(
    runs: list[dict[str, Any]], where: dict[int, str] | None = None
) -> list[dict[str, Any]]:
    """The table's rows; ``where``: the progress of going runs (phase, epoch, ETA)."""
    where = where or {}
    return [
        {
            "id": run["id"],
            "name": link_cell(run["name"], href(f"/runs/{run['id']}")),
            "benchmark": run.get("benchmark") or run.get("image_name") or "-",
            "workers": run.get("num_workers"),
            "limits": limits.short(run),
            "state": run.get("state"),
            "created": show_date(run.get("created_at")),
            "duration": _seconds(duration(run)),
            "progress": where.get(run["id"]) or _ended(run),
            "result": result_summary(run.get("result")),
            "tags": ", ".join(run.get("tags") or []),
            "note": run.get("note") or "",
        }
        for run in runs
    ]


def _ended(run: dict[str, Any]) -> str:
    return "-" if run.get("state") in ENDED else ""


def progresses(runs: list[dict[str, Any]]) -> dict[int, str]:
    """Where each going run is (queued and why, scheduling; phase, epoch k of n, ETA from
    the newest point of each series of a started run: one request each, concurrently)."""
    waiting = [run for run in runs if run.get("state") == "INITIALIZED"]
    started = [run for run in runs if run.get("state") == "STARTED"]
    api = access()
    newest = live.together(
        *(lambda run=run: live.call(api, "get_run_metrics", run["id"], last_n=1)
          for run in started)
    ) if started else []  # fmt: skip
    where = {run["id"]: progress(run, {}, has_points=False).text() for run in waiting}
    for run, latest in zip(started, newest, strict=True):
        where[run["id"]] = progress(run, latest, has_points=bool(latest)).text()
    return where


def overlay_link(selected: list[dict[str, Any]] | None) -> tuple[str, str, str]:
    """(href, class, count text) of the "Selected runs on one chart" link."""
    ids = [str(row["id"]) for row in selected or []]
    if not ids:
        return "", "button disabled", "select runs to see them on one chart"
    return href(f"/overlay?runs={','.join(ids)}"), "button", f"{len(ids)} selected"


def register(app: Dash) -> None:
    @app.callback(
        Output("runs-error", "children"),
        Output("runs-table", "rowData"),
        Output("runs-empty", "style"),
        Input("runs-interval", "n_intervals"),
        Input("runs-created", "data"),
        State("runs-table", "rowData"),
    )
    @guarded(outputs=3, error_at=0)
    def refresh(_n: int | None, _created: Any, shown: list | None) -> tuple:
        with access().client() as client:
            runs = client.get_runs()
        rows = run_rows(runs, progresses(runs))
        hidden = {"display": "none"} if rows else {}
        return (rows if rows != shown else no_update, hidden)

    @app.callback(
        Output("runs-table", "dashGridOptions"),
        Input("runs-search", "value"),
        prevent_initial_call=True,
    )
    def search(text: str | None) -> Patch:
        options = Patch()
        options["quickFilterText"] = text or ""
        return options

    @app.callback(
        Output("runs-overlay", "href"),
        Output("runs-overlay", "className"),
        Output("runs-selected", "children"),
        Input("runs-table", "selectedRows"),
    )
    def selected(rows: list[dict[str, Any]] | None) -> tuple[str, str, str]:
        return overlay_link(rows)

    @app.callback(
        Output("runs-new-benchmark", "options"),
        Output("runs-new-benchmark", "value"),
        Output("runs-new-message", "children", allow_duplicate=True),
        Input("runs-page", "data"),
        prevent_initial_call="initial_duplicate",
    )
    def benchmarks(_page: int) -> tuple:
        try:
            with access().client() as client:
                specs = client.get_benchmarks()
        except Exception as exc:  # noqa: BLE001 - shown on the page
            return [], None, error_message(exc)
        options = [{"label": f"{s['id']}: {s['title']}", "value": s["id"]} for s in specs]
        wanted = run_fields.FORM_DEFAULTS["benchmark"]
        default = wanted if any(s["id"] == wanted for s in specs) else None
        return options, default or (options[0]["value"] if options else None), None

    @app.callback(
        Output("runs-new-aggregation", "options"),
        Output("runs-new-aggregation", "value"),
        Input("runs-new-benchmark", "value"),
        State("runs-new-aggregation", "value"),
    )
    def aggregations(benchmark: str | None, chosen: str | None) -> tuple:
        """The aggregations the chosen benchmark offers (empty: its default)."""
        try:
            with access().client() as client:
                specs = {s["id"]: s for s in client.get_benchmarks()}
        except Exception:  # noqa: BLE001 - the benchmarks callback shows the failure
            return no_update, no_update
        spec = specs.get(benchmark or "") or {}
        offered = list(spec.get("aggregations") or [])
        default = spec.get("aggregation")
        options = [
            {"label": f"{name}{' (default)' if name == default else ''}", "value": name}
            for name in offered
        ]
        return options, chosen if chosen in offered else None

    @app.callback(
        Output("runs-new-capabilities", "children"),
        Output("runs-new-bandwidth", "disabled"),
        Output("runs-new-bandwidth", "placeholder"),
        Output("runs-new-gpu", "options"),
        Output("runs-new-oversubscribe", "options"),
        Input("runs-page", "data"),
    )
    def capabilities(_page: int) -> tuple:
        """What the backend enforces here; no bandwidth field where a cap cannot hold."""
        try:
            with access().client() as client:
                caps = Capabilities.model_validate(client.get_backend())
        except Exception as exc:  # noqa: BLE001 - shown on the page
            return [html.Li(error_message(exc))], False, "none", no_update, no_update
        bandwidth = caps.bandwidth.status
        placeholder = {
            "enforced": "none",
            "requested": "none (requested, not verified)",
            "unavailable": "cannot be enforced here",
        }[bandwidth]
        gpu = [{"label": CHECK["gpu_enabled"], "value": "yes", "disabled": not caps.gpus}]
        over = [{"label": CHECK["oversubscribe"], "value": "yes", "disabled": not caps.admission}]
        lines = [html.Li(line) for line in caps.lines()]
        return lines, bandwidth == "unavailable", placeholder, gpu, over

    errors = [Output(f"runs-new-{suffix}-error", "children") for suffix in FIELDS.values()]

    @app.callback(
        *errors,
        Output("runs-new-message", "children"),
        Output("runs-created", "data"),
        Input("runs-new-submit", "n_clicks"),
        *(State(f"runs-new-{suffix}", "value") for suffix in FIELDS.values()),
        prevent_initial_call=True,
    )
    def create(_clicks: int, *values: Any) -> tuple:
        cleared = [None] * len(FIELDS)
        try:
            fields = form_values(dict(zip(FIELDS, values, strict=True)))
        except ValueError as exc:
            shown = [str(exc) if f == "settings" else None for f in FIELDS]
            return (*shown, html.Span("Please fix the fields marked.", className="error-text"),
                    no_update)  # fmt: skip
        try:
            with access().client() as client:
                run = client.create_run(fields.pop("name") or "", fields.pop("num_workers"),
                                        **fields)  # fmt: skip
        except (ValidationFailed, Conflict, BadRequest) as exc:
            found, rest = field_errors(exc)
            shown = [found.get(field) for field in FIELDS]
            unplaced = [f"{k}: {v}" for k, v in found.items() if k not in FIELDS]
            message = "; ".join(filter(None, [rest, *unplaced])) or "Please fix the fields marked."
            return (*shown, html.Span(message, className="error-text"), no_update)
        except Exception as exc:  # noqa: BLE001 - shown on the page, never as a traceback
            return (*cleared, html.Span(error_message(exc), className="error-text"), no_update)
        created = html.Span(
            [
                "Created ",
                dcc.Link(run["name"], href=href(f"/runs/{run['id']}")),
                f" ({run['state']}).",
            ],
            className="ok-text",
        )
        return (*cleared, created, run["id"])
