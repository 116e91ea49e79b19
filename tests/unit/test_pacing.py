"""Pacing core: preview, progressive and predictive decisions, throttling and AMD trust."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callcenter.core import pacing
from callcenter.core.pacing import Inputs, decide, initial_state

BASE = Inputs(mode="predictive", agents_total=20, agents_free=0, talk_elapsed=(60.0,) * 20,
              human_rate=0.35, machine_rate=0.25, busy_rate=0.05, mean_ring_s=12.0,
              amd_machine_detect=0.9, amd_false_positive=0.01, aht_mean_s=180.0, aht_cv=0.5,
              wrap_s=10.0, rolling_abandoned=0, rolling_human_answers=1000, max_abandon_rate=0.03)


def lines(inp: Inputs, state: pacing.PacingState | None = None) -> int:
    """The number of lines decide() dials for these inputs."""
    return decide(state or initial_state(), inp, 0.0)[1].lines


@pytest.mark.parametrize("free,ringing,want", [(5, 0, 5), (5, 2, 3), (2, 5, 0), (0, 0, 0), (20, 20, 0)])
def test_progressive_is_free_agents_minus_lines_in_flight(free: int, ringing: int, want: int) -> None:
    """Progressive dials one line per free agent not already covered by a ringing line."""
    inp = replace(BASE, mode="progressive", agents_free=free, talk_elapsed=(60.0,) * (20 - free),
                  ringing_elapsed=(3.0,) * ringing)
    assert lines(inp) == want


def test_progressive_counts_answered_and_waiting_lines_as_covering() -> None:
    """Lines in AMD or waiting for an agent also cover a free agent in progressive mode."""
    inp = replace(BASE, mode="progressive", agents_free=4, talk_elapsed=(60.0,) * 16,
                  ringing_elapsed=(1.0,), amd_pending=1, waiting=1)
    assert lines(inp) == 1


def test_preview_never_dials_by_itself() -> None:
    """Preview mode dials no automatic lines, however many agents are free."""
    inp = replace(BASE, mode="preview", agents_free=20, talk_elapsed=())
    _, d = decide(initial_state(), inp, 0.0)
    assert d.lines == 0 and "preview" in d.reason


def test_predictive_never_dials_when_no_agent_can_be_free_soon() -> None:
    """All agents just started a long call: no agent can be free within ring time, so 0 lines."""
    inp = replace(BASE, agents_free=0, talk_elapsed=(0.0,) * 20, aht_mean_s=600.0, aht_cv=0.2)
    _, d = decide(initial_state(), inp, 0.0)
    assert d.lines == 0
    assert d.expected_free < 0.05


def test_predictive_overdials_when_agents_are_about_to_free() -> None:
    """With agents free or finishing and budget left, predictive dials more than progressive."""
    inp = replace(BASE, agents_free=3, talk_elapsed=(170.0,) * 17)
    prog = lines(replace(inp, mode="progressive"))
    assert lines(inp) > prog == 3


def test_predictive_never_dials_fewer_than_progressive() -> None:
    """Predictive covers every free agent at least (progressive is drop-free)."""
    inp = replace(BASE, agents_free=6, talk_elapsed=(0.0,) * 14, rolling_abandoned=25)
    assert lines(inp) >= 6


def test_throttles_hard_when_rolling_abandon_at_limit() -> None:
    """At the abandon limit the dialer falls back to progressive (one line per free agent)."""
    free = replace(BASE, agents_free=3, talk_elapsed=(170.0,) * 17)
    at_limit = replace(free, rolling_abandoned=20, rolling_human_answers=1000)  # 2% drops + 1% AMD FP
    st_, d = decide(initial_state(), at_limit, 0.0)
    assert d.lines == 3
    assert st_.throttled and "throttled" in d.reason
    assert lines(free) > 3  # the same floor with budget left dials more


def test_throttles_before_the_campaign_has_history() -> None:
    """With no human answers yet there is no abandon budget: progressive only."""
    inp = replace(BASE, agents_free=5, talk_elapsed=(170.0,) * 15, rolling_human_answers=0)
    assert lines(inp) == 5


def test_integral_gain_shrinks_as_abandons_accumulate() -> None:
    """The more of the budget is spent, the lower the gain and the fewer lines."""
    inp = replace(BASE, agents_free=2, talk_elapsed=(150.0,) * 18)
    counts = [lines(replace(inp, rolling_abandoned=a)) for a in (0, 10, 16)]
    gains = [decide(initial_state(), replace(inp, rolling_abandoned=a), 0.0)[0].gain for a in (0, 10, 16)]
    assert counts[0] >= counts[1] >= counts[2]
    assert gains[0] > gains[1] > gains[2]


def test_stops_trusting_amd_when_false_positives_alone_break_the_limit() -> None:
    """AMD FP 5% > limit 3%: AMD is bypassed (every answer to an agent) and the reason says so."""
    inp = replace(BASE, amd_false_positive=0.05)
    st_, d = decide(initial_state(), inp, 0.0)
    assert not d.amd_trusted and not st_.amd_trusted
    assert "amd-untrusted" in d.reason
    _st2, d2 = decide(st_, inp, 1.0)  # stays untrusted, still logged as bypassed
    assert not d2.amd_trusted and "amd-bypassed" in d2.reason


def test_trusts_amd_when_false_positives_leave_room() -> None:
    """AMD FP 1% under a 3% limit: AMD stays trusted."""
    st_, d = decide(initial_state(), BASE, 0.0)
    assert d.amd_trusted and st_.amd_trusted


def test_amd_trust_applies_in_progressive_mode_too() -> None:
    """Compliance is not a predictive-only feature: progressive also bypasses a bad AMD."""
    d = decide(initial_state(), replace(BASE, mode="progressive", amd_false_positive=0.04), 0.0)[1]
    assert not d.amd_trusted


def test_respects_max_dial_ratio() -> None:
    """Lines in flight never exceed max_dial_ratio x agents."""
    inp = replace(BASE, agents_total=4, agents_free=4, talk_elapsed=(), human_rate=0.02,
                  machine_rate=0.01, max_dial_ratio=2.0, ringing_elapsed=(1.0,) * 3)
    assert lines(inp) <= 8 - 3


def test_decision_carries_inputs_and_log_fields() -> None:
    """A decision keeps its inputs and renders a flat log record."""
    d = decide(initial_state(), BASE, 0.0)[1]
    assert d.inputs is BASE
    rec = d.log_fields()
    assert rec["lines"] == d.lines and rec["agents_total"] == 20 and rec["talk_elapsed"] == 20


def test_agent_free_prob_is_conditional_remaining_service() -> None:
    """A call already long past its mean is likelier to end soon than a fresh one (lognormal)."""
    mu, sigma = pacing.lognormal_params(180.0, 0.5)
    fresh = pacing.agent_free_prob(0.0, 15.0, mu, sigma)
    ripe = pacing.agent_free_prob(200.0, 15.0, mu, sigma)
    assert 0.0 <= fresh < 0.001 < ripe <= 1.0
    assert pacing.agent_free_prob(10.0, 0.0, mu, sigma) == 0.0


@settings(max_examples=150, deadline=None)
@given(free=st.integers(0, 30), busy=st.integers(0, 30), ringing=st.integers(0, 60),
       elapsed=st.floats(0, 1000), h=st.floats(0.01, 0.9), abandoned=st.integers(0, 100),
       humans=st.integers(0, 3000))
def test_predictive_bounds_property(free: int, busy: int, ringing: int, elapsed: float, h: float,
                                    abandoned: int, humans: int) -> None:
    """Predictive always dials between progressive's count and the dial-ratio cap."""
    inp = replace(BASE, agents_total=free + busy, agents_free=free, talk_elapsed=(elapsed,) * busy,
                  ringing_elapsed=(5.0,) * ringing, human_rate=h, machine_rate=min(0.1, 1 - h),
                  rolling_abandoned=abandoned, rolling_human_answers=humans)
    n = lines(inp)
    cap = max(0, int(5.0 * (free + busy)) - ringing)
    assert min(max(0, free - ringing), cap) <= n <= cap
