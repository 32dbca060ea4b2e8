"""Runs (``/runs``): the runs in a sortable, filterable table, and the New run form."""

from __future__ import annotations

from typing import Any

from dash import Dash, Input, Output, State, dash_table, dcc, html, no_update

from dashboard.api import access, error_message, field_errors, guarded, href
from dashboard.components import error_box, link_cell, poller
from dashboard.text import duration, result_summary, show_date
from mlbench_core.api import BadRequest, Conflict, ValidationFailed
from mlbench_core.launch import limits
from mlbench_core.launch.backend import Capabilities

PAGE = {"path": "/runs", "name": "Runs", "title": "mlbench: runs"}

COLUMNS = [
    {"id": "name", "name": "name", "presentation": "markdown"},
    {"id": "benchmark", "name": "benchmark"},
    {"id": "workers", "name": "workers", "type": "numeric"},
    {"id": "limits", "name": "limits per worker"},
    {"id": "state", "name": "state"},
    {"id": "created", "name": "created (UTC)"},
    {"id": "duration", "name": "duration (s)", "type": "numeric"},
    {"id": "result", "name": "result"},
]

# Form inputs: (API field, component suffix).
FIELDS = {
    "name": "name",
    "benchmark": "benchmark",
    "num_workers": "workers",
    "num_cpus": "cpus",
    "max_bandwidth": "bandwidth",
    "backend": "backend",
    "gpu_enabled": "gpu",
    "light_target": "light",
    "oversubscribe": "oversubscribe",
}


def _field(label: str, suffix: str, control: Any, hint: str = "") -> html.Div:
    return html.Div(
        [
            html.Label(label, htmlFor=f"runs-new-{suffix}"),
            control,
            html.Small(hint, className="hint") if hint else None,
            html.Div(id=f"runs-new-{suffix}-error", className="field-error"),
        ],
        className="field",
    )


def new_run_form() -> html.Section:
    return html.Section(
        [
            html.H3("New run"),
            html.Ul(id="runs-new-capabilities", className="hint capabilities"),
            html.Div(
                [
                    _field(
                        "Name", "name",
                        dcc.Input(id="runs-new-name", type="text", placeholder="resnet-4w",
                                  debounce=False),
                        "lower-case letters, digits and '-'",
                    ),
                    _field("Benchmark", "benchmark",
                           dcc.Dropdown(id="runs-new-benchmark", clearable=False)),
                    _field("Workers", "workers",
                           dcc.Input(id="runs-new-workers", type="number", value=2, step=1)),
                    _field("CPUs per worker", "cpus",
                           dcc.Input(id="runs-new-cpus", type="number", value=1, step=0.5)),
                    _field("Bandwidth cap (Mbit/s)", "bandwidth",
                           dcc.Input(id="runs-new-bandwidth", type="number", placeholder="none"),
                           "empty: no cap"),
                    _field("Backend", "backend",
                           dcc.RadioItems(id="runs-new-backend", value="gloo", inline=True,
                                          options=[{"label": " gloo", "value": "gloo"},
                                                   {"label": " nccl", "value": "nccl"}])),
                    _field("GPU", "gpu",
                           dcc.Checklist(id="runs-new-gpu", value=[],
                                         options=[{"label": " use GPUs", "value": "gpu"}])),
                    _field("Target", "light",
                           dcc.Checklist(id="runs-new-light", value=[],
                                         options=[{"label": " light target", "value": "light"}])),
                    _field("Oversubscribe", "oversubscribe",
                           dcc.Checklist(id="runs-new-oversubscribe", value=[],
                                         options=[{"label": " allow", "value": "yes"}]),
                           "run even if the workers ask for more CPUs than the machine has"),
                ],
                className="form-grid",
            ),
            html.Button("Create run", id="runs-new-submit", className="button primary"),
            html.Div(id="runs-new-message", className="form-message"),
        ],
        className="card",
        id="runs-new",
    )  # fmt: skip


def layout(**_query: Any) -> html.Div:
    return html.Div(
        [
            html.H2("Runs"),
            error_box("runs-error"),
            dash_table.DataTable(
                id="runs-table",
                columns=COLUMNS,
                data=[],
                sort_action="native",
                filter_action="native",
                page_size=25,
                markdown_options={"link_target": "_self"},
                style_cell={"textAlign": "left", "padding": "4px 8px"},
                style_header={"fontWeight": "600"},
                style_data_conditional=[
                    {
                        "if": {"filter_query": f'{{state}} = "{state}"', "column_id": "state"},
                        "color": color,
                    }
                    for state, color in (
                        ("FINISHED", "#15803d"),
                        ("FAILED", "#b91c1c"),
                        ("STARTED", "#1d4ed8"),
                        ("CANCELLED", "#a16207"),
                    )
                ],
            ),  # fmt: skip
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


def run_rows(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
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
            "result": result_summary(run.get("result")),
        }
        for run in runs
    ]


def register(app: Dash) -> None:
    @app.callback(
        Output("runs-error", "children"),
        Output("runs-table", "data"),
        Output("runs-empty", "style"),
        Input("runs-interval", "n_intervals"),
        Input("runs-created", "data"),
        State("runs-table", "data"),
    )
    @guarded(outputs=3, error_at=0)
    def refresh(_n: int | None, _created: Any, shown: list | None) -> tuple:
        with access().client() as client:
            rows = run_rows(client.get_runs())
        hidden = {"display": "none"} if rows else {}
        return (rows if rows != shown else no_update, hidden)

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
        default = "digits" if any(s["id"] == "digits" for s in specs) else None
        return options, default or (options[0]["value"] if options else None), None

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
        gpu = [{"label": " use GPUs", "value": "gpu", "disabled": not caps.gpus}]
        over = [{"label": " allow", "value": "yes", "disabled": not caps.admission}]
        lines = [html.Li(line) for line in caps.lines()]
        return lines, bandwidth == "unavailable", placeholder, gpu, over

    errors = [Output(f"runs-new-{suffix}-error", "children") for suffix in FIELDS.values()]

    @app.callback(
        *errors,
        Output("runs-new-message", "children"),
        Output("runs-created", "data"),
        Input("runs-new-submit", "n_clicks"),
        State("runs-new-name", "value"),
        State("runs-new-benchmark", "value"),
        State("runs-new-workers", "value"),
        State("runs-new-cpus", "value"),
        State("runs-new-bandwidth", "value"),
        State("runs-new-backend", "value"),
        State("runs-new-gpu", "value"),
        State("runs-new-light", "value"),
        State("runs-new-oversubscribe", "value"),
        prevent_initial_call=True,
    )
    def create(
        _clicks: int,
        name: str | None,
        benchmark: str | None,
        workers: float | None,
        cpus: float | None,
        bandwidth: float | None,
        backend: str | None,
        gpu: list | None,
        light: list | None,
        oversubscribe: list | None,
    ) -> tuple:
        cleared = [None] * len(FIELDS)
        try:
            with access().client() as client:
                run = client.create_run(
                    (name or "").strip(),
                    workers,  # type: ignore[arg-type] - the API judges it, naming the field
                    benchmark=benchmark,
                    num_cpus=cpus,  # type: ignore[arg-type]
                    max_bandwidth=bandwidth,
                    backend=backend or "gloo",
                    gpu_enabled=bool(gpu),
                    light_target=bool(light),
                    oversubscribe=bool(oversubscribe),
                )
        except (ValidationFailed, Conflict, BadRequest) as exc:
            fields, rest = field_errors(exc)
            shown = [fields.get(field) for field in FIELDS]
            unplaced = [f"{k}: {v}" for k, v in fields.items() if k not in FIELDS]
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
