"""Logs (structlog: JSON off a terminal), Prometheus metrics (no per-call label values), loop lag.

Metrics follow the domain-event bus (:meth:`Metrics.subscribe`); queue and agent statistics are
served from :class:`~callcenter.features.stats.cache.StatsCache` figures, so a scrape never
touches SQLite; :class:`LoopLagMonitor` measures how late the event loop runs.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from callcenter import events as ev

__all__ = ["configure_logging", "Metrics", "StatsCollector", "LoopLagMonitor"]


def configure_logging(fmt: str = "auto", level: int = logging.INFO) -> None:
    json_out = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer = structlog.processors.JSONRenderer() if json_out else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),
        cache_logger_on_first_use=True,
    )


class _CurrentStderr:
    """Whatever ``sys.stderr`` is when a line is written (not when logging was configured): a CLI
    command run in-process by a test must not leave loggers bound to a closed capture file."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


class Metrics:
    """The daemon's metrics in a registry of its own (so tests can build several daemons)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.calls = Counter("callcenter_calls", "Calls finished, by outcome", ["outcome"], registry=r)
        self.waiting = Gauge("callcenter_queue_waiting", "Callers waiting, per queue", ["queue"], registry=r)
        self.agents = Gauge("callcenter_agents", "Agents by state", ["state"], registry=r)
        self.offers = Counter("callcenter_offers", "Calls offered to agents, by result", ["result"], registry=r)
        self.ami_connected = Gauge("callcenter_ami_connected", "1 while AMI is logged in and synced", registry=r)
        self.ami_reconnects = Counter("callcenter_ami_reconnects", "AMI (re)connections", registry=r)
        self.amd = Counter("callcenter_amd_verdicts", "Live AMD verdicts", ["verdict"], registry=r)
        self.csat = Histogram("callcenter_csat_rating", "After-call survey ratings, per queue", ["queue"],
                              buckets=tuple(range(10)), registry=r)
        self.repeats = Counter("callcenter_repeat_calls", "Calls flagged as repeat callers, per queue", ["queue"],
                               registry=r)
        self.transfers = Counter("callcenter_transfers", "Transfers by kind (blind, attended), target kind and result",
                                 ["kind", "to", "result"], registry=r)
        self.agi_sessions = Counter("callcenter_agi_sessions", "FastAGI sessions, by script and result",
                                    ["script", "result"], registry=r)
        # the dialler: labels are configured campaign names and fixed outcome names only
        self.dialled = Counter("callcenter_dialer_dialled", "Lines dialled", ["campaign"], registry=r)
        self.dial_outcomes = Counter("callcenter_dialer_outcomes", "Dialled lines by outcome",
                                     ["campaign", "outcome"], registry=r)
        self.dial_level = Gauge("callcenter_dialer_lines", "Lines in flight (dial level)", ["campaign"], registry=r)
        self.dial_abandon_rate = Gauge("callcenter_dialer_abandon_rate",
                                       "Rolling abandon rate (abandoned / live answers, 24 h)", ["campaign"], registry=r)
        self.dial_occupancy = Gauge("callcenter_dialer_occupancy",
                                    "Agents of the campaign's queue talking or in wrap-up / logged in", ["campaign"],
                                    registry=r)


    def subscribe(self, bus: ev.Bus) -> None:
        """Count what the bus reports: label values are outcomes, results, states, configured queues
        and campaigns, AMD verdicts — never a call id or a number."""
        bus.subscribe(ev.CallEnded, lambda e: self.calls.labels(e.outcome).inc())
        bus.subscribe(ev.CallEnded, _log_call_ended)  # one closing line per call, whoever ended it
        bus.subscribe(ev.CallbackDone, lambda e: self.calls.labels("callback-" + e.outcome).inc())
        bus.subscribe(ev.CallOffered, lambda e: self.offers.labels("offered").inc())
        bus.subscribe(ev.CallAnswered, lambda e: self.offers.labels("answered").inc())
        bus.subscribe(ev.OfferResult, lambda e: self.offers.labels(e.result).inc())
        bus.subscribe(ev.QueueFigures, self._queue_figures)
        bus.subscribe(ev.AmdVerdict, lambda e: self.amd.labels(e.verdict).inc())
        bus.subscribe(ev.DialerOutcome, lambda e: self.dial_outcomes.labels(e.campaign, e.outcome).inc())
        bus.subscribe(ev.CsatRated, lambda e: self.csat.labels(e.queue).observe(e.rating))
        bus.subscribe(ev.CallRepeat, lambda e: self.repeats.labels(e.queue).inc())
        bus.subscribe(ev.CallTransferred, lambda e: self.transfers.labels(e.kind, e.to_kind, e.result).inc())

    def watch_db(self, db_thread: Any) -> None:
        """Export a :class:`~callcenter.persistence.DbThread`'s backlog and failed writes (read at scrape
        time from two counters the thread keeps: no database access)."""
        self.registry.register(_DbThreadCollector(db_thread))

    def watch_sizes(self, sizes: Callable[[], Mapping[str, int]]) -> None:
        """Export the daemon's own per-call maps by name (read at scrape time): one that does not come
        back to its idle size once calls have ended is a leak."""
        self.registry.register(_SizesCollector(sizes))

    def _queue_figures(self, e: ev.QueueFigures) -> None:
        for queue, n in e.waiting:
            self.waiting.labels(queue).set(n)
        for state, n in e.agents:
            self.agents.labels(state).set(n)


class _DbThreadCollector(Collector):
    def __init__(self, db_thread: Any) -> None:
        self.db_thread = db_thread

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        yield GaugeMetricFamily("callcenter_db_pending_writes", "Writes queued on the database thread (a locked "
                                "database makes it grow)", value=self.db_thread.pending)
        yield CounterMetricFamily("callcenter_db_write_failures", "Queued writes that failed (logged)",
                                  value=self.db_thread.failures)


class _SizesCollector(Collector):
    def __init__(self, sizes: Callable[[], Mapping[str, int]]) -> None:
        self.sizes = sizes

    def collect(self) -> Iterator[GaugeMetricFamily]:
        g = GaugeMetricFamily("callcenter_daemon_entries", "Entries in the daemon's own maps (labels: fixed map "
                              "names)", labels=["map"])
        for name, n in self.sizes().items():
            g.add_metric([name], n)
        yield g


def _log_call_ended(e: ev.CallEnded) -> None:
    structlog.get_logger("callcenter").info("call.ended", call_id=e.call_id, outcome=e.outcome, agent=e.agent)


class StatsCollector(Collector):
    """Queue and agent statistics computed at scrape time (labels: configured queues and agents only)."""

    def __init__(self, source: Callable[[], dict[str, Any]]):
        self.source = source

    def collect(self) -> Iterator[GaugeMetricFamily]:
        st = self.source()
        fams = {
            "service_level": GaugeMetricFamily("callcenter_queue_service_level",
                                               "Share answered within the queue's threshold (window)", labels=["queue"]),
            "asa_s": GaugeMetricFamily("callcenter_queue_asa_seconds", "Average speed of answer (window)",
                                       labels=["queue"]),
            "aht_s": GaugeMetricFamily("callcenter_queue_aht_seconds", "Average handle time (window)",
                                       labels=["queue"]),
            "abandon_rate": GaugeMetricFamily("callcenter_queue_abandon_rate", "Abandoned / (answered + abandoned)",
                                              labels=["queue"]),
            "longest_wait_s": GaugeMetricFamily("callcenter_queue_longest_wait_seconds",
                                                "Longest current wait", labels=["queue"]),
            "fcr_rate": GaugeMetricFamily("callcenter_queue_fcr_rate", "First-call resolution: answered calls not"
                                          " followed by a repeat call (window)", labels=["queue"]),
            "csat_avg": GaugeMetricFamily("callcenter_queue_csat_average", "Average after-call survey rating (window)",
                                          labels=["queue"]),
        }
        for q, fig in st["queues"].items():
            for key, fam in fams.items():
                if fig.get(key) is not None:
                    fam.add_metric([q], float(fig[key]))
        answered = GaugeMetricFamily("callcenter_agent_answered", "Calls answered by the agent (window)",
                                     labels=["agent"])
        aht = GaugeMetricFamily("callcenter_agent_aht_seconds", "The agent's average handle time (window)",
                                labels=["agent"])
        fcr = GaugeMetricFamily("callcenter_agent_fcr_rate", "The agent's first-call resolution (window)",
                                labels=["agent"])
        csat = GaugeMetricFamily("callcenter_agent_csat_average", "The agent's average survey rating (window)",
                                 labels=["agent"])
        for a, fig in st["agents"].items():
            answered.add_metric([a], float(fig["answered"]))
            if fig.get("aht_s") is not None:
                aht.add_metric([a], float(fig["aht_s"]))
            if fig.get("fcr_rate") is not None:
                fcr.add_metric([a], float(fig["fcr_rate"]))
            if fig.get("csat_avg") is not None:
                csat.add_metric([a], float(fig["csat_avg"]))
        paused = GaugeMetricFamily("callcenter_agent_paused_seconds",
                                   "Time paused in the window, by reason (configured reasons only)",
                                   labels=["agent", "reason"])
        for a, fig in st["agents"].items():
            for reason, secs in fig.get("paused_s", {}).items():
                paused.add_metric([a, reason], float(secs))
        yield from fams.values()
        yield answered
        yield aht
        yield fcr
        yield csat
        yield paused


LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class LoopLagMonitor:
    """How late the event loop runs: a task that sleeps ``interval_s`` and records by how much it
    overslept. Exported (with a registry) as the histogram ``callcenter_loop_lag_seconds`` plus the
    gauges ``callcenter_loop_lag_recent_p99_seconds`` / ``..._recent_max_seconds`` over the last
    ``keep`` samples; :meth:`summary` gives p50/p99/max in milliseconds.
    """

    def __init__(self, registry: CollectorRegistry | None = None, *, interval_s: float = 0.015,
                 keep: int = 8192) -> None:
        self.interval_s = interval_s
        self.samples: deque[tuple[float, float]] = deque(maxlen=keep)  # (wall time, lag seconds)
        self.count = 0
        self.max_s = 0.0
        self._hist: Histogram | None = None
        if registry is not None:
            self._hist = Histogram("callcenter_loop_lag_seconds", "How late the event loop ran a timer",
                                   buckets=LAG_BUCKETS, registry=registry)
            registry.register(_RecentLag(self))

    def record(self, lag_s: float, at: float | None = None) -> None:
        lag_s = max(0.0, lag_s)
        self.samples.append((time.time() if at is None else at, lag_s))
        self.count += 1
        self.max_s = max(self.max_s, lag_s)
        if self._hist is not None:
            self._hist.observe(lag_s)

    async def run(self) -> None:
        """Run for ever (a background task of the daemon)."""
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + self.interval_s
            await asyncio.sleep(self.interval_s)
            self.record(loop.time() - due)

    def lags(self, since: float = 0.0, until: float = float("inf")) -> list[float]:
        return [lag for at, lag in self.samples if since <= at <= until]

    def summary(self, since: float = 0.0, until: float = float("inf")) -> dict[str, float | int]:
        """p50/p99/max lag in ms of the kept samples taken in [since, until]."""
        lags = sorted(self.lags(since, until))
        return {"samples": len(lags), "lag_p50_ms": round(percentile(lags, 50) * 1000, 2),
                "lag_p99_ms": round(percentile(lags, 99) * 1000, 2),
                "lag_max_ms": round((lags[-1] if lags else 0.0) * 1000, 2)}


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (0.0 when empty)."""
    if not sorted_values:
        return 0.0
    k = max(0, min(len(sorted_values) - 1, -(-len(sorted_values) * q // 100) - 1))
    return sorted_values[int(k)]


class _RecentLag(Collector):
    def __init__(self, monitor: LoopLagMonitor) -> None:
        self.monitor = monitor

    def collect(self) -> Iterator[GaugeMetricFamily]:
        lags = sorted(lag for _, lag in self.monitor.samples)
        yield GaugeMetricFamily("callcenter_loop_lag_recent_p99_seconds",
                                "p99 of the event loop's lag over the recent samples", value=percentile(lags, 99))
        yield GaugeMetricFamily("callcenter_loop_lag_recent_max_seconds",
                                "Largest event loop lag over the recent samples", value=lags[-1] if lags else 0.0)
