"""Actions, not only alerts: the typed command an alert calls for (CONTRACT.md, `spendwatch.actions`).

| alert | command |
| --- | --- |
| `budget_threshold` at 100% or more, firing, on a team-wide budget | `block_team` |
| the same, resolved (the period rolled over) | `unblock_team` |
| `budget_threshold` at 100% or more, firing, on an endpoint's budget | `throttle_endpoint` |
| `runaway_training` firing (spent or projected past its limit) | `stop_run` |
| `gpu_idle` firing on a training run (it looks hung) | `stop_run` |
| `model_tier_violation` firing, on a team-wide tier policy | `restrict_models` (`models`: its allowed models) |

Only for teams that opted in (`SPENDWATCH_ACTIONS`), and dry-run unless the team says otherwise.
A command's `action_id` is derived from the alert's and the action, so the same alert raised
twice (a worker re-processing after a crash, or `spendwatch replay`) makes the same command,
and an executor that already ran it skips it.

>>> alert = {"alert_id": "a1", "kind": "budget_threshold", "status": "firing", "threshold_pct": 100,
...          "team": "search", "endpoint": None, "summary": "search: budget spent", "ts": "2026-12-01T10:00:00Z"}
>>> [(c["action"], c["dry_run"]) for c in commands_for(alert, dry_run=True)]
[('block_team', True)]
"""

from __future__ import annotations

import hashlib
from typing import Any

from alerting.notifier import Alert

Command = dict[str, Any]


def commands_for(alert: Alert, dry_run: bool) -> list[Command]:
    """The commands an alert calls for (none for most)."""
    kind, status = alert.get("kind"), alert.get("status")
    actions: list[str] = []
    if kind == "budget_threshold" and (alert.get("threshold_pct") or 0) >= 100:
        if alert.get("endpoint"):
            actions = ["throttle_endpoint"] if status == "firing" else []
        else:
            actions = ["block_team" if status == "firing" else "unblock_team"]
    elif kind in ("runaway_training", "gpu_idle") and status == "firing" and alert.get("run_id"):
        actions = ["stop_run"]
    elif kind == "model_tier_violation" and status == "firing" and alert.get("allowed_models"):
        actions = ["restrict_models"]
    return [command(alert, action, dry_run) for action in actions]


def command(alert: Alert, action: str, dry_run: bool) -> Command:
    out: Command = {
        "action_id": hashlib.sha256(f"{alert['alert_id']}|{action}".encode()).hexdigest()[:32],
        "action": action, "team": alert["team"], "reason": alert.get("summary", ""), "alert_id": alert["alert_id"],
        "dry_run": dry_run, "ts": alert["ts"],
    }
    if alert.get("endpoint"):
        out["endpoint"] = alert["endpoint"]
    if alert.get("run_id"):
        out["run_id"] = alert["run_id"]
    if action == "restrict_models":
        out["models"] = list(alert["allowed_models"])
    return out


PAST = {"block_team": "blocked", "unblock_team": "unblocked", "stop_run": "stopped", "throttle_endpoint": "throttled",
        "restrict_models": "restricted"}
UNDO_HOW = {"block_team": "unblock it in LiteLLM (POST /team/unblock), or wait for the period to roll over",
            "unblock_team": "block it again in LiteLLM (POST /team/block)",
            "stop_run": "resume the Job: kubectl patch job <name> -p '{\"spec\":{\"suspend\":false}}'",
            "throttle_endpoint": "lift the throttle where the webhook applied it",
            "restrict_models": "set the team's models back in LiteLLM (POST /team/update with its former list)"}


def describe(command: Command, done: bool, error: str | None = None) -> str:
    """What was done (or would have been, or failed) and how to undo it, for the Slack message.

    >>> describe({"action": "block_team", "team": "ads", "reason": "budget spent", "dry_run": True}, False)
    'Dry run: would have blocked team ads. Why: budget spent.'
    """
    target = {"stop_run": f"training run {command.get('run_id')} of team {command['team']}",
              "throttle_endpoint": f"{command['team']}/{command.get('endpoint')}",
              "restrict_models": f"team {command['team']} to models {', '.join(command.get('models') or [])}"}.get(
        command["action"], f"team {command['team']}")
    if command["dry_run"]:
        return f"Dry run: would have {PAST[command['action']]} {target}. Why: {command['reason']}."
    if not done:
        return f"Could not act: {target} was not {PAST[command['action']]} ({error}). Why: {command['reason']}."
    undo = UNDO_HOW[command["action"]]
    return f"Done: {PAST[command['action']]} {target}. Why: {command['reason']}. To undo: {undo}."
