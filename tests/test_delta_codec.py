"""The deltas topic's wire format: what goes in comes back, whatever the shape."""

import orjson

from streams.delta_codec import MIN_PACKED_ROWS, decode_delta, encode_delta
from streams.intake import GPU, RUNS, USAGE, decode_events


def test_usage_rows_come_back_exactly_with_their_types() -> None:
    rows = [[3, "chat", 1700000000.25, 120, 30, 0.0123456789, 0, 2**62 + 5],
            [4, "embed", 1700000001.0, 0, 0, 0.0, 1, 0],
            [9, "chat", 1700000002.5, 7, 1, 1e-12, 0, 17]] * MIN_PACKED_ROWS
    for count in (1, MIN_PACKED_ROWS - 1, MIN_PACKED_ROWS, len(rows)):  # plain rows, then packed columns
        [(source, decoded)] = decode_delta(encode_delta([("ai.token-usage:2", USAGE, rows[:count])]))
        assert source == "ai.token-usage:2"
        assert [list(row) for row in decoded] == rows[:count]
        assert [type(value) for value in decoded[0]] == [int, str, float, int, int, float, int, int]


def test_a_count_too_big_to_carry_is_rejected_not_a_crash() -> None:
    # orjson reads 1e23 written as an integer as a float; before this limit it crashed the ingest agent.
    for count in (b"100000000000000000000000", b"9007199254740993"):
        for payload in (b'[{"ts": 1700000000, "team": "a", "model": "m", "prompt_tokens": ' + count
                        + b', "completion_tokens": 1}]',):
            accepted, rejected = decode_events(USAGE, payload, now=1700000000.0, future_tolerance_s=300)
            assert accepted == [] and rejected[0].reason == "out_of_range"
    fits = b'{"ts": 1700000000, "team": "a", "model": "m", "prompt_tokens": 9007199254740992, "completion_tokens": 1}'
    accepted, _ = decode_events(USAGE, fits, now=1700000000.0, future_tolerance_s=300)
    rows = [[1, "chat", 1700000000.0, accepted[0].prompt_tokens, 1, 0.5, 0, 0]] * MIN_PACKED_ROWS
    assert [list(row) for row in decode_delta(encode_delta([("u:0", USAGE, rows)]))[0][1]] == rows


def test_parts_of_every_kind_keep_their_order() -> None:
    gpu = [[5, "run-1", "gpu-0", 1700000000.0, "H100", 3.5, 60.0, 97.0]]
    usage = [[n, "chat", 1700000000.0 + n, 1, 1, 0.1, 0, n] for n in range(MIN_PACKED_ROWS)]
    runs = [[2, "run-1", "started", 1700000000.0, 400.0, None, 8, "H100", 10.0]]
    parts = decode_delta(encode_delta([("u:1", USAGE, usage), ("g:0", GPU, gpu), ("r:3", RUNS, runs), ("u:0", USAGE, usage[:2])]))
    assert [(source, [list(row) for row in rows]) for source, rows in parts] == \
        [("u:1", usage), ("g:0", gpu), ("r:3", runs), ("u:0", usage[:2])]


def test_json_deltas_of_earlier_versions_are_read() -> None:
    legacy = orjson.dumps({"source": "u:1", "rows": [[1, "chat", 1.0, 1, 1, 0.1, 0, 0]]})
    assert decode_delta(legacy) == [("u:1", [[1, "chat", 1.0, 1, 1, 0.1, 0, 0]])]
