"""The registry of input kinds is the one list every stage reads (docs/architecture.md)."""

import random

from streams.input.events import InputLimits
from streams.input.kinds import KIND_OF_ORDER, KINDS, USAGE, kind_of_topic, release_key, sort_in_release_order
from streams.input.rows import RowContext
from streams.settings import Settings
from streams.state.ledger import APPLY
from tests.conftest import make_usage

NOW = 1_764_000_000.0


def test_every_kind_has_a_topic_a_distinct_order_and_a_way_into_the_ledger():
    settings = Settings(_env_file=None)
    assert kind_of_topic(settings) == {"ai.token-usage": "usage", "ai.gpu-metrics": "gpu", "ai.training-runs": "runs",
                                       "ai.outcomes": "outcomes"}
    assert sorted(KIND_OF_ORDER) == list(range(len(KINDS)))
    assert set(APPLY) | {USAGE} == set(KINDS)  # usage rows are applied inline, the hot path


def built_rows():
    """(kind name, kind, row) for one sample event of every kind, at position 7 and time NOW."""
    samples = {
        "usage": make_usage(ts=NOW),
        "gpu": {"ts": NOW, "team": "research", "run_id": "r1", "gpu_id": "g0", "utilization": 0.9},
        "runs": {"ts": NOW, "team": "research", "run_id": "r1", "status": "started"},
        "outcomes": {"ts": NOW, "team": "support", "outcome": "ticket_resolved", "count": 2, "event_id": "o-1"},
    }
    context = RowContext({"default": 2.0})
    limits = InputLimits.from_settings(Settings(_env_file=None))
    for name, kind in KINDS.items():
        yield name, kind, kind.to_row(7, kind.parse(samples[name], NOW + 60, 300.0, limits), context)


def test_a_row_built_by_its_kind_sorts_by_event_time_then_by_the_kinds_order():
    for name, kind, row in built_rows():
        assert row[0] == 7  # the position comes first in every layout
        key = kind.release_key(row)
        assert key[:2] == (NOW, kind.order), name


def test_rows_are_named_and_a_plain_array_off_the_wire_sorts_the_same():
    """Rows travel and are stored as plain arrays; every reader takes them by the row type's layout."""
    for name, kind, row in built_rows():
        named = kind.row_type._make(row)
        assert named.position == 7 and named.ts == NOW, name
        assert kind.release_key(list(row)) == kind.release_key(named) == kind.release_key(row), name


def test_rows_sorted_by_time_alone_or_by_the_full_key_come_out_in_release_order():
    """Distinct times take the float sort; any shared time, the full key: both are the release order."""
    rng = random.Random(5)
    samples = [(name, row) for name, _, row in built_rows()]
    for times in ([NOW + i for i in range(40)], [NOW, NOW + 1.0, NOW + 2.0]):  # distinct, then mostly shared
        items = []
        for _ in range(40):
            name, row = rng.choice(samples)
            row = list(row)
            row[KINDS[name].time_field] = rng.choice(times)
            row[0] = rng.randrange(1000)  # the position: not part of the order
            items.append((name, row))
        expected = sorted(items, key=lambda item: release_key(*item))
        sort_in_release_order(items, lambda item: item[1][KINDS[item[0]].time_field], lambda item: release_key(*item))
        assert [release_key(*item) for item in items] == [release_key(*item) for item in expected]
