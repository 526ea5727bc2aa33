"""Issue "LiteLLM as it really runs": `/spend?team=T` lists the team's endpoints with their totals."""

from __future__ import annotations

from streams.state.ledger import TEAM_ACCOUNT, account_for, new_ledger, spend_view
from streams.state.windows import add_usage


def add(ledger, endpoint, ts, cost):
    accounts = [account_for(ledger, endpoint), account_for(ledger, TEAM_ACCOUNT)]
    add_usage(accounts, ts=ts, prompt=10, completion=1, cost=cost, unpriced=0, window_s=60, windows_kept=3,
              late_grace_s=120)


def test_a_teams_view_lists_its_endpoints_with_their_totals_largest_first():
    """Before: a user had to know an endpoint's name to ask for it."""
    ledger = new_ledger()
    add(ledger, "chat", 100.0, 1.0)
    add(ledger, "cart", 110.0, 3.0)
    add(ledger, "chat", 170.0, 1.0)
    view = spend_view(ledger, "search", None, 60)
    assert view is not None and {"team", "endpoint", "windows", "total"} <= view.keys()
    assert view["total"]["cost_usd"] == 5.0
    assert [(e["endpoint"], e["total"]["cost_usd"], e["total"]["requests"]) for e in view["endpoints"]] == \
        [("cart", 3.0, 1), ("chat", 2.0, 2)]
    assert view["endpoints"][1]["total"] == spend_view(ledger, "search", "chat", 60)["total"]
    assert "endpoints" not in spend_view(ledger, "search", "chat", 60)
