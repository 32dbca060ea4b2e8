"""The run page's Stop and Delete buttons (each behind a confirmation)."""

from __future__ import annotations

from dash import Dash, Input, Output, State, ctx, html, no_update

from dashboard.api import access, error_message, href


def register(app: Dash) -> None:
    @app.callback(
        Output("run-notice", "children"),
        Output("run-location", "href"),
        Input("run-stop", "submit_n_clicks"),
        Input("run-delete", "submit_n_clicks"),
        State("run-id", "data"),
        prevent_initial_call=True,
    )
    def act(_stop: int | None, _delete: int | None, run_id: int) -> tuple:
        try:
            with access().client() as client:
                if ctx.triggered_id == "run-delete":
                    client.delete_run(run_id)
                    return no_update, href("/runs")
                run = client.stop_run(run_id)
        except Exception as exc:  # noqa: BLE001 - shown on the page
            return html.Div(error_message(exc), className="error"), no_update
        return html.Div(f"Stop requested: the run is {run['state']}.", className="ok"), no_update
