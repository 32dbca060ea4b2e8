"""The page shown for an unknown path (Dash Pages looks it up by this module's name)."""

from __future__ import annotations

from typing import Any

from dash import Dash, dcc, html

from dashboard.api import href

PAGE = {"path": "/404", "name": "Not found", "title": "mlbench: not found"}


def layout(**_query: Any) -> html.Div:
    return html.Div(
        [
            html.H2("Page not found"),
            html.P(["There is no such page. See the ", dcc.Link("runs", href=href("/runs")), "."]),
        ]
    )


def register(app: Dash) -> None:
    """No callbacks."""
