"""Dialer pacing: ``decide(state, inputs, now) -> (state, Decision)``.

Rules of this module: no I/O, no clock, no randomness. Everything the dialer knows at a
decision instant comes in as :class:`Inputs`; the only memory is the small frozen
:class:`PacingState`. The live dialer and the simulator (``callcenter.dialer.sim``) call the
same function, so what the benchmark measures is what production runs.

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
* ``progressive``: one line per free agent not already covered by a ringing line. Never
  drops a call (each line has its agent), so it is also the fallback when the abandon
  budget runs out.
* ``predictive``: a forecast. For the expected dial-to-connect time ``h`` (mean ring to
  answer + AMD analysis) plus the 2 s grace, the number of agents who will be free is a
  Poisson-binomial: free agents, agents in wrap-up that ends in time, and talking agents
  whose *remaining* talk time (lognormal AHT, conditioned on the time already talked) ends in
  time. The calls that will want an agent are the ringing lines (each weighted by its
  probability of still becoming a routed answer given how long it has rung), the answered
  lines still in AMD, the callers already waiting, and ``N`` new lines (binomial). With a
  normal approximation of the excess demand ``D`` we take the largest ``N`` whose expected
  human drops ``E[D+] x human share`` per expected routed answer stay under an effective
  target, and never fewer lines than progressive would dial.

  The effective target is the drop budget (limit minus the AMD false-positive share when AMD
  is trusted) x a safety margin x an integral gain. The gain comes from the *slack* -- the
  abandons still allowed in the rolling window, ``limit x humans - abandoned``, i.e. the
  integral of (limit - actual) over the human answers: gain = (slack / (limit x humans)) /
  ``GAIN_REF``, clamped to [0, ``GAIN_MAX``]. It falls to 0 as the rolling rate reaches the
  limit; when the slack is under ``hard_slack`` abandons (also at the start of a campaign,
  before there is any budget) the dialer throttles hard to progressive. Lines in flight never
  exceed ``max_dial_ratio`` x logged-in agents.

AMD trust: when the estimated false positives alone would use ``amd_untrust_share`` (80 %)
of the limit or more -- so certainly when ``amd_false_positive x humans > limit x humans``
-- AMD verdicts are no longer trusted: the dialer routes every answer to an agent (machines
cost agent time, but no live person is hung up on) and says so in ``reason``. Trust comes back
only when the false-positive rate falls under half that share (hysteresis).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

__all__ = [
    "GRACE_S",
    "Decision",
    "Inputs",
    "Mode",
    "PacingState",
    "agent_free_prob",
    "decide",
    "initial_state",
    "lognormal_params",
]

Mode = Literal["preview", "progressive", "predictive"]
MODES: tuple[str, ...] = ("preview", "progressive", "predictive")
GRACE_S = 2.0  # a live answer must reach an agent within 2 s
GAIN_REF = 0.25  # integral gain = unspent share of the window's abandon budget / GAIN_REF
GAIN_MAX = 2.0
MAX_TARGET = 0.5


@dataclass(frozen=True)
class Inputs:
    """What the dialer knows at a decision instant (times in seconds)."""

    mode: Mode = "predictive"
    # agents (logged in, not paused)
    agents_total: int = 0
    agents_free: int = 0
    talk_elapsed: tuple[float, ...] = ()  # per talking agent: seconds into the current call
    wrap_remaining: tuple[float, ...] = ()  # per agent in wrap-up: seconds left
    # lines in flight
    ringing_elapsed: tuple[float, ...] = ()  # per ringing line: seconds since dialled
    amd_pending: int = 0  # answered, AMD still listening
    waiting: int = 0  # answered and routed, no agent yet (inside the 2 s grace)
    # recent history (per dialled line that finished)
    human_rate: float = 0.3  # live person answers
    machine_rate: float = 0.2  # answering machines
    busy_rate: float = 0.05
    mean_ring_s: float = 12.0  # dial to answer, for answered lines ...
    ring_cv: float = 1.0  # ... and its coefficient of variation (1: exponential, else lognormal)
    no_answer_s: float = 25.0  # a line that is not answered rings this long
    busy_s: float = 3.0  # a busy line ends this soon
    amd_delay_s: float = 2.5  # answer to AMD verdict
    amd_machine_detect: float = 0.9  # P(MACHINE | machine)
    amd_false_positive: float = 0.01  # P(MACHINE | human)
    aht_mean_s: float = 180.0  # talk time distribution (lognormal): mean, coefficient of variation
    aht_cv: float = 0.5
    wrap_s: float = 10.0
    # rolling compliance window
    rolling_abandoned: int = 0  # humans not connected within 2 s (drops; AMD FPs are added here)
    rolling_human_answers: int = 0  # humans answered (AMD said HUMAN, or AMD not trusted)
    max_abandon_rate: float = 0.03
    # campaign knobs
    max_dial_ratio: float = 5.0  # lines in flight per logged-in agent
    margin: float = 0.5  # safety factor on the drop budget
    hard_slack: float = 1.0  # throttle to progressive when fewer abandons than this remain
    amd_untrust_share: float = 0.8


@dataclass(frozen=True)
class PacingState:
    """The pacer's memory: AMD trust and the last integral gain (for the log)."""

    amd_trusted: bool = True
    gain: float = 1.0
    throttled: bool = False
    decisions: int = 0


@dataclass(frozen=True)
class Decision:
    """How many new lines to dial now, why, and on what."""

    lines: int
    reason: str
    amd_trusted: bool
    inputs: Inputs = field(repr=False)
    expected_free: float = 0.0
    expected_demand: float = 0.0
    target: float = 0.0

    def log_fields(self) -> dict[str, Any]:
        """Flat fields for one structured log line."""
        d = asdict(self.inputs)
        for k in ("talk_elapsed", "wrap_remaining", "ringing_elapsed"):
            d[k] = len(d[k])
        return {"lines": self.lines, "reason": self.reason, "amd_trusted": self.amd_trusted,
                "expected_free": round(self.expected_free, 3),
                "expected_demand": round(self.expected_demand, 3),
                "target": round(self.target, 5), **d}


def initial_state() -> PacingState:
    return PacingState()


# --------------------------------------------------------------------------- maths

_SQRT2 = math.sqrt(2.0)


def _phi(x: float) -> float:
    return math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def _Phi(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / _SQRT2))


def lognormal_params(mean: float, cv: float) -> tuple[float, float]:
    """(mu, sigma) of the lognormal with this mean and coefficient of variation."""
    s2 = math.log1p(cv * cv)
    return math.log(mean) - s2 / 2.0, math.sqrt(s2)


def agent_free_prob(elapsed: float, within: float, mu: float, sigma: float) -> float:
    """P(a call already ``elapsed`` long ends within ``within`` more seconds)."""
    if within <= 0:
        return 0.0
    if sigma <= 1e-9:
        end = math.exp(mu)
        return 1.0 if elapsed + within >= end else 0.0
    def cdf(x: float) -> float:
        return 0.0 if x <= 0 else _Phi((math.log(x) - mu) / sigma)
    f0 = cdf(elapsed)
    surv = 1.0 - f0
    if surv <= 1e-12:
        return 1.0
    return min(1.0, max(0.0, (cdf(elapsed + within) - f0) / surv))


def _expected_excess(mean: float, var: float) -> float:
    """E[max(D, 0)] for D ~ Normal(mean, var)."""
    if var <= 1e-12:
        return max(mean, 0.0)
    s = math.sqrt(var)
    z = mean / s
    return s * _phi(z) + mean * _Phi(z)


# --------------------------------------------------------------------------- decide

def _progressive(inp: Inputs) -> int:
    in_flight = len(inp.ringing_elapsed) + inp.amd_pending + inp.waiting
    return max(0, inp.agents_free - in_flight)


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

    def done(lines: int, reason: str, **kw: float) -> tuple[PacingState, Decision]:
        text = "; ".join([reason, *notes])
        return st, Decision(lines=max(0, int(lines)), reason=text, amd_trusted=trusted, inputs=inp, **kw)

    if inp.mode == "preview":
        return done(0, "preview: agents take leads explicitly")
    prog = _progressive(inp)
    in_flight = len(inp.ringing_elapsed) + inp.amd_pending + inp.waiting
    cap = max(0, math.floor(inp.max_dial_ratio * inp.agents_total) - in_flight)
    if inp.mode == "progressive":
        return done(min(prog, cap), f"progressive: {inp.agents_free} free, {in_flight} in flight")
    if inp.mode != "predictive":
        raise ValueError(f"unknown pacing mode {inp.mode!r}")

    # ---- rolling compliance: estimated abandons and the slack (integral term)
    if trusted and fp < 1.0:
        humans = inp.rolling_human_answers / (1.0 - fp)  # AMD hid some humans from us
        abandoned = inp.rolling_abandoned + fp * humans
        budget_rate = limit - fp
    else:
        humans = float(inp.rolling_human_answers)
        abandoned = float(inp.rolling_abandoned)
        budget_rate = limit
    slack = limit * humans - abandoned
    # unspent share of the window's budget (1 = nothing spent, 0 = at the limit)
    unspent = slack / (limit * humans) if humans > 0 else 0.0
    gain = min(GAIN_MAX, max(0.0, unspent / GAIN_REF))
    st = replace(st, gain=gain)
    if slack < inp.hard_slack or budget_rate <= 0:
        st = replace(st, throttled=True)
        return done(min(prog, cap), f"throttled: abandon slack {slack:.2f} "
                    f"(rate {abandoned / humans if humans else 0.0:.4f} vs limit {limit:.4f}); progressive")
    st = replace(st, throttled=False)
    target = min(MAX_TARGET, budget_rate * inp.margin * gain)

    # ---- per-line probabilities
    h_rate = min(max(inp.human_rate, 0.0), 1.0)
    m_rate = min(max(inp.machine_rate, 0.0), 1.0)
    if trusted:
        p_human = h_rate * (1.0 - fp)
        p_route = p_human + m_rate * (1.0 - inp.amd_machine_detect)
        amd_delay = inp.amd_delay_s
    else:
        p_human = h_rate
        p_route = h_rate + m_rate
        amd_delay = 0.0
    if p_route <= 1e-9:
        return done(min(prog, cap), "predictive: no answers expected; progressive")
    human_share = p_human / p_route
    p_answer = h_rate + m_rate
    p_busy = min(max(inp.busy_rate, 0.0), 1.0)
    p_noans = max(0.0, 1.0 - p_answer - p_busy)
    ring = max(inp.mean_ring_s, 0.1)

    # ---- agents free within the horizon (Poisson-binomial: mean, variance)
    horizon = ring + amd_delay + GRACE_S
    mu, sigma = lognormal_params(max(inp.aht_mean_s, 1.0), max(inp.aht_cv, 0.0))
    free_mean = float(inp.agents_free)
    free_var = 0.0
    for e in inp.talk_elapsed:
        p = agent_free_prob(e, horizon - inp.wrap_s, mu, sigma)
        free_mean += p
        free_var += p * (1.0 - p)
    for w in inp.wrap_remaining:
        if w <= horizon:
            free_mean += 1.0

    # ---- demand from calls already in flight
    d_mean = float(inp.waiting)
    d_var = 0.0
    q_amd = p_route / p_answer if p_answer > 0 else 0.0
    d_mean += inp.amd_pending * q_amd
    d_var += inp.amd_pending * q_amd * (1.0 - q_amd)
    if abs(inp.ring_cv - 1.0) < 1e-3 or inp.ring_cv <= 0:
        def ans_survival(e: float) -> float:
            return math.exp(-e / ring)
    else:
        rmu, rsig = lognormal_params(ring, inp.ring_cv)
        def ans_survival(e: float) -> float:
            return 1.0 if e <= 0 else 1.0 - _Phi((math.log(e) - rmu) / rsig)
    for e in inp.ringing_elapsed:
        s_ans = ans_survival(e)
        alive = p_answer * s_ans + (p_busy if e < inp.busy_s else 0.0) + (p_noans if e < inp.no_answer_s else 0.0)
        q = (p_route * s_ans / alive) if alive > 1e-12 else 0.0
        d_mean += q
        d_var += q * (1.0 - q)

    if free_mean < 0.05 and inp.agents_free == 0:
        return done(0, f"predictive: no agent free within {horizon:.1f}s",
                    expected_free=free_mean, expected_demand=d_mean, target=target)

    # the largest N whose expected human drops per expected routed answer (over every call
    # in flight plus the N new ones) stay under the target
    def risk(k: int) -> float:
        m = d_mean + k * p_route
        if m <= 1e-12:
            return 0.0
        v = d_var + free_var + k * p_route * (1.0 - p_route)
        return _expected_excess(m - free_mean, v) * human_share / m

    n = 0
    while n < cap and risk(n + 1) <= target:
        n += 1
    lines = max(n, min(prog, cap))
    return done(lines, f"predictive: {free_mean:.2f} agents free within {horizon:.1f}s, "
                f"{d_mean:.2f} answers due, gain {gain:.2f}",
                expected_free=free_mean, expected_demand=d_mean + n * p_route, target=target)

