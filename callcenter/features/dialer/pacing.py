"""Dialer pacing: ``decide(state, inputs, now) -> (state, Decision)``.

Rules of this module: no I/O, no clock, no randomness. Everything the dialer knows at a
decision instant comes in as :class:`Inputs`; the only memory is the small frozen
:class:`PacingState`. The live dialer and the simulator (``callcenter.features.dialer.sim``) call the
same function, so what the benchmark measures is what production runs. Inputs are only what
a live dialer can know: call and agent states with their elapsed times, and rates learnt from
calls that have finished.

Compliance definitions (US FTC TSR, UK Ofcom):

* **abandoned** = live human answers not connected to an agent within 2 s of the answer
  (greeting end), PLUS live humans that AMD wrongly classified MACHINE and hung up on.
  AMD false positives cannot be observed, so they are *estimated*: ``amd_false_positive``
  times the human answers.
* **abandon rate** = abandoned / human answers, over the rolling window the caller keeps
  (``rolling_*`` inputs; 24 h for Ofcom, 30 days for the TSR). Limit: ``max_abandon_rate``
  (3 % by default; a campaign may set less, e.g. 1 %).

Modes:

* ``preview``: never dials by itself (an agent takes a lead explicitly): 0 lines.
* ``progressive``: one line per free agent not already covered by a line in flight. Never
  drops a call (each line has its agent), so it is also the fallback when the abandon
  budget is spent.
* ``predictive``: a time-resolved forecast over the next ``no_answer_s + amd_delay_s``
  seconds in 1 s steps (:func:`forecast`), and a threshold on the marginal drop risk.

  *Supply* ``S(t)``: agents available by ``t`` -- free now, wrap-ups ending by ``t``, and each
  busy agent with its probability of being free by ``t`` given how long the call has already
  lasted (remaining talk time from the lognormal AHT conditioned on the elapsed time, then
  wrap-up). A call that reached an agent may also be an answering machine AMD let through
  (handled ``machine_handle_s``, no wrap-up); its posterior share falls as the call lasts.
  *Demand* ``R(t)``: callers routed by ``t`` -- waiting now, lines in AMD (routed when their
  analysis ends), and each ringing line with its probability of being answered by ``t``
  given how long it has rung (the learnt answer-time distribution conditioned on survival,
  against busy and no-answer), times P(routed | answered). A routed machine gives its agent
  back after ``machine_handle_s``. Both are Poisson-binomial sums (one Bernoulli variable
  per talking agent, per line in flight).

  A caller routed at ``t`` is dropped when the callers routed before it already hold every
  agent available by its deadline ``t + 2 s`` (``t`` is the end of a 1 s step; the deadline
  is taken from the step's middle). So the *marginal risk* of one more line is
  ``P(R(t) + new(t) - S(t + 2 s) >= 0)``, averaged over when that line would be routed,
  computed *exactly*: the distribution of the difference by convolution per time step, and
  the new lines as a binomial on top (:meth:`Forecast.assess`). A normal approximation was
  measured to misjudge these tails by 0.3x to 2.7x depending on the regime (a few agents
  about to free up vs. many wrap-ups ending), which the single calibration factor below
  cannot correct; exact, they came out at 1.2x to 3.9x (a handful of drops each), all on the
  same side, leaving the calibration a common factor to learn.

  The dialer adds lines while the next one's risk stays under the allowance ``lambda``,
  never dials fewer lines than progressive would, never lets
  the expected drops of everything in flight exceed what the budget can absorb, and never
  puts more than ``max_dial_ratio`` x agents lines in flight.

  ``lambda`` comes from the rolling compliance budget (:func:`drop_allowance`): the *slack*
  -- abandons still allowed in the window, ``limit x humans - abandoned`` -- is held near a
  *reserve* of ``confidence_z`` standard deviations of its own noise: ``lambda = budget rate
  x exp((slack - reserve) / spend_scale)``. Each abandon divides ``lambda`` by
  ``exp(1/spend_scale)``, every live answer adds budget back, and the slack then fluctuates by
  about ``sqrt(spend_scale / 2)`` abandons, so the reserve is ``z x sqrt(spend_scale / 2)``
  abandons: a margin sized by the statistics of the abandon count, which shrinks as a share
  of the budget as the window fills, instead of a fixed factor. The scale itself grows with
  the abandons the window allows so far (:func:`spend_scale`: ``sqrt(allowed) / 2`` within
  [1, 4]): a small budget keeps a reserve of ~2 abandons, a large one a steadier allowance. ``lambda`` is then divided by
  the forecast's *calibration* -- drops seen / drops forecast for the lines dialled, with a
  prior and a long memory (:class:`PacingState`) -- so a forecast that is optimistic or
  pessimistic for this campaign is corrected. At or over the limit (no slack left) the
  dialer throttles to progressive.

Releasing late lines (:func:`release_lines`): the rules let a line be given up once it has
rung 15 s (``release_after_s``) and nobody is abandoned by that, while a late answer that
finds every agent busy is a drop. So each line ringing that long, longest first, is kept only
while its own drop risk -- computed as for a new line, counting the late lines kept before it
-- stays within ``lambda``; the others are released (``Decision.release``) and the dial
decision is taken without them. A released line's outcome is never seen, so it is learnt as
the share of each outcome it still had (:func:`ringing_outcome`), which keeps the learnt
rates unbiased. Measured: the benchmark's geometric mean of idle ratios 0.515 / 0.530 ->
0.478 / 0.470 (seeds 7 / 8), every scenario better.

AMD trust: when the estimated false positives alone would use ``amd_untrust_share`` (80 %)
of the limit or more -- so certainly when ``amd_false_positive x humans > limit x humans``
-- AMD verdicts are no longer trusted: the dialer routes every answer to an agent (machines
cost agent time, but no live person is hung up on) and says so in ``reason``. Trust comes back
only when the false-positive rate falls under half that share (hysteresis).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import numpy as np

__all__ = [
    "GRACE_S",
    "Decision",
    "Forecast",
    "Inputs",
    "Mode",
    "PacingState",
    "agent_free_prob",
    "decide",
    "drop_allowance",
    "forecast",
    "initial_state",
    "lognormal_params",
    "release_lines",
    "ringing_outcome",
]

Mode = Literal["preview", "progressive", "predictive"]
MODES: tuple[str, ...] = ("preview", "progressive", "predictive")
GRACE_S = 2.0  # a live answer must reach an agent within 2 s
STEP_S = 1.0  # forecast time step
CALIBRATION_LINES = 50_000.0  # memory of drops seen / drops forecast, in dialled lines
CALIBRATION_PRIOR = 5.0  # pseudo-drops on both sides of that ratio
MAX_ALLOWANCE = 4.0  # the allowance never exceeds this many times the budget rate ...
MAX_RISK = 0.5  # ... nor this drop probability per line, whatever the slack


@dataclass(frozen=True)
class Inputs:
    """What the dialer knows at a decision instant (times in seconds)."""

    mode: Mode = "predictive"
    # agents (logged in, not paused)
    agents_total: int = 0
    agents_free: int = 0
    talk_elapsed: tuple[float, ...] = ()  # per agent on a call: seconds into the current call
    wrap_remaining: tuple[float, ...] = ()  # per agent in wrap-up: seconds left
    # lines in flight
    ringing_elapsed: tuple[float, ...] = ()  # per ringing line: seconds since dialled
    amd_pending: int = 0  # answered, AMD still listening
    amd_elapsed: tuple[float, ...] = ()  # optional, per line in AMD: seconds since the answer
    waiting: int = 0  # answered and routed, no agent yet (inside the 2 s grace)
    # recent history (per dialled line that finished)
    human_rate: float = 0.3  # live person answers
    machine_rate: float = 0.2  # answering machines
    busy_rate: float = 0.05
    mean_ring_s: float = 12.0  # dial to answer, for answered lines ...
    ring_cv: float = 1.0  # ... and its coefficient of variation (1: exponential, else lognormal)
    ring_cdf: tuple[float, ...] = ()  # optional, learnt: P(an answered line rang <= k s), k = 0, 1, ...
    no_answer_s: float = 25.0  # a line that is not answered rings this long
    release_after_s: float = 15.0  # a ringing line may be given up once it has rung this long (rules: >= 15 s)
    busy_s: float = 3.0  # a busy line ends this soon
    amd_delay_s: float = 2.5  # answer to AMD verdict
    amd_machine_detect: float = 0.9  # P(MACHINE | machine)
    amd_false_positive: float = 0.01  # P(MACHINE | human)
    aht_mean_s: float = 180.0  # talk time with a person (lognormal): mean, coefficient of variation
    aht_cv: float = 0.5
    wrap_s: float = 10.0
    machine_handle_s: float = 8.0  # agent time on a machine that reached it (lognormal, no wrap-up)
    machine_handle_cv: float = 0.5
    # rolling compliance window
    rolling_abandoned: int = 0  # humans not connected within 2 s (drops; AMD FPs are added here)
    rolling_human_answers: int = 0  # humans answered (AMD said HUMAN, or AMD not trusted)
    max_abandon_rate: float = 0.03
    # campaign knobs
    max_dial_ratio: float = 5.0  # lines in flight per logged-in agent
    confidence_z: float = 2.5  # standard deviations of the slack's noise kept in reserve
    # abandons of slack above the reserve that multiply the allowance by e; 0: grows with the
    # window's allowance (see ``spend_scale``)
    spend_scale: float = 0.0
    amd_untrust_share: float = 0.8


@dataclass(frozen=True)
class PacingState:
    """The pacer's memory: AMD trust, the last allowance and throttling (for the log), and
    the forecast's calibration.

    ``forecast_drops``: drops the forecast expected of the lines dialled; ``seen_drops``: drops
    that happened (both fade by ``1/CALIBRATION_LINES`` per line dialled);
    ``last_abandoned``: the ``rolling_abandoned`` seen last, to count new drops (-1: none seen
    yet, so drops from before the pacer started are not held against its forecast).
    """

    amd_trusted: bool = True
    allowance: float = 0.0
    throttled: bool = False
    decisions: int = 0
    forecast_drops: float = 0.0
    seen_drops: float = 0.0
    last_abandoned: int = -1

    @property
    def calibration(self) -> float:
        """Drops seen per drop forecast (1 until there is evidence), within [1/4, 4]."""
        k = CALIBRATION_PRIOR
        return min(4.0, max(0.25, (self.seen_drops + k) / (self.forecast_drops + k)))


@dataclass(frozen=True)
class Decision:
    """How many new lines to dial now, why, and on what."""

    lines: int
    reason: str
    amd_trusted: bool
    inputs: Inputs = field(repr=False)
    release: tuple[int, ...] = ()  # indices into ``inputs.ringing_elapsed``: lines to give up now
    expected_free: float = 0.0
    expected_demand: float = 0.0
    target: float = 0.0
    expected_drops: float = 0.0

    def log_fields(self) -> dict[str, Any]:
        """Flat fields for one structured log line."""
        d = asdict(self.inputs)
        for k in ("talk_elapsed", "wrap_remaining", "ringing_elapsed", "amd_elapsed", "ring_cdf"):
            d[k] = len(d[k])
        return {"lines": self.lines, "release": len(self.release), "reason": self.reason,
                "amd_trusted": self.amd_trusted,
                "expected_free": round(self.expected_free, 3),
                "expected_demand": round(self.expected_demand, 3),
                "expected_drops": round(self.expected_drops, 4),
                "target": round(self.target, 5), **d}


def initial_state() -> PacingState:
    return PacingState()


# --------------------------------------------------------------------------- maths

_SQRT2 = math.sqrt(2.0)

# log of the standard normal survival function on a grid, linearly interpolated (relative
# error < 1e-5 over z in [-9, 37]; numpy has no erfc and the core takes no scipy)
_LZ0, _LZ1, _LH = -9.0, 37.0, 0.005
_LOGSF = np.array([math.log(0.5 * math.erfc(z / _SQRT2))
                   for z in np.arange(_LZ0, _LZ1 + _LH / 2, _LH)])
_LOGSF_D = np.diff(_LOGSF, append=_LOGSF[-1])
_LOGSF_FLOOR = float(_LOGSF[-1]) + 1.0  # at or under this, z was clamped: "far in the tail"


def _log_sf(z: np.ndarray) -> np.ndarray:
    """log(1 - Phi(z)), elementwise (clamped outside [-9, 37])."""
    f = (np.minimum(np.maximum(z, _LZ0), _LZ1) - _LZ0) * (1.0 / _LH)
    i = f.astype(np.intp)
    return _LOGSF[i] + (f - i) * _LOGSF_D[i]


def lognormal_params(mean: float, cv: float) -> tuple[float, float]:
    """(mu, sigma) of the lognormal with this mean and coefficient of variation."""
    s2 = math.log1p(cv * cv)
    return math.log(mean) - s2 / 2.0, math.sqrt(s2)


_MIN_SIGMA = 0.05  # a near-deterministic duration is modelled as a narrow lognormal


def _ln_log_sf(x: np.ndarray, mu: float, sigma: float) -> np.ndarray:
    """log P(X > x) for X lognormal(mu, sigma); 0 at x <= 0."""
    return _log_sf((np.log(np.maximum(x, 1e-30)) - mu) * (1.0 / max(sigma, _MIN_SIGMA)))


def _conditional_end(elapsed: np.ndarray, t: np.ndarray, mu: float, sigma: float,
                     l0: np.ndarray | None = None) -> np.ndarray:
    """``[i, k]``: P(a lognormal duration already ``elapsed[i]`` long ends within ``t[k]`` more).

    ``l0``: ``_ln_log_sf(elapsed, mu, sigma)`` when the caller has it already.
    """
    l0 = (_ln_log_sf(elapsed, mu, sigma) if l0 is None else l0)[:, None]
    l1 = _ln_log_sf(elapsed[:, None] + np.maximum(t, 0.0)[None, :], mu, sigma)
    p = 1.0 - np.exp(np.minimum(l1 - l0, 0.0))
    far = l0[:, 0] <= _LOGSF_FLOOR
    if far.any():
        p[far] = 1.0  # beyond anything the model can tell apart: about to end
        p[:, t <= 0] = 0.0
    return p


def agent_free_prob(elapsed: float, within: float, mu: float, sigma: float) -> float:
    """P(a call already ``elapsed`` long ends within ``within`` more seconds)."""
    if within <= 0:
        return 0.0
    return float(_conditional_end(np.array([float(elapsed)]), np.array([float(within)]), mu, sigma)[0, 0])


# --------------------------------------------------------------------------- forecast

@dataclass(frozen=True)
class Forecast:
    """Supply and demand over the forecast grid ``t`` (seconds from now).

    A caller routed in the step ending at ``t[k]`` has until ``t[k] - STEP_S / 2 + GRACE_S``
    (the step's middle plus the grace) to find an agent. ``supply_*[k]``: agents available by
    then (mean, variance); ``supply_fixed[k]`` of them certainly (free now, wrap-ups ending),
    each row of ``supply_p`` one talking agent's probability; ``demand_routed[k]``: callers
    routed by ``t[k]`` from what is already in flight, ``demand_*[k]`` the agents they hold then
    (a machine gives its agent back after ``machine_handle_s``): ``waiting`` certainly, each
    row of ``demand_p`` one line in flight; ``per_line[k]``: P(a line dialled now is routed by
    ``t[k]``), ``per_line_net[k]`` P(it holds an agent then); ``humans_in_flight``: expected
    live answers still to come from the lines in flight; ``p_route``/``p_human``: per dialled
    line; ``p_human_answer``: P(a live person answers a dialled line).
    """

    t: np.ndarray
    supply_mean: np.ndarray
    supply_var: np.ndarray
    demand_mean: np.ndarray
    demand_var: np.ndarray
    demand_routed: np.ndarray
    per_line: np.ndarray
    per_line_net: np.ndarray
    humans_in_flight: float
    p_route: float
    p_human: float
    p_human_answer: float
    supply_fixed: np.ndarray
    supply_p: np.ndarray
    demand_p: np.ndarray
    waiting: int = 0

    def excess_pmf(self, headroom: int = 0) -> tuple[np.ndarray, int, np.ndarray]:
        """(``need``, ``m``, ``pmf``): ``pmf[k, i]`` = P(V = i - m) at ``t[k]``, where V = (agents
        held by callers routed by ``t[k]``) - (agents of uncertain supply free by the deadline)
        and ``m`` the number of those agents; a caller is dropped when ``V >= need[k]`` (the
        certain supply less the callers waiting). V >= ``need.max() + 1 + headroom`` is a drop
        whatever else happens, so that top bin absorbs."""
        need = np.rint(self.supply_fixed - self.waiting).astype(np.intp)
        m = self.supply_p.shape[0]
        top = max(int(need.max()) + 1, 1) + max(headroom, 0)
        pmf = np.zeros((len(self.t), m + top + 1))
        pmf[:, m] = 1.0
        for b in self.supply_p:  # an agent freeing up: V - 1
            nxt = pmf * (1.0 - b)[:, None]
            nxt[:, :-1] += pmf[:, 1:] * b[:, None]
            pmf = nxt
        for a in np.clip(self.demand_p, 0.0, 1.0):  # a caller holding an agent: V + 1
            pmf = _up(pmf, a)
        return need, m, pmf

    def assess(self, n_max: int, stop: float = 1.0, floor: int = 0) -> tuple[np.ndarray, float]:
        """(``risk[n]`` for n = 0..n_max, expected drops among the callers already in flight).

        With ``stop``, ``risk`` ends at the first value above it past index ``floor`` (the
        dialer looks no further).

        ``risk[n]`` = P(the (n+1)-th new line is dropped | it is routed). A line routed at
        ``t`` is dropped when the callers routed before it (waiting, in AMD, the other lines,
        the first n new ones) already hold every agent available by its deadline. Supply and
        demand are sums of independent Bernoulli variables (one per talking agent, one per line
        in flight, one per new line); their difference is computed exactly, per time step, by
        convolution (a normal approximation misjudged the tails the allowance lives in by
        0.3x-2.7x, in opposite directions when a few agents or many are about to free up). Averaged
        over when the line is routed. Drops of callers ahead would free agents for it; ignoring
        that errs on the safe side. The callers in flight are counted the same way, each
        against those routed before it.
        """
        need, m, pmf = self.excess_pmf()
        sf = _survival(pmf)

        def at_least(level: np.ndarray) -> np.ndarray:
            return _at_least(sf, m, level)

        du = np.diff(self.per_line, prepend=0.0)  # P(a new line is routed in step k)
        arrivals = np.diff(self.demand_routed, prepend=0.0)
        inflight = float(at_least(need[:, None] + 1)[:, 0] @ arrivals)
        # j of the other new lines holding agents: dropped when V >= need - j. Beyond j = span
        # that is certain, so only P(not dropped | j) for j < span is kept.
        span = max(int(need.max()) + m + 1, 1)
        safe = 1.0 - at_least(need[:, None] - np.arange(span)[None, :])  # (T, span)
        v = np.clip(self.per_line_net, 0.0, 1.0)
        binom = np.zeros_like(safe)
        binom[:, 0] = 1.0  # P(j of n new lines hold an agent at t), n = 0
        inv = 1.0 / max(self.p_route, 1e-12)
        risk: list[float] = []
        for n in range(n_max + 1):
            if n:  # beyond span every line is dropped: that mass may fall off the end
                binom = _up(binom, v, absorb=False)
            r = min(1.0, max(float((1.0 - (binom * safe).sum(axis=1)) @ du) * inv,
                             risk[-1] if risk else 0.0))
            risk.append(r)
            if r > stop and n >= floor:
                break
        return np.array(risk), inflight


def _survival(pmf: np.ndarray) -> np.ndarray:
    """``sf[k, i]`` = P(V >= i - m) from ``pmf[k, i]`` = P(V = i - m)."""
    return np.cumsum(pmf[:, ::-1], axis=1)[:, ::-1]


def _at_least(sf: np.ndarray, m: int, level: np.ndarray) -> np.ndarray:
    """P(V >= level[...]) for integer levels broadcast against the rows of ``sf`` (see
    :func:`_survival`); 1 at or below V's floor ``-m``."""
    i = level + m
    out = np.take_along_axis(sf, np.clip(i, 0, sf.shape[1] - 1), axis=1)
    return np.where(i <= 0, 1.0, np.minimum(out, 1.0))


def _up(pmf: np.ndarray, a: np.ndarray, absorb: bool = True) -> np.ndarray:
    """One more Bernoulli(``a[k]``) caller holding an agent: shift that mass up by one (the
    top bin absorbs what would leave it, unless ``absorb`` is false)."""
    a = a[:, None]
    nxt = pmf * (1.0 - a)
    nxt[:, 1:] += pmf[:, :-1] * a
    if absorb:
        nxt[:, -1] += pmf[:, -1] * a[:, 0]
    return nxt


def _route_probs(inp: Inputs, trusted: bool) -> tuple[float, float, float]:
    """(p_route, p_human, p_machine_route) per dialled line."""
    fp = min(max(inp.amd_false_positive, 0.0), 1.0)
    h = min(max(inp.human_rate, 0.0), 1.0)
    m = min(max(inp.machine_rate, 0.0), 1.0)
    if trusted:
        p_human = h * (1.0 - fp)
        p_mach = m * (1.0 - min(max(inp.amd_machine_detect, 0.0), 1.0))
    else:
        p_human, p_mach = h, m
    return p_human + p_mach, p_human, p_mach


def _talk_free(inp: Inputs, ts: np.ndarray, machine_share: float) -> np.ndarray:
    """``[i, k]``: P(the agent on call i is available by ``ts[k]``).

    A live call ends after a lognormal talk time (conditioned on ``talk_elapsed[i]``), then
    wrap-up; with prior probability ``machine_share`` the call is a machine AMD let through,
    handled for a lognormal ``machine_handle_s`` without wrap-up. The posterior machine share
    falls as the call lasts (Bayes on the two survival functions).
    """
    e = np.asarray(inp.talk_elapsed, dtype=float)
    mu, sigma = lognormal_params(max(inp.aht_mean_s, 1.0), max(inp.aht_cv, 0.0))
    lh = _ln_log_sf(e, mu, sigma)
    p = _conditional_end(e, ts - inp.wrap_s, mu, sigma, lh)
    if machine_share > 1e-9 and inp.machine_handle_s > 0:
        mmu, msig = lognormal_params(inp.machine_handle_s, max(inp.machine_handle_cv, 0.0))
        lm = _ln_log_sf(e, mmu, msig)
        odds = (1.0 - machine_share) / machine_share * np.exp(np.minimum(lh - lm, 700.0))
        post = 1.0 / (1.0 + odds)
        live = post > 1e-6  # only calls short enough to still be machines
        if live.any():
            pm = _conditional_end(e[live], ts, mmu, msig, lm[live])
            w = post[live][:, None]
            p[live] = w * pm + (1.0 - w) * p[live]
    return p


def _holding(inp: Inputs, t: np.ndarray, machine_share: float) -> Callable[[np.ndarray], np.ndarray]:
    """rows of P(routed by t) -> P(holding an agent at t): a routed caller is a machine with
    probability ``machine_share`` and then gives its agent back after ``machine_handle_s``."""
    if machine_share <= 1e-9 or inp.machine_handle_s <= 0:
        machine_share = 0.0
    back = t + GRACE_S - inp.machine_handle_s  # a machine routed by then has given its agent back
    # linear interpolation of any row on t at ``back`` (0 before the grid starts)
    pos = np.clip(back / STEP_S, -1.0, len(t) - 1.0)
    i0 = np.clip(np.floor(pos).astype(np.intp), 0, len(t) - 1)
    i1 = np.minimum(i0 + 1, len(t) - 1)
    frac = np.where(pos < 0, 0.0, pos - i0)
    before = pos < 0

    def net(rows: np.ndarray) -> np.ndarray:
        if machine_share <= 0 or rows.size == 0:
            return rows
        gone = rows[..., i0] * (1.0 - frac) + rows[..., i1] * frac
        gone[..., before] = 0.0
        return np.maximum(rows - machine_share * gone, 0.0)
    return net


def _ringing_routed(inp: Inputs, r: np.ndarray, t: np.ndarray, amd: float,
                    p_route: float) -> tuple[np.ndarray, np.ndarray]:
    """(``[i, k]`` P(the line ringing ``r[i]`` s is routed by ``t[k]``), ``[i]`` P(it is answered)).

    Conditioned on the line still ringing: the learnt answer-time distribution against busy and
    no-answer; routed ``amd`` s after the answer, with P(routed | answered)."""
    ring_sf = _ring_survival(inp)
    p_answer = min(min(max(inp.human_rate, 0.0), 1.0) + max(inp.machine_rate, 0.0), 1.0)
    p_busy = min(max(inp.busy_rate, 0.0), 1.0)
    p_noans = max(0.0, 1.0 - p_answer - p_busy)
    s0 = ring_sf(r)
    alive = np.maximum(p_answer * s0 + np.where(r < inp.busy_s, p_busy, 0.0)
                       + np.where(r < inp.no_answer_s, p_noans, 0.0), 1e-12)
    s1 = ring_sf(r[:, None] + np.maximum(t - amd, 0.0)[None, :])
    pr = np.minimum(np.maximum(s0[:, None] - s1, 0.0) * (p_route / alive)[:, None], 1.0)
    if amd > 0:
        pr[:, t < amd] = 0.0
    return pr, p_answer * s0 / alive


def ringing_outcome(inp: Inputs, elapsed: float) -> dict[str, float]:
    """P(human / machine / busy / no answer) of a line still ringing after ``elapsed`` s (what a
    line given up then would have been: learnt from as a fraction of each outcome, so that
    giving lines up does not bias the outcome rates)."""
    h = min(max(inp.human_rate, 0.0), 1.0)
    mach = min(max(inp.machine_rate, 0.0), 1.0 - h)
    p_busy = min(max(inp.busy_rate, 0.0), 1.0 - h - mach)
    p_noans = max(0.0, 1.0 - h - mach - p_busy)
    s0 = float(_ring_survival(inp)(np.array([float(elapsed)]))[0])
    w = {"human": h * s0, "machine": mach * s0, "busy": p_busy if elapsed < inp.busy_s else 0.0,
         "no_answer": p_noans if elapsed < inp.no_answer_s else 0.0}
    total = sum(w.values())
    if total <= 1e-12:
        return {"human": 0.0, "machine": 0.0, "busy": 0.0, "no_answer": 1.0}
    return {k: v / total for k, v in w.items()}


MIN_RELEASE_S = 15.0  # the rules: a line rings at least 15 s before it is given up


def _release_after(inp: Inputs) -> float:
    return max(inp.release_after_s, MIN_RELEASE_S)


def release_lines(inp: Inputs, trusted: bool, allowance: float) -> tuple[int, ...]:
    """Ringing lines to give up now: indices into ``inp.ringing_elapsed``.

    A line that has rung ``release_after_s`` (the rules' 15 s) may be given up without anyone
    being abandoned, while a late answer with no agent in reach would be. So each such line,
    longest ringing first, is kept only if its drop risk -- P(the callers routed before it hold
    every agent available by its deadline), from the same forecast as new lines, counting the
    late lines kept before it -- stays within ``allowance``; otherwise it is released.
    """
    after = _release_after(inp)
    if inp.mode != "predictive" or after >= inp.no_answer_s:
        return ()
    late = [i for i, r in enumerate(inp.ringing_elapsed) if r >= after]
    if not late:
        return ()
    late_set = set(late)
    keep = tuple(r for i, r in enumerate(inp.ringing_elapsed) if i not in late_set)
    fc = forecast(replace(inp, ringing_elapsed=keep), trusted)
    if fc.p_route <= 1e-9:
        return ()
    need, m, pmf = fc.excess_pmf(headroom=len(late))
    amd = inp.amd_delay_s if trusted else 0.0
    r = np.asarray([inp.ringing_elapsed[i] for i in late], dtype=float)
    pr, _ = _ringing_routed(inp, r, fc.t, amd, fc.p_route)
    _, _, p_mach = _route_probs(inp, trusted)
    net = _holding(inp, fc.t, p_mach / fc.p_route)(pr)
    out: list[int] = []
    for j in np.argsort(-r, kind="stable"):
        row = pr[j]
        if row[-1] <= 1e-9:
            continue  # it will not be answered in time to matter
        p_drop = _at_least(_survival(pmf), m, need[:, None])[:, 0]
        risk = float(np.diff(row, prepend=0.0) @ p_drop) / float(row[-1])
        if risk > allowance:
            out.append(late[j])
        else:
            pmf = _up(pmf, np.clip(net[j], 0.0, 1.0))
    return tuple(sorted(out))


def _ring_survival(inp: Inputs) -> Callable[[np.ndarray], np.ndarray]:
    """x -> P(an answered line rings longer than x): the learnt CDF, else exponential/lognormal."""
    if len(inp.ring_cdf) >= 2:
        cdf = np.asarray(inp.ring_cdf, dtype=float)
        grid = np.arange(len(cdf), dtype=float)
        return lambda x: 1.0 - np.interp(x, grid, cdf, right=1.0)
    ring = max(inp.mean_ring_s, 0.1)
    if abs(inp.ring_cv - 1.0) < 1e-3 or inp.ring_cv <= 0:
        return lambda x: np.exp(-np.maximum(x, 0.0) / ring)
    rmu, rsig = lognormal_params(ring, inp.ring_cv)
    return lambda x: np.exp(_ln_log_sf(x, rmu, rsig))


def forecast(inp: Inputs, trusted: bool = True) -> Forecast:
    """The time-resolved supply/demand forecast of the module docstring."""
    amd = inp.amd_delay_s if trusted else 0.0
    horizon = max(inp.no_answer_s, inp.mean_ring_s) + amd + STEP_S
    t = np.arange(0.0, horizon + 1e-9, STEP_S)
    # deadline of a caller routed in the step ending at t: the step's middle plus the grace
    ts = t + (GRACE_S - STEP_S / 2.0)
    p_route, p_human, p_mach = _route_probs(inp, trusted)
    machine_share = p_mach / p_route if p_route > 1e-12 else 0.0
    net = _holding(inp, t, machine_share)

    # ---- supply: agents available by each deadline
    fixed = np.full_like(t, float(inp.agents_free))
    if inp.wrap_remaining:
        w = np.sort(np.asarray(inp.wrap_remaining, dtype=float))
        fixed += np.searchsorted(w, ts, side="right")
    s_rows = np.zeros((0, len(t)))
    if inp.talk_elapsed:
        p = _talk_free(inp, ts, machine_share)
        s_rows = p[p.max(axis=1) > 1e-9]
    s_mean = fixed + s_rows.sum(axis=0)
    s_var = (s_rows * (1.0 - s_rows)).sum(axis=0)

    # ---- demand: callers routed by t from the lines in flight
    h_ans = min(max(inp.human_rate, 0.0), 1.0)
    p_answer = min(h_ans + max(inp.machine_rate, 0.0), 1.0)
    q = p_route / p_answer if p_answer > 1e-12 else 0.0  # routed | answered
    human_of_answer = h_ans / p_answer if p_answer > 1e-12 else 0.0
    routed_rows: list[np.ndarray] = []
    humans = inp.amd_pending * human_of_answer
    if inp.amd_pending:
        if len(inp.amd_elapsed) == inp.amd_pending:
            left = np.maximum(amd - np.asarray(inp.amd_elapsed, dtype=float), 0.0)
        else:
            left = np.full(inp.amd_pending, amd / 2.0)
        routed_rows.append(q * (left[:, None] <= t[None, :]))  # verdict due by t
    ring_sf = _ring_survival(inp)
    after_amd = np.maximum(t - amd, 0.0)
    if inp.ringing_elapsed:
        pr, answer_p = _ringing_routed(inp, np.asarray(inp.ringing_elapsed, dtype=float), t, amd, p_route)
        humans += float(answer_p.sum()) * human_of_answer
        routed_rows.append(pr[pr[:, -1] > 1e-9])
    routed_p = np.concatenate(routed_rows) if routed_rows else np.zeros((0, len(t)))
    routed = float(inp.waiting) + routed_p.sum(axis=0)
    d_rows = net(routed_p)
    d_mean = float(inp.waiting) + d_rows.sum(axis=0)
    d_var = (d_rows * (1.0 - d_rows)).sum(axis=0)
    per_line = p_route * (1.0 - ring_sf(after_amd))
    if amd > 0:
        per_line[t < amd] = 0.0
    return Forecast(t=t, supply_mean=s_mean, supply_var=s_var, demand_mean=d_mean, demand_var=d_var,
                    demand_routed=routed, per_line=per_line, per_line_net=net(per_line),
                    humans_in_flight=humans, p_route=p_route, p_human=p_human, p_human_answer=h_ans,
                    supply_fixed=fixed, supply_p=s_rows, demand_p=d_rows, waiting=inp.waiting)


# --------------------------------------------------------------------------- compliance

def drop_allowance(slack: float, budget_rate: float, z: float, scale: float) -> float:
    """The drop probability per live answer that pacing may aim at now.

    ``budget_rate x exp((slack - reserve) / scale)``, at most ``MAX_ALLOWANCE x budget_rate``:
    at the budget rate when the slack (abandons still allowed in the rolling window) equals
    the reserve, more above it, less below it. Each abandon lowers the allowance by
    ``exp(-1/scale)`` and each live answer raises the slack by the budget rate, so the slack
    is held near the reserve with a standard deviation of about ``sqrt(scale / 2)`` abandons;
    the reserve is ``z`` of those, ``z x sqrt(scale / 2)`` abandons.
    """
    scale = max(scale, 0.1)
    reserve = max(z, 0.0) * math.sqrt(scale / 2.0)
    x = min((slack - reserve) / scale, math.log(MAX_ALLOWANCE))
    return max(budget_rate, 0.0) * math.exp(x)


MIN_SCALE, MAX_SCALE = 1.0, 4.0


def spend_scale(allowed: float) -> float:
    """The controller's scale for a window that allows ``allowed`` abandons so far:
    ``sqrt(allowed) / 2`` within [1, 4]. A small budget (a small team, a 1 % limit, long calls)
    cannot afford a reserve of several abandons, a large one gains from a steadier allowance."""
    return min(MAX_SCALE, max(MIN_SCALE, math.sqrt(max(allowed, 0.0)) / 2.0))


# --------------------------------------------------------------------------- decide

def _in_flight(inp: Inputs) -> int:
    return len(inp.ringing_elapsed) + inp.amd_pending + inp.waiting


def _progressive(inp: Inputs) -> int:
    return max(0, inp.agents_free - _in_flight(inp))


def _cap(inp: Inputs) -> int:
    """New lines ``max_dial_ratio`` still allows."""
    return max(0, math.floor(inp.max_dial_ratio * inp.agents_total) - _in_flight(inp))


def decide(state: PacingState, inp: Inputs, now: float) -> tuple[PacingState, Decision]:
    """How many lines to dial at ``now`` (see the module docstring)."""
    del now  # the inputs carry every time that matters; kept for the core's signature
    limit = max(inp.max_abandon_rate, 1e-9)
    fp = min(max(inp.amd_false_positive, 0.0), 1.0)

    # AMD trust (hysteresis): FP alone must leave room under the limit.
    trusted = state.amd_trusted
    notes: list[str] = []
    if trusted and fp >= inp.amd_untrust_share * limit:
        trusted = False
        notes.append(f"amd-untrusted: false positives {fp:.4f} would use >= "
                     f"{inp.amd_untrust_share:.0%} of the {limit:.4f} abandon limit")
    elif not trusted and fp < 0.5 * inp.amd_untrust_share * limit:
        trusted = True
        notes.append(f"amd-trusted-again: false positives {fp:.4f}")
    if not trusted:
        notes.append("amd-bypassed")
    st = replace(state, amd_trusted=trusted, decisions=state.decisions + 1)

    release: tuple[int, ...] = ()
    given = inp  # ``release`` indexes its ringing lines

    def done(lines: int, reason: str, **kw: float) -> tuple[PacingState, Decision]:
        text = "; ".join([reason, *notes])
        return st, Decision(lines=max(0, int(lines)), reason=text, amd_trusted=trusted, inputs=given,
                            release=release, **kw)

    if inp.mode == "preview":
        return done(0, "preview: agents take leads explicitly")
    prog, cap = _progressive(inp), _cap(inp)
    if inp.mode == "progressive":
        return done(min(prog, cap), f"progressive: {inp.agents_free} free, {_in_flight(inp)} in flight")
    if inp.mode != "predictive":
        raise ValueError(f"unknown pacing mode {inp.mode!r}")

    # ---- rolling compliance: estimated abandons, the slack, the forecast's calibration
    if trusted and fp < 1.0:
        humans = inp.rolling_human_answers / (1.0 - fp)  # AMD hid some humans from us
        abandoned = inp.rolling_abandoned + fp * humans
        budget_rate = limit - fp
    else:
        humans = float(inp.rolling_human_answers)
        abandoned = float(inp.rolling_abandoned)
        budget_rate = limit
    slack = limit * humans - abandoned
    rate_now = abandoned / humans if humans else 0.0
    # drops since the last decision (none when the window slid, or before the first one)
    new_drops = max(0, inp.rolling_abandoned - state.last_abandoned) if state.last_abandoned >= 0 else 0
    seen = state.seen_drops + new_drops
    z = max(inp.confidence_z, 0.0)
    calibration = replace(st, seen_drops=seen).calibration
    scale = inp.spend_scale if inp.spend_scale > 0 else spend_scale(max(budget_rate, 0.0) * humans)
    lam = min(MAX_RISK, drop_allowance(slack, budget_rate, z, scale) / calibration)
    # late ringing lines whose answer would likely be dropped are given up first; what is
    # left is what the lines dialled now must live with
    release = release_lines(inp, trusted, lam)
    if release:
        gone = set(release)
        notes.append(f"released {len(release)} lines ringing >= {_release_after(inp):.0f}s")
        inp = replace(inp, ringing_elapsed=tuple(r for i, r in enumerate(inp.ringing_elapsed) if i not in gone))
        prog, cap = _progressive(inp), _cap(inp)
    if slack <= 0 or budget_rate <= 0:
        st = replace(st, throttled=True, allowance=0.0, seen_drops=seen, last_abandoned=inp.rolling_abandoned)
        return done(min(prog, cap), f"throttled: abandon slack {slack:.2f} "
                    f"(rate {rate_now:.4f} vs limit {limit:.4f}); progressive")

    fc = forecast(inp, trusted)
    if fc.p_route <= 1e-9:
        st = replace(st, throttled=False, allowance=lam, seen_drops=seen, last_abandoned=inp.rolling_abandoned)
        return done(min(prog, cap), "predictive: no answers expected; progressive")
    surplus = float(fc.supply_mean[-1] - fc.demand_mean[-1])
    spread = math.sqrt(float(fc.supply_var[-1] + fc.demand_var[-1]))
    n_max = min(cap, math.ceil((max(surplus, 0.0) + 3.0 * spread + 2.0) / fc.p_route))
    risk, inflight = fc.assess(n_max, stop=lam, floor=min(prog, cap, n_max))
    # after the (k+1)-th new line: the live answers everything in flight is expected to drop,
    # and the room for them -- the slack plus the budget those live answers bring
    human_share = fc.p_human / fc.p_route
    drops = human_share * (inflight + fc.p_route * np.cumsum(risk))
    room = slack + budget_rate * (fc.humans_in_flight + fc.p_human_answer * np.arange(1, len(risk) + 1))
    ok = (risk <= lam) & (drops <= room)
    bad = np.flatnonzero(~ok)
    n = int(bad[0]) if bad.size else len(risk) - 1
    guarded = bool(bad.size) and bool(risk[n] <= lam)
    lines = max(n, min(prog, cap))
    decay = (1.0 - 1.0 / CALIBRATION_LINES) ** lines
    st = replace(st, throttled=n == 0 and guarded, allowance=lam, last_abandoned=inp.rolling_abandoned,
                 seen_drops=seen * decay,
                 forecast_drops=st.forecast_drops * decay
                 + fc.p_human * float(risk[:lines].sum()))
    free_h = float(fc.supply_mean[-1])
    due = float(fc.demand_routed[-1])
    why = (f"predictive: {free_h:.2f} agents free within {fc.t[-1] + GRACE_S:.0f}s, {due:.2f} answers due, "
           f"{n} lines under drop risk {lam:.4f} (slack {slack:.2f}, rate {rate_now:.4f}, "
           f"calibration {calibration:.2f})")
    if guarded:
        why += f"; guard: expected drops in flight {float(drops[n]):.3f} > room {float(room[n]):.3f}"
    expected = float(drops[n - 1]) if n > 0 else human_share * inflight
    return done(lines, why, expected_free=free_h, expected_demand=due + n * fc.p_route, target=lam,
                expected_drops=expected)
