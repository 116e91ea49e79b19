"""What a campaign's finished lines and calls say: the one estimator of line outcomes, ring times
and handle times, fed by the live dialler and by the simulator alike (so ``bench dialer``
measures what production runs).

* outcome rates (human / machine / busy / no answer) of the last ``window`` finished lines, after
  a prior worth ``prior_lines`` lines; a line given up while ringing counts as the share of each
  outcome it still had (:func:`pacing.ringing_outcome`), so releasing lines biases no rate;
* ring time of answered lines: an EWMA of its mean and square, and its distribution in 1 s bins
  up to the no-answer timeout (counts that fade, memory ~``RING_MEMORY`` answers, after an
  exponential prior worth ``RING_PRIOR`` answers); a released line's answer share is spread over
  the later bins as seen so far;
* talk time with a person and agent time on a machine: learnt when a call *ends*, after a prior
  (the campaign's AHT worth 20 calls; a weak generic prior for machines).
"""

from __future__ import annotations

import math
from collections import deque
from itertools import pairwise

__all__ = ["BUSY", "HUMAN", "MACHINE", "NOANSWER", "Estimator"]

HUMAN, MACHINE, BUSY, NOANSWER = "human", "machine", "busy", "no_answer"
WINDOW = 1000  # finished lines the outcome rates are learnt from
PRIOR_LINES = 30.0  # pseudo-lines of prior knowledge before the campaign has history
RATE_PRIOR = {HUMAN: 0.5, MACHINE: 0.2, BUSY: 0.05}  # generous: dials fewer lines until history speaks
AHT_PRIOR_CALLS = 20.0
MACHINE_PRIOR_S = 10.0  # agent seconds on a machine, before any was seen ...
MACHINE_PRIOR_CALLS = 3.0  # ... worth this many
RING_MEMORY = 500.0  # the ring-time histogram remembers about the last 500 answers ...
RING_PRIOR = 20.0  # ... after a prior worth 20
RING_EWMA = 0.02


def _learnt(n: int, total: float, squares: float, weight: float, mean0: float,
            cv0: float) -> tuple[float, float]:
    """(mean, coefficient of variation) of durations seen (``n``, their sum and sum of
    squares) after a prior worth ``weight`` durations of mean ``mean0`` and CV ``cv0``."""
    k = n + weight
    mean = (total + weight * mean0) / k
    ex2 = (squares + weight * mean0 ** 2 * (1 + cv0 ** 2)) / k
    return mean, math.sqrt(max(ex2 - mean * mean, 0.0)) / mean


class Estimator:
    """One campaign's learnt rates and durations; :meth:`fields` are the pacer's inputs."""

    def __init__(self, *, ring_prior_s: float, no_answer_s: float, aht_s: float = 180.0,
                 aht_cv: float = 0.5) -> None:
        self.no_answer_s = no_answer_s
        self.aht_s, self.aht_cv = aht_s, aht_cv
        self.hist: deque[dict[str, float]] = deque()  # per finished line: outcome -> weight
        self.counts = {HUMAN: 0.0, MACHINE: 0.0, BUSY: 0.0, NOANSWER: 0.0}
        self.ring_mean = ring_prior_s * 1.0  # EWMA of dial-to-answer (prior: exponential)
        self.ring_sq = 2.0 * ring_prior_s ** 2  # EWMA of its square
        edges = [float(k) for k in range(math.ceil(no_answer_s) + 1)]
        self.ring_hist = [RING_PRIOR * (math.exp(-a / ring_prior_s) - math.exp(-b / ring_prior_s))
                          for a, b in pairwise(edges)]
        self._ring_cdf: tuple[float, ...] = ()
        self.talk = [0, 0.0, 0.0]  # n, sum, sum of squares
        self.mach = [0, 0.0, 0.0]

    # ---- what happened
    def outcome(self, weights: dict[str, float]) -> None:
        """One finished line: its outcome (weight 1), or for a line given up while ringing, the
        share of each outcome it would have had."""
        self.hist.append(weights)
        for k, w in weights.items():
            self.counts[k] += w
        if len(self.hist) > WINDOW:
            for k, w in self.hist.popleft().items():
                self.counts[k] -= w

    def answered(self, ring_s: float) -> None:
        """A line answered after ringing ``ring_s`` seconds."""
        self.ring_mean += RING_EWMA * (ring_s - self.ring_mean)
        self.ring_sq += RING_EWMA * (ring_s * ring_s - self.ring_sq)
        self._add_rings({min(int(ring_s), len(self.ring_hist) - 1): 1.0})

    def released(self, share: dict[str, float], elapsed: float) -> None:
        """A line given up after ringing ``elapsed`` s, when it still had ``share`` of each outcome."""
        self.outcome(share)
        answered = share.get(HUMAN, 0.0) + share.get(MACHINE, 0.0)
        later = range(min(int(elapsed) + 1, len(self.ring_hist) - 1), len(self.ring_hist))
        mass = sum(self.ring_hist[k] for k in later)
        if answered > 0 and mass > 0:
            self._add_rings({k: answered * self.ring_hist[k] / mass for k in later})

    def call_ended(self, length_s: float, *, machine: bool = False) -> None:
        """A call an agent had ended after ``length_s`` (with a machine AMD let through, or a person)."""
        acc = self.mach if machine else self.talk
        acc[0] += 1
        acc[1] += length_s
        acc[2] += length_s * length_s

    def _add_rings(self, mass: dict[int, float]) -> None:
        """Answers seen, as weight per 1 s ring-time bin: the histogram fades by their total."""
        h = self.ring_hist
        fade = 1.0 - sum(mass.values()) / RING_MEMORY
        for k in range(len(h)):
            h[k] = h[k] * fade + mass.get(k, 0.0)
        self._ring_cdf = ()

    # ---- what it says
    def ring_cdf(self) -> tuple[float, ...]:
        """P(an answered line rang <= k s), k = 0, 1, ... ``no_answer_s``."""
        if not self._ring_cdf:
            total = sum(self.ring_hist)
            acc, out = 0.0, [0.0]
            for v in self.ring_hist:
                acc += v
                out.append(min(acc / total, 1.0))
            self._ring_cdf = tuple(out)
        return self._ring_cdf

    def fields(self, aht_prior_s: float | None = None) -> dict[str, float | tuple[float, ...]]:
        """The learnt part of :class:`pacing.Inputs` (``aht_prior_s`` overrides the AHT prior)."""
        n = len(self.hist) + PRIOR_LINES
        c, k = self.counts, PRIOR_LINES
        mean, cv = _learnt(*self.talk, AHT_PRIOR_CALLS, aht_prior_s or self.aht_s, self.aht_cv)
        m_mean, m_cv = _learnt(*self.mach, MACHINE_PRIOR_CALLS, MACHINE_PRIOR_S, 0.5)
        return {
            "human_rate": (c[HUMAN] + k * RATE_PRIOR[HUMAN]) / n,
            "machine_rate": (c[MACHINE] + k * RATE_PRIOR[MACHINE]) / n,
            "busy_rate": (c[BUSY] + k * RATE_PRIOR[BUSY]) / n,
            "mean_ring_s": self.ring_mean,
            "ring_cv": math.sqrt(max(self.ring_sq - self.ring_mean ** 2, 0.0)) / max(self.ring_mean, 1e-6),
            "ring_cdf": self.ring_cdf(),
            "aht_mean_s": mean, "aht_cv": cv,
            "machine_handle_s": m_mean, "machine_handle_cv": m_cv,
        }
