"""SQLite journal: one row per call, and the agents' login/pause state (which survives restarts).

SQLite writes here are small and local (WAL, synchronous=NORMAL), so they run inline on the
event loop: a few tens of microseconds each, far below AMI's own latency.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from callcenter.features.acd.model import Call
from callcenter.features.acd.agents import AgentState

__all__ = ["Store", "CallRecord"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    call_id     TEXT PRIMARY KEY,
    uniqueid    TEXT NOT NULL,
    channel     TEXT NOT NULL,
    caller_num  TEXT NOT NULL DEFAULT '',
    caller_name TEXT NOT NULL DEFAULT '',
    did         TEXT NOT NULL DEFAULT '',
    ivr_path    TEXT NOT NULL DEFAULT '[]',
    queue       TEXT,
    started_at  REAL NOT NULL,
    entered_at  REAL,
    answered_at REAL,
    ended_at    REAL,
    agent       TEXT,
    outcome     TEXT,
    route       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS calls_started ON calls(started_at);
CREATE TABLE IF NOT EXISTS pauses (
    agent      TEXT NOT NULL,
    reason     TEXT NOT NULL,
    started_at REAL NOT NULL,
    ended_at   REAL
);
CREATE INDEX IF NOT EXISTS pauses_agent ON pauses(agent, started_at);
CREATE TABLE IF NOT EXISTS callbacks (
    call_id    TEXT PRIMARY KEY,
    call       TEXT NOT NULL,          -- the core's Call, as JSON
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS agents (
    agent      TEXT PRIMARY KEY,
    state      TEXT NOT NULL,
    reason     TEXT NOT NULL DEFAULT '',
    since      REAL NOT NULL
);
"""


@dataclass(frozen=True)
class CallRecord:
    call_id: str
    uniqueid: str
    channel: str
    caller_num: str
    caller_name: str
    did: str
    ivr_path: tuple[str, ...]
    queue: str | None
    started_at: float
    entered_at: float | None
    answered_at: float | None
    ended_at: float | None
    agent: str | None
    outcome: str | None
    route: str = ""  # the routing decision's explanation (strategy, score, candidates)


class Store:
    def __init__(self, path: str | Path):
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA busy_timeout=5000")
        self.db.executescript(SCHEMA)
        cols = {r[1] for r in self.db.execute("PRAGMA table_info(calls)")}
        if "route" not in cols:  # journals from before routing explanations
            self.db.execute("ALTER TABLE calls ADD COLUMN route TEXT NOT NULL DEFAULT ''")

    def close(self) -> None:
        self.db.close()

    # ---------------------------------------------------------------- calls
    def call_started(self, call_id: str, uniqueid: str, channel: str, caller_num: str, caller_name: str,
                     did: str, at: float) -> None:
        self.db.execute(
            "INSERT OR IGNORE INTO calls(call_id, uniqueid, channel, caller_num, caller_name, did, started_at)"
            " VALUES (?,?,?,?,?,?,?)", (call_id, uniqueid, channel, caller_num, caller_name, did, at))

    def call_path(self, call_id: str, path: tuple[str, ...]) -> None:
        self.db.execute("UPDATE calls SET ivr_path=? WHERE call_id=?", (json.dumps(list(path)), call_id))

    def call_queued(self, call_id: str, queue: str, at: float) -> None:
        # A fallback to another queue re-queues the same call: keep the first entry time.
        self.db.execute("UPDATE calls SET queue=?, entered_at=COALESCE(entered_at, ?) WHERE call_id=?",
                        (queue, at, call_id))

    def call_answered(self, call_id: str, agent: str, at: float) -> None:
        self.db.execute("UPDATE calls SET agent=?, answered_at=? WHERE call_id=?", (agent, at, call_id))

    def call_ended(self, call_id: str, outcome: str, at: float) -> None:
        """First outcome wins (a fallback that leads to an answered call is recorded by the later
        stages as they update; ``ended`` is written only once the caller is really gone)."""
        self.db.execute("UPDATE calls SET outcome=?, ended_at=? WHERE call_id=? AND ended_at IS NULL",
                        (outcome, at, call_id))

    def call_overflow(self, call_id: str, queue: str) -> None:
        """Overflow to another queue: the record follows the caller; the path keeps the trail."""
        self.db.execute("UPDATE calls SET queue=?, ivr_path=json_insert(ivr_path, '$[#]', ?) WHERE call_id=?",
                        (queue, "overflow:" + queue, call_id))

    def call_route(self, call_id: str, explain: str) -> None:
        self.db.execute("UPDATE calls SET route=? WHERE call_id=?", (explain, call_id))

    def call_outcome(self, call_id: str, outcome: str) -> None:
        self.db.execute("UPDATE calls SET outcome=? WHERE call_id=?", (outcome, call_id))

    def call(self, call_id: str) -> CallRecord | None:
        row = self.db.execute("SELECT * FROM calls WHERE call_id=?", (call_id,)).fetchone()
        return _record(row) if row else None

    def calls(self, limit: int = 100) -> list[CallRecord]:
        rows = self.db.execute("SELECT * FROM calls ORDER BY started_at DESC LIMIT ?", (limit,)).fetchall()
        return [_record(r) for r in rows]

    def outcome_counts(self) -> dict[str, int]:
        return dict(self.db.execute(
            "SELECT COALESCE(outcome,'active'), COUNT(*) FROM calls GROUP BY 1").fetchall())

    # ---------------------------------------------------------------- callbacks
    def save_callback(self, call: Call, at: float) -> None:
        """A callback outlives its caller's channel and the daemon: its place in the queue is kept here."""
        d = dataclasses.asdict(call)
        for k in ("tried", "ringing"):
            d[k] = sorted(d[k])
        self.db.execute("INSERT INTO callbacks(call_id, call, updated_at) VALUES (?,?,?) ON CONFLICT(call_id)"
                        " DO UPDATE SET call=excluded.call, updated_at=excluded.updated_at",
                        (call.call_id, json.dumps(d), at))

    def delete_callback(self, call_id: str) -> None:
        self.db.execute("DELETE FROM callbacks WHERE call_id=?", (call_id,))

    def callbacks(self) -> list[Call]:
        out = []
        for (text,) in self.db.execute("SELECT call FROM callbacks ORDER BY updated_at"):
            d = json.loads(text)
            d["tried"], d["ringing"] = frozenset(d["tried"]), frozenset(d["ringing"])
            d["skills"] = tuple((s, int(lv)) for s, lv in d["skills"])
            out.append(Call(**d))
        return out

    # ---------------------------------------------------------------- agents
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
        rows = self.db.execute(
            "SELECT agent, reason, SUM(MIN(COALESCE(ended_at, :now), :now) - MAX(started_at, :since))"
            " FROM pauses WHERE COALESCE(ended_at, :now) > :since GROUP BY agent, reason",
            {"since": since, "now": now}).fetchall()
        out: dict[str, dict[str, float]] = {}
        for agent, reason, secs in rows:
            out.setdefault(agent, {})[reason] = round(max(secs or 0.0, 0.0), 1)
        return out

    def agents(self) -> dict[str, tuple[AgentState, str, float]]:
        return {a: (AgentState(s), r, t) for a, s, r, t in self.db.execute("SELECT * FROM agents")}


def _record(row: tuple) -> CallRecord:
    vals = list(row)
    vals[6] = tuple(json.loads(vals[6]))
    return CallRecord(*vals)
