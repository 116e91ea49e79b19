"""Pacing core: preview, progressive and predictive decisions, the forecast, the compliance
allowance and its calibration, throttling and AMD trust."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callcenter.features.dialer import pacing
from callcenter.features.dialer.pacing import Inputs, decide, initial_state

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
    """All agents just started a long live call (no machine reaches agents): 0 lines."""
    inp = replace(BASE, agents_free=0, talk_elapsed=(0.0,) * 20, aht_mean_s=600.0, aht_cv=0.2,
                  machine_rate=0.0)
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


def test_throttles_hard_when_rolling_abandon_over_limit() -> None:
    """Over the abandon limit the dialer falls back to progressive (one line per free agent)."""
    free = replace(BASE, agents_free=3, talk_elapsed=(170.0,) * 17)
    over = replace(free, rolling_abandoned=21, rolling_human_answers=1000)  # 2.1% drops + 1% AMD FP
    st_, d = decide(initial_state(), over, 0.0)
    assert d.lines == 3
    assert st_.throttled and "throttled" in d.reason
    assert lines(free) > 3  # the same floor with budget left dials more


def test_near_the_limit_dials_little() -> None:
    """With a fifth of an abandon left, the allowance is small: fewer lines than with budget."""
    free = replace(BASE, agents_free=3, talk_elapsed=(170.0,) * 17)
    st_, d = decide(initial_state(), replace(free, rolling_abandoned=20), 0.0)
    assert 3 <= d.lines < lines(free)
    assert st_.allowance < 0.5 * (0.03 - 0.01)


def test_guard_keeps_expected_drops_in_flight_within_the_slack() -> None:
    """Callers about to drop use up the slack: the guard dials nothing more and says so."""
    inp = replace(BASE, agents_free=0, waiting=4, wrap_remaining=(3.0,) * 10, talk_elapsed=(0.0,) * 10,
                  rolling_abandoned=19)
    st_, d = decide(initial_state(), inp, 0.0)
    assert d.lines == 0 and st_.throttled and "guard" in d.reason
    assert lines(replace(inp, rolling_abandoned=0)) > 0  # the same state with slack dials


def test_throttles_before_the_campaign_has_history() -> None:
    """With no human answers yet there is no abandon budget: progressive only."""
    inp = replace(BASE, agents_free=5, talk_elapsed=(170.0,) * 15, rolling_human_answers=0)
    assert lines(inp) == 5


def test_allowance_shrinks_as_abandons_accumulate() -> None:
    """The more of the budget is spent, the lower the drop allowance and the fewer lines."""
    inp = replace(BASE, agents_free=2, talk_elapsed=(150.0,) * 18)
    counts = [lines(replace(inp, rolling_abandoned=a)) for a in (12, 16, 19)]
    allowances = [decide(initial_state(), replace(inp, rolling_abandoned=a), 0.0)[0].allowance
                  for a in (12, 16, 19)]
    assert counts[0] >= counts[1] >= counts[2]
    assert allowances[0] > allowances[1] > allowances[2] > 0


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
    assert {"expected_drops", "expected_free", "target"} <= rec.keys()
    assert "slack" in d.reason and "calibration" in d.reason


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


def test_drop_allowance_is_the_budget_rate_at_the_reserve() -> None:
    """At a slack equal to the reserve the allowance is the budget rate; 0 budget allows nothing."""
    reserve = 2.5 * (4.0 / 2.0) ** 0.5
    assert pacing.drop_allowance(reserve, 0.02, 2.5, 4.0) == pytest.approx(0.02)
    assert pacing.drop_allowance(reserve + 4.0, 0.02, 2.5, 4.0) == pytest.approx(0.02 * np.e)
    assert pacing.drop_allowance(50.0, 0.02, 2.5, 4.0) == pytest.approx(0.02 * pacing.MAX_ALLOWANCE)
    assert pacing.drop_allowance(5.0, 0.0, 2.5, 4.0) == 0.0


@settings(max_examples=200, deadline=None)
@given(a=st.floats(-50, 50), b=st.floats(-50, 50), rate=st.floats(0, 0.1), z=st.floats(0, 4),
       scale=st.floats(0.1, 20))
def test_drop_allowance_is_monotone_and_bounded(a: float, b: float, rate: float, z: float, scale: float) -> None:
    """More slack never lowers the allowance, which stays within [0, MAX_ALLOWANCE x budget rate]."""
    lo, hi = sorted((a, b))
    x, y = pacing.drop_allowance(lo, rate, z, scale), pacing.drop_allowance(hi, rate, z, scale)
    assert 0.0 <= x <= y <= pacing.MAX_ALLOWANCE * rate + 1e-12


def test_ringing_line_counts_less_the_longer_it_rang() -> None:
    """A line close to its no-answer timeout is unlikely to be answered: less demand due."""
    def due(elapsed: float) -> float:
        return float(pacing.forecast(replace(BASE, ringing_elapsed=(elapsed,))).demand_routed[-1])
    assert due(1.0) > due(15.0) > due(24.0) > 0.0
    assert 0.25 < due(1.0) <= 0.37  # at most P(routed) = 0.35 x 0.99 + 0.25 x 0.1 of a fresh line


def test_call_just_connected_may_be_an_answering_machine() -> None:
    """With AMD not trusted, machines reach agents: a call 1 s old may end in seconds."""
    agents = replace(BASE, talk_elapsed=(1.0,) * 20, amd_false_positive=0.05)
    machines = pacing.forecast(agents, trusted=False)
    people = pacing.forecast(replace(agents, machine_rate=0.0), trusted=False)
    k = int(np.searchsorted(machines.t, 10.0))
    assert people.supply_mean[k] < 0.01
    assert machines.supply_mean[k] > 5.0  # 25 / 60 of the routed answers are machines


def test_learnt_ring_times_shape_the_risk() -> None:
    """Answers that come fast would reach the agents before they free up: riskier lines."""
    inp = replace(BASE, agents_free=0, wrap_remaining=(8.0,) * 3, talk_elapsed=(60.0,) * 17)
    fast = tuple(min(1.0, k / 3.0) for k in range(26))  # every answer within 3 s
    slow = tuple(0.0 if k < 15 else min(1.0, (k - 14) / 5.0) for k in range(26))  # 15-19 s
    risk_fast = pacing.forecast(replace(inp, ring_cdf=fast)).assess(3)[0]
    risk_slow = pacing.forecast(replace(inp, ring_cdf=slow)).assess(3)[0]
    assert risk_fast[0] > 0.5 and risk_slow[0] < 0.05
    assert lines(replace(inp, ring_cdf=slow)) > lines(replace(inp, ring_cdf=fast))


def test_calibration_lowers_the_allowance_when_drops_exceed_the_forecast() -> None:
    """Drops seen 3x the forecast: the same state dials fewer lines."""
    inp = replace(BASE, agents_free=2, talk_elapsed=(150.0,) * 18, rolling_abandoned=16)
    pessimist = pacing.PacingState(forecast_drops=10.0, seen_drops=30.0, last_abandoned=16)
    assert pessimist.calibration == pytest.approx(35.0 / 15.0)
    assert lines(inp, pessimist) <= lines(inp)
    assert decide(pessimist, inp, 0.0)[0].allowance < decide(initial_state(), inp, 0.0)[0].allowance


def test_calibration_counts_only_drops_seen_while_pacing() -> None:
    """Drops from before the first decision are not held against the forecast; later ones are."""
    inp = replace(BASE, agents_free=2, talk_elapsed=(150.0,) * 18, rolling_abandoned=5)
    st1, _ = decide(initial_state(), inp, 0.0)
    assert st1.seen_drops == 0.0 and st1.last_abandoned == 5
    st2, _ = decide(st1, replace(inp, rolling_abandoned=7), 1.0)
    assert st2.seen_drops == pytest.approx(2.0, rel=1e-3)
    st3, _ = decide(st2, replace(inp, rolling_abandoned=3), 2.0)  # the window slid
    assert st3.seen_drops <= st2.seen_drops


def test_decide_is_deterministic() -> None:
    """The same state and inputs give the same decision (no clock, no randomness)."""
    inp = replace(BASE, agents_free=2, talk_elapsed=(150.0,) * 18, ringing_elapsed=(2.0, 9.0))
    a = decide(initial_state(), inp, 0.0)
    b = decide(initial_state(), inp, 123.0)
    assert a[0] == b[0] and a[1].lines == b[1].lines and a[1].reason == b[1].reason


_inputs = st.builds(
    lambda free, talk, wrap, ring, amd, wait, h, m, trusted, aht, cv, abandoned, humans: (
        replace(BASE, agents_total=free + len(talk) + len(wrap), agents_free=free, talk_elapsed=tuple(talk),
                wrap_remaining=tuple(wrap), ringing_elapsed=tuple(ring), amd_pending=amd, waiting=wait,
                human_rate=h, machine_rate=m, aht_mean_s=aht, aht_cv=cv, rolling_abandoned=abandoned,
                rolling_human_answers=humans), trusted),
    st.integers(0, 10), st.lists(st.floats(0, 2000), max_size=25), st.lists(st.floats(0, 30), max_size=5),
    st.lists(st.floats(0, 40), max_size=40), st.integers(0, 5), st.integers(0, 4), st.floats(0.01, 0.6),
    st.floats(0.0, 0.35), st.booleans(), st.floats(5, 1000), st.floats(0, 2), st.integers(0, 60),
    st.integers(0, 3000))


@settings(max_examples=150, deadline=None)
@given(case=_inputs)
def test_forecast_is_a_consistent_distribution(case: tuple[Inputs, bool]) -> None:
    """Supply and demand are cumulative (never fall over t) and bounded; risk grows with lines."""
    inp, trusted = case
    fc = pacing.forecast(inp, trusted)
    busy = len(inp.talk_elapsed) + len(inp.wrap_remaining)
    assert np.all(np.diff(fc.supply_mean) >= -1e-9) and np.all(np.diff(fc.demand_routed) >= -1e-9)
    assert np.all(fc.supply_mean <= inp.agents_free + busy + 1e-9)
    assert np.all(fc.demand_routed <= inp.waiting + inp.amd_pending + len(inp.ringing_elapsed) + 1e-9)
    assert np.all(np.diff(fc.per_line) >= -1e-12) and fc.per_line[-1] <= fc.p_route + 1e-12
    assert np.all(fc.supply_var >= 0) and np.all(fc.demand_var >= 0)
    risk, inflight = fc.assess(6)
    assert np.all((risk >= 0) & (risk <= 1)) and np.all(np.diff(risk) >= -1e-9)
    assert 0.0 <= inflight <= inp.waiting + inp.amd_pending + len(inp.ringing_elapsed) + 1e-9


@settings(max_examples=100, deadline=None)
@given(case=_inputs, extra=st.integers(1, 20))
def test_more_abandons_never_mean_more_lines(case: tuple[Inputs, bool], extra: int) -> None:
    """Spending the abandon budget can only slow the dialer down, never speed it up."""
    inp, _ = case
    assert lines(replace(inp, rolling_abandoned=inp.rolling_abandoned + extra)) <= lines(inp)


def _enumerated_risk(fc: pacing.Forecast, n_new: int) -> tuple[float, float]:
    """(risk of the (n_new+1)-th line, drops among the callers in flight when no line is added)
    by enumerating every outcome of the forecast's Bernoulli variables -- what ``assess`` must
    compute by convolution."""
    from itertools import product

    rows = [(-1, p) for p in fc.supply_p] + [(+1, p) for p in fc.demand_p]
    rows += [(+1, fc.per_line_net)] * n_new
    risk_t = np.zeros(len(fc.t))
    late_t = np.zeros(len(fc.t))
    for outcome in product((0, 1), repeat=len(rows)):
        prob = np.ones(len(fc.t))
        v = np.zeros(len(fc.t))
        for hit, (sign, p) in zip(outcome, rows):
            prob = prob * (p if hit else 1.0 - p)
            v = v + sign * hit
        held = fc.waiting + v  # callers holding agents minus the uncertain supply
        risk_t += prob * (held >= fc.supply_fixed)
        late_t += prob * (held >= fc.supply_fixed + 1)
    du = np.diff(fc.per_line, prepend=0.0)
    arrivals = np.diff(fc.demand_routed, prepend=0.0)
    return float(risk_t @ du) / fc.p_route, float(late_t @ arrivals)


@pytest.mark.parametrize("n_new", [0, 1, 2])
def test_exact_risk_matches_enumeration(n_new: int) -> None:
    """The convolution gives the same drop risk as enumerating every agent's and line's outcome."""
    inp = replace(BASE, agents_total=5, agents_free=0, talk_elapsed=(170.0, 240.0, 30.0),
                  wrap_remaining=(6.0,), ringing_elapsed=(3.0, 9.0, 14.0), amd_pending=1,
                  amd_elapsed=(1.0,), waiting=1)
    fc = pacing.forecast(inp, trusted=True)
    assert fc.supply_p.shape[0] == 3 and fc.demand_p.shape[0] == 4  # the case is not degenerate
    risk, inflight = fc.assess(n_new)
    want, _ = _enumerated_risk(fc, n_new)
    _, want_inflight = _enumerated_risk(fc, 0)
    assert 0.01 < want < 0.99
    assert risk[n_new] == pytest.approx(want, rel=1e-9, abs=1e-12)
    assert inflight == pytest.approx(want_inflight, rel=1e-9, abs=1e-12)


def test_spend_scale_grows_with_the_budget() -> None:
    """A window that allows few abandons gets a small scale (small reserve), a large one up to 4."""
    assert pacing.spend_scale(0.0) == 1.0 and pacing.spend_scale(4.0) == 1.0
    assert pacing.spend_scale(16.0) == pytest.approx(2.0)
    assert pacing.spend_scale(1000.0) == 4.0
    small = pacing.drop_allowance(3.0, 0.02, 2.5, pacing.spend_scale(8.0))
    fixed = pacing.drop_allowance(3.0, 0.02, 2.5, 4.0)
    assert small > fixed  # 3 abandons of slack: above the small reserve, under the large one


# ---- giving up late ringing lines

_BUSY_FLOOR = replace(BASE, agents_total=3, agents_free=0, talk_elapsed=(5.0, 8.0, 12.0), no_answer_s=25.0,
                      release_after_s=15.0)


def test_a_late_line_with_no_agent_in_reach_is_released() -> None:
    """A line ringing past 15 s whose answer would find every agent early in a call is given up."""
    inp = replace(_BUSY_FLOOR, ringing_elapsed=(16.0, 4.0))
    _, d = decide(initial_state(), inp, 0.0)
    assert d.release == (0,)
    assert "released 1 lines" in d.reason


def test_no_line_is_released_before_the_rules_minimum() -> None:
    """However risky, a line that has rung under 15 s is never given up (even if configured lower)."""
    inp = replace(_BUSY_FLOOR, ringing_elapsed=(14.9, 10.0), release_after_s=5.0)
    assert decide(initial_state(), inp, 0.0)[1].release == ()


def test_a_late_line_an_agent_is_waiting_for_is_kept() -> None:
    """With an agent free and nothing else in flight, a late answer would be taken: the line rings on."""
    inp = replace(_BUSY_FLOOR, agents_free=1, talk_elapsed=(5.0, 8.0), ringing_elapsed=(18.0,))
    assert decide(initial_state(), inp, 0.0)[1].release == ()


def test_of_two_late_lines_for_one_agent_one_is_kept() -> None:
    """One free agent, two late lines: the longest ringing is weighed first and kept, the second
    (whose answer would find the agent taken by the first) is the one given up -- not both."""
    inp = replace(_BUSY_FLOOR, agents_free=1, talk_elapsed=(5.0, 8.0), ringing_elapsed=(16.0, 20.0),
                  human_rate=0.9, machine_rate=0.05, busy_rate=0.0, amd_false_positive=0.0)
    d = decide(initial_state(), inp, 0.0)[1]
    assert len(d.release) == 1


def test_progressive_and_ring_out_campaigns_never_release() -> None:
    """Only predictive pacing gives lines up, and only when they would otherwise ring longer."""
    inp = replace(_BUSY_FLOOR, ringing_elapsed=(16.0,))
    assert decide(initial_state(), replace(inp, mode="progressive"), 0.0)[1].release == ()
    assert decide(initial_state(), replace(inp, release_after_s=25.0), 0.0)[1].release == ()


def test_ringing_outcome_shares_sum_to_one_and_fade_with_time() -> None:
    """A line still ringing is less likely to be answered the longer it rings; shares sum to 1."""
    early, late = pacing.ringing_outcome(BASE, 5.0), pacing.ringing_outcome(BASE, 20.0)
    assert sum(early.values()) == pytest.approx(1.0) and sum(late.values()) == pytest.approx(1.0)
    assert late["human"] < early["human"] and late["no_answer"] > early["no_answer"]
    learnt = replace(BASE, ring_cdf=(0.0, 0.5, 1.0))  # every answer seen came within 2 s
    assert pacing.ringing_outcome(learnt, 20.0)["no_answer"] == pytest.approx(1.0)
