"""Transfers in the ACD core: what the daemon believes while a call changes hands.

Part of :func:`callcenter.features.acd.model.step` (same rules: no I/O, no clock, named errors): the
events here are applied to the step's working copy. A transferred call keeps its call id; each
agent who held it ends a *leg* (:class:`LegEnded`: agent, answered, ended — that agent's talk time)
and the next one starts one (:class:`LegStarted`). The agent who hands a call on goes to wrap-up at
that moment; the agent who takes it is Busy on it from the moment they talk with the caller.

Blind (SIP REFER from the desk phone, or the API's AMI BlindTransfer): :class:`BlindTransferStarted`
(from AMI ``BlindTransfer``) puts the agent in wrap-up and *holds* the call (``Call.pending``) —
neither waiting nor talking — until the caller, now in cc-xfer, tells the daemon where it goes
(:class:`TransferTarget`): another agent (offered at once when Ready, else back to the call's
queue), a queue (the caller keeps its seniority: ``entered_at``), or out of the ACD (a desk phone,
an allow-listed outside number: the call record ends ``transferred``).

Consult and attended: an agent on a call dials a colleague's extension (cc-consult);
:class:`ConsultAnswered` shows the colleague Busy on the same call (``Call.consult``); AMI
``AttendedTransfer`` (:class:`AttendedTransferred`) hands the call over. A consult that ends without
a transfer frees the colleague (wrap-up of 0 s); the holder hanging up on the caller ends the call.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from callcenter.features.acd import model as acd
from callcenter.features.acd.agents import AgentState, Trigger

if TYPE_CHECKING:
    from callcenter.config import Config

__all__ = ["off_call", "BlindTransferStarted", "TransferTarget", "ConsultAnswered", "AttendedTransferred",
           "ParkReturned", "ParkPickedUp", "ConferenceStarted", "LegEnded", "LegStarted", "TransferDone", "EVENTS", "COMMANDS", "TARGET_KINDS", "apply",
           "agent_hung_up", "caller_left", "resynced"]

TARGET_KINDS = frozenset({"agent", "queue", "out", "back", "park"})


# --------------------------------------------------------------------------- events

@dataclass(frozen=True)
class BlindTransferStarted:
    """Asterisk moved the caller of ``call_id`` out of its bridge with ``agent`` (AMI BlindTransfer)."""

    call_id: str
    agent: str
    how: str = "transfer:blind"  # the leg's end: "park" when the agent parked it


@dataclass(frozen=True)
class TransferTarget:
    """The caller arrived in cc-xfer; what the agent dialled means ``kind``: ``agent`` (name),
    ``queue`` (name), ``out`` (leaves the ACD: a desk phone or an outside number), ``park`` (target:
    the slot asked for, or "" for the first free one) or ``back`` (not a target the daemon accepts:
    the caller goes back to its queue)."""

    call_id: str
    kind: str
    target: str = ""


@dataclass(frozen=True)
class ConsultAnswered:
    """``agent`` answered a consult call about ``call_id`` (from the agent holding it)."""

    call_id: str
    agent: str


@dataclass(frozen=True)
class AttendedTransferred:
    """AMI AttendedTransfer: the caller of ``call_id`` is now bridged with ``to_agent``'s consult leg,
    or (``to_agent`` None) with a phone that is no agent's (``target``): the call leaves the ACD."""

    call_id: str
    to_agent: str | None
    target: str = ""


@dataclass(frozen=True)
class ParkReturned:
    """The parked caller of ``call_id`` stayed parked too long (or could not be parked): it comes back."""

    call_id: str


@dataclass(frozen=True)
class ParkPickedUp:
    """A phone picked up the parked ``call_id``: ``agent``'s, or (None) a phone that is no agent's (``target``)."""

    call_id: str
    agent: str | None
    target: str = ""


@dataclass(frozen=True)
class ConferenceStarted:
    """The caller and the holder of ``call_id`` are in a conference; ``third``: the agent or number rung to join."""

    call_id: str
    third: str


EVENTS = (BlindTransferStarted, TransferTarget, ConsultAnswered, AttendedTransferred, ParkReturned, ParkPickedUp,
          ConferenceStarted)


# --------------------------------------------------------------------------- commands

@dataclass(frozen=True)
class LegEnded:
    """``agent`` stopped holding ``call_id``: talked from ``answered_at`` to ``at``; ``how``:
    ``transfer:blind``, ``transfer:attended`` or ``completed``."""

    call_id: str
    agent: str
    answered_at: float
    at: float
    how: str


@dataclass(frozen=True)
class LegStarted:
    """``agent`` took over ``call_id`` at ``at`` (a transferred call answered again)."""

    call_id: str
    agent: str
    at: float


@dataclass(frozen=True)
class TransferDone:
    """What became of a transfer: ``kind`` blind | attended | park, the target as resolved, ``result``
    ringing | queued | out | agent-unavailable | refused | taken | parked | picked-up | returned."""

    call_id: str
    kind: str
    from_agent: str
    to_kind: str
    target: str
    result: str


COMMANDS = (LegEnded, LegStarted, TransferDone)


# --------------------------------------------------------------------------- applying

def apply(cfg: Config, tx: acd._Tx, ev: object, now: float) -> bool:
    """Apply a transfer event; False if ``ev`` is none."""
    match ev:
        case BlindTransferStarted(call_id=cid, agent=name, how=how):
            _blind_start(cfg, tx, cid, name, now, how)
        case TransferTarget():
            _target(cfg, tx, ev, now)
        case ConsultAnswered(call_id=cid, agent=name):
            _consult(cfg, tx, cid, name, now)
        case AttendedTransferred():
            _attended(cfg, tx, ev, now)
        case ParkReturned(call_id=cid):
            _park_returned(cfg, tx, cid, now)
        case ParkPickedUp():
            _park_picked_up(cfg, tx, ev, now)
        case ConferenceStarted(call_id=cid, third=third):
            c = tx.calls.get(cid)
            if _holding(tx, c) and c is not None and third and third != c.agent:
                tx.calls[cid] = replace(c, conference=third)
        case _:
            return False
    return True


def _holding(tx: acd._Tx, c: acd.Call | None) -> bool:
    """``c`` is a live conversation with an agent (not waiting, not ringing, not held in a transfer)."""
    return (c is not None and c.agent is not None and c.answered_at is not None and not c.pending
            and c.agent in tx.agents and (not c.callback or c.connected))


def _conference_left(cfg: Config, tx: acd._Tx, c: acd.Call, now: float) -> None:
    """The holder hung up in a conference: the caller stays with the third party."""
    origin = c.agent
    assert origin is not None
    _leave(cfg, tx, c, now, "conference")
    to = c.consult if c.consult == c.conference else None  # else an outside number or a desk phone
    _hand_over(cfg, tx, c, now, "conference", origin, to, c.conference, ("left", "taken"), "conference",
               conference="")


def _hand_over(cfg: Config, tx: acd._Tx, c: acd.Call, now: float, kind: str, origin: str, to: str | None,
               outside: str, results: tuple[str, str], route: str, **changes: Any) -> None:
    """The caller of ``c`` is now with ``to``: an agent takes the call over (Busy, a new leg, ``changes``
    to the call); anyone else (``to`` None or no agent: ``outside``) takes it out of the ACD, ending the
    record as transferred. ``results``: the TransferDone result for (out of the ACD, taken)."""
    if to is None or to not in tx.agents:
        del tx.calls[c.call_id]
        tx.out.append(TransferDone(c.call_id, kind, origin, "out", outside, results[0]))
        tx.out.append(acd.CallEnded(c.call_id, "transferred", now, agent=origin))
        return
    _take_over(cfg, tx, c, to, now)
    tx.calls[c.call_id] = replace(tx.calls[c.call_id], route=f"{route} from={origin} to={to}", **changes)
    tx.out.append(LegStarted(c.call_id, to, now))
    tx.out.append(TransferDone(c.call_id, kind, origin, "agent", to, results[1]))


def _leave(cfg: Config, tx: acd._Tx, c: acd.Call, now: float, how: str) -> None:
    """The holder of ``c`` leaves it: to wrap-up (if Busy on it), and its leg ends."""
    name = c.agent
    assert name is not None and c.answered_at is not None
    a = tx.agents[name]
    if a.state == AgentState.BUSY and a.call_id == c.call_id:
        q = cfg.queues.get(c.queue)
        off_call(tx, name, now + (q.wrapup_s if q is not None else 0.0), {**a.queue_last_end, c.queue: now})
    tx.out.append(LegEnded(c.call_id, name, c.answered_at, now, how))


def _blind_start(cfg: Config, tx: acd._Tx, cid: str, name: str, now: float,
                 how: str = "transfer:blind") -> acd.Call | None:
    c = tx.calls.get(cid)
    if not _holding(tx, c) or c is None or c.agent != name:
        return None
    _leave(cfg, tx, c, now, how)
    c = replace(c, pending="blind")  # the agent stays named: held, neither waiting nor offered
    tx.calls[cid] = c
    return c


def _requeue(tx: acd._Tx, c: acd.Call, queue: str, now: float) -> acd.Call:
    """Back to waiting in ``queue``: seniority (``entered_at``) kept, a fresh wait in that queue."""
    c = replace(c, queue=queue, agent=None, answered_at=None, pending="", offer_deadline=None, tried=frozenset(),
                ringing=frozenset(), transfers=c.transfers + 1, preferred=None, prefer_until=0.0,
                queue_entered_at=now)  # a consult still going on stays known: its leg's end frees the colleague
    tx.calls[c.call_id] = c
    return c


def _target(cfg: Config, tx: acd._Tx, ev: TransferTarget, now: float) -> None:
    c = tx.calls.get(ev.call_id)
    if c is not None and not c.pending and c.agent is not None:
        # the BlindTransfer event was not seen (yet)
        c = _blind_start(cfg, tx, ev.call_id, c.agent, now, "park" if ev.kind == "park" else "transfer:blind")
    if c is None or not c.pending or c.agent is None:
        return
    origin = c.agent
    kind, target, result = ev.kind, ev.target, ""
    if kind == "park":  # held on: parked in a slot until picked up or back (features/parking)
        tx.calls[c.call_id] = replace(c, pending="park")
        tx.out.append(TransferDone(c.call_id, "blind", origin, "park", target, "parked"))
        return
    if kind == "agent":
        if target != origin and _ring(cfg, tx, c, origin, target, now, "blind", "ringing"):
            return
        kind, target, result = "queue", c.queue, "agent-unavailable"
    elif kind == "back" or (kind == "queue" and target not in cfg.queues):
        kind, target, result = "queue", c.queue, "refused"
    if kind == "queue":
        _requeue(tx, c, target, now)
        tx.out.append(TransferDone(c.call_id, "blind", origin, "queue", target, result or "queued"))
        return
    del tx.calls[c.call_id]  # out of the ACD: a desk phone or an outside number
    tx.out.append(TransferDone(c.call_id, "blind", origin, "out", target, "out"))
    tx.out.append(acd.CallEnded(c.call_id, "transferred", now, agent=origin))


def _ring(cfg: Config, tx: acd._Tx, c: acd.Call, origin: str, target: str, now: float, kind: str,
          result: str) -> bool:
    """Ring ``target`` for the held call ``c`` at once if available (True); else False, nothing done."""
    b = tx.agents.get(target)
    q = cfg.queues[c.queue]
    if b is None or not acd._available(b, now):
        return False
    c = replace(c, agent=target, answered_at=None, pending="", tried=frozenset(), ringing=frozenset(),
                offer_deadline=now + q.ring_timeout_s + acd.OFFER_GRACE_S, transfers=c.transfers + 1,
                preferred=None, prefer_until=0.0, route=f"{kind} from={origin} to={target}")
    tx.calls[c.call_id] = c
    tx.agent(target, Trigger.RESERVE, call_id=c.call_id)
    tx.out.append(acd.Offer(c.call_id, target, b.phone, c.channel, c.caller_num, c.caller_name,
                            q.ring_timeout_s, f"{kind} from={origin} to={target}"))
    tx.out.append(TransferDone(c.call_id, kind, origin, "agent", target, result))
    return True


def _park_returned(cfg: Config, tx: acd._Tx, cid: str, now: float) -> None:
    """Parked too long: back to the agent who parked it when available, else to its queue (seniority kept)."""
    c = tx.calls.get(cid)
    if c is None or c.pending != "park" or c.agent is None:
        return
    origin = c.agent
    if c.queue in cfg.queues and _ring(cfg, tx, c, origin, origin, now, "park", "returned"):
        return
    _requeue(tx, c, c.queue, now)
    tx.out.append(TransferDone(cid, "park", origin, "queue", c.queue, "returned"))


def _park_picked_up(cfg: Config, tx: acd._Tx, ev: ParkPickedUp, now: float) -> None:
    """Picked up from its slot: an agent takes it over (Busy, a new leg); any other phone: it leaves the ACD."""
    c = tx.calls.get(ev.call_id)
    if c is None or c.pending != "park" or c.agent is None:
        return
    _hand_over(cfg, tx, c, now, "park", c.agent, ev.agent, ev.target, ("picked-up", "picked-up"), "park",
               pending="")


def _take_over(cfg: Config, tx: acd._Tx, c: acd.Call, to: str, now: float) -> None:
    """``to`` talks with the caller of ``c`` from now on (Busy on it, unless Busy holding another call)."""
    _free_offer(cfg, tx, to, now)
    b = tx.agents[to]
    holds_other = (b.state == AgentState.BUSY and b.call_id not in (None, c.call_id)
                   and (o := tx.calls.get(b.call_id or "")) is not None and o.agent == to)
    if not holds_other:  # talking with the caller now (from a break or logged out too: taking a call ends them)
        qc = b.queue_calls
        tx.agent(to, Trigger.TAKE_OVER, call_id=c.call_id, wrap_until=None, calls_taken=b.calls_taken + 1,
                 queue_calls={**qc, c.queue: qc.get(c.queue, 0) + 1}, resume="")
    tx.calls[c.call_id] = replace(c, agent=to, consult=None, answered_at=now, transfers=c.transfers + 1)


def _consult(cfg: Config, tx: acd._Tx, cid: str, name: str, now: float) -> None:
    c = tx.calls.get(cid)
    if not _holding(tx, c) or c is None or name not in tx.agents or c.agent == name:
        return
    _free_offer(cfg, tx, name, now)
    a = tx.agents[name]
    if a.state != AgentState.BUSY:  # on a call now: Busy (a break or a logout resumes after the consult)
        resume = str(a.state) if a.state in (AgentState.PAUSED, AgentState.LOGGED_OUT) else ""
        tx.agent(name, Trigger.TAKE_OVER, call_id=cid, wrap_until=None, resume=resume)
    tx.calls[cid] = replace(c, consult=name)  # Busy on a call of their own: that one stays theirs


def _other_call(tx: acd._Tx, name: str, ending: str | None) -> str | None:
    """Another live call ``name`` is talking in besides ``ending``: a consult they answered, or one
    they hold (a phone has several lines; the agent is Busy while any of them is up)."""
    return next((c.call_id for c in tx.calls.values() if c.call_id != ending and (
        (c.consult == name and c.agent != name)
        or (c.agent == name and c.answered_at is not None and not c.pending))), None)


def off_call(tx: acd._Tx, name: str, wrap_until: float, ends: Mapping[str, float]) -> None:
    """``name``'s own call is over for them: wrap-up — unless they also answered a colleague's consult
    call about another call, then Busy on that one until its leg ends."""
    other = _other_call(tx, name, tx.agents[name].call_id)
    if other is not None:
        tx.agent(name, Trigger.TAKE_OVER, call_id=other, wrap_until=None, queue_last_end=ends)
    else:
        tx.agent(name, Trigger.HANGUP, call_id=None, wrap_until=wrap_until, queue_last_end=ends)


def _consult_over(tx: acd._Tx, name: str, now: float) -> None:
    """The colleague's consult leg ended: free again (no wrap-up), or back on their break / logged out
    — or still Busy on another call of theirs."""
    a = tx.agents[name]
    other = _other_call(tx, name, a.call_id)
    if other is not None:
        tx.agent(name, Trigger.TAKE_OVER, call_id=other)
        return
    if a.resume == str(AgentState.PAUSED):
        tx.agent(name, Trigger.CONSULT_DONE_PAUSED, call_id=None, resume="")
    elif a.resume == str(AgentState.LOGGED_OUT):
        tx.agent(name, Trigger.CONSULT_DONE_LOGGED_OUT, call_id=None, resume="")
    else:
        tx.agent(name, Trigger.HANGUP, call_id=None, wrap_until=now)


def _attended(cfg: Config, tx: acd._Tx, ev: AttendedTransferred, now: float) -> None:
    c = tx.calls.get(ev.call_id)
    if not _holding(tx, c) or c is None or c.agent == ev.to_agent:
        return
    origin = c.agent
    assert origin is not None
    _leave(cfg, tx, c, now, "transfer:attended")
    _hand_over(cfg, tx, c, now, "attended", origin, ev.to_agent, ev.target, ("out", "taken"), "transfer")


def _free_offer(cfg: Config, tx: acd._Tx, name: str, now: float) -> None:
    """``name`` is being rung for another call while taking this one: that offer is withdrawn (the
    other call goes back to waiting, as after a missed offer)."""
    if tx.agents[name].state != AgentState.RESERVED:
        return
    for o in list(tx.calls.values()):
        if o.answered_at is not None:
            continue
        if o.agent == name and o.ringing:
            rest = sorted(o.ringing)
            tx.calls[o.call_id] = replace(o, agent=rest[0], ringing=frozenset(rest[1:]))
        elif o.agent == name:
            tx.calls[o.call_id] = replace(o, agent=None, offer_deadline=None, ringing=frozenset())
        elif name in o.ringing:
            tx.calls[o.call_id] = replace(o, ringing=o.ringing - {name})
        else:
            continue
        tx.out.append(acd.CancelOffer(o.call_id, name))
    if tx.agents[name].state == AgentState.RESERVED:
        tx.agent(name, Trigger.NO_ANSWER, call_id=None)


def agent_hung_up(cfg: Config, tx: acd._Tx, name: str, cid: str, now: float) -> bool:
    """An agent leg of ``cid`` hung up: True if handled here (a consult leg, or a holder Busy on
    another call); else the core's usual ending runs (after this added the last leg of a
    transferred call)."""
    a = tx.agents[name]
    c = tx.calls.get(cid)
    if (c is not None and c.conference and c.agent == name and _holding(tx, c)
            and (c.conference not in tx.agents or c.consult == c.conference)):  # (an agent rung but not joined: the end)
        _conference_left(cfg, tx, c, now)
        return True
    if a.state == AgentState.BUSY and a.call_id == cid and (c is None or c.agent != name or c.pending):
        _consult_over(tx, name, now)  # a consult leg (the call may have ended meanwhile)
    elif c is None:
        return False
    if c is not None and (c.agent != name or c.pending):
        if c.consult == name:
            tx.calls[cid] = replace(c, consult=None)
        return True
    if c is None:
        return True
    if not _holding(tx, c):
        return False
    if c.transfers:
        assert c.answered_at is not None
        tx.out.append(LegEnded(cid, name, c.answered_at, now, "completed"))
    if a.state == AgentState.BUSY and a.call_id == cid:
        return False
    del tx.calls[cid]  # took it over while Busy on another call of theirs: that one goes on
    tx.out.append(acd.CallEnded(cid, "completed", now, agent=name))
    return True


def caller_left(tx: acd._Tx, c: acd.Call, now: float) -> bool:
    """The caller hung up: True if handled here (held between a blind transfer and its target, or parked;
    in a conference: the call ends, its agents' legs free them as they hang up)."""
    if c.conference and not c.pending:
        del tx.calls[c.call_id]
        if c.transfers and c.agent is not None and c.answered_at is not None:
            tx.out.append(LegEnded(c.call_id, c.agent, c.answered_at, now, "completed"))
        tx.out.append(acd.CallEnded(c.call_id, "completed", now, agent=c.agent))
        return True
    if not c.pending:
        return False
    del tx.calls[c.call_id]  # a parked caller who hangs up gave up waiting
    tx.out.append(acd.CallEnded(c.call_id, "abandoned" if c.pending == "park" else "completed", now, agent=c.agent))
    return True


def resynced(tx: acd._Tx, callers: set[str], node: str, now: float) -> None:
    """After a snapshot of ``node``: a call held in a blind transfer whose caller Asterisk no longer
    has ended while the link was down (its target never came)."""
    for cid in [cid for cid, c in tx.calls.items() if c.pending and c.node == node and cid not in callers]:
        c = tx.calls.pop(cid)
        tx.out.append(acd.CallEnded(cid, "completed", now, agent=c.agent))
