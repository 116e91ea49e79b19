"""The ACD core: ``step(state, event, now) -> (state, commands)``.

Rules of this module: no I/O, no clock, no asyncio. State is immutable; every change builds a
new :class:`AcdState`. The adapters turn AMI/AGI traffic into events and carry out the
commands. Nothing is offered to an agent before the first :class:`Resync` after a
(re)connect, so a daemon that just started never rings a phone that is already talking.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np

from callcenter.features.acd import index as _ix  # the routing index (imported as a module: no cycle)
from callcenter.features.acd import routing
from callcenter.features.acd import transfer as _transfer  # transfers: a part of step() (no cycle at import)
from callcenter.features.acd.agents import AgentState, IllegalTransition, Trigger, transition
from callcenter.features.ivr.model import is_open

if TYPE_CHECKING:
    from callcenter.config import Config
    from callcenter.features.acd.index import _Index

__all__ = [
    "Agent", "Call", "AcdState", "initial_state", "step", "next_deadline", "figures", "reconfigure",
    "ReconfigureRefused",
    # events
    "Login", "Logout", "Pause", "Unpause", "DeviceState", "CallQueued", "CallerLeft", "OfferAnswered",
    "OfferFailed", "AgentHungUp", "Tick", "AmiDown", "Resync", "ChannelSnapshot", "Overflow",
    "CallbackRequested", "CallbackRestored", "CallbackDialed", "DirectCall",
    # commands
    "Offer", "CancelOffer", "Fallback", "Requeue", "AgentChanged", "CallAnswered", "CallEnded", "Rejected",
    "CallbackStored", "CallbackDone", "CallsInterrupted", "preferred_now", "DIRECT_PRIORITY",
]

UNAVAILABLE_DEVICE = frozenset({"UNAVAILABLE", "INVALID", "INUSE", "BUSY", "RINGING", "RINGINUSE", "ONHOLD"})
# Where a caller waits for an agent: its wait loop, or ringing agents from its own Dial() (the dialplan).
WAITING_CONTEXTS = frozenset({"cc-wait", "cc-offer"})
OFFER_GRACE_S = 10.0  # an offer with no answer/failure this long after its ring timeout is given up
DIRECT_PRIORITY = 1_000_000  # a click-to-call: ahead of every caller for its (one) agent


# --------------------------------------------------------------------------- state

@dataclass(frozen=True)
class Agent:
    name: str
    phone: str
    queues: tuple[str, ...]
    state: AgentState = AgentState.LOGGED_OUT
    idle_since: float = 0.0
    call_id: str | None = None
    wrap_until: float | None = None
    no_answers: int = 0
    pause_reason: str = ""
    device: str = "UNKNOWN"
    calls_taken: int = 0
    retry_at: float = 0.0  # after an unanswered offer: no new offer before this time
    # per queue, for leastrecent / fewestcalls (as app_queue counts them: calls of that queue)
    queue_calls: Mapping[str, int] = field(default_factory=dict)
    queue_last_end: Mapping[str, float] = field(default_factory=dict)
    resume: str = ""  # during a consult taken on a break or logged out: "Paused" | "LoggedOut" (transfers)


@dataclass(frozen=True)
class Call:
    call_id: str
    queue: str
    channel: str
    entered_at: float
    caller_num: str = ""
    caller_name: str = ""
    agent: str | None = None  # offered to / talking with
    offer_deadline: float | None = None
    answered_at: float | None = None
    tried: frozenset[str] = frozenset()  # agents that missed this call in the current round
    priority: int = 0
    skills: tuple[tuple[str, int], ...] = ()  # required skill -> minimum level (beyond the queue's)
    queue_entered_at: float | None = None  # entry into the current queue (overflow moves it); None: entered_at
    ringing: frozenset[str] = frozenset()  # ringall: the other agents rung for this call besides `agent`
    route: str = field(default="", compare=False)  # why the current/last offer went where it went
    # A callback: the caller hung up keeping their place (channel ""); `callback` is the number to
    # dial (digits only), through `trunk`, once an agent is reserved and has answered.
    callback: str = ""
    trunk: str = ""
    attempts: int = 0  # callback dial attempts that failed
    not_before: float = 0.0  # no new callback attempt before this time
    connected: bool = False  # the callback was answered: agent and caller are talking
    node: str = "local"  # the Asterisk node the caller's channel lives on
    # When the AMI link to that node went down while this call was live: its fate is unknown until
    # the next Resync of the node (found again: cleared; gone after an Asterisk restart: "interrupted").
    interrupted_at: float | None = None
    # Relationship routing: until ``prefer_until`` the call is offered to ``preferred`` only (its
    # account manager), if that agent is a member of its queue; then, or once that agent let it ring
    # out, to anyone as usual (see :func:`preferred_now`).
    preferred: str | None = None
    prefer_until: float = 0.0
    # A click-to-call: a callback pinned to one agent (``preferred``, for ever), dialled once, never
    # stored; it ends when that agent misses it or the customer does not answer.
    direct: bool = False
    # Transfers (features/acd/transfer.py): legs so far beyond the first; "blind" while held between a
    # blind transfer and its target, "park" while parked (features/parking); the colleague answering
    # the holder's consult call about it.
    transfers: int = 0
    pending: str = ""
    consult: str | None = None
    # A conference (features/conference): the third party brought in — an agent's name or a number
    conference: str = ""


@dataclass(frozen=True)
class AcdState:
    agents: Mapping[str, Agent]
    calls: Mapping[str, Call]  # waiting, being offered, or talking
    synced: bool = False
    rr_last: Mapping[str, int] = field(default_factory=dict)  # queue -> member position that last answered
    # Derived, not state: the routing index of exactly this state (see _Index), or None / one that no
    # longer matches (then the next step rebuilds it). Never compared, never shown.
    _index: Any = field(default=None, compare=False, repr=False)

    def waiting(self, queue: str | None = None) -> list[Call]:
        return sorted((c for c in self.calls.values()
                       if c.agent is None and (queue is None or c.queue == queue)),
                      key=lambda c: (c.entered_at, c.call_id))

    def position(self, call_id: str) -> int | None:
        c = self.calls.get(call_id)
        if c is None or c.agent is not None:
            return None
        return 1 + sum(1 for w in self.waiting(c.queue) if (w.entered_at, w.call_id) < (c.entered_at, c.call_id))


def _frozen(d: dict) -> Mapping:
    return MappingProxyType(d)


def initial_state(cfg: Config, persisted: Mapping[str, tuple[AgentState, str, float]] | None = None) -> AcdState:
    """Agents from the config; login/pause state from the journal (``persisted``)."""
    agents = {}
    for name, a in cfg.agents.items():
        queues = tuple(q for q, qc in cfg.queues.items() if name in qc.members)
        ag = Agent(name=name, phone=a.phone, queues=queues)
        if persisted and name in persisted:
            st, reason, since = persisted[name]
            # Calls in flight are rebuilt by Resync; only the login/pause part survives a restart.
            if st in (AgentState.PAUSED,):
                ag = replace(ag, state=st, pause_reason=reason, idle_since=since)
            elif st != AgentState.LOGGED_OUT:
                ag = replace(ag, state=AgentState.READY, idle_since=since)
        agents[name] = ag
    return AcdState(agents=_frozen(agents), calls=_frozen({}))


class ReconfigureRefused(Exception):
    """A reload that would strand live calls (a queue removed while callers are in it)."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


def reconfigure(new: Config, state: AcdState) -> AcdState:
    """The state under a reloaded configuration: calls in progress untouched.

    New agents start logged out; an agent removed from the config goes at once unless it is on a
    call (then it stays until that call ends, offered nothing new: it is in no queue). Queue
    memberships follow the new config. Removing a queue that still has callers is refused.
    """
    problems = [f"queues.{c.queue}: removed while {sum(1 for x in state.calls.values() if x.queue == c.queue)}"
                f" call(s) are in it" for c in state.calls.values() if c.queue not in new.queues]
    if problems:
        raise ReconfigureRefused(sorted(set(problems)))
    agents: dict[str, Agent] = {}
    for name, a in state.agents.items():
        if name not in new.agents:
            if a.call_id is not None:  # finishing a call: keep, in no queue
                agents[name] = replace(a, queues=())
            continue
        agents[name] = a
    for name, a in new.agents.items():
        queues = tuple(q for q, qc in new.queues.items() if name in qc.members)
        cur = agents.get(name)
        agents[name] = Agent(name=name, phone=a.phone, queues=queues) if cur is None \
            else replace(cur, phone=a.phone, queues=queues)
    return replace(state, agents=_frozen(agents))


# --------------------------------------------------------------------------- events

@dataclass(frozen=True)
class Login:
    agent: str


@dataclass(frozen=True)
class Logout:
    agent: str


@dataclass(frozen=True)
class Pause:
    agent: str
    reason: str = "break"


@dataclass(frozen=True)
class Unpause:
    agent: str


@dataclass(frozen=True)
class DeviceState:
    agent: str
    state: str


@dataclass(frozen=True)
class CallQueued:
    call_id: str
    queue: str
    channel: str
    caller_num: str = ""
    caller_name: str = ""
    entered_at: float | None = None  # None: now
    priority: int = 0
    skills: tuple[tuple[str, int], ...] = ()
    node: str = "local"
    preferred: str | None = None  # the account manager: offered only this agent until prefer_until
    prefer_until: float = 0.0


@dataclass(frozen=True)
class CallerLeft:
    call_id: str


@dataclass(frozen=True)
class OfferAnswered:
    call_id: str
    agent: str


@dataclass(frozen=True)
class OfferFailed:
    call_id: str
    agent: str
    reason: str = "noanswer"


@dataclass(frozen=True)
class AgentHungUp:
    agent: str
    call_id: str


@dataclass(frozen=True)
class Overflow:
    """The adapter saw the call's expected wait exceed its queue's overflow limit."""

    call_id: str


@dataclass(frozen=True)
class CallbackRequested:
    """A waiting caller asked to be called back on ``number`` (digits only) and will hang up."""

    call_id: str
    number: str
    trunk: str


@dataclass(frozen=True)
class CallbackRestored:
    """A callback kept in the journal, back after a restart (its place in the queue kept)."""

    call: Call


@dataclass(frozen=True)
class CallbackDialed:
    """The agent leg dialled the callback number: Asterisk's DIALSTATUS (ANSWER once it is over)."""

    call_id: str
    agent: str
    status: str


@dataclass(frozen=True)
class DirectCall:
    """Click-to-call: ring ``agent`` now, then dial ``number`` (digits checked by the adapter)
    through ``trunk``. Taken only if the agent can be offered it in this very step (else dropped
    with ``CallEnded(call_id, "agent-busy")``)."""

    call_id: str
    agent: str
    queue: str  # a queue of the agent's (figures, wrap-up)
    number: str
    trunk: str


@dataclass(frozen=True)
class Tick:
    """Time passed (the adapter sleeps until :func:`next_deadline`)."""


@dataclass(frozen=True)
class AmiDown:
    """The AMI connection to ``node`` is gone: stop offering until the next Resync; the node's live
    calls are flagged interrupted (:class:`CallsInterrupted`) until that Resync tells their fate."""

    node: str = "local"


@dataclass(frozen=True)
class ChannelSnapshot:
    uniqueid: str
    channel: str
    role: str  # CC_ROLE: caller | agent | ''
    call_id: str
    agent: str = ""
    queue: str = ""
    entered_at: float | None = None
    up: bool = False
    bridged: bool = False
    context: str = ""
    caller_num: str = ""
    caller_name: str = ""
    priority: int = 0
    skills: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class Resync:
    """What Asterisk shows after a (re)connect: every live channel and every agent device state."""

    channels: tuple[ChannelSnapshot, ...]
    devices: Mapping[str, str] = field(default_factory=dict)  # agent -> device state
    node: str = "local"  # the node this snapshot is of: other nodes' calls are not touched
    # Asterisk started again since the previous snapshot (a crash or restart): the calls flagged
    # interrupted that it no longer has were cut off by it, not ended by their parties.
    restarted: bool = False


# --------------------------------------------------------------------------- commands

@dataclass(frozen=True)
class Offer:
    call_id: str
    agent: str
    phone: str
    caller_channel: str
    caller_num: str
    caller_name: str
    timeout_s: float
    explain: str = field(default="", compare=False)  # diagnostics, not identity


@dataclass(frozen=True)
class CancelOffer:
    call_id: str
    agent: str


@dataclass(frozen=True)
class Fallback:
    call_id: str
    channel: str
    queue: str
    reason: str = "max-wait"  # max-wait | full | empty
    immediate: bool = False  # refused at entry: the caller is still in the IVR's hands


@dataclass(frozen=True)
class Requeue:
    """Overflow: the waiting caller now belongs to ``queue`` (seniority kept)."""

    call_id: str
    channel: str
    queue: str
    reason: str


@dataclass(frozen=True)
class AgentChanged:
    agent: Agent


@dataclass(frozen=True)
class CallAnswered:
    call_id: str
    agent: str
    at: float


@dataclass(frozen=True)
class CallEnded:
    call_id: str
    outcome: str  # completed | abandoned
    at: float
    agent: str | None = None


@dataclass(frozen=True)
class CallsInterrupted:
    """The link to ``node`` was lost with these calls live (waiting, ringing or talking)."""

    call_ids: tuple[str, ...]
    node: str
    at: float


@dataclass(frozen=True)
class CallbackStored:
    """Persist this callback (new, or its attempts changed)."""

    call: Call


@dataclass(frozen=True)
class CallbackDone:
    call_id: str
    outcome: str  # answered | failed


@dataclass(frozen=True)
class Rejected:
    """An event the core refused (e.g. an illegal agent transition): reported, state unchanged."""

    event: object
    reason: str


Command = (Offer | CancelOffer | Fallback | Requeue | AgentChanged | CallAnswered | CallEnded | Rejected
           | CallbackStored | CallbackDone | CallsInterrupted)


# --------------------------------------------------------------------------- step

class _Tracked(dict):  # type: ignore[type-arg]
    """The step's working copy of a mapping: a dict that remembers which keys it wrote or removed,
    so the routing index follows only what changed."""

    __slots__ = ("touched",)

    def __init__(self, base: Mapping) -> None:
        super().__init__(base.copy() if isinstance(base, MappingProxyType) else base)
        self.touched: set = set()

    def __setitem__(self, k: Any, v: Any) -> None:
        self.touched.add(k)
        dict.__setitem__(self, k, v)

    def __delitem__(self, k: Any) -> None:
        self.touched.add(k)
        dict.__delitem__(self, k)

    def pop(self, k: Any, *default: Any) -> Any:
        self.touched.add(k)
        return dict.pop(self, k, *default)

    def _untracked(self, *a: Any, **kw: Any) -> Any:
        raise TypeError("write through [], del or pop: the routing index follows those")

    update = setdefault = popitem = clear = _untracked  # type: ignore[assignment]


class _Tx:
    """Collects the new state and the commands of one step."""

    def __init__(self, state: AcdState, index: _Index):
        self.agents = _Tracked(state.agents)
        self.calls = _Tracked(state.calls)
        self.synced = state.synced
        self.rr_last = state.rr_last
        self.out: list[Command] = []
        self.index = index

    def agent(self, name: str, trigger: Trigger, **changes: object) -> Agent:
        a = self.agents[name]
        new = replace(a, state=transition(a.state, trigger), **changes)
        self.agents[name] = new
        self.out.append(AgentChanged(new))
        return new

    def idx(self) -> _Index:
        """The routing index, brought up to date with this step's changes so far."""
        self.index.sync(self.agents, self.calls)
        return self.index

    def state(self) -> AcdState:
        agents, calls = _frozen(self.agents), _frozen(self.calls)
        self.index.sync(self.agents, self.calls)
        self.index.agents_ref, self.index.calls_ref = agents, calls
        return AcdState(agents=agents, calls=calls, synced=self.synced, rr_last=self.rr_last, _index=self.index)


def step(cfg: Config, state: AcdState, event: object, now: float) -> tuple[AcdState, list[Command]]:
    tx = _Tx(state, _ix._Index.of(cfg, state))
    try:
        _apply(cfg, tx, event, now)
    except IllegalTransition as e:
        return state, [Rejected(event, str(e))]
    _expire(cfg, tx, now)
    if tx.synced:
        _dispatch(cfg, tx, now)
    if isinstance(event, DirectCall):  # click-to-call: now or not at all
        c = tx.calls.get(event.call_id)
        if c is not None and c.direct and c.agent is None:
            del tx.calls[event.call_id]
            tx.out.append(Rejected(event, "agent_busy"))
    return tx.state(), tx.out


def _apply(cfg: Config, tx: _Tx, ev: object, now: float) -> None:
    if _transfer.apply(cfg, tx, ev, now):
        return
    match ev:
        case Login(agent=name) if name in tx.agents:
            a = tx.agents[name]
            tx.agent(name, Trigger.LOGIN, idle_since=now if a.state == AgentState.LOGGED_OUT else a.idle_since,
                     no_answers=0)
        case Logout(agent=name) if name in tx.agents:
            tx.agent(name, Trigger.LOGOUT, pause_reason="", wrap_until=None)
        case Pause(agent=name, reason=reason) if name in tx.agents:
            tx.agent(name, Trigger.PAUSE, pause_reason=reason, wrap_until=None)
        case Unpause(agent=name) if name in tx.agents:
            a = tx.agents[name]
            tx.agent(name, Trigger.UNPAUSE, pause_reason="", no_answers=0,
                     idle_since=now if a.state == AgentState.PAUSED else a.idle_since)
        case DeviceState(agent=name, state=dev) if name in tx.agents:
            tx.agents[name] = replace(tx.agents[name], device=dev)
        case CallQueued() if ev.queue in cfg.queues and ev.call_id not in tx.calls:
            q = cfg.queues[ev.queue]
            if not q.join_empty and not _staffed(cfg, tx, ev.queue):
                tx.out.append(Fallback(ev.call_id, ev.channel, ev.queue, "empty", immediate=True))
                return
            if q.max_length and tx.idx().waiting_in(ev.queue) >= q.max_length:
                tx.out.append(Fallback(ev.call_id, ev.channel, ev.queue, "full", immediate=True))
                return
            pref = ev.preferred if ev.preferred in q.members and ev.prefer_until > now else None
            tx.calls[ev.call_id] = Call(ev.call_id, ev.queue, ev.channel,
                                        now if ev.entered_at is None else ev.entered_at,
                                        ev.caller_num, ev.caller_name, priority=ev.priority,
                                        skills=ev.skills, node=ev.node, preferred=pref,
                                        prefer_until=ev.prefer_until if pref else 0.0)
        case DirectCall() if ev.queue in cfg.queues and ev.call_id not in tx.calls and ev.agent in tx.agents:
            tx.calls[ev.call_id] = Call(ev.call_id, ev.queue, "", now, ev.number, priority=DIRECT_PRIORITY,
                                        callback=ev.number, trunk=ev.trunk, preferred=ev.agent,
                                        prefer_until=float("inf"), direct=True)
        case Overflow(call_id=cid) if cid in tx.calls and tx.calls[cid].agent is None:
            _overflow(cfg, tx, tx.calls[cid], now, "expected-wait")
        case CallbackRequested(call_id=cid, number=number, trunk=trunk) if cid in tx.calls:
            c = tx.calls[cid]
            if c.agent is not None or c.callback or cfg.queues[c.queue].callback is None:
                return
            c = replace(c, channel="", callback=number, trunk=trunk, preferred=None, prefer_until=0.0)
            tx.calls[cid] = c
            tx.out.append(CallbackStored(c))
        case CallbackRestored(call=c) if c.call_id not in tx.calls and c.queue in cfg.queues and c.callback:
            tx.calls[c.call_id] = replace(c, agent=None, offer_deadline=None, answered_at=None,
                                          ringing=frozenset())
        case CallbackDialed(call_id=cid, agent=name, status=status) if name in tx.agents:
            c = tx.calls.get(cid)
            if c is None or not c.callback or c.agent != name or c.answered_at is None:
                return
            if status == "ANSWER":  # talking now; the agent leg's hangup ends it
                c = replace(c, connected=True)
                tx.calls[cid] = c
                tx.out.append(CallAnswered(cid, name, now))
                if not c.direct:
                    tx.out.append(CallbackStored(c))
                return
            if tx.agents[name].state == AgentState.BUSY:
                tx.agent(name, Trigger.HANGUP, call_id=None, wrap_until=now)
            cb = cfg.queues[c.queue].callback
            attempts = c.attempts + 1
            if c.direct:  # click-to-call: dialled once
                del tx.calls[cid]
                tx.out.append(CallEnded(cid, "click-to-call-failed", now, agent=name))
                return
            if cb is None or attempts >= cb.max_attempts:
                del tx.calls[cid]
                tx.out.append(CallbackDone(cid, "failed"))
                tx.out.append(CallEnded(cid, "callback-failed", now))
                return
            c = replace(c, agent=None, answered_at=None, offer_deadline=None, attempts=attempts,
                        not_before=now + cb.retry_s, tried=frozenset())
            tx.calls[cid] = c
            tx.out.append(CallbackStored(c))
        case CallerLeft(call_id=cid) if cid in tx.calls:
            c = tx.calls[cid]
            if _transfer.caller_left(tx, c, now):
                return
            if c.answered_at is not None or (c.callback and not c.direct):
                return  # talking: the agent leg's hangup ends it; a callback outlives its first call
            del tx.calls[cid]
            for name in ({c.agent} | c.ringing) - {None}:  # ringing: stop it, free the agents
                tx.out.append(CancelOffer(cid, name))
                _release(tx, name, now)
            tx.out.append(CallEnded(cid, "abandoned", now))
        case OfferAnswered(call_id=cid, agent=name) if name in tx.agents:
            c = tx.calls.get(cid)
            if c is None or (c.agent != name and name not in c.ringing) or c.answered_at is not None:
                return
            for other in ({c.agent} | c.ringing) - {name, None}:  # ringall: the first to answer wins
                tx.out.append(CancelOffer(cid, other))
                _release(tx, other, now)
            tx.calls[cid] = replace(c, agent=name, ringing=frozenset(), answered_at=now, offer_deadline=None)
            qc = tx.agents[name].queue_calls
            tx.agent(name, Trigger.ANSWER, call_id=cid, no_answers=0,
                     calls_taken=tx.agents[name].calls_taken + 1,
                     queue_calls={**qc, c.queue: qc.get(c.queue, 0) + 1})
            q = cfg.queues.get(c.queue)
            if q is not None and name in q.members:  # round-robin strategies remember who answered
                tx.rr_last = {**tx.rr_last, c.queue: q.members.index(name)}
            if c.transfers:  # a transferred call: a new leg, the call was answered long ago
                tx.out.append(_transfer.LegStarted(cid, name, now))
            elif not c.callback:  # a callback is answered when the caller picks up (CallbackDialed)
                tx.out.append(CallAnswered(cid, name, now))
        case OfferFailed(call_id=cid, agent=name) if name in tx.agents:
            c = tx.calls.get(cid)
            if c is None or (c.agent != name and name not in c.ringing) or c.answered_at is not None:
                return
            if c.ringing:  # ringall: the others still ring; this agent's miss counts
                rest = sorted(({c.agent} | c.ringing) - {name, None})
                tx.calls[cid] = replace(c, agent=rest[0], ringing=frozenset(rest[1:]))
                _count_miss(cfg, tx, name, c.queue, now)
            else:
                _miss(cfg, tx, c, now)
        case AgentHungUp(agent=name, call_id=cid) if name in tx.agents:
            if _transfer.agent_hung_up(cfg, tx, name, cid, now):
                return
            a = tx.agents[name]
            if a.state != AgentState.BUSY or a.call_id != cid:
                return
            c = tx.calls.pop(cid, None)
            q = cfg.queues.get(c.queue) if c is not None else None  # adopted by Resync: queue may be gone
            wrap = q.wrapup_s if q is not None else 0.0
            ends = a.queue_last_end if c is None else {**a.queue_last_end, c.queue: now}
            _transfer.off_call(tx, name, now + wrap, ends)  # wrap-up, or on with a colleague's consult
            if c is not None and c.direct:  # click-to-call: over, whether the customer answered or not
                tx.out.append(CallEnded(cid, "completed" if c.connected else "click-to-call-cancelled", now,
                                        agent=name))
                return
            if c is not None and c.callback and not c.connected:  # gone before dialling: try again later
                tx.calls[cid] = replace(c, agent=None, answered_at=None, offer_deadline=None, tried=frozenset())
                return
            if c is not None and c.callback:
                tx.out.append(CallbackDone(cid, "answered"))
            tx.out.append(CallEnded(cid, "completed", now, agent=name))
        case Tick():
            pass
        case AmiDown():
            tx.synced = False
            live = sorted(cid for cid, c in tx.calls.items()
                          if c.node == ev.node and c.interrupted_at is None and (c.channel or c.connected))
            for cid in live:
                tx.calls[cid] = replace(tx.calls[cid], interrupted_at=now)
            if live:
                tx.out.append(CallsInterrupted(tuple(live), ev.node, now))
        case Resync():
            _resync(cfg, tx, ev, now)
        case _:
            pass  # events about unknown agents/calls are stale; ignoring them is the safe answer


def _release(tx: _Tx, name: str, now: float) -> None:
    a = tx.agents[name]
    if a.state == AgentState.RESERVED:
        tx.agent(name, Trigger.NO_ANSWER, call_id=None)


def _miss(cfg: Config, tx: _Tx, c: Call, now: float) -> None:
    """The agent did not answer: the call goes back to waiting (never dropped), the agent may be paused."""
    name = c.agent
    assert name is not None
    if c.direct:  # click-to-call: the agent did not take their own call
        del tx.calls[c.call_id]
        tx.out.append(CallEnded(c.call_id, "click-to-call-unanswered", now, agent=name))
    else:
        released = c.preferred == name  # the account manager let it ring out: anyone may take it now
        tx.calls[c.call_id] = replace(c, agent=None, offer_deadline=None, tried=c.tried | {name},
                                      ringing=frozenset(), preferred=None if released else c.preferred,
                                      prefer_until=0.0 if released else c.prefer_until)
    _count_miss(cfg, tx, name, c.queue, now)


def _count_miss(cfg: Config, tx: _Tx, name: str, queue: str, now: float) -> None:
    """An unanswered offer: back to Ready after the retry delay, or paused after too many in a row."""
    a = tx.agents[name]
    misses = a.no_answers + 1
    limit = cfg.queues[queue].max_no_answer
    retry_at = now + cfg.queues[queue].retry_s
    if limit and misses >= limit:
        tx.agent(name, Trigger.AUTO_PAUSE, call_id=None, no_answers=misses, pause_reason="no-answer",
                 retry_at=retry_at)
    else:
        tx.agent(name, Trigger.NO_ANSWER, call_id=None, no_answers=misses, retry_at=retry_at)


def _expire(cfg: Config, tx: _Tx, now: float) -> None:
    """Wrap-ups that ended, offers that rang out, callers past their overflow or max wait, callers
    of a leave-when-empty queue nobody staffs. Only the agents and calls whose deadline passed are
    visited (the index's heap), in the mappings' order, unless a leave-when-empty queue has callers:
    then every call is, as staffing may change on the way."""
    idx = tx.idx()
    due_agents, due_calls = idx.pop_due(now)
    live_empty = [q for q in idx.leave_empty if idx.qlive.get(q)]
    if live_empty and (due_agents or due_calls or not all(_staffed(cfg, tx, q) for q in live_empty)):
        names, cids = list(tx.agents), list(tx.calls)
    elif not due_agents and not due_calls:
        return
    else:
        names = due_agents if len(due_agents) < 2 else [n for n in tx.agents if n in set(due_agents)]
        cids = due_calls if len(due_calls) < 2 else [c for c in tx.calls if c in set(due_calls)]
    for name in names:
        a = tx.agents[name]
        if a.state == AgentState.WRAPUP and a.wrap_until is not None and a.wrap_until <= now:
            tx.agent(name, Trigger.WRAP_DONE, wrap_until=None, idle_since=now)
    for cid in cids:
        c = tx.calls[cid]
        if c.agent is not None and c.answered_at is None and c.offer_deadline is not None \
                and c.offer_deadline <= now:
            for other in sorted(c.ringing):
                tx.out.append(CancelOffer(cid, other))
                _count_miss(cfg, tx, other, c.queue, now)
            tx.out.append(CancelOffer(cid, c.agent))
            _miss(cfg, tx, c, now)
        c = tx.calls.get(cid)
        if c is None:
            continue
        if c.agent is None and c.preferred is not None and c.prefer_until <= now:  # waited long enough
            c = replace(c, preferred=None, prefer_until=0.0)
            tx.calls[cid] = c
        if c.agent is not None or c.callback:
            continue
        q = cfg.queues[c.queue]
        since = c.queue_entered_at if c.queue_entered_at is not None else c.entered_at
        if q.overflow is not None and q.overflow.after_s is not None and since + q.overflow.after_s <= now:
            _overflow(cfg, tx, c, now, "after")
        elif since + q.max_wait_s <= now:
            del tx.calls[cid]
            tx.out.append(Fallback(cid, c.channel, c.queue))  # the call goes on: the fallback decides
        elif q.leave_when_empty and not _staffed(cfg, tx, c.queue):
            del tx.calls[cid]
            tx.out.append(Fallback(cid, c.channel, c.queue, "empty"))


def on_duty(agent: Agent) -> bool:
    """Logged in and not on a break: the agent could take calls now or soon (staffed)."""
    return agent.state not in (AgentState.LOGGED_OUT, AgentState.PAUSED)


def staffed(cfg: Config, agents: Mapping[str, Agent], queue: str) -> int:
    """How many of the queue's members are on duty (the one definition of "staffed")."""
    return sum(1 for m in cfg.queues[queue].members if on_duty(agents[m]))


def _staffed(cfg: Config, tx: _Tx, queue: str) -> bool:
    """Someone logged in and not on a break could still take this queue's calls."""
    return staffed(cfg, tx.agents, queue) > 0


def _overflow(cfg: Config, tx: _Tx, c: Call, now: float, reason: str) -> None:
    target = cfg.queues[c.queue].overflow
    assert target is not None
    tx.calls[c.call_id] = replace(c, queue=target.queue, queue_entered_at=now, tried=frozenset())
    tx.out.append(Requeue(c.call_id, c.channel, target.queue, reason))


def _available(a: Agent, now: float) -> bool:
    return a.state == AgentState.READY and a.device not in UNAVAILABLE_DEVICE and a.retry_at <= now


def _dispatch(cfg: Config, tx: _Tx, now: float) -> None:
    """Route every waiting call it can, in one vectorised pass (see :mod:`.routing`).

    The arrays come from the routing index, kept up to date with each step's changes (see
    :class:`_Index`): a step costs Python work for the free agents and the calls they take, not
    for every waiting call."""
    idx = tx.idx()
    if not idx.keys:
        return
    st = idx.st
    free = idx.free(tx.agents, now)
    if free is None:
        return
    got = idx.call_arrays(cfg, tx.calls, now)
    if got is None:
        return
    keys, calls, exclude = got
    agents = idx.agent_arrays(free)
    rr_last = np.array([tx.rr_last.get(q, -1) for q in st.queues], dtype=np.int64)
    seed = int(now * 1000) & 0xFFFFFFFF
    ring_more: list[str] = []
    for asg in routing.assign(agents, calls, st.strategies, rr_last, seed, st.skills_strategy, exclude):
        c = tx.calls[keys[asg.call][1]]
        best = tx.agents[st.agents[asg.agent]]
        q = cfg.queues[c.queue]
        explain = (f"strategy={q.strategy} agent={best.name} key={asg.key} "
                   f"candidates={asg.candidates} free={int(free.sum())}")
        if c.tried and best.name in c.tried:  # everyone eligible has missed it once: a new round
            c = replace(c, tried=frozenset())
        tx.calls[c.call_id] = replace(c, agent=best.name, offer_deadline=now + q.ring_timeout_s + OFFER_GRACE_S,
                                      route=explain)
        tx.agent(best.name, Trigger.RESERVE, call_id=c.call_id)
        tx.out.append(Offer(c.call_id, best.name, best.phone, c.channel, c.caller_num, c.caller_name,
                            q.ring_timeout_s, explain))
        if q.strategy == "ringall":
            ring_more.append(c.call_id)
    for cid in ring_more:  # ringall: every other free eligible member rings too (after all first picks)
        c = tx.calls[cid]
        q = cfg.queues[c.queue]
        others = [m for m in q.members if m != c.agent and _available(tx.agents[m], now)
                  and _can_serve(cfg, m, c, now)] if preferred_now(cfg, c, now) is None else []
        for m in others:
            tx.agent(m, Trigger.RESERVE, call_id=cid)
            a = tx.agents[m]
            tx.out.append(Offer(cid, m, a.phone, c.channel, c.caller_num, c.caller_name, q.ring_timeout_s,
                                f"strategy=ringall agent={m} with={c.agent}"))
        tx.calls[cid] = replace(c, ringing=frozenset(others))


def preferred_now(cfg: Config, c: Call, now: float) -> str | None:
    """The one agent ``c`` may be offered to now (its account manager, still within its wait, and a
    member of the call's current queue), or None: anyone eligible."""
    if c.preferred is None or c.prefer_until <= now or c.queue not in cfg.queues:
        return None
    return c.preferred if c.preferred in cfg.queues[c.queue].members else None


def _dialable(cfg: Config, c: Call, now: float) -> bool:
    """A waiting call may be routed now: every live caller; a callback after its retry delay and
    while its business hours are open; a click-to-call at once."""
    if not c.callback or c.direct:
        return True
    cb = cfg.queues[c.queue].callback
    if cb is None or c.not_before > now:
        return False
    return cb.schedule is None or is_open(cfg.schedules[cb.schedule], now)


def _needs(cfg: Config, c: Call) -> dict[str, int]:
    """Skill -> minimum level the call needs: its queue's requirements and the caller's own."""
    need = dict(cfg.queues[c.queue].skills)
    for s, lv in c.skills:
        need[s] = max(lv, need.get(s, 0))
    return need


def _penalty_limit(cfg: Config, c: Call, now: float) -> int:
    """The highest member penalty the call may use now; penalty rules count the wait in its queue."""
    q = cfg.queues[c.queue]
    initial = routing.NOT_MEMBER - 1 if q.max_penalty is None else q.max_penalty
    since = c.queue_entered_at if c.queue_entered_at is not None else c.entered_at
    return routing.max_penalty(tuple((r.after_s, r.max_penalty) for r in q.penalty_rules), initial, now - since)


def _can_serve(cfg: Config, agent: str, c: Call, now: float) -> bool:
    """Eligibility of one agent for one call (penalty within the current maximum, skills)."""
    if cfg.queues[c.queue].penalties.get(agent, 0) > _penalty_limit(cfg, c, now):
        return False
    have = cfg.agents[agent].skills
    return all(have.get(s, 0) >= lv for s, lv in _needs(cfg, c).items())


def _resync(cfg: Config, tx: _Tx, ev: Resync, now: float) -> None:
    """Make our view match Asterisk's after a (re)connect, then allow offers again."""
    for name, dev in ev.devices.items():
        if name in tx.agents:
            tx.agents[name] = replace(tx.agents[name], device=dev)
    callers = {ch.call_id: ch for ch in ev.channels if ch.role == "caller" and ch.call_id}
    agent_legs = {ch.agent: ch for ch in ev.channels if ch.role == "agent" and ch.agent in tx.agents}

    # Agent legs: talking ones make the agent Busy; ringing ones from before are cancelled.
    for name, a in list(tx.agents.items()):
        leg = agent_legs.get(name)
        held = tx.calls.get(a.call_id) if a.call_id else None
        if leg is None and held is not None and held.node != ev.node:
            continue  # busy with a call on another node: this snapshot knows nothing of it
        cb = tx.calls.get(leg.call_id) if leg is not None else None
        if leg is not None and leg.up and cb is not None and cb.callback:  # calling a callback back
            if a.state != AgentState.BUSY or a.call_id != leg.call_id:
                tx.agent(name, Trigger.RESYNC_BUSY, call_id=leg.call_id)
            tx.calls[leg.call_id] = replace(cb, agent=name, answered_at=cb.answered_at or now,
                                            offer_deadline=None, ringing=frozenset())
            continue
        if leg is not None and leg.up and leg.call_id in callers:
            if a.state != AgentState.BUSY or a.call_id != leg.call_id:
                tx.agent(name, Trigger.RESYNC_BUSY, call_id=leg.call_id)
            cal = callers[leg.call_id]
            old = tx.calls.get(leg.call_id)
            if old is None or old.answered_at is None:
                tx.out.append(CallAnswered(leg.call_id, name, now))
            tx.calls[leg.call_id] = Call(leg.call_id, cal.queue or (old.queue if old else (a.queues or ("",))[0]),
                                         cal.channel, cal.entered_at or now, cal.caller_num, cal.caller_name,
                                         agent=name, answered_at=old.answered_at if old and old.answered_at
                                         else now, node=ev.node)
            continue
        if leg is not None:  # ringing from an offer whose outcome we can no longer learn
            tx.out.append(CancelOffer(leg.call_id, name))
        if a.state == AgentState.RESERVED:
            tx.agent(name, Trigger.NO_ANSWER, call_id=None)
        elif a.state == AgentState.BUSY:  # the call ended while we were away
            if a.call_id:
                gone = tx.calls.pop(a.call_id, None)
                tx.out.append(CallEnded(a.call_id, _gone_outcome(ev, gone, "completed"), now, agent=name))
            tx.agent(name, Trigger.HANGUP, call_id=None, wrap_until=now)

    # Waiting callers: exactly the caller channels in the wait loop that nobody is talking to.
    talking = {c.call_id for c in tx.calls.values() if c.answered_at is not None}
    for cid, c in list(tx.calls.items()):
        if cid in talking or (c.node != ev.node and not c.callback):
            continue
        if c.callback and c.connected:  # its conversation ended while we were away
            del tx.calls[cid]
            tx.out.append(CallbackDone(cid, "answered"))
            tx.out.append(CallEnded(cid, _gone_outcome(ev, c, "completed"), now, agent=c.agent))
            continue
        if c.direct:  # a click-to-call not yet talking: its moment has passed
            del tx.calls[cid]
            tx.out.append(CallEnded(cid, "interrupted", now, agent=c.agent))
            continue
        if c.callback:  # no channel to find: it waits on (an offer in flight was cancelled above)
            if c.agent is not None:
                tx.calls[cid] = replace(c, agent=None, offer_deadline=None, ringing=frozenset())
            continue
        if cid not in callers:
            del tx.calls[cid]
            tx.out.append(CallEnded(cid, _gone_outcome(ev, c, "abandoned"), now))
        elif c.agent is not None or c.interrupted_at is not None:
            tx.calls[cid] = replace(c, agent=None, offer_deadline=None, ringing=frozenset(), interrupted_at=None)
    for cid, ch in callers.items():
        if cid in tx.calls or ch.bridged or ch.queue not in cfg.queues or ch.context not in WAITING_CONTEXTS:
            continue
        tx.calls[cid] = Call(cid, ch.queue, ch.channel, ch.entered_at if ch.entered_at is not None else now,
                             ch.caller_num, ch.caller_name, priority=ch.priority, skills=ch.skills, node=ev.node)
    for cid in [cid for cid, c in tx.calls.items() if c.node == ev.node and c.interrupted_at is not None]:
        tx.calls[cid] = replace(tx.calls[cid], interrupted_at=None)  # still there: not interrupted after all
    _transfer.resynced(tx, set(callers), ev.node, now)
    tx.synced = True


def _gone_outcome(ev: Resync, c: Call | None, usual: str) -> str:
    """How a call Asterisk no longer has ended: cut off by a restart of its node while the link was
    down (``interrupted``), else as its parties ended it (``usual``: what we would have seen)."""
    if ev.restarted and c is not None and c.interrupted_at is not None:
        return "interrupted"
    return usual


def _owned(cfg: Config, state: AcdState) -> _Index | None:
    """The state's routing index if it is exactly this state's (else None: read the state itself)."""
    idx = state._index
    if isinstance(idx, _ix._Index) and idx.cfg is cfg and idx.agents_ref is state.agents and idx.calls_ref is state.calls:
        return idx
    return None


def next_deadline(cfg: Config, state: AcdState, now: float | None = None) -> float | None:
    """The earliest time at which :class:`Tick` changes something: wrap-up end, max wait, a lost
    offer, or (given ``now``) a no-answer retry delay ending while callers wait."""
    idx = _owned(cfg, state)
    if idx is not None:
        return idx.next_deadline(cfg, now)
    return _next_deadline_scan(cfg, state, now)


def figures(cfg: Config, state: AcdState) -> tuple[tuple[tuple[str, int], ...], tuple[tuple[str, int], ...]]:
    """(queue, waiting calls) for every configured queue, and (agent state, agents) for every state."""
    idx = _owned(cfg, state)
    if idx is not None:
        return idx.figures()
    counts = {str(s): 0 for s in AgentState}
    for a in state.agents.values():
        counts[str(a.state)] += 1
    waiting = {q: 0 for q in cfg.queues}
    for c in state.calls.values():
        if c.agent is None and c.queue in waiting:
            waiting[c.queue] += 1
    return tuple(waiting.items()), tuple(counts.items())


def _next_deadline_scan(cfg: Config, state: AcdState, now: float | None = None) -> float | None:
    """:func:`next_deadline` by reading every agent and call (a state without its index)."""
    times = [a.wrap_until for a in state.agents.values()
             if a.state == AgentState.WRAPUP and a.wrap_until is not None]
    if now is not None and any(c.agent is None for c in state.calls.values()):
        times += [a.retry_at for a in state.agents.values()
                  if a.state == AgentState.READY and a.retry_at > now]
    for c in state.calls.values():
        if c.agent is None and c.callback:
            if now is not None and c.not_before > now:
                times.append(c.not_before)
            elif now is not None:
                cb = cfg.queues[c.queue].callback
                if cb is not None and cb.schedule is not None:  # re-check business hours every minute
                    times.append(now + 60)
        elif c.agent is None:
            q = cfg.queues[c.queue]
            since = c.queue_entered_at if c.queue_entered_at is not None else c.entered_at
            times.append(since + q.max_wait_s)
            if c.preferred is not None:
                times.append(c.prefer_until)
            if q.overflow is not None and q.overflow.after_s is not None:
                times.append(since + q.overflow.after_s)
        elif c.answered_at is None and c.offer_deadline is not None:
            times.append(c.offer_deadline)
    return min(times) if times else None
