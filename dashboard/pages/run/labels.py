"""The run page's tags and note: shown, edited and saved (``PATCH /api/runs/{id}``)."""

from __future__ import annotations

from typing import Any

from dash import Dash, Input, Output, State, dcc, html, no_update

from dashboard.api import access, error_message, field_errors
from dashboard.components import section
from mlbench_core.api import ValidationFailed
from mlbench_core.api.schemas import split_tags


def part() -> html.Section:
    """Tags (one box, separated by commas or blanks) and the note, with a Save button."""
    return section(
        "Tags and note",
        html.Div(
            [
                html.Div(
                    [
                        html.Label("Tags", htmlFor="run-tags"),
                        dcc.Input(
                            id="run-tags", type="text", value="", placeholder="baseline, pr-123"
                        ),
                    ],
                    className="field",
                ),
                html.Div(
                    [
                        html.Label("Note", htmlFor="run-note"),
                        dcc.Textarea(
                            id="run-note",
                            value="",
                            className="settings",
                            placeholder="why this run, what to look at",
                        ),
                    ],
                    className="field",
                ),
            ],  # fmt: skip
            className="form-grid",
        ),
        html.Button("Save", id="run-labels-save", className="button"),
        html.Span(id="run-labels-message", className="form-message"),
        component_id="run-labels",
    )


def shown(run: dict[str, Any]) -> tuple[str, str]:
    """The run's tags and note as the boxes show them."""
    return ", ".join(run.get("tags") or []), run.get("note") or ""


def register(app: Dash) -> None:
    @app.callback(
        Output("run-tags", "value"),
        Output("run-note", "value"),
        Input("run-id", "data"),
    )
    def load(run_id: int) -> tuple:
        """Filled once, when the page opens: a poll never overwrites what is being typed."""
        try:
            with access().client() as client:
                return shown(client.get_run(run_id))
        except Exception:  # noqa: BLE001 - the status part says what is wrong with the run
            return no_update, no_update

    @app.callback(
        Output("run-labels-message", "children"),
        Output("run-tags", "value", allow_duplicate=True),
        Output("run-note", "value", allow_duplicate=True),
        Input("run-labels-save", "n_clicks"),
        State("run-id", "data"),
        State("run-tags", "value"),
        State("run-note", "value"),
        prevent_initial_call=True,
    )
    def save(_clicks: int, run_id: int, tags: str | None, note: str | None) -> tuple:
        try:
            with access().client() as client:
                run = client.update_run(run_id, tags=split_tags(tags or ""), note=note or "")
        except ValidationFailed as exc:
            found, rest = field_errors(exc)
            message = "; ".join(f"{k}: {v}" for k, v in found.items()) or rest
            return html.Span(message, className="error-text"), no_update, no_update
        except Exception as exc:  # noqa: BLE001 - shown on the page
            return html.Span(error_message(exc), className="error-text"), no_update, no_update
        return (html.Span("Saved.", className="ok-text"), *shown(run))
