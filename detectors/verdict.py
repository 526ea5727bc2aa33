"""What a detector says: a plain record, turned into an Alert by the caller (detectors know no sinks)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

Status = Literal["firing", "resolved"]
Severity = Literal["critical", "error", "warning", "info"]


@dataclass(frozen=True, slots=True)
class Verdict:
    kind: str  # flash_spike, runaway_training, budget_threshold or budget_forecast (CONTRACT.md, alert kinds)
    status: Status
    severity: Severity
    ts: float  # event time at which the evidence was complete
    team: str
    endpoint: str | None
    run_id: str | None
    observed: float
    baseline: float
    ratio: float
    unit: str
    summary: str
    since: float  # event time the incident began
    window_start: float | None = None
    window_s: int | None = None
    # flash_spike only (detectors/attribution.py): what kind of jump, and what carries it.
    cause: str | None = None
    contributors: list[dict[str, Any]] | None = None
    cause_figures: dict[str, float | None] | None = None  # on firing: the ratios that name the cause
    # What else tells this incident from another on the same subject (a budget and its threshold).
    incident: str | None = None
    details: dict[str, Any] | None = None  # further alert fields of the kind (budget alerts: CONTRACT.md)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
