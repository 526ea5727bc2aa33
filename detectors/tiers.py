"""Model tiers: which tier a model is in, which tiers a team or endpoint may use, and each call outside them.

A tier is a list of glob patterns over model names (`SPENDWATCH_MODEL_TIERS`). A dated variant
belongs to its model's tier: `gpt-4o-2024-08-06` is matched as itself and as `gpt-4o`. Where
several patterns match, the most specific wins: an exact name over any glob, then the glob with
the most literal characters, so `gpt-4o-mini` in `economy` beats `gpt-4o*` in `premium`. A model
no pattern matches is in tier `default`.

The policy (`SPENDWATCH_TIER_POLICY`) allows tiers per team, or per team and endpoint (the
endpoint's entry wins over its team's); a team or endpoint with no entry is unrestricted.

`TierViolations` sees every call of one team in release order. The first call outside policy for
an (endpoint, model) opens an incident and fires at once: a policy breach needs no baseline and
no second call to be sure. Later calls add to its calls and dollars, which the resolve carries
when the pair has been quiet for `quiet_s`.

>>> catalog = TierCatalog({"premium": ["gpt-4o", "claude-*-opus*"], "economy": ["gpt-4o-mini"]})
>>> [catalog.tier_of(m) for m in ("gpt-4o-2024-08-06", "gpt-4o-mini-2024-07-18", "claude-3-opus-20240229", "o1")]
['premium', 'economy', 'premium', 'default']
>>> policy = TierPolicy([("support", None, ("economy",)), ("support", "escalations", ("economy", "premium"))])
>>> sorted(policy.allowed("support", "chat")), sorted(policy.allowed("support", "escalations"))
(['economy'], ['economy', 'premium'])
>>> policy.allowed("ads", "x") is None  # no entry: unrestricted
True
>>> watch = TierViolations("support", catalog, policy, quiet_s=3600, state={})
>>> watch.observe(100.0, "chat", "gpt-4o", 0.02).status, watch.observe(160.0, "chat", "gpt-4o", 0.03)
('firing', None)
>>> [(v.status, v.details["calls"], round(v.observed, 2)) for v in watch.advance(160.0 + 3600)]
[('resolved', 2, 0.05)]
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from fnmatch import fnmatchcase
from functools import lru_cache
from typing import Any

from detectors.verdict import Status, Verdict

DEFAULT_TIER = "default"
KIND = "model_tier_violation"
#: A release date or tag at the end of a model name: -2024-08-06, -20240229, @20241022, -0125, -latest, -preview.
_DATED = re.compile(r"(?:[-@](?:\d{4}-\d{2}-\d{2}|\d{8}|\d{4}|latest|preview))+$")


def undated(model: str) -> str:
    """The model a dated variant belongs to.

    >>> undated("gpt-4o-2024-08-06"), undated("claude-3-5-sonnet@20241022"), undated("gpt-4-0125-preview")
    ('gpt-4o', 'claude-3-5-sonnet', 'gpt-4')
    """
    return _DATED.sub("", model) or model


def _specificity(pattern: str) -> tuple[int, int]:
    """Exact names first, then globs by how many literal characters they hold."""
    glob = any(ch in pattern for ch in "*?[")
    return (0 if glob else 1, sum(1 for ch in pattern if ch not in "*?[]"))


class TierCatalog:
    """Model name -> tier, from `SPENDWATCH_MODEL_TIERS`."""

    def __init__(self, tiers: Mapping[str, Sequence[str]]) -> None:
        # Most specific first, so the first match is the one that wins.
        self.patterns = sorted(((pattern, tier) for tier, patterns in tiers.items() for pattern in patterns),
                               key=lambda item: _specificity(item[0]), reverse=True)
        self.tier_of = lru_cache(maxsize=10_000)(self._tier_of)

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def _tier_of(self, model: str) -> str:
        names = (model, undated(model))
        for pattern, tier in self.patterns:
            if any(fnmatchcase(name, pattern) for name in names):
                return tier
        return DEFAULT_TIER

    def patterns_of(self, tiers: Iterable[str]) -> list[str]:
        """The patterns that name the models of `tiers` (for a gateway's allowed-models list)."""
        wanted = set(tiers)
        return sorted({pattern for pattern, tier in self.patterns if tier in wanted})


class TierPolicy:
    """Which tiers a team, or an endpoint of a team, may use; None: unrestricted."""

    def __init__(self, entries: Iterable[tuple[str, str | None, Sequence[str]]]) -> None:
        self.entries = {(team, endpoint): frozenset(allow) for team, endpoint, allow in entries}
        self.teams = {team for team, _ in self.entries}

    def __bool__(self) -> bool:
        return bool(self.entries)

    def allowed(self, team: str, endpoint: str) -> frozenset[str] | None:
        if team not in self.teams:
            return None
        found = self.entries.get((team, endpoint))
        return found if found is not None else self.entries.get((team, None))

    def enforceable_on_team(self, team: str, endpoint: str) -> bool:
        """Whether the team's own entry governs this endpoint and lists models a gateway can hold its keys to.

        An endpoint's entry is narrower than a team's keys, and tier `default` (whatever no pattern names)
        cannot be listed: a gateway is told neither."""
        allowed = self.entries.get((team, None))
        return (team, endpoint) not in self.entries and allowed is not None and DEFAULT_TIER not in allowed


class TierViolations:
    """Every call of one team outside its tier policy, as one incident per (endpoint, model).

    `state` is the team's dict in the ledger, written in place: `{"by_tier": {tier: [calls, usd]},
    "open": {"endpoint\\x1fmodel": [since, last, calls, usd, tier]}}`.
    """

    def __init__(self, team: str, catalog: TierCatalog, policy: TierPolicy, quiet_s: float,
                 state: dict[str, Any]) -> None:
        self.team, self.catalog, self.policy, self.quiet_s = team, catalog, policy, quiet_s
        self.by_tier: dict[str, list[float]] = state.setdefault("by_tier", {})
        self.open: dict[str, list[Any]] = state.setdefault("open", {})

    def observe(self, ts: float, endpoint: str, model: str, cost_usd: float) -> Verdict | None:
        """Count one call into its tier; a firing verdict when it opens an incident outside policy."""
        tier = self.catalog.tier_of(model)
        tally = self.by_tier.get(tier)
        if tally is None:
            self.by_tier[tier] = [1, cost_usd]
        else:
            tally[0] += 1
            tally[1] += cost_usd
        allowed = self.policy.allowed(self.team, endpoint)
        if allowed is None or tier in allowed:
            return None
        key = f"{endpoint}\x1f{model}"
        incident = self.open.get(key)
        if incident is not None:
            incident[1] = max(incident[1], ts)
            incident[2] += 1
            incident[3] += cost_usd
            return None
        self.open[key] = [ts, ts, 1, cost_usd, tier]
        return self._verdict("firing", ts, endpoint, model, self.open[key], allowed)

    def advance(self, ts: float) -> list[Verdict]:
        """Resolve the incidents quiet for `quiet_s` by event time `ts`."""
        if not self.open:
            return []
        done = [key for key, incident in self.open.items() if ts - incident[1] >= self.quiet_s]
        verdicts = []
        for key in sorted(done):
            endpoint, model = key.split("\x1f", 1)
            incident = self.open.pop(key)
            verdicts.append(self._verdict("resolved", ts, endpoint, model, incident,
                                          self.policy.allowed(self.team, endpoint) or frozenset()))
        return verdicts

    def _verdict(self, status: Status, ts: float, endpoint: str, model: str, incident: list[Any],
                 allowed: frozenset[str]) -> Verdict:
        since, _last, calls, usd, tier = incident
        allow = ", ".join(sorted(allowed)) or "none"
        if status == "firing":
            summary = (f"{self.team}/{endpoint} called {model} (tier {tier}), outside its allowed tiers ({allow})")
        else:
            summary = (f"{self.team}/{endpoint}: no call to {model} (tier {tier}) for {self.quiet_s / 60:.0f} min; "
                       f"{calls} call{'s' if calls != 1 else ''}, ${usd:,.2f} outside policy in all")
        details: dict[str, Any] = {"model": model, "tier": tier, "calls": calls, "allowed_tiers": sorted(allowed)}
        if self.policy.enforceable_on_team(self.team, endpoint):
            # What a gateway can hold the team's keys to (the restrict_models command, alerting/actions.py).
            details["allowed_models"] = self.catalog.patterns_of(allowed)
        return Verdict(kind=KIND, status=status, severity="warning", ts=ts, team=self.team, endpoint=endpoint,
                       run_id=None, observed=usd, baseline=0.0, ratio=math.inf, unit="usd", summary=summary,
                       since=since, incident=model, details=details)
