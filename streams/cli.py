"""`spendwatch` command line: run, worker, replay, produce."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any, BinaryIO

from streams.errors import SpendwatchError
from streams.settings import Settings, load_settings
from streams.worker.logs import TextFormatter

log = logging.getLogger("spendwatch")

DESCRIPTION = """spendwatch: catches runaway AI spend in minutes.

Settings come from SPENDWATCH_* environment variables (or a .env file); see README.md."""


def public_topics(settings: Settings) -> list[str]:
    from streams.input.kinds import kind_of_topic

    return [*kind_of_topic(settings), settings.alerts_topic, settings.dead_letter_topic, settings.actions_topic]


class NotAlertLines(logging.Filter):
    """Drops the worker's "alert <kind> <status>" log line: where alerts print to the console, the
    terminal would show each one twice (the file keeps it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name == "spendwatch.agents" and str(record.msg).startswith("alert "))


class NotLoopTiming(logging.Filter):
    """Drops mode's timer warnings ("woke up too late", "is overlapping"): the event loop's own lateness,
    which the simulator's start (a hundred thousand events of history at once) causes on a small machine.
    An operator reads them in the file; on a newcomer's terminal they read as a fault."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.name != "mode.timers"


def quiet_logging(config: dict[str, Any], log_file: str, alerts_printed: bool = False) -> dict[str, Any]:
    """`config` with every record into `log_file`, and only warnings and errors on the terminal.

    For `spendwatch run`: Faust's and aiokafka's start-up lines (a hundred or so) would bury the
    window table and the alerts a newcomer is there to see."""
    handlers = dict(config["handlers"])
    handlers["stderr"] = {**handlers["stderr"], "level": "WARNING"}
    filters: dict[str, dict[str, type[logging.Filter]]] = {"not_loop_timing": {"()": NotLoopTiming}}
    if alerts_printed:
        filters["not_alert_lines"] = {"()": NotAlertLines}
    config = {**config, "filters": {**config.get("filters", {}), **filters}}
    handlers["stderr"]["filters"] = list(filters)
    handlers["file"] = {"class": "logging.FileHandler", "formatter": "spendwatch", "filename": log_file,
                        "mode": "w", "encoding": "utf-8"}
    return {**config, "handlers": handlers, "root": {**config["root"], "handlers": ["stderr", "file"]}}


def run_worker(settings: Settings, broker_url: str, simulate: bool = False, loglevel: str = "info",
               log_file: str | None = None) -> None:
    """Start one Faust worker in this process; returns when it is stopped (SIGTERM, Ctrl-C).

    With `log_file`, records go there and the terminal shows only warnings and errors."""
    import faust

    from streams.gc_tuning import tune_for_worker
    from streams.worker.app import create_pipeline
    from streams.worker.faust_patches import quiet_spinner

    os.makedirs(settings.data_dir, exist_ok=True)
    pipeline = create_pipeline(settings, broker_url)
    if simulate:
        from streams.tools.simulator import attach_simulator

        attach_simulator(pipeline)
    from streams.worker.logs import logging_config

    log.info("configuration: %s", settings.printable())
    config = logging_config(settings.log_format, loglevel)
    if log_file is not None:
        config = quiet_logging(config, log_file, alerts_printed=settings.console_alerts is True)
        announce_page(pipeline.app, settings)
    # stdout stays ours (console alerts, the simulator's table); logs go to stderr.
    worker = faust.Worker(pipeline.app, loglevel=loglevel, quiet=True, redirect_stdouts=False,
                          logging_config=config)
    quiet_spinner(worker)
    tune_for_worker()
    worker.execute_from_commandline()


def announce_page(app: Any, settings: Settings) -> None:
    """Say where the page is once the worker is up (the web server starts with it)."""

    @app.task
    async def page_url() -> None:
        print(f"spendwatch: worker up; the page is at {settings.base_url}/", flush=True)


def run_log_file(settings: Settings, loglevel: str) -> str | None:
    """Where `spendwatch run` writes its logs at the default level (None: to the terminal, as asked)."""
    if loglevel != "info":
        return None
    os.makedirs(os.path.dirname(os.path.abspath(settings.data_dir)), exist_ok=True)
    return os.path.join(os.path.dirname(os.path.abspath(settings.data_dir)), "spendwatch-run.log")


def cmd_run(args: argparse.Namespace) -> int:
    settings = load_settings()
    log_file = run_log_file(settings, args.loglevel)
    if args.simulate:
        from streams.tools.simulator import demo_settings

        settings = demo_settings(settings)
    if args.simulate and settings.console_alerts is None:
        # The demo shows alerts in the terminal as well as in any configured Slack/PagerDuty.
        settings = settings.model_copy(update={"console_alerts": True})
    if log_file is not None:
        for handler in logging.getLogger().handlers:  # until the worker's own config puts them in the file
            handler.setLevel(logging.WARNING)
        print(f"spendwatch: logs in {log_file} (`spendwatch --loglevel debug run` shows them here)", flush=True)
    if settings.kafka_brokers:
        run_worker(settings, settings.kafka_brokers, simulate=args.simulate, loglevel=args.loglevel,
                   log_file=log_file)
        return 0
    from streams.tools.broker import EmbeddedBroker

    broker = EmbeddedBroker(port=args.broker_port) if args.broker_port else EmbeddedBroker()
    broker.start()
    try:
        broker.create_topics(public_topics(settings), settings.partitions)
        print(f"spendwatch: embedded Kafka broker at {broker.bootstrap}; HTTP API at {settings.base_url}", flush=True)
        run_worker(settings, broker.url, simulate=args.simulate, loglevel=args.loglevel, log_file=log_file)
    finally:
        broker.stop()
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    settings = load_settings()
    if not settings.kafka_brokers:
        raise SpendwatchError("spendwatch worker needs SPENDWATCH_KAFKA_BROKERS (or use `spendwatch run`)")
    run_worker(settings, settings.kafka_brokers, loglevel=args.loglevel)
    return 0


def cmd_produce(args: argparse.Namespace) -> int:
    from streams.tools.producer import produce_file

    settings = load_settings()
    brokers = args.brokers or settings.kafka_brokers
    if not brokers:
        raise SpendwatchError("spendwatch produce needs --brokers or SPENDWATCH_KAFKA_BROKERS")
    sent = asyncio.run(produce_file(args.file, args.topic, brokers, settings))
    print(f"published {sent} messages to {args.topic}")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from contextlib import ExitStack

    from streams.tools.replay import DEFAULT_PROCESSES, replay

    settings = load_settings()
    paths = {"usage": args.usage, "gpu": args.gpu, "runs": args.runs, "outcomes": args.outcomes}
    if not any(paths.values()):
        raise SpendwatchError("spendwatch replay needs at least one of --usage, --gpu, --runs, --outcomes")
    with ExitStack() as files:
        inputs: dict[str, BinaryIO] = {kind: files.enter_context(open(path, "rb"))
                                       for kind, path in paths.items() if path}
        output = sys.stdout.buffer if args.output == "-" else files.enter_context(open(args.output, "wb"))
        actions = files.enter_context(open(args.actions, "wb")) if args.actions else None
        summary = replay(inputs, output, settings, actions=actions,
                         processes=DEFAULT_PROCESSES if args.processes is None else args.processes)
    for line in summary.lines():
        print(line, file=sys.stderr)
    return 0


def cmd_scrape(args: argparse.Namespace) -> int:
    from streams.tools.scrape import scrape

    settings = load_settings()
    brokers = args.brokers or settings.kafka_brokers
    if not brokers:
        raise SpendwatchError("spendwatch scrape needs --brokers or SPENDWATCH_KAFKA_BROKERS")
    if args.every <= 0:
        raise SpendwatchError("--every must be more than 0 seconds")
    published = asyncio.run(scrape(args.url, args.every, brokers, settings, args.team_label or
                                   settings.scrape_team_label, args.run_label or settings.scrape_run_label,
                                   times=args.times))
    print(f"published {published} GPU samples to {settings.gpu_topic}")
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from streams.tools.simulator import publish_traffic

    settings = load_settings()
    if not settings.kafka_brokers:
        raise SpendwatchError("spendwatch simulate needs SPENDWATCH_KAFKA_BROKERS (or use `spendwatch run --simulate`)")
    asyncio.run(publish_traffic(settings.kafka_brokers, settings))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spendwatch", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loglevel", default="info", choices=["debug", "info", "warning", "error"])
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="the whole service; starts the embedded broker when "
                              "SPENDWATCH_KAFKA_BROKERS is unset",
                              description="Run the whole service. With SPENDWATCH_KAFKA_BROKERS unset it starts "
                              "the embedded Tansu broker, creates the topics, and stops it on exit.")
    run.add_argument("--simulate", action="store_true", help="also publish simulated traffic, with a spike")
    run.add_argument("--broker-port", type=int, default=0, help="port for the embedded broker (default: a free one)")
    run.set_defaults(handler=cmd_run)

    worker = commands.add_parser("worker", help="one stream worker against SPENDWATCH_KAFKA_BROKERS; "
                                 "scale out by running more",
                                 description="One stream worker in the consumer group. Workers share the "
                                 "partitions; each answers the HTTP API for every key.")
    worker.set_defaults(handler=cmd_worker)

    produce = commands.add_parser("produce", help="publish a JSONL file to a topic, one message per line",
                                  description="Publish each line of a JSONL file as one message (a line may be "
                                  "one event or a JSON array of events).")
    produce.add_argument("file", help="JSONL file; - for standard input")
    produce.add_argument("--topic", required=True, help="e.g. ai.token-usage")
    produce.add_argument("--brokers", help="host:port[,host:port]; default SPENDWATCH_KAFKA_BROKERS")
    produce.set_defaults(handler=cmd_produce)
    scrape = commands.add_parser("scrape", help="read dcgm-exporter's Prometheus endpoint every N seconds and "
                                 "publish GPU samples",
                                 description="Scrape NVIDIA dcgm-exporter (DCGM_FI_DEV_GPU_UTIL, _POWER_USAGE, "
                                 "_FB_USED) and publish one GPU sample per GPU to SPENDWATCH_GPU_TOPIC. Team and run "
                                 "come from labels: with dcgm-exporter's Kubernetes mapping, namespace and pod.")
    scrape.add_argument("--url", required=True, help="e.g. http://dcgm-exporter:9400/metrics")
    scrape.add_argument("--every", type=float, default=15.0, help="seconds between scrapes (default 15)")
    scrape.add_argument("--team-label", help="label naming the team (default SPENDWATCH_SCRAPE_TEAM_LABEL)")
    scrape.add_argument("--run-label", help="label naming the run (default SPENDWATCH_SCRAPE_RUN_LABEL)")
    scrape.add_argument("--times", type=int, help="stop after this many scrapes (default: run until stopped)")
    scrape.add_argument("--brokers", help="host:port[,host:port]; default SPENDWATCH_KAFKA_BROKERS")
    scrape.set_defaults(handler=cmd_scrape)

    simulate = commands.add_parser("simulate",
                                   help="publish simulated traffic (with a spike) to SPENDWATCH_KAFKA_BROKERS",
                                   description="Publish 90 minutes of history, then live traffic for several teams, "
                                   "with a 15x spike after 150 s and a training run that doubles its GPUs.")
    simulate.set_defaults(handler=cmd_simulate)

    replay = commands.add_parser("replay", help="run the detectors offline over JSONL files and write every alert",
                                 description="Run the same detectors as the worker over JSONL files (each line an "
                                 "event or an array), in event-time order, without a broker. Writes one alert per "
                                 "line and prints a summary.")
    replay.add_argument("--usage", help="token-usage events (JSONL)")
    replay.add_argument("--gpu", help="GPU samples (JSONL)")
    replay.add_argument("--runs", help="training-run events (JSONL)")
    replay.add_argument("--outcomes", help="outcome events (JSONL), judged against the usage's spend")
    replay.add_argument("--output", default="-", help="alerts JSONL (default: standard output)")
    replay.add_argument("--actions", help="also write the commands the alerts call for (SPENDWATCH_ACTIONS), JSONL")
    replay.add_argument("--processes", type=int, default=None,
                        help="processes the teams are shared among (default: the cores, up to 8); the alerts are "
                             "the same with any number")
    replay.set_defaults(handler=cmd_replay)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Names from producers reach these lines too (replay, scrape, a worker before it starts): escaped.
    handler = logging.StreamHandler()
    handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logging.basicConfig(level=args.loglevel.upper(), handlers=[handler])
    try:
        return int(args.handler(args) or 0)
    except SpendwatchError as exc:
        print(f"spendwatch: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
