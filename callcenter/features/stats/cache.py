"""The figures ``/status``, ``/metrics`` and the expected wait read: cached, refreshed off the loop.

A scrape or a status request never touches SQLite: :class:`StatsCache` holds the last
:class:`Snapshot` and :meth:`StatsCache.run` refreshes it every few seconds on a database
thread, with queries bounded by the statistics window (indexes ``calls_entered``,
``calls_started``, ``pauses_ended``/``pauses_open``), so a refresh costs the same with a
million journal rows as with ten, and a database locked by another writer only makes the
figures a little older (WAL readers do not wait for writers).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

import structlog

from callcenter.features.acd.store import AgentStore
from callcenter.features.stats import figures
from callcenter.journal import outcome_counts_on
from callcenter.persistence import connect

if TYPE_CHECKING:
    from callcenter.config import Config
    from callcenter.persistence import DbThread

__all__ = ["Snapshot", "StatsCache"]

log = structlog.get_logger("callcenter.stats")
_EMPTY: Mapping = MappingProxyType({})


@dataclass(frozen=True)
class Snapshot:
    """Figures over ``[at - window_s, at]``; ``at == 0`` until the first refresh."""

    at: float = 0.0
    window_s: float = 0.0
    queues: Mapping[str, figures.Figures] = field(default_factory=lambda: _EMPTY)  # each with its own SL threshold
    agents: Mapping[str, figures.Figures] = field(default_factory=lambda: _EMPTY)
    paused: Mapping[str, Mapping[str, float]] = field(default_factory=lambda: _EMPTY)  # agent -> reason -> seconds
    outcomes: Mapping[str, int] = field(default_factory=lambda: _EMPTY)  # calls started in the window, by outcome


class StatsCache:
    """Cached window figures of one journal.

    ``database`` is the journal's path (the cache opens its own read connection, on the thread
    of the :class:`DbThread` it is refreshed with) or an open connection (then refresh it with
    the DbThread that owns that connection). ``sl_thresholds`` maps each queue to its
    service-level threshold; figures are kept for those queues only.
    """

    def __init__(self, database: str | Path | sqlite3.Connection, sl_thresholds: Mapping[str, float],
                 window_s: float, *, every_s: float = 2.0) -> None:
        self._source = database
        self._db: sqlite3.Connection | None = database if isinstance(database, sqlite3.Connection) else None
        self.sl_thresholds = dict(sl_thresholds)
        self.window_s = window_s
        self.every_s = every_s
        self.snapshot = Snapshot(window_s=window_s)
        self.refreshes = 0
        self.failures = 0

    @classmethod
    def from_config(cls, cfg: Config, *, every_s: float = 2.0) -> StatsCache:
        return cls(cfg.daemon.database, {n: q.service_level_s for n, q in cfg.queues.items()},
                   cfg.daemon.stats_window_s, every_s=every_s)

    def reconfigure(self, cfg: Config) -> None:
        """A reloaded config: new queues/thresholds/window apply from the next refresh."""
        self.sl_thresholds = {n: q.service_level_s for n, q in cfg.queues.items()}
        self.window_s = cfg.daemon.stats_window_s

    # ------------------------------------------------------------------ reading (on the loop, no I/O)
    def queue_figures(self) -> Mapping[str, figures.Figures]:
        return self.snapshot.queues

    def agent_figures(self) -> Mapping[str, figures.Figures]:
        return self.snapshot.agents

    # ------------------------------------------------------------------ refreshing (off the loop)
    async def refresh(self, db_thread: DbThread) -> Snapshot:
        """Recompute the figures on ``db_thread`` and publish them (one attribute swap, on the loop)."""
        snap = await db_thread.run(self.compute, time.time())
        self.snapshot = snap
        self.refreshes += 1
        return snap

    async def run(self, db_thread: DbThread) -> None:
        """Refresh every ``every_s`` for ever (a background task); a database error is logged and
        the previous figures stay until the next refresh succeeds."""
        while True:
            try:
                await self.refresh(db_thread)
            except sqlite3.Error as e:
                self.failures += 1
                log.warning("stats.refresh_failed", error=repr(e))
            await asyncio.sleep(self.every_s)

    def compute(self, now: float) -> Snapshot:
        """The window figures at ``now`` (runs on the database thread)."""
        db = self._connection()
        since = now - self.window_s
        queues: dict[str, figures.Figures] = {}
        for t in set(self.sl_thresholds.values()):
            got = figures.queue_figures(db, since, t)
            queues.update({q: f for q, f in got.items() if self.sl_thresholds.get(q) == t})
        outcomes = outcome_counts_on(db, since)
        return Snapshot(at=now, window_s=self.window_s, queues=MappingProxyType(queues),
                        agents=MappingProxyType(figures.agent_figures(db, since)),
                        paused=MappingProxyType(AgentStore.pause_seconds_on(db, since, now)),
                        outcomes=MappingProxyType(outcomes))

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            self._db = connect(self._source, readonly=True)  # type: ignore[arg-type]
        return self._db

    def close(self) -> None:
        """Close the cache's own read connection (never one it was given)."""
        if self._db is not None and not isinstance(self._source, sqlite3.Connection):
            self._db.close()
            self._db = None
