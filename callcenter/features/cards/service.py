"""The span monitor: chan_dahdi's alarm events -> :mod:`alarms` -> a Prometheus gauge, a log line and
the ``cards`` part of ``/status``. Takes AMI messages; does no I/O itself (the daemon runs the
``DAHDIShowStatus`` snapshot after each AMI (re)connect and hands it to :meth:`resynced`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import structlog
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from callcenter.features.cards import alarms
from callcenter.features.cards.plan import Plan, plan
from callcenter.features.cards.schema import CardsConf
from callcenter.protocol.ami import Message

__all__ = ["CardsMonitor"]

log = structlog.get_logger("callcenter.cards")

STATE_VALUE = {"up": 1.0, "alarm": 0.0, "unknown": -1.0}


class CardsMonitor:
    """Span states of the configured cards, kept from AMI events."""

    def __init__(self, cards: CardsConf, registry: CollectorRegistry | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.plan: Plan = Plan()
        self.state: dict[int, alarms.SpanState] = {}
        self._span_of: dict[int, int] = {}
        self.reconfigure(cards)
        if registry is not None:
            registry.register(_Collector(self))

    @property
    def enabled(self) -> bool:
        return bool(self.plan.spans)

    def reconfigure(self, cards: CardsConf) -> None:
        """A new config: spans kept keep their state, new ones start unknown."""
        self.plan, _ = plan(cards)
        self._span_of = {c: sp.span for sp in self.plan.spans for c in range(sp.first, sp.last + 1)}
        old = self.state
        self.state = {sp.span: old.get(sp.span, alarms.SpanState(sp.span)) for sp in self.plan.spans}

    def on_event(self, msg: Message) -> None:
        ev = alarms.read(msg)
        if ev is not None and self.state:
            self._apply(ev)

    def resynced(self, rows: Iterable[Message] | None) -> None:
        """The DAHDIShowStatus snapshot after an AMI (re)connect; None: it failed (no chan_dahdi)."""
        if self.state:
            self._apply(alarms.snapshot(rows or ()))

    def ami_down(self) -> None:
        """Without AMI nothing is known about the spans."""
        if self.state:
            self._apply(alarms.Snapshot({}))

    def _apply(self, ev: alarms.Event) -> None:
        before = self.state
        self.state = alarms.step(before, ev, self.clock(), self._span_of)
        for n, st in self.state.items():
            old = before[n]
            if st.state == old.state and st.alarm == old.alarm:
                continue
            sp = next(s for s in self.plan.spans if s.span == n)
            if st.state == "alarm":
                log.warning("card.span_alarm", span=n, type=sp.type, trunk=sp.trunk, alarm=st.alarm,
                            channels_in_alarm=len(st.channels))
            elif st.state == "up":
                log.info("card.span_up", span=n, type=sp.type, trunk=sp.trunk, was=old.state)
            else:
                log.info("card.span_unknown", span=n)

    def status(self) -> dict[str, Any]:
        """Per configured span (keys are span numbers as strings, for JSON)."""
        out: dict[str, Any] = {}
        for sp in self.plan.spans:
            st = self.state[sp.span]
            trunks = sorted({p.trunk for p in sp.ports if p.trunk} | ({sp.trunk} if sp.trunk else set()))
            out[str(sp.span)] = {"type": sp.type, "trunks": trunks, "state": st.state, "alarm": st.alarm,
                                 "channels": f"{sp.first}-{sp.last}", "channels_in_alarm": sorted(st.channels),
                                 "since": st.since, "alarms": st.alarms}
        return out


class _Collector:
    """``callcenter_card_span_up{span}`` (1 up, 0 alarm, -1 unknown), channels in alarm, alarms counted;
    the labels are the configured span numbers only."""

    def __init__(self, mon: CardsMonitor) -> None:
        self.mon = mon

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterable[Any]:
        up = GaugeMetricFamily("callcenter_card_span_up", "DAHDI span state: 1 up, 0 in alarm, -1 unknown",
                               labels=["span"])
        chans = GaugeMetricFamily("callcenter_card_channels_in_alarm", "DAHDI channels of the span in alarm",
                                  labels=["span"])
        count = CounterMetricFamily("callcenter_card_span_alarms", "Times the span went into alarm", labels=["span"])
        for n, st in sorted(self.mon.state.items()):
            up.add_metric([str(n)], STATE_VALUE[st.state])
            chans.add_metric([str(n)], len(st.channels))
            count.add_metric([str(n)], st.alarms)
        return [up, chans, count]
