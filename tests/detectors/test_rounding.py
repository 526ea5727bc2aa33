"""`decimals`: the cheap rounding detector state uses on every call must keep what `round` keeps."""

from hypothesis import given
from hypothesis import strategies as st

from detectors.rounding import decimals


@given(st.floats(min_value=-1e6, max_value=2e9, allow_nan=False), st.integers(min_value=0, max_value=6))
def test_decimals_is_within_half_a_unit_and_prints_as_short_as_round(value: float, places: int) -> None:
    rounded = decimals(value, places)
    assert abs(rounded - value) <= 0.5 * 10.0 ** -places * (1 + 1e-9) + abs(value) * 1e-15
    # As short in JSON as round's: the nearest double to a decimal of `places` places prints as that decimal.
    assert len(repr(rounded)) <= len(repr(round(value, places))) + 1
    half = 0.5 * 10.0 ** -places  # where round goes to even and `decimals` up: either is half a unit away
    assert rounded == round(value, places) or abs(abs(rounded - value) - half) < 1e-9 + abs(value) * 1e-15
