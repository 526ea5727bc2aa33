"""Keep Python's cyclic garbage collector out of the hot path.

Every event decodes into a dict and becomes a row list; those are freed by reference
counting, never in cycles, yet each 700 allocations start a collection that walks every
young container, and the older generations walk the whole heap (Faust, aiokafka, tables).
Measured on `make bench`'s data (300,000 events, this 2-core machine): collections were
about a third of `spendwatch replay`'s time, and 10-25% of the pure ingest and ledger
stages' (`python -m evaluation.hotpath`). Cycles are still collected, just less often.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

#: Allocations between young-generation collections (CPython's default is 700).
WORKER_GEN0_THRESHOLD = 50_000


def tune_for_worker() -> None:
    """Fewer collections, and none of them walking what start-up built (it lives as long as the process)."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(WORKER_GEN0_THRESHOLD, gen1, gen2)


@contextmanager
def paused() -> Iterator[None]:
    """No cyclic collection while a batch job builds many acyclic objects (replay's rows)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
