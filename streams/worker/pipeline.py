"""What the worker's agents, deliveries and HTTP views share, built once by `app.create_pipeline`."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import Any, cast

import faust
from aiokafka.partitioner import DefaultPartitioner
from faust.types import TableT, TopicT

from alerting.silences import SilenceBook
from streams.settings import Settings
from streams.state.dedup import EventIdIndex
from streams.state.judging import RuleBook
from streams.state.ledger import WindowPolicy
from streams.state.store import LedgerStage, LedgerStore
from streams.state.watermarks import ProgressTracker
from streams.worker.consumer import SpendwatchConsumer
from streams.worker.liveness import Liveness
from streams.worker.metrics import Metrics

#: Topics read and written as bytes: a key or value the codec cannot decode would crash the agent,
#: so every topic is raw and each agent decodes (and dead-letters) itself.
RAW_BYTES: dict[str, Any] = dict(key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")

#: How many recent alerts `/alerts` shows.
RECENT_ALERTS = 200

_partitioner = DefaultPartitioner()


@dataclass
class Pipeline:
    """The app, its topics and tables, the ledger store over them, and what the worker observes."""

    settings: Settings
    app: faust.App
    metrics: Metrics
    policy: WindowPolicy
    ids: EventIdIndex
    rules: RuleBook
    kind_of_topic: dict[str, str]  # input topic -> kind
    inputs: TopicT  # the three input topics, read by `ingest`
    deltas: TopicT  # <app>-team-deltas, keyed by team, read by `ledger`
    dead_letter: TopicT
    alerts: TopicT  # the outbox the delivery agents read
    ledgers: TableT  # per team: its record, rows waiting for the watermark, event ids (bytes values)
    store: LedgerStore  # over `ledgers`
    stage: LedgerStage  # the store and each deltas partition's watermark
    progress: ProgressTracker  # how far this worker's ingest got per input partition
    liveness: Liveness
    recent_alerts: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=RECENT_ALERTS))
    lagging: set[str] = field(default_factory=set)  # agents whose input has lag, from the lag timer
    teams_over_limit: set[str] = field(default_factory=set)  # teams logged for having too many endpoints
    silences: SilenceBook = field(default_factory=SilenceBook)  # fed from the silences topic (worker/silences.py)
    silences_loaded: asyncio.Event = field(default_factory=asyncio.Event)  # set once that topic is read to its end

    @property
    def consumer(self) -> SpendwatchConsumer:
        """The app's consumer, ours since `faust_patches.install_transport`."""
        return cast(SpendwatchConsumer, self.app.consumer)

    @property
    def deltas_topic_name(self) -> str:
        return deltas_topic_name(self.settings)

    def partition_of(self, team: str) -> int:
        """The deltas partition (and so the table partition) of a team: Kafka's default key partitioner."""
        every = list(range(self.settings.partitions))
        return int(_partitioner(team.encode(), every, every))


def deltas_topic_name(settings: Settings) -> str:
    return f"{settings.app_id}-team-deltas"


def table(app: faust.App, name: str, partitions: int, help: str) -> TableT:
    """A table written while processing a message, so its changelog lands in that message's partition."""
    return app.Table(name, default=None, partitions=partitions, help=help)
