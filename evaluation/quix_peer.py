"""The benchmark's peer: a Quix Streams application doing the core of spendwatch's job.

`python evaluation/quix_peer.py BOOTSTRAP TOPIC EXPECTED PROMPT_USD COMPLETION_USD STATE_DIR`

Per (team, endpoint), 60 s tumbling sums of requests, tokens and cost, written the way
Quix's documentation shows: arrays expanded into events, event time from `ts`, a `group_by`
through a repartition topic, RocksDB state with its changelog, `.current()` results. The grace
is a day, so every event of the benchmark (an hour of traffic) is windowed, as spendwatch
windows every event. It prints one JSON line: the events counted, the seconds from the first
to the last, and every window's final sums, which `make bench` checks against spendwatch's.

It runs in a virtual environment of its own (`make bench` builds var/quix-venv), so Quix's
dependencies (confluent-kafka, rocksdict, its pydantic) never change the worker's; it imports
nothing of spendwatch.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import timedelta
from typing import Any

import orjson
from quixstreams import Application
from quixstreams.dataframe.windows import aggregations as agg


def main() -> None:
    bootstrap, topic_name, expected = sys.argv[1], sys.argv[2], int(sys.argv[3])
    prompt_usd, completion_usd, state_dir = float(sys.argv[4]), float(sys.argv[5]), sys.argv[6]
    app = Application(broker_address=bootstrap, consumer_group=f"quix-{topic_name}-{os.getpid()}",
                      auto_offset_reset="earliest", state_dir=state_dir, loglevel="WARNING")
    source = app.topic(topic_name, value_deserializer="json")
    seen = {"count": 0, "first": 0.0}
    windows: dict[str, list[Any]] = {}  # "key start_ms" -> [requests, tokens, cost], the latest sums

    def usage(event: dict[str, Any]) -> dict[str, Any]:
        prompt, completion = event["prompt_tokens"], event["completion_tokens"]
        return {"tokens": prompt + completion, "cost": prompt * prompt_usd + completion * completion_usd}

    def counted(window: dict[str, Any], key: Any, _timestamp: int, _headers: Any) -> None:
        if seen["count"] == 0:
            seen["first"] = time.monotonic()
        seen["count"] += 1
        windows[f"{key.decode() if isinstance(key, bytes) else key} {window['start']}"] = [
            window["requests"], window["tokens"], window["cost"]]
        if seen["count"] == expected:
            print(orjson.dumps({"count": expected, "seconds": time.monotonic() - seen["first"],
                                "windows": windows}).decode(), flush=True)
            app.stop()

    sdf = app.dataframe(source)
    sdf = sdf.apply(lambda value: value if isinstance(value, list) else [value], expand=True)
    sdf = sdf.set_timestamp(lambda value, key, timestamp, headers: int(value["ts"] * 1000))
    sdf = sdf.group_by(lambda value: f"{value['team']}/{value.get('endpoint') or ''}", name="team_endpoint")
    sdf = sdf.apply(usage)
    sdf = (sdf.tumbling_window(duration_ms=timedelta(seconds=60), grace_ms=timedelta(days=1))
           .agg(requests=agg.Count(), tokens=agg.Sum("tokens"), cost=agg.Sum("cost"))
           .current())
    sdf = sdf.update(counted, metadata=True)
    app.run()


if __name__ == "__main__":
    main()
