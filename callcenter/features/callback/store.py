"""Callbacks waiting to be dialled: they outlive the caller's channel and the daemon.

One row per callback, the ACD model's :class:`~callcenter.features.acd.model.Call` as JSON.
The daemon writes here only through the journal subscriber (``CallbackStored`` /
``CallbackDone`` events, on the database thread) and reads it once at start-up.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3

from callcenter.features.acd.model import Call
from callcenter.persistence import Migration, migrate

__all__ = ["CallbackStore", "MIGRATIONS"]

MIGRATIONS = [
    Migration(1, """
CREATE TABLE IF NOT EXISTS callbacks (
    call_id    TEXT PRIMARY KEY,
    call       TEXT NOT NULL,          -- the core's Call, as JSON
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS callbacks_updated ON callbacks(updated_at);
"""),
]


class CallbackStore:
    """The callbacks table on a connection the caller owns (one thread at a time)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        migrate(db, "callbacks", MIGRATIONS)

    def save(self, call: Call, at: float) -> None:
        """A callback outlives its caller's channel and the daemon: its place in the queue is kept here."""
        d = dataclasses.asdict(call)
        for k in ("tried", "ringing"):
            d[k] = sorted(d[k])
        self.db.execute("INSERT INTO callbacks(call_id, call, updated_at) VALUES (?,?,?) ON CONFLICT(call_id)"
                        " DO UPDATE SET call=excluded.call, updated_at=excluded.updated_at",
                        (call.call_id, json.dumps(d), at))

    def delete(self, call_id: str) -> None:
        self.db.execute("DELETE FROM callbacks WHERE call_id=?", (call_id,))

    def all(self) -> list[Call]:
        """Every stored callback, oldest update first (their order in the queue)."""
        out = []
        for (text,) in self.db.execute("SELECT call FROM callbacks ORDER BY updated_at"):
            d = json.loads(text)
            d["tried"], d["ringing"] = frozenset(d["tried"]), frozenset(d["ringing"])
            d["skills"] = tuple((s, int(lv)) for s, lv in d["skills"])
            out.append(Call(**d))
        return out
