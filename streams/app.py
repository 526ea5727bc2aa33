"""The Faust app: topics and tables, built from Settings. Agents and views attach in their modules.

Two stages, both Faust agents:

    ai.token-usage ─┐
    ai.gpu-metrics ─┼─► ingest (micro-batches) ──► <app>-team-deltas (keyed by team) ──► ledger ──► tables
    ai.training-runs┘        └─► spendwatch.dead-letter        + progress reports

`ingest` pays Faust's per-message cost once per micro-batch and forwards each team's rows
(streams/delta_codec.py), then reports every input partition's progress to every deltas
partition (streams/watermarks.py); `ledger` owns the tables, co-partitioned with the deltas
topic, and applies rows in event-time order once the watermark has passed them.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import faust
from aiokafka.partitioner import DefaultPartitioner

from streams.codecs import register_codecs
from streams.consumer import install as install_consumer
from streams.dedup import EventIdIndex
from streams.detection import RuleBook
from streams.intake import GPU, RUNS, USAGE, kind_of_source
from streams.ledger import WindowPolicy
from streams.ledger_store import LedgerStage, LedgerStore
from streams.liveness import Liveness
from streams.watermarks import ProgressTracker
from streams.metrics import Metrics
from streams.kafka_security import aiokafka_options, faust_credentials
from streams.producer import bootstrap_servers
from streams.recovery import recover_to_true_ends
from streams.settings import Settings


def shorten_fetch_wait(max_wait_ms: int) -> None:
    """Make Faust's consumers ask the broker to answer a fetch within `max_wait_ms`.

    Faust hard-codes fetch_max_wait_ms=1500 for its consumer. A broker that does not answer
    a waiting fetch as soon as data arrives (the embedded Tansu does not, measured in
    `make bench`) then holds every hop of the pipeline up to that long, and an alert crosses
    four hops (input, deltas, alerts, sink queue). A short wait costs a few empty fetches a
    second per consumer.
    """
    from faust.transport.drivers import aiokafka as faust_aiokafka

    thread = faust_aiokafka.AIOKafkaConsumerThread
    original = getattr(thread, "_spendwatch_original_create", thread._create_worker_consumer)

    def create_worker_consumer(self: Any, transport: Any) -> Any:
        consumer = original(self, transport)
        consumer._fetch_max_wait_ms = max_wait_ms  # read by aiokafka when the consumer starts
        return consumer

    thread._spendwatch_original_create = original
    thread._create_worker_consumer = create_worker_consumer


def faust_options(settings: Settings, broker_url: str) -> dict[str, Any]:
    """Faust's configuration; `env={}` so Faust's own unprefixed variables cannot override ours."""
    options: dict[str, Any] = dict(
        broker=broker_url,
        env={},
        store=settings.store,
        datadir=settings.data_dir,
        key_serializer="utf8",
        value_serializer="orjson",
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=max(1.0, settings.session_timeout_s / 5),
        broker_commit_interval=1.0,
        consumer_auto_offset_reset="earliest",
        web_bind=settings.http_host,
        web_port=settings.http_port,
        web_host=settings.http_host,
        web_transport=f"tcp://{settings.http_host}:{settings.http_port}",
        canonical_url=settings.base_url,
        table_cleanup_interval=60.0,
        # No standby replicas: a moved partition is rebuilt from its changelog, and the router maps
        # each table partition to its one active owner.
        table_standby_replicas=0,
        # Everything we produce is bounded by max_message_bytes (streams/delta_codec.py, RecordStore); the
        # request limit leaves room for headers and the record's key.
        producer_max_request_size=settings.max_message_bytes + 131_072,
    )
    credentials = faust_credentials(settings)
    if credentials is not None:
        options["broker_credentials"] = credentials
    return options


def table(app: faust.App, name: str, partitions: int, help: str) -> Any:
    """A table written while processing a message, so its changelog lands in that message's partition."""
    return app.Table(name, default=None, partitions=partitions, help=help)


@dataclass
class Pipeline:
    """Everything the agents and views share: the app, its topics and tables, and settings."""

    settings: Settings
    app: faust.App
    metrics: Metrics
    policy: WindowPolicy
    ids: EventIdIndex
    kind_of_topic: dict[str, str]
    inputs: Any = None
    deltas: Any = None
    dead_letter: Any = None
    alerts: Any = None
    ledgers: Any = None  # the Faust table (bytes values)
    store: Any = None  # LedgerStore over it
    progress: Any = None  # ProgressTracker: how far this worker's ingest got per input partition
    stage: Any = None  # LedgerStage: the store and each deltas partition's watermark
    rules: Any = None
    deliveries: Any = None
    pending: Any = None
    liveness: Liveness = field(default_factory=Liveness)
    recent_alerts: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=RECENT_ALERTS))
    lagging: set[str] = field(default_factory=set)
    teams_over_limit: set[str] = field(default_factory=set)  # teams logged for having too many endpoints  # agents whose input has lag, from the lag timer

    @property
    def deltas_topic_name(self) -> str:
        return f"{self.settings.app_id}-team-deltas"

    def partition_of(self, team: str) -> int:
        """The deltas partition (and so the table partition) of a team: Kafka's default key partitioner."""
        every = list(range(self.settings.partitions))
        return int(_partitioner(team.encode(), every, every))


_partitioner = DefaultPartitioner()
#: How many recent alerts `/alerts` shows.
RECENT_ALERTS = 200


def create_pipeline(settings: Settings, broker_url: str) -> Pipeline:
    """Build the app, declare topics and tables, and attach the agents and HTTP views."""
    register_codecs()
    shorten_fetch_wait(settings.fetch_max_wait_ms)
    recover_to_true_ends(bootstrap_servers(broker_url), aiokafka_options(settings))
    app = faust.App(settings.app_id, **faust_options(settings, broker_url))
    install_consumer(app)
    pipeline = Pipeline(
        settings=settings,
        app=app,
        metrics=Metrics(),
        policy=WindowPolicy.from_settings(settings),
        ids=EventIdIndex(settings.dedup_horizon_seconds),
        kind_of_topic={settings.usage_topic: USAGE, settings.gpu_topic: GPU, settings.runs_topic: RUNS},
    )
    pipeline.rules = RuleBook(settings)
    raw = dict(key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
    # Keys are read raw: a key the codec cannot decode would crash the agent, and producers' keys mean nothing here.
    pipeline.inputs = app.topic(settings.usage_topic, settings.gpu_topic, settings.runs_topic, **raw)
    pipeline.deltas = app.topic(pipeline.deltas_topic_name, partitions=settings.partitions, **raw)
    pipeline.dead_letter = app.topic(settings.dead_letter_topic, **raw)
    pipeline.alerts = app.topic(settings.alerts_topic, **raw)
    pipeline.ledgers = app.Table("ledgers", default=None, partitions=settings.partitions, value_type=bytes,
                                 key_type=str, help="per team: its record, rows waiting for the watermark, event ids")
    pipeline.store = LedgerStore(pipeline.ledgers, pipeline.rules, pipeline.policy, pipeline.ids,
                                 lambda source: kind_of_source(source, pipeline.kind_of_topic),
                                 settings.max_message_bytes, settings.dedup_horizon_seconds)
    pipeline.stage = LedgerStage(pipeline.store, settings.max_out_of_order_seconds)
    pipeline.progress = ProgressTracker(settings.idle_source_seconds)
    pipeline.liveness.stuck_after_s = settings.stuck_seconds

    from streams import agents, delivery, web  # attach after the tables exist

    agents.attach(pipeline)
    delivery.attach(pipeline)
    web.attach(pipeline)
    return pipeline
