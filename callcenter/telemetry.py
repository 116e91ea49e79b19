"""Logs (structlog: JSON off a terminal) and Prometheus metrics (no per-call label values)."""

from __future__ import annotations

import logging
import sys

import structlog
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["configure_logging", "Metrics"]


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
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )


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
        }
        for q, fig in st["queues"].items():
            for key, fam in fams.items():
                if fig.get(key) is not None:
                    fam.add_metric([q], float(fig[key]))
        answered = GaugeMetricFamily("callcenter_agent_answered", "Calls answered by the agent (window)",
                                     labels=["agent"])
        aht = GaugeMetricFamily("callcenter_agent_aht_seconds", "The agent's average handle time (window)",
                                labels=["agent"])
        for a, fig in st["agents"].items():
            answered.add_metric([a], float(fig["answered"]))
            if fig.get("aht_s") is not None:
                aht.add_metric([a], float(fig["aht_s"]))
        paused = GaugeMetricFamily("callcenter_agent_paused_seconds",
                                   "Time paused in the window, by reason (configured reasons only)",
                                   labels=["agent", "reason"])
        for a, fig in st["agents"].items():
            for reason, secs in fig.get("paused_s", {}).items():
                paused.add_metric([a, reason], float(secs))
        yield from fams.values()
        yield answered
        yield aht
        yield paused
