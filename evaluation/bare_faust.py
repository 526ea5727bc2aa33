"""The benchmark's reference point: a bare Faust agent that only counts messages.

Run as `python -m evaluation.bare_faust BROKER TOPIC EXPECTED`; prints one JSON line with
the message count and the seconds between the first and the last message it saw.
"""

from __future__ import annotations

import os
import sys
import time

import faust
import orjson

from streams.gc_tuning import tune_for_worker


def main() -> None:
    broker, topic_name, expected = sys.argv[1], sys.argv[2], int(sys.argv[3])
    # A consumer group of its own per run: the benchmark runs it more than once on the same topic.
    app = faust.App(f"bare-{topic_name}-{os.getpid()}", broker=broker, env={}, store="memory://", web_enabled=False,
                    broker_session_timeout=10, broker_heartbeat_interval=2, consumer_auto_offset_reset="earliest",
                    topic_replication_factor=1)
    topic = app.topic(topic_name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
    seen = {"count": 0, "first": 0.0}

    @app.agent(topic)
    async def count(stream):  # type: ignore[no-untyped-def]
        async for _value in stream:
            if seen["count"] == 0:
                seen["first"] = time.monotonic()
            seen["count"] += 1
            if seen["count"] == expected:
                print(orjson.dumps({"messages": expected, "seconds": time.monotonic() - seen["first"]}).decode(),
                      flush=True)  # the benchmark reads this line and stops the process

    worker = faust.Worker(app, loglevel="error", quiet=True, redirect_stdouts=False)
    # The same process set-up as our worker (streams/cli.py), so the ratio compares the agents alone.
    worker.spinner = None
    tune_for_worker()
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
