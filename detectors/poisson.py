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


def lower_tail(count: int, mean: float, dispersion: float = 0.0) -> float:
    """P(X <= count) for a count with this mean: Poisson, or with `dispersion` c2 > 0 the
    negative binomial (a Poisson whose rate varies by a factor with variance c2), so
    Var(X) = mean + c2 * mean**2. Summed in log space: a mean in the thousands does not underflow.

    >>> round(lower_tail(25, 50.0), 7), round(lower_tail(25, 50.0, 0.05), 4), lower_tail(0, 0.0)
    (7.16e-05, 0.0168, 1.0)
    """
    if mean <= 0 or count < 0:
        return 1.0 if count >= 0 else 0.0
    if mean > 5000:  # normal approximation with continuity correction: summing thousands of terms buys nothing
        spread = math.sqrt(mean + dispersion * mean * mean)
        return 0.5 * math.erfc((mean - count - 0.5) / spread / math.sqrt(2))
    if dispersion > 1e-9:
        size = 1.0 / dispersion
        log_q = math.log(mean / (size + mean))  # log of the chance of one more count
        log_term = size * math.log(size / (size + mean))  # log P(X = 0)
    else:
        size, log_q, log_term = math.inf, math.log(mean), -mean
    logs = [log_term]
    for k in range(count):
        log_term += (log_q + math.log(k + size) if size != math.inf else log_q) - math.log(k + 1)
        logs.append(log_term)
    top = max(logs)
    return min(1.0, math.exp(top) * sum(math.exp(value - top) for value in logs))
