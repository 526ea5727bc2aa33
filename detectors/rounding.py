"""Numbers rounded as detector state keeps them, cheaply enough for work done on every call.

State is JSON, and a number is rounded when it is learned, not when it is saved, so that a detector
restored from state holds exactly what the one in memory held (the live worker then equals replay)
and the changelog stays short. Python's `round(x, n)` goes through decimal digits: 0.2-0.4 us a
call, and a busy key's price test rounds five numbers on every call. An integer k divided by 10**n
is the nearest double to the decimal k x 10**-n, so it prints as short as `round` would, for a
third of the cost; halves round up rather than to even, which state does not care about.

>>> decimals(2.0 / 3.0, 4), decimals(-0.00005, 4), decimals(1796000000.12345, 3)
(0.6667, 0.0, 1796000000.123)
"""

from __future__ import annotations

from math import floor


def decimals(value: float, places: int) -> float:
    """`value` to `places` decimals (up to about 15 significant digits in all: an integer a double holds)."""
    scale = _SCALES[places]
    return floor(value * scale + 0.5) / scale


_SCALES = [10.0 ** places for places in range(16)]
