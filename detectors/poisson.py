"""How many calls in a window it takes before "more than usual" is not chance.

Calls arrive roughly as a Poisson process. For a key that expects `rate` calls in a
window, `min_significant_count(rate, alpha)` is the smallest count k with
P(X >= k) < alpha. A quiet key that expects 0.05 calls a minute needs 4 before a
burst means anything; a busy key needs only a little over its mean.

>>> min_significant_count(0.05, 1e-6), min_significant_count(2.0, 1e-6), min_significant_count(10_000.0, 1e-6)
(4, 13, 10476)
"""

from __future__ import annotations

import math
from functools import lru_cache

#: One-sided normal quantile for the large-rate approximation, by alpha.
_Z = {1e-4: 3.719, 1e-5: 4.265, 1e-6: 4.753, 1e-7: 5.199, 1e-8: 5.612}


# Cached: a detector restored from state asks again for each of its open windows, once per delta.
@lru_cache(maxsize=65_536)
def min_significant_count(rate: float, alpha: float = 1e-6) -> int:
    """Smallest k with P(Poisson(rate) >= k) < alpha."""
    if rate <= 0:
        return 1
    if rate > 200:  # normal approximation with continuity correction; exact sums underflow up here
        z = _Z.get(alpha) or _Z[min(_Z, key=lambda a: abs(math.log(a) - math.log(alpha)))]
        return math.ceil(rate + z * math.sqrt(rate) + 0.5)
    term = math.exp(-rate)  # P(X = 0)
    tail = 1.0  # P(X >= 0)
    k = 0
    while tail >= alpha:
        tail -= term
        k += 1
        term *= rate / k
    return k
