"""The run page's logs: the newest lines of all ranks or one, followed as they arrive."""

from __future__ import annotations

from typing import Any

from dash import Dash, Input, Output, Patch, State, html, no_update

from dashboard.api import access, guarded
from mlbench_core.api import NotFound

LINES = 2000  # lines shown (the newest)
PAGE = 5000  # new lines read per poll at most


def line(entry: dict[str, Any], rank: int | None) -> html.Span:
    prefix = "" if rank is not None else f"[{entry['rank']}] "
    return html.Span(f"{prefix}{entry['line']}\n", className=f"log-{entry['stream']}")


def register(app: Dash) -> None:
    @app.callback(
        Output("run-logs-error", "children"),
        Output("run-logs", "children"),
        Output("run-log-feed", "data"),
        Input("run-interval", "n_intervals"),
        Input("run-log-rank", "value"),
        State("run-id", "data"),
        State("run-log-feed", "data"),
    )
    @guarded(outputs=3, error_at=0, quiet=(NotFound,))  # the status says
    def logs(_n: int | None, rank: Any, run_id: int, feed: Any) -> tuple:
        rank_arg = None if rank in (None, "all") else int(rank)
        with access().client() as client:
            if feed and feed.get("run") == run_id and feed.get("rank") == rank:
                page = client.get_logs(run_id, rank=rank_arg, after=feed["next"], limit=PAGE)
                if not page["lines"]:
                    return no_update, no_update
                lines = [line(x, rank_arg) for x in page["lines"]][-LINES:]
                patch = Patch()
                overflow = feed["shown"] + len(lines) - LINES
                for _ in range(max(0, overflow)):
                    del patch[0]
                patch.extend(lines)
                shown = min(LINES, feed["shown"] + len(lines))
                return patch, {**feed, "next": page["next"], "shown": shown}
            page = client.get_logs(run_id, rank=rank_arg, limit=LINES, tail=True)
            lines = [line(x, rank_arg) for x in page["lines"]]
            after = page["next"]
        if not lines:
            lines = [html.Span("No output yet.", className="muted")]
            shown = 0
        else:
            shown = len(lines)
        return lines, {"run": run_id, "rank": rank, "next": after, "shown": shown}

    app.clientside_callback(
        """
        function(children) {
            setTimeout(function() {
                var el = document.getElementById('run-logs');
                if (el) { el.scrollTop = el.scrollHeight; }
            }, 0);
            return window.dash_clientside.no_update;
        }
        """,
        Output("run-scrolled", "data"),
        Input("run-logs", "children"),
    )
