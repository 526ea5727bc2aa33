"""The wiring: `create_pipeline` builds the app, its topics and tables and the state over them,
then attaches the agents (agents.py, delivery.py) and the HTTP views (web.py).

    ai.token-usage ─┐
    ai.gpu-metrics ─┼─► ingest (micro-batches) ──► <app>-team-deltas (keyed by team) ──► ledger ──► tables
    ai.training-runs┘        └─► spendwatch.dead-letter        + progress reports        │
                                                                    spendwatch.alerts ◄──┘
                                       route ──► <app>-deliver-<sink> ──► deliver-<sink> ──► Slack, PagerDuty

`ingest` pays Faust's per-message cost once per micro-batch and forwards each team's rows
(streams/state/deltas.py), then reports every input partition's progress to every deltas
partition (streams/state/watermarks.py); `ledger` owns the tables, co-partitioned with the deltas
topic, and applies rows in event-time order once the watermark has passed them.
"""

from __future__ import annotations

from typing import Any

import faust

from streams.input.intake import kind_of_source
from streams.input.kinds import kind_of_topic as kinds_by_topic
from streams.kafka_client import aiokafka_options, bootstrap_servers, faust_credentials
from streams.settings import Settings, require_guarded_http
from streams.state.dedup import EventIdIndex
from streams.state.judging import RuleBook
from streams.state.ledger import WindowPolicy
from streams.state.store import LedgerStage, LedgerStore
from streams.state.watermarks import ProgressTracker
from streams.worker import actions, agents, delivery, ingest_http, interactions, silences, web
from streams.worker.codecs import register_codecs
from streams.worker.faust_patches import install_transport, recover_to_true_ends, shorten_fetch_wait
from streams.worker.liveness import Liveness
from streams.worker.metrics import Metrics
from streams.worker.pipeline import RAW_BYTES, Pipeline, deltas_topic_name


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
        # Everything we produce is bounded by max_message_bytes (streams/state/deltas.py, RecordStore); the
        # request limit leaves room for headers and the record's key.
        producer_max_request_size=settings.max_message_bytes + 131_072,
    )
    credentials = faust_credentials(settings)
    if credentials is not None:
        options["broker_credentials"] = credentials
    return options


def create_pipeline(settings: Settings, broker_url: str) -> Pipeline:
    """Build the app, its topics and tables and the state over them; then attach agents and views."""
    require_guarded_http(settings)  # before anything listens
    register_codecs()
    shorten_fetch_wait(settings.fetch_max_wait_ms)
    recover_to_true_ends(bootstrap_servers(broker_url), aiokafka_options(settings))
    app = faust.App(settings.app_id, **faust_options(settings, broker_url))
    kind_of_topic = kinds_by_topic(settings)
    # Each read by one agent alone, which takes a bundle's messages as a run (ingest, ledger).
    install_transport(app, bundled_topics=[*kind_of_topic, deltas_topic_name(settings)])
    policy = WindowPolicy.from_settings(settings)
    ids = EventIdIndex(settings.dedup_horizon_seconds)
    rules = RuleBook(settings)
    ledgers = app.Table("ledgers", default=None, partitions=settings.partitions, value_type=bytes, key_type=str,
                        help="per team: its record, rows waiting for the watermark, event ids")
    store = LedgerStore(ledgers, rules, policy, ids, lambda source: kind_of_source(source, kind_of_topic),
                        settings.max_message_bytes, settings.dedup_horizon_seconds)
    pipeline = Pipeline(
        settings=settings,
        app=app,
        metrics=Metrics(),
        policy=policy,
        ids=ids,
        rules=rules,
        kind_of_topic=kind_of_topic,
        inputs=app.topic(*kind_of_topic, **RAW_BYTES),
        deltas=app.topic(deltas_topic_name(settings), partitions=settings.partitions, **RAW_BYTES),
        dead_letter=app.topic(settings.dead_letter_topic, **RAW_BYTES),
        alerts=app.topic(settings.alerts_topic, **RAW_BYTES),
        ledgers=ledgers,
        store=store,
        stage=LedgerStage(store, settings.max_out_of_order_seconds),
        progress=ProgressTracker(settings.idle_source_seconds),
        liveness=Liveness(stuck_after_s=settings.stuck_seconds),
    )
    shared_silences = silences.attach(pipeline, broker_url)
    agents.attach(pipeline)
    acknowledge = delivery.attach(pipeline)
    web.attach(pipeline, shared_silences)
    interactions.attach(pipeline, shared_silences, acknowledge)
    ingest_http.attach(pipeline)
    actions.attach(pipeline)
    return pipeline
