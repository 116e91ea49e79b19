"""A discrete-event simulation of an outbound campaign that drives :func:`pacing.decide`.

One heap of ``(time, seq, kind, payload)`` events and one seeded :class:`random.Random`, so
a scenario and a seed give the same result every time. The simulator only plays the world
(agents, lines, callees, AMD); every dialling decision is the production pacing code, fed
with what a live dialer would know at that instant (agents' states, lines in flight, outcome
rates from finished lines, the rolling abandon count).

The world:

* agents talk a lognormal time (mean ``aht_s``, coefficient of variation ``aht_cv``) then wrap
  up ``wrap_s``; an undetected answering machine costs ``machine_agent_s`` (no wrap-up);
* a dialled line is a live person (``answer_prob``), a machine (``machine_prob``), busy
  (``busy_prob``, ends within 3 s) or not answered (rings ``no_answer_s`` >= 15 s, holding the
  trunk); answered lines ring a gamma time with mean ``ring_s``;
* AMD (while trusted) listens ``amd_s`` after the answer: machines are detected with
  ``amd_machine_detect`` and hung up; people are called MACHINE with ``amd_false_positive``
  and hung up on -- each such person counts as abandoned. When pacing stops trusting AMD,
  answers go straight to agents;
* a routed answer with no free agent waits up to 2 s (``pacing.GRACE_S``); a person not
  connected by then hears the compliance message and counts as abandoned.

Decisions are taken whenever an agent frees up or starts wrap-up, a line ends, and every
``decision_interval_s`` seconds.

What the pacer is told is what a live dialer can know at that instant, never the future:
agents' states with elapsed talk time and remaining wrap-up, each line's state with its
elapsed ringing or AMD time, and what :mod:`.estimator` (shared with the live dialler) learnt:
outcome rates of finished lines, the answered lines' ring-time distribution (a fading 1 s histogram), talk and machine-handling
times of calls that have *ended* (a call's length is learnt when it ends, not when it
starts), and the rolling drops and live answers. The world's parameters enter only as the
campaign's priors (AHT, ring time) and AMD's rated accuracy, as a live campaign has them.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from callcenter.features.dialer import pacing
from callcenter.features.dialer.estimator import BUSY, HUMAN, MACHINE, NOANSWER, Estimator

__all__ = ["Scenario", "ScenarioError", "load_scenario", "parse_scenario", "simulate"]


class ScenarioError(ValueError):
    """A scenario that does not validate; ``problems`` name each key path."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Scenario:
    seed: int = 1
    duration_s: float = 8 * 3600.0
    agents: int = 20
    aht_s: float = 180.0
    aht_cv: float = 0.5
    wrap_s: float = 10.0
    answer_prob: float = 0.35
    machine_prob: float = 0.25
    busy_prob: float = 0.05
    ring_s: float = 12.0
    no_answer_s: float = 25.0
    amd_s: float = 2.5
    amd_machine_detect: float = 0.9
    amd_false_positive: float = 0.01
    machine_agent_s: float = 8.0
    max_abandon_rate: float = 0.03
    mode: str = "predictive"
    max_dial_ratio: float = 5.0
    decision_interval_s: float = 1.0
    preview_s: float = 5.0

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


# key -> (kind, low, high); bounds inclusive
_RULES: dict[str, tuple[str, float, float]] = {
    "seed": ("int", 0, 2**63),
    "duration_s": ("num", 1.0, 30 * 86400.0),
    "agents": ("int", 1, 10_000),
    "aht_s": ("num", 1.0, 86400.0),
    "aht_cv": ("num", 0.0, 5.0),
    "wrap_s": ("num", 0.0, 3600.0),
    "answer_prob": ("num", 0.0, 1.0),
    "machine_prob": ("num", 0.0, 1.0),
    "busy_prob": ("num", 0.0, 1.0),
    "ring_s": ("num", 0.5, 120.0),
    "no_answer_s": ("num", 15.0, 300.0),
    "amd_s": ("num", 0.0, 10.0),
    "amd_machine_detect": ("num", 0.0, 1.0),
    "amd_false_positive": ("num", 0.0, 1.0),
    "machine_agent_s": ("num", 0.0, 3600.0),
    "max_abandon_rate": ("num", 0.0, 1.0),
    "mode": ("mode", 0, 0),
    "max_dial_ratio": ("num", 1.0, 100.0),
    "decision_interval_s": ("num", 0.05, 60.0),
    "preview_s": ("num", 0.0, 600.0),
}


def parse_scenario(data: Any, where: str = "") -> Scenario:
    """Validate a mapping into a :class:`Scenario`; every problem names its key path."""
    pre = f"{where}." if where else ""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ScenarioError([f"{where or '<scenario>'}: expected a mapping, got {type(data).__name__}"])
    problems: list[str] = []
    values: dict[str, Any] = {}
    for key, raw in data.items():
        if key not in _RULES:
            problems.append(f"{pre}{key}: unknown key (allowed: {', '.join(sorted(_RULES))})")
            continue
        kind, lo, hi = _RULES[key]
        if kind == "mode":
            if raw not in pacing.MODES:
                problems.append(f"{pre}{key}: unknown value {raw!r} (one of {', '.join(pacing.MODES)})")
            else:
                values[key] = raw
            continue
        if isinstance(raw, bool) or not isinstance(raw, (int, float)) or (kind == "int" and not isinstance(raw, int)):
            problems.append(f"{pre}{key}: expected {'an integer' if kind == 'int' else 'a number'}, got {raw!r}")
            continue
        if not (lo <= raw <= hi) or (isinstance(raw, float) and math.isnan(raw)):
            problems.append(f"{pre}{key}: {raw!r} out of range [{lo:g}, {hi:g}]")
            continue
        values[key] = int(raw) if kind == "int" else float(raw)
    if not problems:
        total = sum(values.get(k, getattr(Scenario, k)) for k in ("answer_prob", "machine_prob", "busy_prob"))
        if total > 1.0 + 1e-9:
            problems.append(f"{pre}answer_prob: answer_prob + machine_prob + busy_prob = {total:g} > 1")
    if problems:
        raise ScenarioError(problems)
    return Scenario(**values)


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario YAML file (errors name file:line for bad YAML)."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise ScenarioError([f"{p}: cannot read: {e.strerror or e}"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        loc = f"{p}:{mark.line + 1}" if mark is not None else str(p)
        raise ScenarioError([f"{loc}: bad YAML: {getattr(e, 'problem', None) or e}"]) from None
    return parse_scenario(data)


# --------------------------------------------------------------------------- the simulation

RING_SHAPE = 4.0  # answered lines ring a gamma time (shape 4: mostly 5-20 s for a 12 s mean)


class _Sim:
    def __init__(self, sc: Scenario) -> None:
        self.sc = sc
        self.rng = random.Random(sc.seed)
        self.mu, self.sigma = pacing.lognormal_params(sc.aht_s, sc.aht_cv)
        self.heap: list[tuple[float, int, str, Any]] = []
        self.seq = 0
        self.now = 0.0
        n = sc.agents
        self.free: deque[int] = deque(range(n))
        self.talk_start: dict[int, float] = {}
        self.wrap_end: dict[int, float] = {}
        self.ringing: dict[int, float] = {}  # line -> dialled at
        self.amd: dict[int, float] = {}  # line -> answered at
        self.waiting: dict[int, float] = {}  # line -> routed at (insertion order = FIFO)
        self.line_kind: dict[int, str] = {}
        self.next_line = 0
        self.preview_pending = 0
        self.pstate = pacing.initial_state()
        self.amd_trusted = True
        self.amd_untrusted_at: float | None = None
        # what the pacer learns from: the live dialler's own estimator
        self.est = Estimator(ring_prior_s=sc.ring_s, no_answer_s=sc.no_answer_s, aht_s=sc.aht_s, aht_cv=sc.aht_cv)
        # results
        self.c = {k: 0 for k in ("dialed", HUMAN, MACHINE, BUSY, NOANSWER, "drops", "amd_fp",
                                 "connected_humans", "connected_machines", "dropped_machines",
                                 "machines_detected", "routed_humans", "decisions", "throttled", "humans_amd",
                                 "released")}
        self.busy_time = 0.0
        self.level_area = 0.0
        self.last_level_t = 0.0
        self.wait_sum = 0.0

    # ---- plumbing
    def push(self, t: float, kind: str, payload: Any = None) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (t, self.seq, kind, payload))

    def in_flight(self) -> int:
        return len(self.ringing) + len(self.amd) + len(self.waiting)

    def account_level(self) -> None:
        t = min(self.now, self.sc.duration_s)
        if t > self.last_level_t:
            self.level_area += self.in_flight() * (t - self.last_level_t)
            self.last_level_t = t

    def add_busy(self, start: float, length: float) -> None:
        end = min(start + length, self.sc.duration_s)
        if end > start:
            self.busy_time += end - start

    # ---- the world
    def dial(self) -> None:
        sc, r = self.sc, self.rng
        self.account_level()
        line = self.next_line
        self.next_line += 1
        self.c["dialed"] += 1
        u = r.random()
        if u < sc.answer_prob:
            kind = HUMAN
        elif u < sc.answer_prob + sc.machine_prob:
            kind = MACHINE
        elif u < sc.answer_prob + sc.machine_prob + sc.busy_prob:
            kind = BUSY
        else:
            kind = NOANSWER
        if kind in (HUMAN, MACHINE):
            ring = min(max(r.gammavariate(RING_SHAPE, sc.ring_s / RING_SHAPE), 1.0), sc.no_answer_s - 0.5)
        elif kind == BUSY:
            ring = r.uniform(1.0, 3.0)
        else:
            ring = sc.no_answer_s
        self.line_kind[line] = kind
        self.ringing[line] = self.now
        self.push(self.now + ring, "ring_end", line)

    def release(self, line: int, inp: pacing.Inputs) -> None:
        """Give up a line still ringing (the pacer's call: it has rung the rules' minimum)."""
        elapsed = self.now - self.ringing[line]
        self.c["released"] += 1
        self.est.released(pacing.ringing_outcome(inp, elapsed), elapsed)
        self.finish_line(line)

    def finish_line(self, line: int) -> None:
        self.account_level()
        self.ringing.pop(line, None)
        self.amd.pop(line, None)
        self.waiting.pop(line, None)
        self.line_kind.pop(line, None)

    def on_ring_end(self, line: int) -> None:
        if line not in self.ringing:
            return  # given up by the pacer
        kind = self.line_kind[line]
        self.c[kind] += 1
        self.est.outcome({kind: 1.0})
        if kind in (BUSY, NOANSWER):
            self.finish_line(line)
            return
        self.account_level()
        self.est.answered(self.now - self.ringing.pop(line))
        if self.amd_trusted:
            self.amd[line] = self.now
            self.push(self.now + self.sc.amd_s, "amd_done", line)
        else:
            self.route(line)

    def on_amd_done(self, line: int) -> None:
        self.amd.pop(line, None)
        kind = self.line_kind[line]
        if kind == HUMAN:
            self.c["humans_amd"] += 1  # a person AMD judged: the false-positive estimate's base
        r = self.rng
        if kind == MACHINE and r.random() < self.sc.amd_machine_detect:
            self.c["machines_detected"] += 1
            self.finish_line(line)
        elif kind == HUMAN and r.random() < self.sc.amd_false_positive:
            self.c["amd_fp"] += 1  # a live person hung up on: abandoned
            self.finish_line(line)
        else:
            self.route(line)

    def route(self, line: int) -> None:
        if self.line_kind[line] == HUMAN:
            self.c["routed_humans"] += 1
        if self.free:
            self.connect(line, self.free.popleft())
        else:
            self.account_level()
            self.waiting[line] = self.now
            self.push(self.now + pacing.GRACE_S, "giveup", line)

    def connect(self, line: int, agent: int) -> None:
        kind = self.line_kind[line]
        self.finish_line(line)
        if kind == HUMAN:
            self.c["connected_humans"] += 1
            talk = self.rng.lognormvariate(self.mu, self.sigma) if self.sc.aht_cv > 0 else self.sc.aht_s
            self.talk_start[agent] = self.now
            self.add_busy(self.now, talk + self.sc.wrap_s)
            self.push(self.now + talk, "talk_end", (agent, self.sc.wrap_s, HUMAN))
        else:
            self.c["connected_machines"] += 1
            self.talk_start[agent] = self.now
            self.add_busy(self.now, self.sc.machine_agent_s)
            self.push(self.now + self.sc.machine_agent_s, "talk_end", (agent, 0.0, MACHINE))

    def on_giveup(self, line: int) -> None:
        if line not in self.waiting:
            return  # connected in time
        routed_at = self.waiting[line]
        self.wait_sum += self.now - routed_at
        if self.line_kind[line] == HUMAN:
            self.c["drops"] += 1  # compliance message, counted as abandoned
        else:
            self.c["dropped_machines"] += 1
        self.finish_line(line)

    def on_talk_end(self, agent: int, wrap: float, kind: str) -> None:
        # the pacer learns a call's length when it ends (as live), never when it starts
        self.est.call_ended(self.now - self.talk_start.pop(agent), machine=kind != HUMAN)
        if wrap > 0:
            self.wrap_end[agent] = self.now + wrap
            self.push(self.now + wrap, "wrap_end", agent)
        else:
            self.agent_free(agent)

    def agent_free(self, agent: int) -> None:
        self.wrap_end.pop(agent, None)
        if self.waiting:
            line, routed_at = next(iter(self.waiting.items()))
            self.wait_sum += self.now - routed_at
            self.connect(line, agent)
        else:
            self.free.append(agent)

    # ---- the pacer
    def inputs(self) -> pacing.Inputs:
        sc, now = self.sc, self.now
        return pacing.Inputs(
            mode=sc.mode,  # type: ignore[arg-type]
            agents_total=sc.agents,
            agents_free=len(self.free),
            talk_elapsed=tuple(now - t for t in self.talk_start.values()),
            wrap_remaining=tuple(t - now for t in self.wrap_end.values()),
            ringing_elapsed=tuple(now - t for t in self.ringing.values()),
            amd_pending=len(self.amd),
            amd_elapsed=tuple(now - t for t in self.amd.values()),
            waiting=len(self.waiting),
            no_answer_s=sc.no_answer_s, amd_delay_s=sc.amd_s,
            amd_machine_detect=sc.amd_machine_detect, amd_false_positive=sc.amd_false_positive,
            wrap_s=sc.wrap_s,
            rolling_abandoned=self.c["drops"], rolling_human_answers=self.c["routed_humans"],
            max_abandon_rate=sc.max_abandon_rate, max_dial_ratio=sc.max_dial_ratio,
            **self.est.fields(),  # type: ignore[arg-type]
        )

    def decide(self) -> None:
        if self.now >= self.sc.duration_s:
            return
        if self.sc.mode == "preview":
            # agents take leads by hand: each free agent without a call dials one after preview_s
            want = len(self.free) - self.in_flight() - self.preview_pending
            for _ in range(max(0, want)):
                self.preview_pending += 1
                self.push(self.now + self.sc.preview_s, "preview_dial")
            return
        inp = self.inputs()
        self.pstate, d = pacing.decide(self.pstate, inp, self.now)
        self.c["decisions"] += 1
        if d.release:
            ringing = list(self.ringing)  # the order ``inputs`` listed them in
            for i in d.release:
                self.release(ringing[i], inp)
        if self.pstate.throttled:
            self.c["throttled"] += 1
        if self.amd_trusted and not d.amd_trusted and self.amd_untrusted_at is None:
            self.amd_untrusted_at = self.now
        self.amd_trusted = d.amd_trusted
        for _ in range(d.lines):
            self.dial()

    def run(self) -> dict[str, Any]:
        sc = self.sc
        if sc.mode != "preview":
            # the pacer's AMD verdict holds from the first instant
            self.pstate, d = pacing.decide(self.pstate, self.inputs(), 0.0)
            self.amd_trusted = d.amd_trusted
            if not d.amd_trusted:
                self.amd_untrusted_at = 0.0
        self.push(0.0, "tick")
        while self.heap:
            t, _, kind, payload = heapq.heappop(self.heap)
            self.now = t
            if kind == "tick":
                if t < sc.duration_s:
                    self.push(t + sc.decision_interval_s, "tick")
                self.decide()
            elif kind == "ring_end":
                self.on_ring_end(payload)
                self.decide()
            elif kind == "amd_done":
                self.on_amd_done(payload)
                self.decide()
            elif kind == "giveup":
                self.on_giveup(payload)
            elif kind == "talk_end":
                self.on_talk_end(*payload)
                self.decide()  # a wrap-up starting is news too: that agent is free in wrap_s
            elif kind == "wrap_end":
                self.agent_free(payload)
                self.decide()
            elif kind == "preview_dial":
                self.preview_pending -= 1
                if t < sc.duration_s:
                    self.dial()
        return self.result()

    def result(self) -> dict[str, Any]:
        sc, c = self.sc, self.c
        humans = c[HUMAN]
        # abandoned = humans not connected within 2 s + AMD false positives. The false
        # positives are counted the way a live dialer must (it never sees them): the AMD
        # false-positive rate x human answers, while AMD was trusted. The true count is
        # reported beside it.
        fp_humans = c["humans_amd"]
        fp_est = sc.amd_false_positive * fp_humans
        abandoned = c["drops"] + fp_est
        actual = c["drops"] + c["amd_fp"]
        occupancy = self.busy_time / (sc.agents * sc.duration_s)
        return {
            "mode": sc.mode,
            "seed": sc.seed,
            "duration_s": sc.duration_s,
            "agents": sc.agents,
            "dialed": c["dialed"],
            "human_answers": humans,
            "machine_answers": c[MACHINE],
            "busy": c[BUSY],
            "no_answer": c[NOANSWER],
            "abandoned": round(abandoned, 3),
            "abandoned_no_agent": c["drops"],
            "abandoned_amd_false_positive_est": round(fp_est, 3),
            "abandoned_amd_false_positive_actual": c["amd_fp"],
            "abandon_rate": round(abandoned / humans, 6) if humans else 0.0,
            "abandon_rate_actual": round(actual / humans, 6) if humans else 0.0,
            "max_abandon_rate": sc.max_abandon_rate,
            "within_limit": (abandoned / humans if humans else 0.0) <= sc.max_abandon_rate,
            "connected_humans": c["connected_humans"],
            "connected_machines": c["connected_machines"],
            "machines_detected": c["machines_detected"],
            "dropped_machines": c["dropped_machines"],
            "released": c["released"],
            "agent_occupancy": round(occupancy, 6),
            "idle_share": round(1.0 - occupancy, 6),
            "dial_level_mean": round(self.level_area / (sc.agents * sc.duration_s), 4),
            "amd_trusted": self.amd_trusted,
            "amd_untrusted_at_s": self.amd_untrusted_at,
            "decisions": c["decisions"],
            "throttled_share": round(c["throttled"] / c["decisions"], 4) if c["decisions"] else 0.0,
            "connects_per_agent_hour": round((c["connected_humans"]) / (sc.agents * sc.duration_s / 3600), 3),
        }


def simulate(sc: Scenario) -> dict[str, Any]:
    """Run one scenario; the result is a JSON-ready dict (see module docstring)."""
    return _Sim(sc).run()
