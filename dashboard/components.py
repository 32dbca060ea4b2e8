"""Layout pieces every page uses."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from dash import dcc, html

from dashboard.api import config

GRAPH_CONFIG = {"displaylogo": False}


def error_box(component_id: str) -> html.Div:
    """Where a page's failures are shown (hidden while empty)."""
    return html.Div(id=component_id, className="error", role="alert")


def poller(component_id: str, *, slower: int = 1) -> dcc.Interval:
    """The page's clock: a poll every ``poll_ms`` (times ``slower``)."""
    return dcc.Interval(id=component_id, interval=config().poll_ms * slower)


def graph(component_id: str, height: int = 260) -> dcc.Graph:
    return dcc.Graph(
        id=component_id, config=GRAPH_CONFIG, style={"height": f"{height}px"}, className="graph"
    )


def state_badge(state: str | None) -> html.Span:
    state = state or "-"
    return html.Span(state, className=f"state state-{state.lower()}")


def facts(items: Sequence[tuple[str, Any]]) -> html.Dl:
    """Label / value pairs."""
    children: list[Any] = []
    for label, value in items:
        children += [html.Dt(label), html.Dd(value if value not in (None, "") else "-")]
    return html.Dl(children, className="facts")


def json_block(value: Any, empty: str) -> html.Pre | html.P:
    """``value`` as indented JSON, or ``empty`` when there is none."""
    if value in (None, {}, ""):
        return html.P(empty, className="muted")
    if isinstance(value, str):
        return html.Pre(value, className="json")
    return html.Pre(json.dumps(value, indent=2, sort_keys=True, default=str), className="json")


def section(title: str, *children: Any, component_id: str | None = None) -> html.Section:
    attrs = {"id": component_id} if component_id else {}
    return html.Section([html.H3(title), *children], className="card", **attrs)


def picker(label: str, control: Any, *, narrow: bool = False) -> html.Div:
    """A labelled control of a page's choices (the label names the control's id)."""
    ident = getattr(control, "id", None)
    return html.Div(
        [html.Label(label, htmlFor=ident) if ident else html.Label(label), control],
        className="picker narrow" if narrow else "picker",
    )


def link_cell(text: str, url: str) -> str:
    """A table's markdown cell linking to ``url``."""
    safe = str(text).replace("[", "(").replace("]", ")")
    return f"[{safe}]({url})"
