"""Agents' login/pause state (which survives restarts) and their pause intervals (for statistics).

Written only by the journal subscriber from ``AgentStateChanged`` events, on the database
thread; read at start-up (:meth:`AgentStore.agents`) and by the statistics refresh
(:meth:`AgentStore.pause_seconds`, bounded by the window through ``pauses_ended``/``pauses_open``).
"""

from __future__ import annotations

import sqlite3

from callcenter.features.acd.agents import AgentState
from callcenter.persistence import Migration, migrate

__all__ = ["AgentStore", "MIGRATIONS"]

MIGRATIONS = [
    Migration(1, """
CREATE TABLE IF NOT EXISTS pauses (
    agent      TEXT NOT NULL,
    reason     TEXT NOT NULL,
    started_at REAL NOT NULL,
    ended_at   REAL
);
CREATE INDEX IF NOT EXISTS pauses_agent ON pauses(agent, started_at);
CREATE TABLE IF NOT EXISTS agents (
    agent      TEXT PRIMARY KEY,
    state      TEXT NOT NULL,
    reason     TEXT NOT NULL DEFAULT '',
    since      REAL NOT NULL
);
"""),
    # Bounded queries: closing a pause finds the open one directly; the window reads only pauses
    # that ended inside it plus the open ones, however long the history.
    Migration(2, """
CREATE INDEX IF NOT EXISTS pauses_open ON pauses(agent) WHERE ended_at IS NULL;
CREATE INDEX IF NOT EXISTS pauses_ended ON pauses(ended_at) WHERE ended_at IS NOT NULL;
"""),
]


class AgentStore:
    """The agents and pauses tables on a connection the caller owns (one thread at a time)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        migrate(db, "agents", MIGRATIONS)

    def save_agent(self, agent: str, state: AgentState, reason: str, since: float) -> None:
        self.db.execute("INSERT INTO agents(agent, state, reason, since) VALUES (?,?,?,?)"
                        " ON CONFLICT(agent) DO UPDATE SET state=excluded.state, reason=excluded.reason,"
                        " since=excluded.since", (agent, str(state), reason, since))

    def pause_changed(self, agent: str, reason: str | None, at: float) -> None:
        """Close the agent's open pause (if any) and open a new one when ``reason`` is given."""
        self.db.execute("UPDATE pauses SET ended_at=? WHERE agent=? AND ended_at IS NULL", (at, agent))
        if reason is not None:
            self.db.execute("INSERT INTO pauses(agent, reason, started_at) VALUES (?,?,?)", (agent, reason, at))

    def pause_seconds(self, since: float, now: float) -> dict[str, dict[str, float]]:
        """agent -> reason -> seconds paused within [since, now] (open pauses count up to now)."""
        return self.pause_seconds_on(self.db, since, now)

    @staticmethod
    def pause_seconds_on(db: sqlite3.Connection, since: float, now: float) -> dict[str, dict[str, float]]:
        """:meth:`pause_seconds` on any connection to the database (the statistics' read connection):
        reads only the pauses that ended inside the window and the open ones."""
        rows = db.execute(
            "SELECT agent, reason, SUM(MIN(COALESCE(ended_at, :now), :now) - MAX(started_at, :since)) FROM ("
            " SELECT agent, reason, started_at, ended_at FROM pauses WHERE ended_at IS NOT NULL AND ended_at > :since"
            " UNION ALL"
            " SELECT agent, reason, started_at, ended_at FROM pauses WHERE ended_at IS NULL"
            ") GROUP BY agent, reason",
            {"since": since, "now": now}).fetchall()
        out: dict[str, dict[str, float]] = {}
        for agent, reason, secs in rows:
            out.setdefault(agent, {})[reason] = round(max(secs or 0.0, 0.0), 1)
        return out

    def agents(self) -> dict[str, tuple[AgentState, str, float]]:
        return {a: (AgentState(s), r, t) for a, s, r, t in
                self.db.execute("SELECT agent, state, reason, since FROM agents")}
