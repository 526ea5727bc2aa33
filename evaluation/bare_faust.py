"""The benchmark's reference points: bare Faust agents that do next to nothing.

`python -m evaluation.bare_faust BROKER TOPIC EXPECTED [count|pipeline]` prints one JSON
line with what it counted and the seconds between the first and the last.

- `count` (messages): one agent that only counts messages; the one-event-per-message
  reference.
- `pipeline` (events): spendwatch's own topology with none of its work: micro-batches
  decoded with orjson, one count per team sent through a repartition topic keyed by team,
  and one table write per team per delta. No validation, pricing, windows or detection:
  what Faust and the broker cost for the shape alone, the ceiling of a worker built this way.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import faust
import orjson

from streams.gc_tuning import tune_for_worker


def main() -> None:
    broker, topic_name, expected = sys.argv[1], sys.argv[2], int(sys.argv[3])
    mode = sys.argv[4] if len(sys.argv) > 4 else "count"
    # A consumer group of its own per run: the benchmark runs it more than once on the same topic.
    app_id = f"bare-{mode}-{topic_name}-{os.getpid()}"
    app = faust.App(app_id, broker=broker, env={}, store="memory://", web_enabled=False,
                    broker_session_timeout=10, broker_heartbeat_interval=2, consumer_auto_offset_reset="earliest",
                    topic_replication_factor=1, topic_partitions=4, broker_commit_interval=1.0,
                    datadir=f"/tmp/{app_id}")
    raw = dict(key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
    topic = app.topic(topic_name, **raw)
    seen = {"count": 0, "first": 0.0}

    def counted(n: int) -> None:
        if seen["count"] == 0:
            seen["first"] = time.monotonic()
        seen["count"] += n
        if seen["count"] == expected:
            print(orjson.dumps({"count": expected, "seconds": time.monotonic() - seen["first"]}).decode(),
                  flush=True)  # the benchmark reads this line and stops the process

    if mode == "count":
        @app.agent(topic)
        async def count(stream: Any) -> None:
            async for _value in stream:
                counted(1)
    else:
        deltas = app.topic(f"{app_id}-deltas", partitions=4, **raw)
        table = app.Table("totals", default=None, partitions=4, value_type=bytes)

        @app.agent(topic)
        async def ingest(stream: Any) -> None:
            async for events in stream.take_events(2000, within=0.2):  # spendwatch's default micro-batch
                per_team: dict[str, int] = {}
                for event in events:
                    for usage in orjson.loads(event.message.value):
                        per_team[usage["team"]] = per_team.get(usage["team"], 0) + 1
                for team, n in per_team.items():
                    await deltas.send(key=team.encode(), value=orjson.dumps(n))

        @app.agent(deltas)
        async def ledger(stream: Any) -> None:
            async for event in stream.events():
                n = orjson.loads(event.message.value)
                team = event.message.key.decode()
                before = table.get(team)
                table[team] = orjson.dumps(n + (orjson.loads(before) if before else 0))
                counted(n)

    worker = faust.Worker(app, loglevel="error", quiet=True, redirect_stdouts=False)
    # The same process set-up as our worker (streams/cli.py), so the ratio compares the agents alone.
    worker.spinner = None
    tune_for_worker()
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
