"""Amounts a person can read at 3 a.m.: small sums keep two significant digits, and a window's
figure comes with the hourly rate it stands for.

>>> usd(1234.5), usd(0.0022), usd(0.00017), usd(0.5), usd(0.0)
('$1,234.50', '$0.0022', '$0.00017', '$0.50', '$0')
>>> per_hour(0.0022, 60)
'$0.13/h'
"""

from __future__ import annotations

import math

#: Below a millionth of a cent an amount is shown as "$0": nothing a person acts on.
SMALLEST = 1e-10


def usd(value: float) -> str:
    """Cents from $1 up; below that, two significant digits ($0.0022, never "$0.00")."""
    if not math.isfinite(value):
        return "n/a"
    size = abs(value)
    if size < SMALLEST:
        return "$0"
    if size >= 1:
        return f"{'-' if value < 0 else ''}${size:,.2f}"
    digits = max(2, 1 - math.floor(math.log10(size)))
    return f"{'-' if value < 0 else ''}${size:.{digits}f}"


def per_hour(value: float, window_s: float) -> str:
    """A window's spend as the hourly rate it runs at."""
    return usd(value * 3600.0 / window_s) + "/h"
