"""The deltas topic's wire format: what goes in comes back, whatever the shape."""

from streams.input.intake import decode_events
from streams.input.kinds import USAGE
from streams.state.deltas import USAGE_COLUMN_TYPES, decode_delta, encode_deltas

MANY = 16  # rows in a part: an earlier version packed usage parts of this many as columns


def only(messages: list[bytes]) -> bytes:
    [message] = messages
    return message


def test_usage_rows_come_back_exactly_with_their_types() -> None:
    rows = [[3, "chat", 1700000000.25, 120, 30, 0.0123456789, 0, 2**62 + 5, "gpt-4o", "alice", "search", "", "openai"],
            [4, "embed", 1700000001.0, 0, 0, 0.0, 1, 0, "in-house", "", "", "", ""],
            [9, "chat", 1700000002.5, 7, 1, 1e-12, 0, 17, "chat", "chat", "chat", "chat", "chat"]] * MANY
    for count in (1, MANY - 1, MANY, len(rows)):
        [(source, decoded)] = decode_delta(only(encode_deltas([("ai.token-usage:2", rows[:count])])))
        assert source == "ai.token-usage:2"
        assert [list(row) for row in decoded] == rows[:count]
        assert [type(value) for value in decoded[0]] == [int, str, float, int, int, float, int, int] + [str] * 5


def test_a_count_too_big_to_carry_is_rejected_not_a_crash() -> None:
    # orjson reads 1e23 written as an integer as a float; before this limit it crashed the ingest agent.
    for count in (b"100000000000000000000000", b"9007199254740993"):
        for payload in (b'[{"ts": 1700000000, "team": "a", "model": "m", "prompt_tokens": ' + count
                        + b', "completion_tokens": 1}]',):
            accepted, rejected = decode_events(USAGE, payload, now=1700000000.0, future_tolerance_s=300)
            assert accepted == [] and rejected[0].reason == "out_of_range"
    fits = b'{"ts": 1700000000, "team": "a", "model": "m", "prompt_tokens": 9007199254740992, "completion_tokens": 1}'
    accepted, _ = decode_events(USAGE, fits, now=1700000000.0, future_tolerance_s=300)
    rows = [[1, "chat", 1700000000.0, accepted[0].prompt_tokens, 1, 0.5, 0, 0, "m", "", "", "", ""]] * MANY
    assert [list(row) for row in decode_delta(only(encode_deltas([("u:0", rows)])))[0][1]] == rows


def test_parts_of_every_kind_keep_their_order() -> None:
    gpu = [[5, "run-1", "gpu-0", 1700000000.0, "H100", 3.5, 60.0, 97.0, ""]]
    usage = [[n, "chat", 1700000000.0 + n, 1, 1, 0.1, 0, n, "m", "u", "s", "p", "v"] for n in range(MANY)]
    runs = [[2, "run-1", "started", 1700000000.0, 400.0, None, 8, "H100", 10.0]]
    sent = [("u:1", usage), ("g:0", gpu), ("r:3", runs), ("u:0", usage[:2])]
    parts = decode_delta(only(encode_deltas(sent)))
    assert [(source, [list(row) for row in rows]) for source, rows in parts] == \
        [("u:1", usage), ("g:0", gpu), ("r:3", runs), ("u:0", usage[:2])]


def test_a_delta_too_big_for_one_message_is_split_in_order() -> None:
    """50,000 events of one message and team, with long names: every message under the cap, nothing lost."""
    usage = [[n, f"endpoint-{n % 300:03d}-" + "x" * 200, 1700000000.0 + n, 1, 1, 0.1, 0, n, f"model-{n % 7}",
              f"user-{n % 1000}", "", "", "provider"] for n in range(50_000)]
    gpu = [[n, "run-" + "r" * 250, f"gpu-{n}", 1700000000.0, "H100", 3.5, 60.0, 97.0, ""] for n in range(3_000)]
    messages = encode_deltas([("u:1", usage), ("g:0", gpu)], max_bytes=200_000)
    assert len(messages) > 2 and all(len(m) <= 200_000 for m in messages)
    got: dict[str, list] = {}
    for message in messages:
        for source, rows in decode_delta(message):
            got.setdefault(source, []).extend(list(row) for row in rows)
    assert got == {"u:1": usage, "g:0": gpu}


def test_rows_of_an_earlier_version_come_back_saying_nothing_of_their_attribution() -> None:
    """A rolling upgrade: deltas written before usage rows carried model, user... still apply."""
    from array import array

    import msgspec

    old = [[n, "chat", 1700000000.0 + n, 10, 2, 0.5, 0, n] for n in range(MANY)]
    gpu = [[5, "run-1", "gpu-0", 1700000000.0, "H100", 3.5, 60.0, 97.0]]  # eight fields too: a training GPU
    plain = msgspec.msgpack.encode({"parts": [{"source": "u:0", "rows": old[:2]}, {"source": "g:0", "rows": gpu}]})
    codes = ("q", "I", "d", "q", "q", "d", "b", "q")
    columns = [array(code, [0 if code == "I" else row[at] for row in old]).tobytes() for at, code in enumerate(codes)]
    packed = msgspec.msgpack.encode({"parts": [{"source": "u:0", "endpoints": ["chat"], "columns": columns}]})
    [(_, plain_rows), (_, gpu_rows)] = decode_delta(plain)
    [(_, packed_rows)] = decode_delta(packed)
    assert [list(row) for row in plain_rows] == [row + [""] * 5 for row in old[:2]]
    assert [list(row) for row in packed_rows] == [row + [""] * 5 for row in old]
    assert [list(row) for row in gpu_rows] == [[*row, ""] for row in gpu]  # no serving endpoint


def test_usage_columns_an_earlier_version_packed_come_back_as_rows() -> None:
    """A rolling upgrade: deltas (and rows waiting in the table) written as packed columns still apply."""
    from array import array

    import msgspec

    rows = [[n, f"chat-{n % 3}", 1700000000.0 + n, 10, 2, 0.5, n % 2, n, "gpt-4o", "", f"svc-{n % 2}", "", "openai"]
            for n in range(MANY)]
    names: dict[str, int] = {}
    columns = []
    for at, code in enumerate(USAGE_COLUMN_TYPES):
        column = [row[at] if code else names.setdefault(row[at], len(names)) for row in rows]
        columns.append(array(code or "I", column).tobytes())
    packed = msgspec.msgpack.encode({"parts": [{"source": "u:0", "names": list(names), "columns": columns}]})
    [(source, decoded)] = decode_delta(packed)
    assert source == "u:0" and [list(row) for row in decoded] == rows
