"""The worker's HTTP API (CONTRACT.md, "HTTP"): spend, runs, alerts, health and metrics.

`/spend?team=T` is routed by Faust to the worker that owns T's partition, so any worker
answers for any team.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from faust.web import Request, Response, View

from streams.app import Pipeline
from streams.ledger import TEAM_ACCOUNT, run_view
from streams.windows import figures, total_figures

#: How many recent alerts `/alerts` shows.
RECENT_ALERTS = 200


def spend_view(ledger: dict[str, Any], team: str, endpoint: str | None, window_s: int) -> dict[str, Any] | None:
    """CONTRACT's spend object for a team (endpoint None) or one of its endpoints; None when unseen."""
    account = ledger["accounts"].get(TEAM_ACCOUNT if endpoint is None else endpoint)
    if account is None:
        return None
    return {
        "team": team,
        "endpoint": endpoint,
        "windows": [figures(row, window_s) for row in account["windows"]],
        "total": total_figures(account, window_s),
    }


def attach(pipeline: Pipeline) -> None:
    app, ledgers, window_s = pipeline.app, pipeline.ledgers, pipeline.settings.window_seconds
    pipeline.app.recent_alerts = deque(maxlen=RECENT_ALERTS)  # type: ignore[attr-defined]

    @app.page("/spend")
    class Spend(View):
        async def get(self, request: Request) -> Response:
            team = request.query.get("team")
            if team is None:
                teams = [{"team": name, "total": total_figures(ledger["accounts"][TEAM_ACCOUNT], window_s)}
                         for name, ledger in sorted(ledgers.items()) if TEAM_ACCOUNT in ledger["accounts"]]
                return self.json({"teams": teams})
            return await self.team_spend(request, team)

        @app.table_route(table=ledgers, query_param="team")
        async def team_spend(self, request: Request, team: str) -> Response:
            endpoint = request.query.get("endpoint")
            ledger = ledgers.get(team)
            view = spend_view(ledger, team, endpoint, window_s) if ledger else None
            if view is None:
                return self.json({"error": f"no spend seen for team={team!r} endpoint={endpoint!r}"}, status=404)
            return self.json(view)

    @app.page("/runs/{run_id}")
    class Runs(View):
        async def get(self, request: Request, run_id: str) -> Response:
            for team, ledger in ledgers.items():
                run = ledger["runs"].get(run_id)
                if run is not None:
                    return self.json(run_view(run, team, pipeline.policy))
            return self.json({"error": f"no run {run_id!r} seen"}, status=404)

    @app.page("/alerts")
    class Alerts(View):
        async def get(self, request: Request) -> Response:
            return self.json({"alerts": list(app.recent_alerts)})  # type: ignore[attr-defined]

    @app.page("/healthz")
    class Health(View):
        async def get(self, request: Request) -> Response:
            return self.json({"status": "ok"})

    @app.page("/metrics")
    class MetricsView(View):
        async def get(self, request: Request) -> Response:
            return self.bytes(pipeline.metrics.exposition(), content_type="text/plain; version=0.0.4")
