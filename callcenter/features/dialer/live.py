"""The live dialer: campaigns from the YAML and the lead store, paced by :mod:`callcenter.features.dialer.pacing`,
dialled through Asterisk (AMI Originate into ``cc-outbound``).

This is an adapter: every number it dials comes from :meth:`LeadStore.reserve` (atomic, DNC and
calling window checked at dial time); every decision is :func:`pacing.decide`, the same function
the simulator and ``bench dialer`` measure. A line's life:

    ringing --OriginateResponse ok--> amd --HUMAN/NOTSURE--> waiting --agent answers--> connected
       |  busy / no answer / failed        \\--MACHINE--> message or hang-up (dialplan)
       |                                    waiting 2 s without an agent --> compliance message, abandoned
"""

from __future__ import annotations

import asyncio
import math
import re
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog

from callcenter.features.dialer import pacing
from callcenter.features.acd.agents import AgentState
from callcenter.features.dialer.store import LeadStore

if TYPE_CHECKING:
    from callcenter.config import Campaign, Config
    from callcenter.protocol.ami import Message

log = structlog.get_logger("callcenter.dialer")

__all__ = ["LiveDialer", "dial_number"]

# Why a line was not answered: Originate's Reason (AST_CONTROL_*), else the Hangup's Q.850 cause.
REASONS = {"5": "busy", "8": "busy", "3": "no_answer"}
CAUSES = {"17": "busy", "34": "busy", "38": "busy", "19": "no_answer", "18": "no_answer", "1": "invalid",
          "28": "invalid", "3": "invalid"}
ROLLING_S = 24 * 3600.0  # the compliance window the abandon rate is counted over (Ofcom: 24 h)
PRIOR_LINES = 10.0  # pseudo-lines of prior (the scenario defaults) before history speaks
WAKE_S = 1.0  # re-decide at least this often while a campaign runs (ringing lines age)


def dial_number(e164: str) -> str:
    """The digits sent to the trunk: E.164 without the '+' (validated: digits only)."""
    digits = e164.lstrip("+")
    if not re.fullmatch(r"[0-9]{6,15}", digits):
        raise ValueError("not an E.164 number")
    return digits


@dataclass
class Line:
    line_id: str  # the Originate ChannelId: the channel's Uniqueid
    campaign: str
    lead_id: int
    dialled_at: float
    state: str = "ringing"  # ringing | amd | waiting | connected | machine | done
    answered_at: float | None = None
    call_id: str | None = None  # once routed to the queue
    agent: str | None = None
    channel: str = ""
    outcome: str | None = None  # recorded in the lead store (once)
    reason: str | None = None  # Originate failure reason, and the channel's hangup cause:
    cause: str | None = None  # the line's outcome is decided when both are known
    released: dict[str, float] | None = None  # given up while ringing: the outcome shares it had then


@dataclass
class History:
    """What this campaign's lines did recently (rates for the pacer)."""

    # (finished at, outcome -> weight, rang for): weight 1 for a line's outcome; a line given up
    # while ringing counts as the share of each outcome it still had (so no rate is biased)
    finished: deque[tuple[float, dict[str, float], float]] = field(default_factory=lambda: deque(maxlen=500))

    def add(self, now: float, kind: str, ring_s: float) -> None:
        self.finished.append((now, {kind: 1.0}, ring_s))

    def add_released(self, now: float, share: dict[str, float], ring_s: float) -> None:
        self.finished.append((now, share, ring_s))

    def ring_cdf(self, prior_mean_s: float, horizon_s: float) -> tuple[float, ...]:
        """P(an answered line rang <= k s), k = 0, 1, ... ``horizon_s``: the answered lines seen,
        after an exponential prior worth ``PRIOR_LINES`` answers (as the simulator learns it). A
        line given up after ``r`` s adds its answer share spread evenly over ``(r, horizon_s]``."""
        horizon = max(horizon_s, 1.0)
        answers = [(r, sum(w.get(k, 0.0) for k in ("human", "machine")), len(w) > 1)
                   for _, w, r in self.finished]
        answers = [a for a in answers if a[1] > 0]
        total = sum(a for _, a, _ in answers)
        w, mean = PRIOR_LINES, max(prior_mean_s, 0.1)
        out = []
        for k in range(math.ceil(horizon) + 1):
            seen = sum(a * (min(max((k - r) / max(horizon - r, 1e-9), 0.0), 1.0) if spread else float(r <= k))
                       for r, a, spread in answers)
            out.append((seen + w * (1.0 - math.exp(-k / mean))) / (total + w))
        return tuple(out)

    def rates(self, prior: pacing.Inputs) -> dict[str, float]:
        n = len(self.finished)
        count = {k: sum(w.get(k, 0.0) for _, w, _ in self.finished) for k in ("human", "machine", "busy")}
        rings = [r for _, w, r in self.finished if len(w) == 1 and ("human" in w or "machine" in w)]
        w = PRIOR_LINES
        return {
            "human_rate": (count["human"] + w * prior.human_rate) / (n + w),
            "machine_rate": (count["machine"] + w * prior.machine_rate) / (n + w),
            "busy_rate": (count["busy"] + w * prior.busy_rate) / (n + w),
            "mean_ring_s": (sum(rings) + w * prior.mean_ring_s) / (len(rings) + w),
        }


class LiveDialer:
    """Runs inside the daemon: ``daemon`` gives the AMI client, the ACD state and ``submit``."""

    def __init__(self, daemon: Any, cfg: Config, store: LeadStore) -> None:
        self.d = daemon
        self.cfg = cfg
        self.store = store
        self.worker = f"daemon-{uuid.uuid4().hex[:8]}"
        self.lines: dict[str, Line] = {}
        self.by_action: dict[str, str] = {}  # Originate ActionID -> line id
        self.by_call: dict[str, str] = {}  # ACD call id -> line id
        self.last_lead: dict[str, tuple[str, int]] = {}  # agent -> (campaign, lead) of their last dialler call
        self.pacer: dict[str, pacing.PacingState] = {n: pacing.initial_state() for n in cfg.campaigns}
        self.history: dict[str, History] = {n: History() for n in cfg.campaigns}
        self.ids: dict[str, int] = {}
        self.last_decision: dict[str, pacing.Decision] = {}
        self._ringing: dict[str, list[Line]] = {n: [] for n in cfg.campaigns}
        self._wake = asyncio.Event()
        for name, c in cfg.campaigns.items():  # the YAML defines campaigns; their state lives in SQLite
            try:
                self.ids[name] = store.campaign_id(name)
            except KeyError:
                start, end = c.window.split("-")
                self.ids[name] = store.create_campaign(name, c.region, window_start=start, window_end=end,
                                                       max_attempts=c.max_attempts,
                                                       max_abandon_rate=c.max_abandon_rate)

    # ------------------------------------------------------------------ the loop
    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        released = self.store.release_stale(time.time(), older_than_s=0)  # our own leftovers: no line lives on
        if released:
            log.info("dialer.released_stale", leads=released)
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), WAKE_S)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            if not self.d.state.synced:
                continue
            for name in self.cfg.campaigns:
                await self._pace(name, time.time())

    async def _pace(self, name: str, now: float) -> None:
        camp = self.cfg.campaigns[name]
        if self.store.campaign_state(self.ids[name]) != "running":
            return
        inp = self._inputs(name, camp, now)
        self.pacer[name], dec = pacing.decide(self.pacer[name], inp, now)
        prev = self.last_decision.get(name)
        self.last_decision[name] = dec
        m = self.d.metrics
        m.dial_level.labels(name).set(len([ln for ln in self.lines.values() if ln.campaign == name]))
        if inp.rolling_human_answers:
            m.dial_abandon_rate.labels(name).set(inp.rolling_abandoned / inp.rolling_human_answers)
        if inp.agents_total:
            m.dial_occupancy.labels(name).set(1 - inp.agents_free / inp.agents_total)
        if dec.release:
            await self._release(name, inp, dec)
        if dec.lines == 0 and prev is not None and prev.lines == 0 and prev.reason == dec.reason:
            return  # nothing new to say
        log.info("dialer.pace", campaign=name, **dec.log_fields())
        for _ in range(dec.lines):
            lead = self.store.reserve(self.ids[name], now, self.worker)
            if lead is None:
                log.info("dialer.no_dialable_lead", campaign=name)
                break
            await self._dial(name, camp, lead.id, lead.phone, amd=camp.amd and dec.amd_trusted)

    def _inputs(self, name: str, camp: Campaign, now: float) -> pacing.Inputs:
        st = self.d.state
        members = self.cfg.queues[camp.queue].members
        agents = [st.agents[m] for m in members]
        on = [a for a in agents if a.state not in (AgentState.LOGGED_OUT, AgentState.PAUSED)]
        talk = tuple(now - (st.calls[a.call_id].answered_at or now) for a in on
                     if a.state == AgentState.BUSY and a.call_id in st.calls)
        wrap = tuple(max(0.0, (a.wrap_until or now) - now) for a in on if a.state == AgentState.WRAPUP)
        mine = [ln for ln in self.lines.values() if ln.campaign == name]
        # the order the pacer's ``release`` indices refer to
        self._ringing[name] = [ln for ln in mine if ln.state == "ringing" and ln.released is None]
        # A blended queue: inbound callers already waiting take free agents before any line we
        # dial now is answered, so they are not free for it.
        ours = {ln.call_id for ln in self.lines.values() if ln.call_id}
        inbound = sum(1 for c in st.calls.values() if c.queue == camp.queue and c.agent is None
                      and c.call_id not in ours)
        free = sum(1 for a in on if a.state == AgentState.READY)
        fig = self.d.queue_figures(now).get(camp.queue)
        prior = pacing.Inputs()
        humans, abandoned = self._rolling(name, now)
        return pacing.Inputs(
            mode=camp.mode, agents_total=len(on),
            agents_free=max(0, free - inbound),
            talk_elapsed=talk, wrap_remaining=wrap,
            ringing_elapsed=tuple(now - ln.dialled_at for ln in self._ringing[name]),
            amd_pending=sum(1 for ln in mine if ln.state == "amd"),
            amd_elapsed=tuple(now - (ln.answered_at or now) for ln in mine if ln.state == "amd"),
            ring_cdf=self.history[name].ring_cdf(prior.mean_ring_s, camp.ring_s),
            waiting=sum(1 for ln in mine if ln.state == "waiting"),
            no_answer_s=camp.ring_s, release_after_s=camp.release_after_s, wrap_s=self.cfg.queues[camp.queue].wrapup_s,
            aht_mean_s=(fig.aht_s if fig is not None and fig.aht_s else prior.aht_mean_s),
            rolling_abandoned=abandoned, rolling_human_answers=humans,
            max_abandon_rate=camp.max_abandon_rate,
            amd_false_positive=prior.amd_false_positive if camp.amd else 0.0,
            **self.history[name].rates(prior))

    def _rolling(self, name: str, now: float) -> tuple[int, int]:
        """Human answers and abandoned calls of the campaign in the rolling window (from the journal)."""
        rows = self.store.db.execute(
            "SELECT d.outcome, COUNT(*) FROM dispositions d JOIN leads l ON l.id = d.lead_id"
            " WHERE l.campaign_id = ? AND d.at >= ? AND d.outcome IN ('human', 'abandoned') GROUP BY 1",
            (self.ids[name], now - ROLLING_S)).fetchall()
        n = {r[0]: int(r[1]) for r in rows}
        return n.get("human", 0) + n.get("abandoned", 0), n.get("abandoned", 0)

    # ------------------------------------------------------------------ dialling
    async def _dial(self, name: str, camp: Campaign, lead_id: int, phone: str, *, amd: bool) -> None:
        line = Line(f"ccdial-{uuid.uuid4().hex[:20]}", name, lead_id, time.time())
        try:
            digits = dial_number(phone)
        except ValueError:
            self._finish(line, "invalid", "not a dialable number")
            return
        aid = self.d.ami.new_action_id()
        self.lines[line.line_id] = line
        self.by_action[aid] = line.line_id
        variables = [("CC_QUEUE", camp.queue), ("CC_CAMPAIGN", name), ("CC_DIAL_ID", line.line_id),
                     ("CC_COMPLIANCE", camp.compliance_message), ("CC_VM_MESSAGE", camp.machine_message or ""),
                     ("CC_AMD_PROFILE", camp.amd_profile or ""), ("CC_AMD_OFF", "" if amd else "1"),
                     ("CC_PRIORITY", str(camp.priority))]
        headers = [("Channel", f"PJSIP/{digits}@trunk-{camp.trunk}"), ("Context", "cc-outbound"), ("Exten", "s"),
                   ("Priority", "1"), ("Timeout", str(int(camp.ring_s * 1000))),
                   ("CallerID", f"<{camp.caller_id}>" if camp.caller_id else ""),
                   ("ChannelId", line.line_id), ("Async", "true")]
        headers += [("Variable", f"{k}={v}") for k, v in variables]
        log.info("dialer.dial", campaign=name, lead=lead_id, line=line.line_id, amd=amd)
        self.d.metrics.dialled.labels(name).inc()
        try:
            await self.d.ami.action("Originate", headers, action_id=aid)
        except Exception as e:  # noqa: BLE001 - AmiError, NotConnected, timeout: the lead goes back
            if isinstance(e, asyncio.CancelledError):
                raise
            self.by_action.pop(aid, None)
            self._finish(line, "no_answer", f"originate failed: {e}")

    async def _release(self, name: str, inp: pacing.Inputs, dec: pacing.Decision) -> None:
        """Give up the ringing lines the pacer released: hang up (the channel's uniqueid is the
        line id); the lead is retried as unanswered."""
        now = time.time()
        for i in dec.release:
            line = self._ringing[name][i]
            if line.state != "ringing" or line.released is not None:
                continue
            line.released = pacing.ringing_outcome(inp, now - line.dialled_at)
            log.info("dialer.release", campaign=name, lead=line.lead_id, line=line.line_id,
                     ring_s=round(now - line.dialled_at, 2))
            try:
                await self.d.ami.action("Hangup", [("Channel", line.line_id), ("Cause", "16")])
            except Exception as e:  # noqa: BLE001 - AmiError (already gone), NotConnected: it rings out
                if isinstance(e, asyncio.CancelledError):
                    raise
                log.info("dialer.release_failed", campaign=name, line=line.line_id, error=str(e))

    def _finish(self, line: Line, outcome: str, detail: str = "") -> None:
        """Record the attempt's outcome in the lead store (once) and forget the line when it is over."""
        if line.outcome is None:
            line.outcome = outcome
            try:
                self.store.record_outcome(line.lead_id, outcome, time.time(), self.worker, detail)
            except (KeyError, ValueError) as e:
                log.warning("dialer.outcome_not_recorded", lead=line.lead_id, outcome=outcome, error=str(e))
            kind = {"human": "human", "abandoned": "human", "machine": "machine", "busy": "busy"}.get(outcome, "other")
            ring = (line.answered_at or time.time()) - line.dialled_at
            if line.released is not None and line.answered_at is None:
                share = {("other" if k == "no_answer" else k): v for k, v in line.released.items()}
                self.history[line.campaign].add_released(time.time(), share, ring)
            else:
                self.history[line.campaign].add(time.time(), kind, ring)
            self.d.metrics.dial_outcomes.labels(line.campaign, outcome).inc()
            log.info("dialer.outcome", campaign=line.campaign, lead=line.lead_id, line=line.line_id,
                     outcome=outcome, detail=detail or None, call_id=line.call_id)
        self.wake()

    # ------------------------------------------------------------------ what Asterisk and the ACD tell us
    def on_originate_response(self, msg: Message) -> bool:
        lid = self.by_action.pop(msg.action_id, None)
        line = self.lines.get(lid) if lid else None
        if line is None:
            return False
        if msg.get("Response").lower() == "success":
            line.state, line.answered_at = "amd", time.time()
            line.channel = msg.get("Channel")
            log.info("dialer.answered", campaign=line.campaign, lead=line.lead_id, line=line.line_id,
                     ring_s=round(line.answered_at - line.dialled_at, 2))
        else:
            line.reason = msg.get("Reason")
            self._unanswered(line)
        self.wake()
        return True

    def _unanswered(self, line: Line) -> None:
        """Busy, no answer or invalid: once both the Originate reason and the hangup cause are in."""
        if line.reason is None or line.cause is None:
            return
        if line.released is not None:  # given up by the pacer: retried like an unanswered line
            outcome, detail = "no_answer", "released while ringing: no agent in reach of its answer"
        else:
            outcome = REASONS.get(line.reason) or CAUSES.get(line.cause, "no_answer")
            detail = f"originate reason {line.reason}, cause {line.cause}"
        self._finish(line, outcome, detail)
        self.lines.pop(line.line_id, None)

    def campaign_of(self, call_id: str) -> str | None:
        """The campaign of a dialled call now in the ACD (None for inbound calls)."""
        line = self.lines.get(self.by_call.get(call_id, ""))
        return line.campaign if line is not None else None

    def on_verdict(self, line_id: str, verdict: str) -> None:
        line = self.lines.get(line_id)
        if line is None:
            return
        if verdict == "MACHINE":
            line.state = "machine"
            self._finish(line, "machine")

    def on_queued(self, line_id: str, call_id: str, on_timer: Callable[[float, Callable[[], None]], object]) -> None:
        """A dialled person is in the queue: an agent must take them within the 2 s grace."""
        line = self.lines.get(line_id)
        if line is None:
            return
        line.state, line.call_id = "waiting", call_id
        self.by_call[call_id] = line_id
        on_timer(pacing.GRACE_S, lambda: self._grace_over(line_id))
        self.wake()

    def _grace_over(self, line_id: str) -> None:
        line = self.lines.get(line_id)
        if line is None or line.state != "waiting" or line.call_id is None:
            return
        c = self.d.state.calls.get(line.call_id)
        if c is not None and c.agent is not None:
            return  # an agent's phone is ringing for them right now (auto-answer: milliseconds)
        line.state = "abandoned"
        self._finish(line, "abandoned", "no agent within 2 s")
        self.d.submit_caller_gone(line.call_id)  # out of the queue now, before an agent is offered it
        self.d.compliance(line.channel, line.call_id)

    def on_call_answered(self, call_id: str, agent: str) -> None:
        line = self.lines.get(self.by_call.get(call_id, ""))
        if line is None or line.state not in ("waiting", "abandoned"):
            return
        if line.state == "abandoned":
            return
        line.state, line.agent = "connected", agent
        self.last_lead[agent] = (line.campaign, line.lead_id)
        self._finish(line, "human")

    def on_hangup(self, uniqueid: str, cause: str) -> None:
        line = self.lines.get(uniqueid)
        if line is None:
            return
        if line.state == "ringing":  # never answered: the Originate response says the rest
            line.cause = cause or "0"
            self._unanswered(line)
            return
        self.lines.pop(uniqueid, None)
        if line.call_id:
            self.by_call.pop(line.call_id, None)
        if line.outcome is None:  # gone before a verdict or before the grace ended
            if line.released is not None:  # answered just as we hung it up: count it against us
                self._finish(line, "abandoned", f"answered as it was released (state {line.state})")
            else:
                outcome = "abandoned" if line.state == "waiting" else "no_answer"
                self._finish(line, outcome, f"callee hung up in state {line.state}")
        self.wake()

    def dispose(self, agent: str, code: str, now: float) -> str | None:
        """An agent's disposition of their last dialler call (*69<code> or the HTTP API)."""
        last = self.last_lead.get(agent)
        if last is None:
            return None
        campaign, lead_id = last
        name = self.cfg.campaigns[campaign].dispositions.get(code)
        if name is None:
            return None
        self.store.dispose(lead_id, name, now, agent)
        log.info("dialer.disposition", campaign=campaign, lead=lead_id, agent=agent, disposition=name)
        return name

    def status(self) -> dict[str, object]:
        out: dict[str, object] = {}
        for name in self.cfg.campaigns:
            dec = self.last_decision.get(name)
            humans, abandoned = self._rolling(name, time.time())
            out[name] = {"state": self.store.campaign_state(self.ids[name]),
                         "lines": sum(1 for ln in self.lines.values() if ln.campaign == name),
                         "rolling_human_answers": humans, "rolling_abandoned": abandoned,
                         "abandon_rate": round(abandoned / humans, 4) if humans else 0.0,
                         "amd_trusted": self.pacer[name].amd_trusted,
                         "last_decision": None if dec is None else {"lines": dec.lines, "reason": dec.reason},
                         "leads": self.store.counts(self.ids[name])}
        return out

