"""The internal bus: typed domain events, published once, for the journal, metrics, API streams, webhooks.

Features publish what happened (a call entered a queue, an agent changed state, a recording
finished); subscribers decide what to do with it. No feature writes the journal or a metric
directly. Handlers run synchronously in subscription order and must be quick (the journal only
queues its write on the database thread); a handler that raises is logged with the event and
the others still run — a broken subscriber never breaks the call that published.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import structlog

__all__ = [
    "Bus", "DomainEvent", "CallStarted", "CallPath", "CallQueued", "CallOffered", "OfferResult", "CallAnswered",
    "CallEnded", "CallOutcome", "CallOverflowed", "AgentStateChanged", "CallbackStored", "CallbackDone",
    "QueueFigures", "RecordingEvent", "SpyEvent", "DialerOutcome", "DispositionSet", "AmdVerdict",
    "CallRepeat", "CsatRated", "MessageLeft",
    "CallLegEnded", "CallLegStarted", "CallTransferred",
]

log = structlog.get_logger("callcenter.events")
E = TypeVar("E", bound="DomainEvent")


@dataclass(frozen=True)
class DomainEvent:
    """Base of every domain event. ``node`` names the Asterisk node the call or channel lives on."""


@dataclass(frozen=True)
class CallStarted(DomainEvent):
    call_id: str
    uniqueid: str
    channel: str
    caller_num: str
    caller_name: str
    did: str
    at: float
    node: str = "local"


@dataclass(frozen=True)
class CallPath(DomainEvent):
    call_id: str
    path: tuple[str, ...]


@dataclass(frozen=True)
class CallQueued(DomainEvent):
    call_id: str
    queue: str
    at: float


@dataclass(frozen=True)
class CallOffered(DomainEvent):
    call_id: str
    agent: str
    queue: str
    explain: str
    at: float


@dataclass(frozen=True)
class OfferResult(DomainEvent):
    """How an offer's agent leg went: answered-leg, noanswer, error."""

    result: str


@dataclass(frozen=True)
class CallAnswered(DomainEvent):
    call_id: str
    agent: str
    at: float


@dataclass(frozen=True)
class CallEnded(DomainEvent):
    call_id: str
    outcome: str
    at: float
    agent: str | None = None


@dataclass(frozen=True)
class CallOutcome(DomainEvent):
    """The outcome is known before the call ends (fallback, callback, abandoned-dialer)."""

    call_id: str
    outcome: str


@dataclass(frozen=True)
class CallOverflowed(DomainEvent):
    call_id: str
    queue: str


@dataclass(frozen=True)
class AgentStateChanged(DomainEvent):
    agent: str
    state: str
    reason: str
    idle_since: float
    call_id: str | None
    pause_reason_changed: bool
    paused_reason: str | None
    at: float


@dataclass(frozen=True)
class CallRepeat(DomainEvent):
    """The caller's number called the same queue within its repeat window (first-call resolution)."""

    call_id: str
    queue: str
    previous: str  # the earlier call's id


@dataclass(frozen=True)
class CsatRated(DomainEvent):
    """The caller rated the call in the after-call survey."""

    call_id: str
    queue: str
    agent: str | None
    rating: int
    at: float


@dataclass(frozen=True)
class MessageLeft(DomainEvent):
    """A waiting caller's message, recorded and trimmed: a task in the queue, called back like a callback."""

    call_id: str
    msg_id: str
    queue: str
    duration_s: float


@dataclass(frozen=True)
class CallbackStored(DomainEvent):
    call: Any  # the ACD model's Call, kept while the caller waits for the callback
    at: float


@dataclass(frozen=True)
class CallbackDone(DomainEvent):
    call_id: str
    outcome: str


@dataclass(frozen=True)
class QueueFigures(DomainEvent):
    """Live figures after a core step: callers waiting per queue, agents per state."""

    waiting: tuple[tuple[str, int], ...]
    agents: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class RecordingEvent(DomainEvent):
    kind: str  # started, paused, resumed, finished, repaired, quarantined, purged
    rec_id: str
    call_id: str = ""
    agent: str | None = None


@dataclass(frozen=True)
class SpyEvent(DomainEvent):
    kind: str  # allowed, denied, started, stopped
    supervisor: str | None
    agent: str | None
    mode: str = ""
    reason: str = ""


@dataclass(frozen=True)
class DialerOutcome(DomainEvent):
    campaign: str
    outcome: str
    lead_id: int | None = None


@dataclass(frozen=True)
class DispositionSet(DomainEvent):
    """An agent's disposition of a dialled call (*69<code> or the API); ``call_id`` when it reached the queue."""

    agent: str
    campaign: str
    lead_id: int
    disposition: str
    at: float
    call_id: str | None = None


@dataclass(frozen=True)
class AmdVerdict(DomainEvent):
    verdict: str
    decided_ms: int
    beep_ms: int | None = None


@dataclass(frozen=True)
class CallLegEnded(DomainEvent):
    """An agent stopped holding a transferred call (features.transfer): their leg and talk time."""

    call_id: str
    agent: str
    answered_at: float
    at: float
    how: str  # transfer:blind | transfer:attended | completed


@dataclass(frozen=True)
class CallLegStarted(DomainEvent):
    """The next agent took a transferred call over: the record's agent is now theirs."""

    call_id: str
    agent: str
    at: float


@dataclass(frozen=True)
class CallTransferred(DomainEvent):
    """A transfer resolved (features.transfer): blind | attended, from whom, to what, and how it went."""

    call_id: str
    kind: str
    from_agent: str
    to_kind: str
    target: str
    result: str
    at: float


Handler = Callable[[Any], object]


@dataclass
class Bus:
    """Publish once, deliver to every subscriber of the event's type (or of every event)."""

    _subs: dict[type, list[Handler]] = field(default_factory=lambda: defaultdict(list))
    _all: list[Handler] = field(default_factory=list)
    failures: int = 0

    def subscribe(self, kind: type[E] | None, handler: Callable[[E], object]) -> None:
        if kind is None:
            self._all.append(handler)
        else:
            self._subs[kind].append(handler)

    def publish(self, event: DomainEvent) -> None:
        for h in (*self._subs.get(type(event), ()), *self._all):
            try:
                h(event)
            except Exception as e:  # noqa: BLE001 - a subscriber's bug must not break the publisher
                self.failures += 1
                log.error("bus.subscriber_failed", event=type(event).__name__,
                          subscriber=getattr(h, "__qualname__", repr(h)), error=repr(e))
