"""The worker's Prometheus metrics, in a registry of its own (one per app, so tests can run several)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.events = Counter("spendwatch_events", "Input events by topic and result "
                              "(accepted, rejected, duplicate, replayed; skipped: spans without GenAI usage)",
                              ["topic", "result"], registry=r)
        self.ingest_requests = Counter("spendwatch_ingest_requests", "POST /ingest/litellm requests by result "
                                       "(accepted; refused whole: unauthorized, too_large, not_json, too_many, "
                                       "disabled)", ["result"], registry=r)
        self.dead_letters = Counter("spendwatch_dead_letters", "Inputs sent to the dead-letter topic, by reason",
                                    ["reason"], registry=r)
        self.unpriced = Counter("spendwatch_unpriced_events", "Usage events whose model has no catalog price",
                                registry=r)
        self.late = Counter("spendwatch_late_events", "Events too late for their window (still in totals)",
                            registry=r)
        self.out_of_order = Counter("spendwatch_out_of_order_events", "Events that arrived behind the watermark and "
                                    "were applied after newer ones of their team", registry=r)
        self.watermark = Gauge("spendwatch_watermark_seconds", "Event time every input partition has passed, per "
                               "deltas partition (-Inf: waiting for a report; +Inf: every input partition idle)",
                               ["partition"], registry=r)
        self.teams_over_endpoint_limit = Gauge(
            "spendwatch_teams_over_endpoint_limit", "Teams with more endpoints than SPENDWATCH_MAX_ENDPOINTS_PER_TEAM",
            registry=r)
        self.pending = Gauge("spendwatch_pending_events", "Events taken in and waiting for the watermark", registry=r)
        self.deltas = Counter("spendwatch_ledger_deltas", "Per-team deltas applied to the ledger table", registry=r)
        self.batches = Counter("spendwatch_ingest_batches", "Micro-batches taken from the input topics", registry=r)
        self.alerts = Counter("spendwatch_alerts", "Alerts raised, by kind and status", ["kind", "status"], registry=r)
        self.deliveries = Counter("spendwatch_deliveries", "Alert deliveries by sink and result (delivered, failed)",
                                  ["sink", "result"], registry=r)
        self.silenced = Counter("spendwatch_alerts_silenced", "Alerts a silence held back (raised and recorded, not "
                                "sent), by kind", ["kind"], registry=r)
        self.retries = Counter("spendwatch_delivery_retries", "Delivery attempts retried, by sink", ["sink"],
                               registry=r)
        self.windows = Counter("spendwatch_windows_evaluated", "Windows judged by the spike detectors", registry=r)
        self.lag = Gauge("spendwatch_consumer_lag", "Messages behind the end of each assigned partition",
                         ["topic", "partition"], registry=r)
        self.assigned = Gauge("spendwatch_assigned_partitions", "Partitions this worker owns, by topic", ["topic"],
                              registry=r)
        self.assigned_topics: set[str] = set()
        self.dedup_ids = Gauge("spendwatch_dedup_ids", "event_ids remembered for de-duplication", registry=r)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
