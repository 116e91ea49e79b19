"""The live dialer: campaigns from the lead store, paced by :mod:`callcenter.features.dialer.pacing`,
dialled through Asterisk (AMI Originate into ``cc-outbound``).

This is an adapter: every number it dials comes from :meth:`LeadStore.reserve` (atomic, DNC and
calling window checked at dial time, on the database thread); every decision is
:func:`pacing.decide`, fed by :class:`~.estimator.Estimator`, the same code the simulator and
``bench dialer`` run. It reaches the daemon only through a :class:`~.ports.DialerHost`. The
database is the one store of a campaign's settings (:mod:`.campaigns`): YAML campaigns are
upserted by :meth:`LiveDialer.apply_config`, CLI campaigns are dialled as they are. A line's life:

    ringing --OriginateResponse ok--> amd --HUMAN/NOTSURE--> waiting --agent answers--> connected
       |  busy / no answer / failed        \\--MACHINE--> message or hang-up (dialplan)
       |                                    waiting 2 s without an agent --> compliance message, abandoned

Every line leaves the maps when its channel hangs up, when an AMI resync finds its channel gone,
or (events lost) after a bounded time.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog

from callcenter.features.trunks.schema import outbound_caller_id
from callcenter.events import DialerOutcome, DispositionSet

from callcenter.asterisk.ami_client import AmiError, NotConnected
from callcenter.features.acd.agents import AgentState
from callcenter.features.acd.model import on_duty, staffed
from callcenter.features.cards.dial import trunk_dial
from callcenter.features.dialer import campaigns, pacing
from callcenter.features.dialer.estimator import BUSY, HUMAN, MACHINE, NOANSWER, Estimator

if TYPE_CHECKING:
    from callcenter.config import Config
    from callcenter.features.dialer.schema import CampaignConf
    from callcenter.features.dialer.ports import DialerHost
    from callcenter.features.dialer.store import LeadStore
    from callcenter.persistence import DbThread
    from callcenter.protocol.ami import Message

log = structlog.get_logger("callcenter.dialer")

__all__ = ["LiveDialer", "dial_number"]

# Why a line was not answered: Originate's Reason (AST_CONTROL_*), else the Hangup's Q.850 cause.
REASONS = {"5": "busy", "8": "busy", "3": "no_answer"}
CAUSES = {"17": "busy", "34": "busy", "38": "busy", "19": "no_answer", "18": "no_answer", "1": "invalid",
          "28": "invalid", "3": "invalid"}
ROLLING_S = 24 * 3600.0  # the compliance window the abandon rate is counted over (Ofcom: 24 h)
WAKE_S = 1.0  # re-decide at least this often while a campaign runs (ringing lines age)
RING_PRIOR_S = pacing.Inputs().mean_ring_s
ORIGINATE_GRACE_S = 30.0  # a line still "ringing" this long after its ring timeout lost its events
MAX_LINE_S = 6 * 3600.0  # no call lasts this long: a line still here lost its hangup
DISPOSE_WINDOW_S = 3600.0  # an agent may dispose their last dialler call this long after it
REFRESH_S = 1.0  # campaigns are re-read from the store at most this often (a CLI change shows within it)
COUNTS_EVERY_S = 5.0  # lead counts for /status are refreshed this often
KIND = {"human": HUMAN, "abandoned": HUMAN, "machine": MACHINE, "busy": BUSY}


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
    ring_s: float = 25.0
    action_id: str = ""
    state: str = "ringing"  # ringing | amd | waiting | connected | machine | abandoned
    answered_at: float | None = None
    connected_at: float | None = None
    call_id: str | None = None  # once routed to the queue
    agent: str | None = None
    channel: str = ""
    outcome: str | None = None  # recorded in the lead store (once)
    reason: str | None = None  # Originate failure reason ("": never coming), and the hangup cause:
    cause: str | None = None  # the line's outcome is decided when both are known
    released: dict[str, float] | None = None  # given up while ringing: the outcome shares it had then


@dataclass
class Active:
    """A campaign the dialler paces: its store id and state, and its settings (from the store)."""

    id: int
    state: str
    conf: CampaignConf


class LiveDialer:
    """Paces and dials every running campaign of the store; ``host`` is its view of the daemon,
    ``db`` the thread every :class:`LeadStore` call runs on."""

    def __init__(self, host: DialerHost, cfg: Config, store: LeadStore, db: DbThread, *,
                 worker: str | None = None, clock: Callable[[], float] = time.time, node: str = "local") -> None:
        self.host, self.cfg, self.store, self.db, self.clock = host, cfg, store, db, clock
        self.node = node  # the Asterisk node every line of this dialler lives on (its AMI)
        # stable across restarts, so the daemon releases its own leftover reservations (and only them)
        self.worker = worker or f"daemon-{socket.gethostname()}"
        self.camps: dict[str, Active] = {}
        self.lines: dict[str, Line] = {}
        self.by_action: dict[str, str] = {}  # Originate ActionID -> line id (until its response)
        self.by_call: dict[str, str] = {}  # ACD call id -> line id
        self.last_lead: dict[str, tuple[str, int, float, dict[str, str]]] = {}  # agent -> campaign, lead, at, codes
        self.last_call: dict[str, str | None] = {}  # agent -> the call id of that last dialler call
        self.pacer: dict[str, pacing.PacingState] = {}
        self.est: dict[str, Estimator] = {}
        self.last_decision: dict[str, pacing.Decision] = {}
        self._ringing: dict[str, list[Line]] = {}
        self._rolling: dict[str, tuple[int, int]] = {}
        self._counts: dict[str, dict[str, int]] = {}
        self._counts_at = -COUNTS_EVERY_S
        self._refreshed_at = float("-inf")  # when tick() last re-read the campaigns
        self._unusable: dict[str, str] = {}
        self._wake = asyncio.Event()

    # ------------------------------------------------------------------ campaigns: the store is the truth
    async def apply_config(self, cfg: Config) -> None:
        """At start and on every reload: upsert the YAML's campaigns into the store (the YAML wins
        for its settings, state and leads kept), retire those it dropped; lines in flight go on."""
        self.cfg = cfg
        for problem in await self.db.run(campaigns.sync_yaml, self.store, cfg):
            log.warning("dialer.campaign_not_saved", problem=problem)
        await self._refresh()
        self.wake()

    async def _refresh(self) -> None:
        """Re-read every campaign from the store (CLI-made ones included)."""
        camps: dict[str, Active] = {}
        rows = await self.db.run(self.store.campaign_rows)
        self._unusable = {r.name: w for r in rows if (w := self._unusable.get(r.name)) is not None}
        for row in rows:
            try:
                conf = campaigns.conf_of(row)
                why = campaigns.not_dialable(conf, self.cfg)
            except ValueError as e:
                why = str(e)
            if why is not None:
                if self._unusable.get(row.name) != why:
                    log.warning("dialer.campaign_not_dialable", campaign=row.name, reason=why)
                self._unusable[row.name] = why
                continue
            self._unusable.pop(row.name, None)
            camps[row.name] = Active(row.id, row.state, conf)
            est = self.est.get(row.name)
            if est is None or est.no_answer_s != conf.ring_s:
                self.est[row.name] = Estimator(ring_prior_s=RING_PRIOR_S, no_answer_s=conf.ring_s)
            self.pacer.setdefault(row.name, pacing.initial_state())
        self.camps = camps
        busy = {ln.campaign for ln in self.lines.values()} | set(camps)
        for d in (self.est, self.pacer, self.last_decision, self._ringing, self._rolling, self._counts):
            for name in [n for n in d if n not in busy]:
                del d[name]

    def campaign_conf(self, name: str) -> CampaignConf | None:
        """The settings of a campaign being dialled (recording policy, dispositions ...)."""
        c = self.camps.get(name)
        return c.conf if c is not None else None

    # ------------------------------------------------------------------ the loop
    def wake(self, *, refresh: bool = False) -> None:
        """Pace again now; ``refresh``: re-read the campaigns first (one changed through the API)."""
        if refresh:
            self._refreshed_at = float("-inf")
        self._wake.set()

    async def run(self) -> None:
        await self.apply_config(self.cfg)
        released = await self.db.run(self.store.release_stale, self.clock(), self.worker, 0.0)
        if released:  # our own leftovers from before a restart: no line of ours lives on
            log.info("dialer.released_stale", leads=released, worker=self.worker)
        while True:
            with contextlib.suppress(TimeoutError):  # asyncio.timeout never swallows a cancel (wait_for can)
                async with asyncio.timeout(WAKE_S):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self.tick()
            except sqlite3.OperationalError as e:  # locked past the busy timeout: try again next round
                log.error("dialer.database_error", error=str(e))

    async def tick(self) -> None:
        """One round: expire lost lines, re-read the campaigns, pace every running one."""
        now = self.clock()
        self.expire(now)
        if not self.host.acd_state().synced:
            return
        if now - self._refreshed_at >= REFRESH_S:  # agent changes wake us many times a second
            await self._refresh()
            self._refreshed_at = now  # after it worked: a locked database is retried next round
        if now - self._counts_at >= COUNTS_EVERY_S:
            self._counts_at = now
            for name, c in self.camps.items():
                self._counts[name] = await self.db.run(self.store.counts, c.id)
        for name in list(self.camps):
            await self._pace(name, now)

    async def _pace(self, name: str, now: float) -> None:
        camp = self.camps[name]
        if camp.state != "running":
            return
        self._rolling[name] = await self.db.run(self.store.rolling, camp.id, now - ROLLING_S)
        inp = self._inputs(name, camp.conf, now)
        self.pacer[name], dec = pacing.decide(self.pacer[name], inp, now)
        prev = self.last_decision.get(name)
        self.last_decision[name] = dec
        m = self.host.metrics
        m.dial_level.labels(name).set(sum(1 for ln in self.lines.values() if ln.campaign == name))
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
            lead = await self.db.run(self.store.reserve, camp.id, now, self.worker)
            if lead is None:
                log.info("dialer.no_dialable_lead", campaign=name)
                break
            await self._dial(name, camp.conf, lead.id, lead.phone, amd=camp.conf.amd and dec.amd_trusted)

    def _inputs(self, name: str, camp: CampaignConf, now: float) -> pacing.Inputs:
        st = self.host.acd_state()
        members = [st.agents[m] for m in self.cfg.queues[camp.queue].members if m in st.agents]
        on = [a for a in members if on_duty(a)]
        talk = tuple(now - (st.calls[a.call_id].answered_at or now) for a in on
                     if a.state == AgentState.BUSY and a.call_id in st.calls)
        wrap = tuple(max(0.0, (a.wrap_until or now) - now) for a in on if a.state == AgentState.WRAPUP)
        mine = [ln for ln in self.lines.values() if ln.campaign == name]
        # the order the pacer's ``release`` indices refer to
        self._ringing[name] = [ln for ln in mine if ln.state == "ringing" and ln.released is None]
        # A blended queue: inbound callers already waiting take free agents before any line we
        # dial now is answered, so they are not free for it.
        inbound = sum(1 for c in st.calls.values() if c.queue == camp.queue and c.agent is None
                      and c.call_id not in self.by_call)
        free = sum(1 for a in on if a.state == AgentState.READY)
        humans, abandoned = self._rolling.get(name, (0, 0))
        prior = pacing.Inputs()
        return pacing.Inputs(
            mode=camp.mode, agents_total=staffed(self.cfg, st.agents, camp.queue),
            agents_free=max(0, free - inbound),
            talk_elapsed=talk, wrap_remaining=wrap,
            ringing_elapsed=tuple(now - ln.dialled_at for ln in self._ringing[name]),
            amd_pending=sum(1 for ln in mine if ln.state == "amd"),
            amd_elapsed=tuple(now - (ln.answered_at or now) for ln in mine if ln.state == "amd"),
            waiting=sum(1 for ln in mine if ln.state == "waiting"),
            no_answer_s=camp.ring_s, release_after_s=camp.release_after_s, wrap_s=self.cfg.queues[camp.queue].wrapup_s,
            rolling_abandoned=abandoned, rolling_human_answers=humans,
            max_abandon_rate=camp.max_abandon_rate,
            amd_false_positive=prior.amd_false_positive if camp.amd else 0.0,
            **self.est[name].fields(self.host.queue_aht(camp.queue, now)))  # type: ignore[arg-type]

    # ------------------------------------------------------------------ dialling
    async def _dial(self, name: str, camp: CampaignConf, lead_id: int, phone: str, *, amd: bool) -> None:
        line = Line(f"ccdial-{uuid.uuid4().hex[:20]}", name, lead_id, self.clock(), ring_s=camp.ring_s)
        try:
            digits = dial_number(phone)
        except ValueError:
            self._finish(line, "invalid", "not a dialable number")
            return
        line.action_id = aid = self.host.ami.new_action_id()
        self.lines[line.line_id] = line
        self.by_action[aid] = line.line_id
        variables = [("CC_QUEUE", camp.queue), ("CC_CAMPAIGN", name), ("CC_DIAL_ID", line.line_id),
                     ("CC_COMPLIANCE", camp.compliance_message), ("CC_VM_MESSAGE", camp.machine_message or ""),
                     ("CC_AMD_PROFILE", camp.amd_profile or ""), ("CC_AMD_OFF", "" if amd else "1"),
                     ("CC_PRIORITY", str(camp.priority))]
        cid = outbound_caller_id(self.cfg.trunks.get(camp.trunk), camp.caller_id)  # campaign's, else trunk's
        headers = [("Channel", trunk_dial(self.cfg, camp.trunk, digits)), ("Context", "cc-outbound"), ("Exten", "s"),
                   ("Priority", "1"), ("Timeout", str(int(camp.ring_s * 1000))),
                   ("CallerID", f"<{cid}>" if cid else ""),
                   ("ChannelId", line.line_id), ("Async", "true")]
        headers += [("Variable", f"{k}={v}") for k, v in variables]
        log.info("dialer.dial", campaign=name, lead=lead_id, line=line.line_id, amd=amd)
        self.host.metrics.dialled.labels(name).inc()
        try:
            await self.host.ami.action("Originate", headers, action_id=aid)
        except (AmiError, NotConnected, OSError, TimeoutError) as e:  # the lead goes back
            self._finish(line, "no_answer", f"originate failed: {e}")
            self._drop(line)

    async def _release(self, name: str, inp: pacing.Inputs, dec: pacing.Decision) -> None:
        """Give up the ringing lines the pacer released: hang up (the channel's uniqueid is the
        line id); the lead is retried as unanswered."""
        now = self.clock()
        for i in dec.release:
            line = self._ringing[name][i]
            if line.state != "ringing" or line.released is not None:
                continue
            line.released = pacing.ringing_outcome(inp, now - line.dialled_at)
            log.info("dialer.release", campaign=name, lead=line.lead_id, line=line.line_id,
                     ring_s=round(now - line.dialled_at, 2))
            try:
                await self.host.ami.action("Hangup", [("Channel", line.line_id), ("Cause", "16")])
            except (AmiError, NotConnected, OSError, TimeoutError) as e:  # already gone, AMI down: it rings out
                log.info("dialer.release_failed", campaign=name, line=line.line_id, error=str(e))

    def _finish(self, line: Line, outcome: str, detail: str = "") -> None:
        """Record the attempt's outcome (once, on the database thread) and learn from it."""
        if line.outcome is None:
            line.outcome = outcome
            now = self.clock()
            self.db.post(self._record, line.lead_id, outcome, now, detail)
            est = self.est.get(line.campaign)
            if est is not None:
                if line.released is not None and line.answered_at is None:
                    est.released(line.released, now - line.dialled_at)
                else:
                    est.outcome({KIND.get(outcome, NOANSWER): 1.0})
            self.host.publish(DialerOutcome(line.campaign, outcome, line.lead_id))
            log.info("dialer.outcome", campaign=line.campaign, lead=line.lead_id, line=line.line_id,
                     outcome=outcome, detail=detail or None, call_id=line.call_id)
        self.wake()

    def _record(self, lead_id: int, outcome: str, now: float, detail: str) -> None:
        try:
            self.store.record_outcome(lead_id, outcome, now, self.worker, detail)
        except (KeyError, ValueError) as e:
            log.warning("dialer.outcome_not_recorded", lead=lead_id, outcome=outcome, error=str(e))

    def _drop(self, line: Line) -> None:
        """Forget a line that is over, with every key that leads to it."""
        self.lines.pop(line.line_id, None)
        if self.by_action.get(line.action_id) == line.line_id:
            del self.by_action[line.action_id]
        if line.call_id is not None and self.by_call.get(line.call_id) == line.line_id:
            del self.by_call[line.call_id]

    # ------------------------------------------------------------------ what Asterisk and the ACD tell us
    def on_originate_response(self, msg: Message) -> bool:
        lid = self.by_action.pop(msg.action_id, None)
        line = self.lines.get(lid) if lid else None
        if line is None:
            return False
        if msg.get("Response").lower() == "success":
            self._answered(line, msg.get("Channel"))
        else:
            line.reason = msg.get("Reason")
            self._unanswered(line)
        self.wake()
        return True

    def _answered(self, line: Line, channel: str) -> None:
        line.state, line.answered_at, line.channel = "amd", self.clock(), channel
        est = self.est.get(line.campaign)
        if est is not None:
            est.answered(line.answered_at - line.dialled_at)
        log.info("dialer.answered", campaign=line.campaign, lead=line.lead_id, line=line.line_id,
                 ring_s=round(line.answered_at - line.dialled_at, 2))

    def _unanswered(self, line: Line) -> None:
        """Busy, no answer or invalid: once both the Originate reason and the hangup cause are in."""
        if line.reason is None or line.cause is None:
            return
        if line.released is not None:  # given up by the pacer: retried like an unanswered line
            outcome, detail = "no_answer", "released while ringing: no agent in reach of its answer"
        else:
            outcome = REASONS.get(line.reason) or CAUSES.get(line.cause, "no_answer")
            detail = f"originate reason {line.reason or '?'}, cause {line.cause}"
        self._finish(line, outcome, detail)
        self._drop(line)

    def campaign_of(self, call_id: str) -> str | None:
        """The campaign of a dialled call now in the ACD (None for inbound calls)."""
        line = self.lines.get(self.by_call.get(call_id, ""))
        return line.campaign if line is not None else None

    def on_verdict(self, line_id: str, verdict: str) -> None:
        line = self.lines.get(line_id)
        if line is not None and verdict == "MACHINE":
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
        c = self.host.acd_state().calls.get(line.call_id)
        if c is not None and c.agent is not None:
            return  # an agent's phone is ringing for them right now (auto-answer: milliseconds)
        line.state = "abandoned"
        self._finish(line, "abandoned", "no agent within 2 s")
        self.host.caller_gone(line.call_id)  # out of the queue now, before an agent is offered it
        self.host.compliance(line.channel, line.call_id)

    def on_call_answered(self, call_id: str, agent: str) -> None:
        line = self.lines.get(self.by_call.get(call_id, ""))
        if line is None or line.state != "waiting":
            return
        line.state, line.agent, line.connected_at = "connected", agent, self.clock()
        camp = self.camps.get(line.campaign)
        codes = dict(camp.conf.dispositions) if camp is not None else {}
        self.last_lead[agent] = (line.campaign, line.lead_id, line.connected_at, codes)
        self.last_call[agent] = line.call_id  # the disposition's correlation id (webhooks)
        self._finish(line, "human")

    def on_hangup(self, uniqueid: str, cause: str) -> None:
        line = self.lines.get(uniqueid)
        if line is None:
            return
        if line.state == "ringing":  # never answered: the Originate response says the rest
            line.cause = cause or "0"
            self._unanswered(line)
            return
        self._ended(line, f"callee hung up in state {line.state}")

    def _ended(self, line: Line, detail: str) -> None:
        """An answered line's channel is gone: settle it if still open, learn the talk time, forget it."""
        self._drop(line)
        last = self.last_lead.get(line.agent or "")
        if last is not None and last[1] == line.lead_id:  # the disposition window starts at the hang-up
            self.last_lead[line.agent or ""] = (last[0], last[1], self.clock(), last[3])
        if line.connected_at is not None:
            est = self.est.get(line.campaign)
            if est is not None:
                est.call_ended(self.clock() - line.connected_at)
        if line.outcome is None:  # gone before a verdict or before the grace ended
            if line.released is not None:  # answered just as we hung it up: count it against us
                self._finish(line, "abandoned", f"answered as it was released (state {line.state})")
            else:
                self._finish(line, "abandoned" if line.state == "waiting" else "no_answer", detail)
        self.wake()

    def _settle(self, line: Line, detail: str) -> None:
        """A line whose events were lost: settle it now with what is known (the lead is released)."""
        if line.state == "ringing":
            line.reason = line.reason if line.reason is not None else ""
            line.cause = line.cause or "0"
            self._unanswered(line)
        else:
            self._ended(line, detail)

    # ------------------------------------------------------------------ lost events: AMI down, resync, expiry
    def ami_down(self, node: str | None = None) -> None:
        """AMI is gone: the responses to our Originates will never come (hangup causes decide)."""
        if node is not None and node != self.node:
            return
        for lid in self.by_action.values():
            line = self.lines.get(lid)
            if line is not None and line.reason is None:
                line.reason = ""
        self.by_action.clear()

    def resync(self, channels: Iterable[Message], node: str | None = None) -> int:
        """After each AMI (re)sync, with its ``CoreShowChannels`` events: lines whose channel is gone
        are settled (outcome recorded, lead released for a retry); a ringing line found up is in AMD.
        Lines whose Originate response is still awaited on this connection are left alone. The
        number of lines settled. Another node's resync never touches this node's lines."""
        if node is not None and node != self.node:
            return 0
        up = {m.get("Uniqueid"): m for m in channels}
        settled = 0
        for line in list(self.lines.values()):
            if line.action_id in self.by_action:
                continue
            m = up.get(line.line_id)
            if m is None:
                self._settle(line, "channel gone (AMI resync)")
                settled += 1
            elif line.state == "ringing" and m.get("ChannelState") == "6":
                self._answered(line, m.get("Channel"))
        if settled:
            log.info("dialer.resync", settled=settled, lines=len(self.lines))
        self.wake()
        return settled

    def expire(self, now: float) -> None:
        """Settle lines whose events never came: an Originate without a response or hangup well past
        its ring timeout, any line older than a call can last; forget stale disposition targets."""
        for line in list(self.lines.values()):
            if (line.state == "ringing" and now - line.dialled_at > line.ring_s + ORIGINATE_GRACE_S) \
                    or now - line.dialled_at > MAX_LINE_S:
                log.info("dialer.line_expired", campaign=line.campaign, line=line.line_id, state=line.state)
                self._settle(line, f"no event for {now - line.dialled_at:.0f} s")
        for agent in [a for a, v in self.last_lead.items() if now - v[2] > DISPOSE_WINDOW_S]:
            del self.last_lead[agent]
            self.last_call.pop(agent, None)

    # ------------------------------------------------------------------ agents and status
    async def dispose(self, agent: str, code: str, now: float) -> str | None:
        """An agent's disposition of their last dialler call (*69<code> or the HTTP API)."""
        last = self.last_lead.get(agent)
        if last is None:
            return None
        campaign, lead_id, _, codes = last
        name = codes.get(code)
        if name is None:
            return None
        await self.db.run(self.store.dispose, lead_id, name, now, agent)
        del self.last_lead[agent]
        self.host.publish(DispositionSet(agent, campaign, lead_id, name, now, self.last_call.pop(agent, None)))
        log.info("dialer.disposition", campaign=campaign, lead=lead_id, agent=agent, disposition=name)
        return name

    def status(self) -> dict[str, object]:
        """Each campaign being dialled (as of the last round: no database work here)."""
        out: dict[str, object] = {}
        for name, c in self.camps.items():
            dec = self.last_decision.get(name)
            humans, abandoned = self._rolling.get(name, (0, 0))
            out[name] = {"state": c.state,
                         "lines": sum(1 for ln in self.lines.values() if ln.campaign == name),
                         "rolling_human_answers": humans, "rolling_abandoned": abandoned,
                         "abandon_rate": round(abandoned / humans, 4) if humans else 0.0,
                         "amd_trusted": self.pacer[name].amd_trusted,
                         "last_decision": None if dec is None else {"lines": dec.lines, "reason": dec.reason},
                         "leads": self._counts.get(name, {})}
        return out

    def sizes(self) -> dict[str, int]:
        """How many entries each map holds (for tests and /status: none grows without bound)."""
        return {"lines": len(self.lines), "by_action": len(self.by_action), "by_call": len(self.by_call),
                "last_lead": len(self.last_lead)}

