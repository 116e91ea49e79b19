"""What the live dialler sends to a trunk, and the rates it feeds the pacer."""

from __future__ import annotations

import math
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callcenter.features.dialer import pacing
from callcenter.features.dialer.live import History, dial_number


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


def test_history_starts_at_the_prior_and_moves_to_what_lines_did():
    """No history: the pacer's defaults; many busy lines: the busy rate approaches 1."""
    prior = pacing.Inputs()
    h = History()
    assert h.rates(prior)["human_rate"] == pytest.approx(prior.human_rate)
    for t in range(200):
        h.add(float(t), "busy", 2.0)
    r = h.rates(prior)
    assert r["busy_rate"] > 0.9 and r["human_rate"] < 0.05


def test_ring_cdf_starts_at_the_prior_and_learns_the_ring_times():
    """No answers yet: the exponential prior; many answers after 8 s: almost none by 7 s, all by 9 s."""
    prior = pacing.Inputs()
    h = History()
    cdf = h.ring_cdf(12.0, 25.0)
    assert len(cdf) == 26 and cdf[0] == 0.0
    assert cdf[12] == pytest.approx(1.0 - math.exp(-1.0))
    for t in range(300):
        h.add(float(t), "human" if t % 2 else "machine", 8.0)
        h.add(float(t), "no_answer", 25.0)  # unanswered lines do not count
    cdf = h.ring_cdf(prior.mean_ring_s, 25.0)
    assert cdf[7] < 0.1 and cdf[9] > 0.9 and all(b >= a for a, b in pairwise(cdf))


def test_released_lines_are_learnt_as_the_shares_they_still_had():
    """Lines given up at 15 s count as part answer, part no-answer: the answer rate is neither
    inflated (dropping them) nor deflated (calling them all no-answers), and their answer share
    lands after 15 s in the ring-time distribution."""
    prior = pacing.Inputs()
    h = History()
    for t in range(150):  # 450 lines: the history keeps the last 500
        h.add(float(t), "human", 8.0)
        h.add(float(t), "other", 25.0)  # a no-answer
        h.add_released(float(t), {"human": 0.25, "machine": 0.0, "busy": 0.0, "other": 0.75}, 15.0)
    r = h.rates(prior)
    assert r["human_rate"] == pytest.approx((150 * 1.25 + 10 * prior.human_rate) / 460, rel=1e-6)
    cdf = h.ring_cdf(prior.mean_ring_s, 25.0)
    assert cdf[14] < 0.85 and cdf[25] > 0.95  # 37.5 of 187.5 answers come after 15 s
