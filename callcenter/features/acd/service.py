"""The ACD service: drives the pure core (:mod:`.model`) and carries out its commands over AMI.

Events in (AMI, FastAGI handlers, timers) -> ``model.step`` -> commands -> AMI actions and
domain events on the bus. It writes no journal and no metric itself: the subscribers of the bus
do. Every key of a channel carries the Asterisk node it lives on, so the resync of one node
never touches another node's legs.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from callcenter import events as ev
from callcenter.asterisk import contract as cc
from callcenter.asterisk.ami_client import AmiError, NotConnected, response
from callcenter.asterisk.ami_events import bridge_enter, channel_endpoint, is_stand_in, is_zombie
from callcenter.features.acd import model
from callcenter.features.acd import transfer
from callcenter.features.acd.agents import AgentState
from callcenter.protocol.ami import Message
from callcenter.tasks import Supervisor

__all__ = ["AcdService", "Leg", "sanitize_caller_id", "originate_headers", "encode_skills", "decode_skills"]

log = structlog.get_logger("callcenter.acd")

LEG_TTL_S = 120.0  # a leg whose end we never learn (a lost link) is forgotten this long after its ring

_NUM_KEEP = re.compile(r"[^0-9+*#]")
_NAME_KEEP = re.compile(r"[^\w .,'-]", re.UNICODE)


def sanitize_caller_id(name: str, num: str) -> tuple[str, str]:
    """Caller ID is whatever the far end sent: keep only harmless characters, bounded length."""
    num = _NUM_KEEP.sub("", num)[:32]
    name = _NAME_KEEP.sub("", name.replace("\r", " ").replace("\n", " "))[:48].strip()
    return name, num


def originate_headers(offer: model.Offer, channel_id: str, caller_context: str = cc.CTX_AGENT) -> list[tuple[str, str]]:
    """The AMI Originate that rings an agent's phone for a callback (cc-agent): once answered, the leg dials the customer."""
    name, num = sanitize_caller_id(offer.caller_name, offer.caller_num)
    return [
        ("Channel", f"PJSIP/{offer.phone}"),
        ("Context", caller_context),
        ("Exten", "s"),
        ("Priority", "1"),
        ("Timeout", str(int(offer.timeout_s * 1000))),
        ("CallerID", f'"{name}" <{num}>'),
        ("ChannelId", channel_id),
        ("Async", "true"),
        ("Variable", f"{cc.ROLE}={cc.ROLE_AGENT}"),
        ("Variable", f"{cc.AGENT}={offer.agent}"),
        ("Variable", f"{cc.CALL_ID}={offer.call_id}"),
        ("Variable", f"{cc.CALLER}={offer.caller_channel}"),
    ]


def encode_skills(skills: tuple[tuple[str, int], ...]) -> str:
    """``(("spanish", 3),)`` -> ``spanish:3`` (config names only: safe in a channel variable)."""
    return ",".join(f"{s}:{lv}" for s, lv in skills)


def decode_skills(text: str) -> tuple[tuple[str, int], ...]:
    out = []
    for part in text.split(","):
        m = re.fullmatch(r"([a-z][a-z0-9_-]{0,31}):(\d{1,2})", part)
        if m:
            out.append((m[1], int(m[2])))
    return tuple(out)


def epoch(text: str) -> float | None:
    """A Unix time kept in a channel variable (CC_ENTERED), or None if it is not one."""
    return float(text) if re.fullmatch(r"\d+(\.\d+)?", text) else None


def _int(text: str) -> int:
    """A small whole number kept in a channel variable (CC_PRIORITY), else 0 (never int('¹'))."""
    return int(text) if text.isascii() and text.isdigit() and len(text) < 10 else 0


class Ami(Protocol):
    def new_action_id(self) -> str: ...
    def send(self, name: str, headers: Any = (), *, action_id: str | None = None) -> asyncio.Future[Message]: ...
    async def action(self, name: str, headers: Any = (), *, action_id: str | None = None,
                     timeout: float = 10.0) -> Message: ...


@dataclass
class Leg:
    """An agent leg we originated, known by the ChannelId we gave it (its Uniqueid)."""

    call_id: str
    agent: str
    action_id: str
    expires_at: float
    channel: str = ""  # the channel name, learnt from Newchannel


@dataclass
class Hooks:
    """Listeners outside the ACD (the dialler): told of commands after each step."""

    agent_changed: list[Callable[[model.Agent], None]] = field(default_factory=list)
    call_answered: list[Callable[[str, str], None]] = field(default_factory=list)


class AcdService:
    def __init__(self, cfg: Any, bus: ev.Bus, ami: Ami, tasks: Supervisor, *, node: str = "local",
                 persisted: dict[str, tuple[AgentState, str, float]] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.cfg = cfg
        self.bus = bus
        self.ami = ami
        self.tasks = tasks
        self.node = node
        self.clock = clock
        self.state = model.initial_state(cfg, persisted)
        self.legs: dict[tuple[str, str], Leg] = {}  # (node, ChannelId) of agent legs we originated
        self.by_action: dict[tuple[str, str], str] = {}  # (node, Originate ActionID) -> ChannelId
        self.resync_legs: dict[tuple[str, str], str] = {}  # (call_id, agent) -> channel, from the snapshot
        # call id -> the ring decided while the caller is inside one of our AGI sessions (None: none yet)
        self.in_agi: dict[str, list[model.Offer] | None] = {}
        self.listeners = Hooks()
        self._pause_reason: dict[str, str | None] = {
            a.name: (a.pause_reason if a.state == AgentState.PAUSED else None) for a in self.state.agents.values()}
        self._timer: asyncio.TimerHandle | None = None

    # ------------------------------------------------------------------ the core
    def submit(self, event: object) -> list[model.Command]:
        now = self.clock()
        self.state, cmds = model.step(self.cfg, self.state, event, now)
        rings: dict[str, list[model.Offer]] = {}
        for c in cmds:  # the rings first: the decision's latency ends on the wire, before any bookkeeping
            if isinstance(c, model.Offer) and (call := self.state.calls.get(c.call_id)) is not None \
                    and not call.callback:
                rings.setdefault(c.call_id, []).append(c)  # all the phones of one call ring in one Dial()
        for offers in rings.values():
            self._ring(offers)
        for c in cmds:
            self._execute(c, now)
        self._reschedule()
        self._publish_figures()
        return cmds

    def reconfigure(self, cfg: Any) -> None:
        """A reloaded configuration (raises ``model.ReconfigureRefused``; then nothing changed)."""
        state = model.reconfigure(cfg, self.state)
        self.cfg, self.state = cfg, state
        for a in state.agents.values():
            self._pause_reason.setdefault(a.name, None)
        for name in [n for n in self._pause_reason if n not in state.agents]:
            del self._pause_reason[name]
        self.submit(model.Tick())

    def _reschedule(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        at = model.next_deadline(self.cfg, self.state, self.clock())
        if at is not None:
            delay = max(0.0, at - self.clock()) + 0.005
            self._timer = asyncio.get_running_loop().call_later(delay, self._tick)

    def _tick(self) -> None:
        self._timer = None
        self.submit(model.Tick())

    def _publish_figures(self) -> None:
        waiting, counts = model.figures(self.cfg, self.state)  # kept by the core's index: no scan per step
        self.bus.publish(ev.QueueFigures(waiting, counts))

    def _execute(self, c: model.Command, now: float) -> None:
        match c:
            case model.Offer():
                call = self.state.calls.get(c.call_id)
                self.bus.publish(ev.CallOffered(c.call_id, c.agent, call.queue if call else "", c.explain, now))
                if call is not None and call.callback:  # nobody on the line yet: ring the agent first
                    self.tasks.spawn(self._originate(c), "acd.originate")
            case model.CancelOffer():
                self.tasks.spawn(self.cancel(c.call_id, c.agent), "acd.cancel")
            case model.Fallback():
                self.bus.publish(ev.CallOutcome(c.call_id, "fallback"))
                log.info("call.fallback", call_id=c.call_id, queue=c.queue, reason=c.reason)
                if not c.immediate:  # refused at entry: the IVR session still holds the caller
                    self.tasks.spawn(self.redirect(c.channel, cc.CTX_FALLBACK), "acd.redirect")
            case model.Requeue():
                self.bus.publish(ev.CallOverflowed(c.call_id, c.queue))
                log.info("call.overflow", call_id=c.call_id, queue=c.queue, reason=c.reason)
                self.tasks.spawn(self.setvar(c.channel, cc.QUEUE, c.queue), "acd.setvar")
            case model.AgentChanged(agent=a):
                before = self._pause_reason.get(a.name)
                now_reason = a.pause_reason if a.state == AgentState.PAUSED else None
                changed = now_reason != before
                self._pause_reason[a.name] = now_reason
                self.bus.publish(ev.AgentStateChanged(a.name, str(a.state), a.pause_reason, a.idle_since,
                                                      a.call_id, changed, now_reason, now))
                log.info("agent.state", agent=a.name, state=str(a.state), reason=a.pause_reason or None,
                         call_id=a.call_id)
                for f in self.listeners.agent_changed:
                    f(a)
            case model.CallAnswered():
                for g in self.listeners.call_answered:
                    g(c.call_id, c.agent)
                self.bus.publish(ev.CallAnswered(c.call_id, c.agent, c.at))
                log.info("call.answered", call_id=c.call_id, agent=c.agent)
            case model.CallEnded():
                self.bus.publish(ev.CallEnded(c.call_id, c.outcome, c.at, c.agent))
            case model.CallbackStored(call=cb):
                self.bus.publish(ev.CallbackStored(cb, now))
                log.info("callback.stored", call_id=cb.call_id, queue=cb.queue, attempts=cb.attempts,
                         not_before=cb.not_before or None, connected=cb.connected)
            case model.CallsInterrupted():
                log.warning("calls.interrupted", node=c.node, calls=len(c.call_ids), call_ids=list(c.call_ids[:50]))
            case model.CallbackDone():
                self.bus.publish(ev.CallbackDone(c.call_id, c.outcome))
                log.info("callback.done", call_id=c.call_id, outcome=c.outcome)
            case model.Rejected():
                log.warning("core.rejected", event=type(c.event).__name__, reason=c.reason)
            case transfer.LegEnded():  # transfers (features/transfer): legs and the transfer's outcome
                self.bus.publish(ev.CallLegEnded(c.call_id, c.agent, c.answered_at, c.at, c.how))
                log.info("call.leg_ended", call_id=c.call_id, agent=c.agent, how=c.how,
                         talk_s=round(c.at - c.answered_at, 3))
            case transfer.LegStarted():
                self.bus.publish(ev.CallLegStarted(c.call_id, c.agent, c.at))
                log.info("call.leg_started", call_id=c.call_id, agent=c.agent)
            case transfer.TransferDone():
                self.bus.publish(ev.CallTransferred(c.call_id, c.kind, c.from_agent, c.to_kind, c.target, c.result,
                                                    now))
                log.info("transfer.done", call_id=c.call_id, kind=c.kind, from_agent=c.from_agent, to_kind=c.to_kind,
                         target=c.target, result=c.result)

    # ------------------------------------------------------------------ AMI actions
    def _ring(self, offers: list[model.Offer]) -> None:
        """Ring the agents of ``offers`` (one call) from the caller's own channel: set ``CC_OFFER`` and
        redirect the caller into cc-offer, whose Dial() makes the agent legs (see the dialplan). Both
        actions are written at once, still inside the step that decided (the routing decision's
        latency ends on the wire). A caller inside one of our AGI sessions is never redirected (that
        lost a caller, 1 in 10,000 calls): the session hands the ring over itself (:meth:`agi_end`)."""
        call_id = offers[0].call_id
        if call_id in self.in_agi:
            self.in_agi[call_id] = offers
            return
        value = self.offer_value(offers)
        if value is None:
            return
        caller = offers[0].caller_channel
        sent: list[tuple[str, asyncio.Future[Message]]] = []
        try:  # Asterisk runs one session's actions in order: the variable is set before the move
            sent.append(("Setvar", self.ami.send("Setvar", {"Channel": caller, "Variable": cc.OFFER, "Value": value})))
            sent.append(("Redirect", self.ami.send("Redirect", {"Channel": caller, "Context": cc.CTX_OFFER,
                                                                "Exten": "s", "Priority": "1"})))
            error: Exception | None = None
        except NotConnected as e:
            error = e
        self.tasks.spawn(self._ring_sent(offers, sent, error), "acd.ring")

    def offer_value(self, offers: list[model.Offer]) -> str | None:
        """``CC_OFFER`` for the offers still standing: "<dial>|<ring s>|<number>|<name>" (the caller's
        identity sanitised: what the agent's phone shows), or None if none is."""
        first = offers[0]
        c = self.state.calls.get(first.call_id)
        offers = [o for o in offers if c is not None and c.answered_at is None
                  and (o.agent == c.agent or o.agent in c.ringing)]
        if not offers:
            return None  # answered elsewhere, gone or rung out meanwhile
        for o in offers:
            log.info("offer.ring", call_id=o.call_id, agent=o.agent, phone=o.phone, why=o.explain)
        ring_s = max(1, math.ceil(max(o.timeout_s for o in offers)))
        name, num = sanitize_caller_id(first.caller_name, first.caller_num)
        name = name.replace(",", " ")  # Dial() splits its arguments on commas
        return "&".join(f"PJSIP/{o.phone}" for o in offers) + f"|{ring_s}|{num}|{name}"

    def agi_begin(self, call_id: str) -> None:
        """The caller is inside one of our AGI sessions (entering a queue, a queue hook, a digit): a
        ring decided meanwhile waits for :meth:`agi_end` instead of a Redirect."""
        self.in_agi.setdefault(call_id, None)

    def agi_end(self, call_id: str) -> str | None:
        """The session is about to return: ``CC_OFFER`` for a ring decided meanwhile, or None. The
        session sets it and ``CC_NEXT=offer``; the dialplan then goes to cc-offer by itself."""
        offers = self.in_agi.pop(call_id, None)
        return self.offer_value(offers) if offers else None

    async def _ring_sent(self, offers: list[model.Offer], sent: list[tuple[str, asyncio.Future[Message]]],
                         error: Exception | None) -> None:
        """Asterisk's answers to a ring: an error (the caller is gone, the link is down) fails the offers."""
        for name, fut in sent:
            try:
                await response(name, fut)
            except (AmiError, asyncio.TimeoutError) as e:
                error = error or e
        if error is not None:
            call_id = offers[0].call_id
            log.warning("offer.ring_failed", call_id=call_id, caller=offers[0].caller_channel, error=str(error))
            for o in offers:
                self.bus.publish(ev.OfferResult("error"))
                self.submit(model.OfferFailed(call_id, o.agent, "redirect-error"))

    async def _originate(self, offer: model.Offer) -> None:
        cid = f"ccagent-{uuid.uuid4().hex[:20]}"
        aid = self.ami.new_action_id()
        self.legs[(self.node, cid)] = Leg(offer.call_id, offer.agent, aid,
                                          self.clock() + offer.timeout_s + LEG_TTL_S)
        self.by_action[(self.node, aid)] = cid
        structlog.contextvars.bind_contextvars(call_id=offer.call_id, agent=offer.agent)
        log.info("offer.ring", call_id=offer.call_id, agent=offer.agent, phone=offer.phone, why=offer.explain)
        try:
            await self.ami.action("Originate", originate_headers(offer, cid), action_id=aid)
        except (AmiError, NotConnected, asyncio.TimeoutError) as e:
            log.warning("offer.originate_failed", call_id=offer.call_id, agent=offer.agent, error=str(e))
            self.legs.pop((self.node, cid), None)
            self.by_action.pop((self.node, aid), None)
            self.bus.publish(ev.OfferResult("error"))
            self.submit(model.OfferFailed(offer.call_id, offer.agent, "originate-error"))

    async def cancel(self, call_id: str, agent: str) -> None:
        """Hang up the agent's ringing leg: by channel name once known, else by the ChannelId we gave
        it at Originate (its Uniqueid) — so a cancel racing ``Newchannel`` still stops the ringing."""
        key = next((k for k, leg in self.legs.items() if leg.call_id == call_id and leg.agent == agent), None)
        target = ""
        if key is not None:
            target = self.legs[key].channel or key[1]
        if not target:
            # After a restart we know the leg only from Asterisk's snapshot.
            target = self.resync_legs.get((call_id, agent), "")
        if target:
            with contextlib.suppress(AmiError, NotConnected, asyncio.TimeoutError):
                await self.ami.action("Hangup", {"Channel": target, "Cause": "16"})

    async def setvar(self, channel: str, name: str, value: str) -> None:
        """Keep the channel's own record right (a restarted daemon reads it back)."""
        try:
            await self.ami.action("Setvar", {"Channel": channel, "Variable": name, "Value": value})
        except (AmiError, NotConnected, asyncio.TimeoutError) as e:
            log.warning("call.setvar_failed", channel=channel, variable=name, error=str(e))

    async def redirect(self, channel: str, context: str) -> None:
        try:
            await self.ami.action("Redirect", {"Channel": channel, "Context": context, "Exten": "s",
                                               "Priority": "1"})
        except (AmiError, NotConnected, asyncio.TimeoutError) as e:
            log.warning("call.redirect_failed", channel=channel, error=str(e))

    # ------------------------------------------------------------------ AMI events
    def on_ami_event(self, node: str, msg: Message) -> None:
        e = msg.event
        if e == "Newchannel":
            leg = self.legs.get((node, msg.get("Uniqueid")))
            if leg is not None:
                leg.channel = msg.get("Channel")
        elif e == "OriginateResponse":
            self._originate_response(node, msg)
        elif e == "Hangup":
            if is_zombie(msg):
                return
            v = msg.variables()
            role, call_id = v.get(cc.ROLE, ""), v.get(cc.CALL_ID, "")
            if role == cc.ROLE_CALLER and call_id:
                self.submit(model.CallerLeft(call_id))
            elif role == cc.ROLE_AGENT and call_id:
                self.legs.pop((node, msg.get("Uniqueid")), None)
                self.submit(model.AgentHungUp(v.get(cc.AGENT, ""), call_id))
        elif e == "DialBegin":
            self._dial_begin(node, msg)
        elif e == "DialEnd":
            self._dial_end(node, msg)
        elif (b := bridge_enter(msg)) is not None:
            # The second of caller and agent leg to enter makes the conversation.
            role, call_id = b.variables.get(cc.ROLE), b.variables.get(cc.CALL_ID, "")
            if role in (cc.ROLE_AGENT, cc.ROLE_CALLER) and call_id and b.num_channels >= 2:
                c = self.state.calls.get(call_id)
                log.info("call.bridged", call_id=call_id, agent=b.variables.get(cc.AGENT) or (c.agent if c else None),
                         bridge=b.bridge_id)
        elif e == "DeviceStateChange":
            agent = self.agent_for_device(msg.get("Device"))
            if agent:
                self.submit(model.DeviceState(agent, msg.get("State")))

    def _dial_begin(self, node: str, msg: Message) -> None:
        """A caller's Dial() in cc-offer rang an agent's phone: remember the leg (to cancel it)."""
        v = msg.variables()
        call_id = v.get(cc.CALL_ID, "")
        agent = self.agent_for_device("PJSIP/" + channel_endpoint(msg.get("DestChannel")))
        if v.get(cc.ROLE) != cc.ROLE_CALLER or not call_id or agent is None:
            return
        self.legs[(node, msg.get("DestUniqueid"))] = Leg(call_id, agent, "", self.clock() + LEG_TTL_S,
                                                          msg.get("DestChannel"))

    def _dial_end(self, node: str, msg: Message) -> None:
        """How a ring went: a caller's offer to an agent (NOANSWER, BUSY, CHANUNAVAIL...: the offer
        failed; an answer is the claim's to decide; CANCEL is not the agent's doing — another phone
        answered, the caller hung up or was moved — and what caused it settles the offer), or an
        agent leg dialling a callback."""
        v = msg.variables()
        status = msg.get("DialStatus")
        if v.get(cc.ROLE) == cc.ROLE_CALLER:
            leg = self.legs.pop((node, msg.get("DestUniqueid")), None)
            if leg is None or status in ("ANSWER", "CANCEL"):
                return
            c = self.state.calls.get(leg.call_id)
            if c is not None and c.answered_at is None and (c.agent == leg.agent or leg.agent in c.ringing):
                self.bus.publish(ev.OfferResult("noanswer"))
                log.info("offer.failed", call_id=leg.call_id, agent=leg.agent, reason=status)
                self.submit(model.OfferFailed(leg.call_id, leg.agent, status.lower() or "noanswer"))
            return
        c = self.state.calls.get(v.get(cc.CALL_ID, ""))
        if v.get(cc.ROLE) == cc.ROLE_AGENT and c is not None and c.callback:
            log.info("callback.dialled", call_id=c.call_id, agent=v.get(cc.AGENT), status=status)
            self.submit(model.CallbackDialed(c.call_id, v.get(cc.AGENT, ""), status))

    def _originate_response(self, node: str, msg: Message) -> None:
        cid = self.by_action.pop((node, msg.action_id), None)
        leg = self.legs.get((node, cid)) if cid else None
        if leg is None:
            log.info("ami.originate_response_unmatched", action_id=msg.action_id[:40],
                     response=msg.get("Response"), reason=msg.get("Reason"))
            return
        if msg.get("Response").lower() == "success":
            self.bus.publish(ev.OfferResult("answered-leg"))
            self.submit(model.OfferAnswered(leg.call_id, leg.agent))
        else:
            self.legs.pop((node, cid), None)  # type: ignore[arg-type]
            self.bus.publish(ev.OfferResult("noanswer"))
            log.info("offer.failed", call_id=leg.call_id, agent=leg.agent, reason=msg.get("Reason"))
            self.submit(model.OfferFailed(leg.call_id, leg.agent, msg.get("Reason")))

    def agent_for_device(self, device: str) -> str | None:
        if not device.startswith("PJSIP/"):
            return None
        return self.cfg.agent_by_phone(device[6:])

    def resync(self, node: str, chans: Iterable[Message], devs: Iterable[Message], *, restarted: bool = False) -> None:
        """Asterisk's snapshot of ``node`` after a (re)connect: rebuild our view of that node only
        (``restarted``: that Asterisk started again since the previous snapshot)."""
        chans = list(chans)
        snaps = []
        live = {m.get("Uniqueid") for m in chans}
        self.resync_legs = {}
        for m in chans:
            if is_stand_in(m.get("Channel")):  # a Surrogate/ or <ZOMBIE> copy: never a live caller
                continue
            v = m.variables()
            snap = model.ChannelSnapshot(
                uniqueid=m.get("Uniqueid"), channel=m.get("Channel"), role=v.get(cc.ROLE, ""),
                call_id=v.get(cc.CALL_ID, ""), agent=v.get(cc.AGENT, ""), queue=v.get(cc.QUEUE, ""),
                entered_at=epoch(v.get(cc.ENTERED, "")),
                up=m.get("ChannelState") == "6", bridged=bool(m.get("BridgeId")), context=m.get("Context"),
                caller_num=m.get("CallerIDNum"), caller_name=m.get("CallerIDName"),
                priority=_int(v.get(cc.PRIORITY, "")),
                skills=decode_skills(v.get(cc.SKILLS, "")))
            snaps.append(snap)
            if snap.role == cc.ROLE_AGENT:
                self.resync_legs[(snap.call_id, snap.agent)] = snap.channel
        # Legs of this node whose channel Asterisk no longer has: their events were lost with the link.
        for key in [k for k in self.legs if k[0] == node and k[1] not in live]:
            del self.legs[key]
        self._forget_orphan_actions()
        devices = {}
        for m in devs:
            agent = self.agent_for_device(m.get("Device"))
            if agent:
                devices[agent] = m.get("State")
        self.submit(model.Resync(tuple(snaps), devices, node=node, restarted=restarted))

    def ami_down(self, node: str) -> None:
        self.submit(model.AmiDown(node))

    def sweep(self) -> int:
        """Forget legs whose Originate response and hangup never came (a lost link): bounded maps."""
        now = self.clock()
        stale = [k for k, leg in self.legs.items() if leg.expires_at < now
                 and not (leg.call_id in self.state.calls and self.state.calls[leg.call_id].agent == leg.agent)]
        for k in stale:
            del self.legs[k]
        self._forget_orphan_actions()
        if stale:
            log.info("acd.legs_expired", legs=len(stale))
        return len(stale)

    def _forget_orphan_actions(self) -> None:
        """Originate action ids whose leg is gone will never be matched: forget them."""
        for k in [k for k, cid in self.by_action.items() if (k[0], cid) not in self.legs]:
            del self.by_action[k]

    # ------------------------------------------------------------------ reads for handlers and status
    def offered(self, call_id: str) -> bool:
        c = self.state.calls.get(call_id)
        return c is None or c.agent is not None

    def staffed(self, queue: str) -> int:
        return model.staffed(self.cfg, self.state.agents, queue)
