"""The spans' alarm state, from chan_dahdi's AMI events. Pure: state + event + now -> state.

chan_dahdi (with ``reportalarms=all``, as rendered) sends, class ``system``:

- ``SpanAlarm`` (``Span``, ``Alarm``: ``Red Alarm``, ``Yellow Alarm``, ``Blue Alarm``, ``Recovering``,
  ``Loopback``, ``Not Open``) and ``SpanAlarmClear`` (``Span``) for a digital span;
- ``Alarm`` (``DAHDIChannel``, ``Alarm``) and ``AlarmClear`` (``DAHDIChannel``) per channel — the
  only alarm an analog port (an FXO line without battery) raises;
- ``DAHDIShowStatus`` (``Span``, ``Alarms``: ``OK``, ``UNCONFIGURED`` or e.g. ``YEL/RED``), the
  answer to the action of that name: the snapshot taken after every AMI (re)connect.

A span is ``up`` when it has no span alarm and no channel of it is in alarm, ``alarm`` otherwise,
and ``unknown`` until an event or a snapshot says (also after AMI reconnects to an Asterisk
without chan_dahdi). Events for spans or channels not in the config are ignored: the metric's
labels are the configured span numbers only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from callcenter.protocol.ami import Message

__all__ = ["EVENTS", "ChannelAlarm", "ChannelClear", "SpanAlarm", "SpanClear", "SpanState", "Snapshot", "initial",
           "read", "step"]

EVENTS = ("Alarm", "AlarmClear", "SpanAlarm", "SpanAlarmClear")  # in manager.conf's eventfilter


class SpanAlarm(NamedTuple):
    span: int
    alarm: str


class SpanClear(NamedTuple):
    span: int


class ChannelAlarm(NamedTuple):
    channel: int
    alarm: str


class ChannelClear(NamedTuple):
    channel: int


class Snapshot(NamedTuple):
    """Per span, its alarm text from DAHDIShowStatus (None: OK); spans absent from it are unknown."""

    spans: Mapping[int, str | None]


Event = SpanAlarm | SpanClear | ChannelAlarm | ChannelClear | Snapshot


@dataclass(frozen=True)
class SpanState:
    span: int
    known: bool = False
    alarm: str | None = None  # the span's own alarm text
    channels: frozenset[int] = frozenset()  # its channels in alarm
    since: float | None = None  # when it last changed between up and alarm
    alarms: int = 0  # how many times it went into alarm

    @property
    def state(self) -> str:
        if not self.known:
            return "unknown"
        return "alarm" if self.alarm is not None or self.channels else "up"


State = Mapping[int, SpanState]


def initial(spans: Iterable[int]) -> dict[int, SpanState]:
    return {n: SpanState(n) for n in spans}


def _int(v: str) -> int | None:
    v = v.strip()
    return int(v) if v.isascii() and v.isdigit() and len(v) <= 5 else None


def read(msg: Message) -> Event | None:
    """An AMI event read into one of this module's events (None: not an alarm event, or malformed)."""
    e = msg.event
    if e in ("SpanAlarm", "SpanAlarmClear"):
        n = _int(msg.get("Span"))
        if n is None:
            return None
        return SpanAlarm(n, msg.get("Alarm")[:40] or "Alarm") if e == "SpanAlarm" else SpanClear(n)
    if e in ("Alarm", "AlarmClear"):
        c = _int(msg.get("DAHDIChannel"))
        if c is None:
            return None
        return ChannelAlarm(c, msg.get("Alarm")[:40] or "Alarm") if e == "Alarm" else ChannelClear(c)
    return None


def snapshot(rows: Iterable[Message]) -> Snapshot:
    """The ``DAHDIShowStatus`` list read into a snapshot (``OK`` -> None, else the alarm text)."""
    spans: dict[int, str | None] = {}
    for m in rows:
        if m.event != "DAHDIShowStatus":
            continue
        n = _int(m.get("Span"))
        if n is None:
            continue
        a = m.get("Alarms").strip()
        spans[n] = None if a == "OK" else (a[:40] or "UNKNOWN")
    return Snapshot(spans)


def _set(st: SpanState, now: float, **changes: object) -> SpanState:
    new = dataclasses.replace(st, **changes)  # type: ignore[arg-type]
    if new.state != st.state:
        new = dataclasses.replace(new, since=now, alarms=st.alarms + (new.state == "alarm"))
    return new


def step(state: State, event: Event, now: float, span_of: Mapping[int, int]) -> dict[int, SpanState]:
    """The state after ``event``; ``span_of`` maps each configured DAHDI channel to its span."""
    out = dict(state)
    if isinstance(event, Snapshot):
        for n, st in out.items():
            if n in event.spans:
                out[n] = _set(st, now, known=True, alarm=event.spans[n], channels=frozenset())
            else:
                out[n] = _set(st, now, known=False, alarm=None, channels=frozenset())
        return out
    if isinstance(event, (SpanAlarm, SpanClear)):
        n = event.span
        if n not in out:
            return out
        # channels keep their own alarms: on an analog span the first port's alarm is also the span's
        alarm = event.alarm if isinstance(event, SpanAlarm) else None
        out[n] = _set(out[n], now, known=True, alarm=alarm)
        return out
    n_ = span_of.get(event.channel)
    if n_ is None or n_ not in out:
        return out
    st = out[n_]
    chans = st.channels | {event.channel} if isinstance(event, ChannelAlarm) else st.channels - {event.channel}
    out[n_] = _set(st, now, known=True, channels=frozenset(chans))
    return out
