"""`spendwatch scrape`: NVIDIA dcgm-exporter's Prometheus endpoint, read every N seconds, as GPU samples.

Each scrape's samples (streams/input/dcgm.py: a serving container's GPUs are its endpoint's, the others a
training run's) go to `SPENDWATCH_GPU_TOPIC` as one JSON array,
stamped with the scrape's time and accounting for `--every` seconds each. A failed scrape is
logged and the next one tried on time: a restarting exporter costs a few samples, never the
scraper.
"""

from __future__ import annotations

import asyncio
import logging
import time

import aiohttp
import orjson

from streams.input.dcgm import ServingRule, gpu_samples
from streams.settings import Settings
from streams.tools.producer import start_producer

log = logging.getLogger("spendwatch.scrape")

SAMPLES_PER_MESSAGE = 500


async def scrape(url: str, every_s: float, brokers: str, settings: Settings, team_label: str, run_label: str,
                 times: int | None = None) -> int:
    """Scrape `times` times (None: until stopped); returns how many samples were published."""
    producer = await start_producer(brokers, settings)
    published = scrapes = 0
    serving = ServingRule(settings.scrape_serving_label, settings.scrape_serving_values,
                          settings.scrape_endpoint_label) if settings.scrape_serving_values else None
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=max(1.0, every_s))) as session:
            while times is None or scrapes < times:
                started = time.time()
                try:
                    async with session.get(url) as response:
                        response.raise_for_status()
                        page = await response.text()
                    samples, skipped = gpu_samples(page, ts=started, team_label=team_label, run_label=run_label,
                                                   interval_s=every_s, gpu_types=settings.gpu_prices,
                                                   serving=serving)
                    for start in range(0, len(samples), SAMPLES_PER_MESSAGE):
                        chunk = samples[start:start + SAMPLES_PER_MESSAGE]
                        await producer.send(settings.gpu_topic, orjson.dumps(chunk))
                    await producer.flush()
                    published += len(samples)
                    log.info("scraped %d GPUs (%d with no %s/%s label skipped)", len(samples) + skipped, skipped,
                             team_label, run_label)
                except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                    log.warning("scrape of %s failed: %s: %s", url, type(exc).__name__, exc)
                scrapes += 1
                if times is None or scrapes < times:
                    await asyncio.sleep(max(0.0, every_s - (time.time() - started)))
    finally:
        await producer.stop()
    return published
