"""Domain events -> webhook messages: the type, the ordering key, the ``data`` (pure; no I/O).

:class:`Payloads` remembers what a call's later events need from its earlier ones (caller number,
DID, IVR path, queue, entry and answer times, recording id) and forgets a call once it has ended.
Every message of a call carries its ``call_id`` — the daemon's correlation id across the call's
legs — and is ordered by it; agent states are ordered per agent, dialler outcomes per lead.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from callcenter import events as ev
from callcenter.features.crm.model import CustomerIdentified

__all__ = ["Message", "Payloads", "iso", "MAX_CALLS"]

MAX_CALLS = 20_000  # calls remembered at once; beyond, the oldest is forgotten (one whose end was never seen)


@dataclass(frozen=True)
class Message:
    type: str
    key: str  # the ordering key
    at: float  # when it happened (the payload's timestamp)
    data: dict[str, Any]

    def body(self) -> dict[str, Any]:
        """The Standard Webhooks payload: ``{"type", "timestamp", "data"}``."""
        return {"type": self.type, "timestamp": iso(self.at), "data": self.data}


def iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, tz=dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class _Ctx:
    caller_num: str = ""
    caller_name: str = ""
    did: str = ""
    ivr_path: list[str] = field(default_factory=list)
    queue: str | None = None
    started_at: float | None = None
    entered_at: float | None = None
    answered_at: float | None = None
    agent: str | None = None
    recording_id: str | None = None
    customer: dict[str, Any] | None = None  # the CRM's (or the local table's) record, when the caller is known
    repeat_of: str | None = None  # a repeat caller (features.repeat): the earlier call


def _wait(ctx: _Ctx, at: float) -> float | None:
    return round(at - ctx.entered_at, 3) if ctx.entered_at is not None else None


class Payloads:
    """See the module doc. ``live_call(call_id)``: the ACD's live call (caller number, entry time)
    for a call whose start this process did not see (a restart)."""

    def __init__(self, live_call: Any = lambda call_id: None) -> None:
        self.calls: dict[str, _Ctx] = {}
        self.live_call = live_call

    def _ctx(self, call_id: str) -> _Ctx:
        ctx = self.calls.get(call_id)
        if ctx is None:
            if len(self.calls) >= MAX_CALLS:
                del self.calls[next(iter(self.calls))]
            ctx = self.calls[call_id] = _Ctx()
            c = self.live_call(call_id)
            if c is not None:
                ctx.caller_num, ctx.caller_name = c.caller_num, c.caller_name
                ctx.queue, ctx.entered_at = c.queue, c.entered_at
        return ctx

    def message(self, e: ev.DomainEvent, now: float) -> Message | None:  # noqa: PLR0911 - one case per event
        """The webhook message of ``e`` (None: the event only feeds later messages)."""
        if isinstance(e, ev.CallStarted):
            ctx = self._ctx(e.call_id)
            ctx.caller_num, ctx.caller_name, ctx.did, ctx.started_at = e.caller_num, e.caller_name, e.did, e.at
            return None
        if isinstance(e, ev.CallPath):
            self._ctx(e.call_id).ivr_path = list(e.path)
            return None
        if isinstance(e, CustomerIdentified):
            self._ctx(e.call_id).customer = dict(e.record)
            return None
        if isinstance(e, ev.CallRepeat):
            self._ctx(e.call_id).repeat_of = e.previous
            return None
        if isinstance(e, ev.CallOverflowed):
            self._ctx(e.call_id).queue = e.queue
            return None
        if isinstance(e, ev.RecordingEvent):
            if e.call_id and e.kind == "started":
                self._ctx(e.call_id).recording_id = e.rec_id
            return None
        if isinstance(e, ev.CallQueued):
            ctx = self._ctx(e.call_id)
            ctx.queue = e.queue
            if ctx.entered_at is None:
                ctx.entered_at = e.at
            return Message("call.entered", e.call_id, e.at, {
                "call_id": e.call_id, "caller_num": ctx.caller_num, "caller_name": ctx.caller_name, "did": ctx.did,
                "ivr_path": ctx.ivr_path, "queue": e.queue, "customer": ctx.customer})
        if isinstance(e, ev.CallOffered):
            ctx = self._ctx(e.call_id)
            return Message("call.offered", e.call_id, e.at, {
                "call_id": e.call_id, "agent": e.agent, "queue": e.queue, "caller_num": ctx.caller_num,
                "caller_name": ctx.caller_name, "did": ctx.did, "ivr_path": ctx.ivr_path, "wait_s": _wait(ctx, e.at),
                "customer": ctx.customer, "repeat_of": ctx.repeat_of})
        if isinstance(e, ev.CallAnswered):
            ctx = self._ctx(e.call_id)
            ctx.agent, ctx.answered_at = e.agent, e.at
            return Message("call.answered", e.call_id, e.at, {
                "call_id": e.call_id, "agent": e.agent, "queue": ctx.queue, "caller_num": ctx.caller_num,
                "wait_s": _wait(ctx, e.at), "customer": ctx.customer})
        if isinstance(e, ev.CallEnded):
            ctx = self.calls.pop(e.call_id, None) or _Ctx()
            start = ctx.started_at if ctx.started_at is not None else ctx.entered_at
            return Message("call.ended", e.call_id, e.at, {
                "call_id": e.call_id, "outcome": e.outcome, "agent": e.agent or ctx.agent, "queue": ctx.queue,
                "caller_num": ctx.caller_num, "did": ctx.did,
                "duration_s": round(e.at - start, 3) if start is not None else None,
                "talk_s": round(e.at - ctx.answered_at, 3) if ctx.answered_at is not None else None,
                "recording_id": ctx.recording_id, "disposition": None, "customer": ctx.customer})
        if isinstance(e, ev.CallTransferred):  # the call goes on under the same id (features.transfer)
            return Message("call.transferred", e.call_id, e.at, {
                "call_id": e.call_id, "kind": e.kind, "from_agent": e.from_agent, "to_kind": e.to_kind,
                "target": e.target, "result": e.result, "queue": self._ctx(e.call_id).queue})
        if isinstance(e, ev.CsatRated):  # after call.ended (the caller rates once the agent has gone): no context
            return Message("call.rated", e.call_id, e.at, {
                "call_id": e.call_id, "queue": e.queue, "agent": e.agent, "rating": e.rating})
        if isinstance(e, ev.AgentStateChanged):
            return Message("agent.state", f"agent:{e.agent}", e.at, {
                "agent": e.agent, "state": e.state, "reason": e.paused_reason or e.reason or "", "call_id": e.call_id})
        if isinstance(e, ev.CallbackStored):
            c = e.call
            return Message("callback.stored", c.call_id, e.at, {
                "call_id": c.call_id, "queue": c.queue, "number": c.callback, "attempts": c.attempts})
        if isinstance(e, ev.CallbackDone):
            return Message("callback.done", e.call_id, now, {"call_id": e.call_id, "outcome": e.outcome})
        if isinstance(e, ev.DialerOutcome):
            return Message("lead.outcome", f"lead:{e.campaign}:{e.lead_id}", now, {
                "campaign": e.campaign, "lead_id": e.lead_id, "outcome": e.outcome})
        if isinstance(e, ev.DispositionSet):
            return Message("disposition.set", e.call_id or f"lead:{e.campaign}:{e.lead_id}", e.at, {
                "call_id": e.call_id, "agent": e.agent, "campaign": e.campaign, "lead_id": e.lead_id,
                "disposition": e.disposition})
        return None
