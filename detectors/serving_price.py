"""The true price of serving: an endpoint's GPU dollars per million tokens it served, against what the same
tokens cost at the price catalog's API price, judged once a day.

Self-hosting pays when the GPUs are busy; an endpoint whose GPUs idle most of the day can cost more per
token than calling the same model's API. Each UTC day closed with both GPU dollars and priced tokens
is judged: `serving_costlier_than_api` (info) fires when the serving price is above the API's, one
incident per day at most (so at most one message a day), and the day after resolves it.

>>> day = ServingPriceDay(serving_usd=96.0, tokens=20_000_000, api_usd=50.0, priced_tokens=20_000_000)
>>> round(day.serving_usd_per_million, 2), round(day.api_usd_per_million, 2)
(4.8, 2.5)
>>> verdicts = judge_day("ml", "chat", 0.0, day, open_since=None, ts=86_405.0)
>>> [(v.kind, v.status, v.severity, round(v.observed, 2), round(v.baseline, 2)) for v in verdicts]
[('serving_costlier_than_api', 'firing', 'info', 4.8, 2.5)]
"""

from __future__ import annotations

from dataclasses import dataclass

from detectors.amounts import usd
from detectors.verdict import Verdict

KIND = "serving_costlier_than_api"
DAY = 86_400.0


@dataclass(frozen=True)
class ServingPriceDay:
    serving_usd: float  # the endpoint's serving GPUs' dollars that day
    tokens: int  # tokens its calls served that day
    api_usd: float  # what its priced calls would have cost at the catalog's API price
    priced_tokens: int  # the tokens of those calls (a model the catalog does not know has no API price)

    @property
    def serving_usd_per_million(self) -> float | None:
        return self.serving_usd / self.tokens * 1e6 if self.tokens else None

    @property
    def api_usd_per_million(self) -> float | None:
        return self.api_usd / self.priced_tokens * 1e6 if self.priced_tokens else None


def judge_day(team: str, endpoint: str, day_start: float, day: ServingPriceDay, open_since: float | None,
              ts: float) -> list[Verdict]:
    """The verdicts for one closed day: the resolve of yesterday's incident, if one is open, and today's, if
    serving cost more per token than the API."""
    verdicts = []
    serving, api = day.serving_usd_per_million, day.api_usd_per_million
    if open_since is not None:
        verdicts.append(_verdict("resolved", team, endpoint, open_since, ts, serving or 0.0, api or 0.0,
                                 f"{team}/{endpoint}: the next day's figures replace this one"))
    if serving is not None and api is not None and serving > api:
        summary = (f"{team}/{endpoint}: its serving GPUs cost {usd(serving)} per million tokens, "
                   f"{serving / api:,.1f}x the API's {usd(api)} for the same model ({usd(day.serving_usd)} of GPUs "
                   f"for {day.tokens / 1e6:,.1f}M tokens that day); scale down, or call the API")
        verdicts.append(_verdict("firing", team, endpoint, day_start, ts, serving, api, summary))
    return verdicts


def _verdict(status: str, team: str, endpoint: str, since: float, ts: float, serving: float, api: float,
             summary: str) -> Verdict:
    return Verdict(kind=KIND, status="firing" if status == "firing" else "resolved", severity="info", ts=ts,
                   team=team, endpoint=endpoint, run_id=None, observed=serving, baseline=api,
                   ratio=serving / api if api else float("inf"), unit="usd_per_million_tokens", summary=summary,
                   since=since)
