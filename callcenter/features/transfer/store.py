"""The legs of transferred calls, beside the call journal (same connection, own migrations).

A call that was never transferred has one agent and needs no leg rows (its ``calls`` row says it
all). A transferred call gets one row per agent who held it: answered, ended, how it ended
(``transfer:blind``, ``transfer:attended``, ``completed``) — each agent's talk time. The ``calls``
row keeps its first answer time (service level, ASA) and names the agent holding the call last;
its ``ivr_path`` gains ``transfer:<kind>:<target>`` for each transfer. Written only by the journal's
bus subscriber, on the database thread.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from callcenter.persistence import Migration, migrate

__all__ = ["LegStore", "Leg", "MIGRATIONS"]

MIGRATIONS = [
    Migration(1, """
CREATE TABLE IF NOT EXISTS call_legs (
    call_id     TEXT NOT NULL,
    seq         INTEGER NOT NULL,     -- 1, 2, ... in the order the agents held the call
    agent       TEXT NOT NULL,
    answered_at REAL NOT NULL,
    ended_at    REAL NOT NULL,
    how         TEXT NOT NULL,
    PRIMARY KEY (call_id, seq)
);
"""),
]


@dataclass(frozen=True)
class Leg:
    call_id: str
    seq: int
    agent: str
    answered_at: float
    ended_at: float
    how: str

    @property
    def talk_s(self) -> float:
        return self.ended_at - self.answered_at


class LegStore:
    """The call_legs table (and the transfer marks on ``calls``) on a connection the caller owns."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        migrate(db, "transfers", MIGRATIONS)

    def leg_ended(self, call_id: str, agent: str, answered_at: float, at: float, how: str) -> None:
        self.db.execute(
            "INSERT INTO call_legs(call_id, seq, agent, answered_at, ended_at, how) VALUES"
            " (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM call_legs WHERE call_id=?), ?, ?, ?, ?)",
            (call_id, call_id, agent, answered_at, at, how))

    def leg_started(self, call_id: str, agent: str) -> None:
        """The call's record now names the agent holding it."""
        self.db.execute("UPDATE calls SET agent=? WHERE call_id=?", (agent, call_id))

    def transferred(self, call_id: str, kind: str, to_kind: str, target: str) -> None:
        """The trail in the call's path; a transfer to a queue moves the record to that queue."""
        self.db.execute("UPDATE calls SET ivr_path=json_insert(ivr_path, '$[#]', ?) WHERE call_id=?",
                        (f"transfer:{kind}:{to_kind}:{target}"[:80], call_id))
        if to_kind == "queue":
            self.db.execute("UPDATE calls SET queue=? WHERE call_id=?", (target, call_id))

    def legs(self, call_id: str) -> list[Leg]:
        return [Leg(*r) for r in self.db.execute(
            "SELECT call_id, seq, agent, answered_at, ended_at, how FROM call_legs WHERE call_id=? ORDER BY seq",
            (call_id,))]
