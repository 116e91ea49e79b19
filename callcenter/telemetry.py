"""Logs (structlog: JSON off a terminal) and Prometheus metrics (no per-call label values)."""

from __future__ import annotations

import logging
import sys

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge

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
        self.agi_sessions = Counter("callcenter_agi_sessions", "FastAGI sessions, by script and result",
                                    ["script", "result"], registry=r)
