"""The one estimator of line outcomes, ring times and handle times (live dialler and simulator)."""

from __future__ import annotations

import math
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callcenter.features.dialer import pacing
from callcenter.features.dialer.estimator import (
    AHT_PRIOR_CALLS,
    PRIOR_LINES,
    RATE_PRIOR,
    WINDOW,
    Estimator,
)


def _est() -> Estimator:
    return Estimator(ring_prior_s=12.0, no_answer_s=25.0, aht_s=180.0, aht_cv=0.5)


def test_rates_start_at_the_prior_and_move_to_what_lines_did():
    """No history: the prior rates; many busy lines: the busy rate approaches 1."""
    e = _est()
    assert e.fields()["human_rate"] == pytest.approx(RATE_PRIOR["human"])
    for _ in range(2000):
        e.outcome({"busy": 1.0})
    f = e.fields()
    assert f["busy_rate"] > 0.95 and f["human_rate"] < 0.02
    assert len(e.hist) == WINDOW  # only the last WINDOW lines count


def test_ring_cdf_starts_at_the_prior_and_learns_the_ring_times():
    """No answers yet: the exponential prior; many answers after 8 s: almost none by 7 s, nearly all by 9 s."""
    e = _est()
    cdf = e.ring_cdf()
    assert len(cdf) == 26 and cdf[0] == 0.0
    assert cdf[12] == pytest.approx((1.0 - math.exp(-1.0)) / (1.0 - math.exp(-25 / 12)))  # truncated at 25 s
    for _ in range(3000):
        e.answered(8.4)
    cdf = e.ring_cdf()
    assert cdf[8] < 0.05 and cdf[9] > 0.95 and all(b >= a for a, b in pairwise(cdf))
    assert e.fields()["mean_ring_s"] == pytest.approx(8.4, rel=0.01)


def test_released_lines_are_learnt_as_the_shares_they_still_had():
    """Lines given up at 15 s count as part answer, part no-answer, and their answer share lands
    after 15 s in the ring-time distribution."""
    e = _est()
    for _ in range(300):
        e.outcome({"human": 1.0})
        e.answered(8.0)
        e.released({"human": 0.25, "machine": 0.0, "busy": 0.0, "no_answer": 0.75}, 15.0)
    n = 600 + PRIOR_LINES
    assert e.fields()["human_rate"] == pytest.approx((300 * 1.25 + PRIOR_LINES * RATE_PRIOR["human"]) / n)
    cdf = e.ring_cdf()
    assert cdf[15] < 0.9 and cdf[25] == pytest.approx(1.0)


def test_talk_time_is_learnt_from_calls_that_ended_after_the_aht_prior():
    """The AHT prior (the queue's figure when given) weighs AHT_PRIOR_CALLS calls; ended calls move it."""
    e = _est()
    assert e.fields()["aht_mean_s"] == pytest.approx(180.0)
    assert e.fields(aht_prior_s=300.0)["aht_mean_s"] == pytest.approx(300.0)
    for _ in range(20):
        e.call_ended(60.0)
    assert e.fields()["aht_mean_s"] == pytest.approx((20 * 60 + AHT_PRIOR_CALLS * 180) / (20 + AHT_PRIOR_CALLS))
    e.call_ended(5.0, machine=True)
    assert e.fields()["machine_handle_s"] < 10.0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(
    st.tuples(st.just("outcome"), st.sampled_from(["human", "machine", "busy", "no_answer"])),
    st.tuples(st.just("answered"), st.floats(0.0, 60.0)),
    st.tuples(st.just("released"), st.floats(15.0, 25.0)),
), max_size=200))
def test_whatever_happens_the_estimates_are_a_distribution(events):
    """Any mix of outcomes, answers and releases: rates in [0, 1] summing to <= 1, a monotone ring CDF to 1."""
    e = _est()
    for kind, v in events:
        if kind == "outcome":
            e.outcome({v: 1.0})
        elif kind == "answered":
            e.answered(v)
        else:
            e.released(pacing.ringing_outcome(pacing.Inputs(**e.fields()), v), v)  # type: ignore[arg-type]
    f = e.fields()
    rates = [f["human_rate"], f["machine_rate"], f["busy_rate"]]
    assert all(0.0 <= r <= 1.0 for r in rates) and sum(rates) <= 1.0 + 1e-9
    cdf = f["ring_cdf"]
    assert cdf[0] == 0.0 and cdf[-1] == pytest.approx(1.0) and all(b >= a - 1e-12 for a, b in pairwise(cdf))
