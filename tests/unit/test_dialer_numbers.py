"""What the live dialler sends to a trunk (the rates it feeds the pacer: test_dialer_estimator)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callcenter.features.dialer.live import dial_number


def test_e164_goes_out_as_digits():
    """+12125550101 is dialled as 12125550101."""
    assert dial_number("+12125550101") == "12125550101"


@pytest.mark.parametrize("bad", ["", "+1", "12;3456789", "1212555\n0101", "$(reboot)", "1212555010a", "+" + "1" * 16])
def test_anything_but_digits_is_refused(bad):
    """A lead number that is not 6-15 digits never reaches a dial string."""
    with pytest.raises(ValueError):
        dial_number(bad)


@given(st.text(max_size=20))
def test_dial_number_output_is_only_digits(text):
    """Whatever the input, what comes out (if anything) is digits only."""
    try:
        out = dial_number(text)
    except ValueError:
        return
    assert out.isdigit() and 6 <= len(out) <= 15
