"""The mlbench dashboard (Dash), reading only through the REST API: see :mod:`dashboard.app`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dash import Dash

__all__ = ["create_app"]


def create_app(*args: Any, **kwargs: Any) -> Dash:
    """See :func:`dashboard.app.create_app` (imported on first use: Dash is heavy)."""
    from dashboard.app import create_app as build

    return build(*args, **kwargs)
