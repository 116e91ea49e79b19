"""Messages left while waiting: one row per call (its id, file, state, length, who heard it).
Runs on the database thread only (its own connection to the daemon's database)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from callcenter.persistence import Migration, Store

__all__ = ["MessageStore", "MessageRow"]


@dataclass(frozen=True)
class MessageRow:
    call_id: str
    msg_id: str
    queue: str
    path: str  # relative to the recordings directory: messages/<msg_id>.wav
    state: str  # recording | ready | empty (silence only) | missing (no file)
    duration_s: float | None
    created_at: float
    ready_at: float | None
    heard_at: float | None
    heard_by: str | None

    def public(self) -> dict[str, object]:
        return {"id": self.msg_id, "state": self.state, "duration_s": self.duration_s, "created_at": self.created_at,
                "heard_at": self.heard_at, "heard_by": self.heard_by}


_COLS = "call_id, msg_id, queue, path, state, duration_s, created_at, ready_at, heard_at, heard_by"


class MessageStore(Store):
    COMPONENT = "messages"
    MIGRATIONS = [
        Migration(1, """
CREATE TABLE IF NOT EXISTS messages (
    call_id    TEXT PRIMARY KEY,
    msg_id     TEXT NOT NULL UNIQUE,
    queue      TEXT NOT NULL,
    path       TEXT NOT NULL,
    state      TEXT NOT NULL,
    duration_s REAL,
    created_at REAL NOT NULL,
    ready_at   REAL,
    heard_at   REAL,
    heard_by   TEXT
);
"""),
    ]

    def started(self, call_id: str, msg_id: str, queue: str, path: str, at: float) -> None:
        self.db.execute(f"INSERT OR REPLACE INTO messages({_COLS}) VALUES (?,?,?,?,'recording',NULL,?,NULL,NULL,NULL)",
                        (call_id, msg_id, queue, path, at))

    def finished(self, call_id: str, state: str, duration_s: float | None, at: float) -> None:
        self.db.execute("UPDATE messages SET state=?, duration_s=?, ready_at=? WHERE call_id=?",
                        (state, duration_s, at, call_id))

    def heard(self, call_id: str, agent: str, at: float) -> None:
        self.db.execute("UPDATE messages SET heard_at=?, heard_by=? WHERE call_id=?", (at, agent, call_id))

    def get(self, call_id: str) -> MessageRow | None:
        row: tuple | None = self.db.execute(f"SELECT {_COLS} FROM messages WHERE call_id=?", (call_id,)).fetchone()
        return MessageRow(*row) if row else None

    def count(self) -> int:
        row: sqlite3.Row | tuple[int] = self.db.execute("SELECT count(*) FROM messages").fetchone()
        return int(row[0])
