"""The outbox and the API-made endpoints, in the daemon's database (component ``webhooks``).

The outbox lives on the journal's connection: the daemon writes an event's rows in the journal's
own transaction (:meth:`callcenter.journal.Journal.add_outbox`). The functions here take a
connection and run on whichever thread owns it (the daemon's database thread; the CLI's own).

A row: ``n`` (the order rows were written in), ``id`` (``msg_…``, the ``webhook-id`` every attempt
carries), the endpoint, the ordering key, the JSON body, ``status`` pending → delivered or dead,
``attempts``, ``next_at`` (the next attempt), ``since`` (start of the retry window: made, or replayed).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from callcenter.features.webhooks.model import Head
from callcenter.persistence import Migration, Store, transaction

__all__ = ["MIGRATIONS", "OutboxRow", "Row", "ApiEndpoint", "insert", "heads", "head", "delivered", "failed",
           "rows", "retry", "endpoints", "put_endpoint", "delete_endpoint", "WebhookStore"]

MIGRATIONS = [
    Migration(1, """
CREATE TABLE IF NOT EXISTS webhook_outbox (
    n            INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT NOT NULL UNIQUE,
    endpoint     TEXT NOT NULL,
    okey         TEXT NOT NULL,
    type         TEXT NOT NULL,
    body         TEXT NOT NULL,
    created_at   REAL NOT NULL,
    since        REAL NOT NULL,
    next_at      REAL NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    status       TEXT NOT NULL DEFAULT 'pending',
    delivered_at REAL,
    last_error   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS webhook_outbox_pending ON webhook_outbox(endpoint, okey, n) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS webhook_outbox_status ON webhook_outbox(status, n);
CREATE TABLE IF NOT EXISTS webhook_endpoints (
    name       TEXT PRIMARY KEY,
    url        TEXT NOT NULL,
    events     TEXT NOT NULL,
    secret     TEXT NOT NULL,
    enabled    INTEGER NOT NULL,
    max_age_s  REAL NOT NULL,
    timeout_s  REAL NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
"""),
]


@dataclass(frozen=True)
class OutboxRow:
    """A row to write: made on the event loop, inserted on the database thread."""

    id: str
    endpoint: str
    key: str
    type: str
    body: str
    created_at: float


@dataclass(frozen=True)
class Row:
    n: int
    id: str
    endpoint: str
    key: str
    type: str
    body: str
    created_at: float
    since: float
    next_at: float
    attempts: int
    status: str
    delivered_at: float | None
    last_error: str

    def as_dict(self) -> dict[str, Any]:
        return {"n": self.n, "id": self.id, "endpoint": self.endpoint, "key": self.key, "type": self.type,
                "created_at": self.created_at, "next_at": self.next_at, "attempts": self.attempts,
                "status": self.status, "delivered_at": self.delivered_at, "last_error": self.last_error}


@dataclass(frozen=True)
class ApiEndpoint:
    name: str
    url: str
    events: tuple[str, ...]
    secret: str
    enabled: bool
    max_age_s: float
    timeout_s: float


_COLS = "n, id, endpoint, okey, type, body, created_at, since, next_at, attempts, status, delivered_at, last_error"


def insert(db: sqlite3.Connection, out: Iterable[OutboxRow]) -> None:
    """Inside the caller's transaction (the journal's, or the service's own)."""
    db.executemany("INSERT INTO webhook_outbox(id, endpoint, okey, type, body, created_at, since, next_at)"
                   " VALUES (?,?,?,?,?,?,?,?)",
                   [(r.id, r.endpoint, r.key, r.type, r.body, r.created_at, r.created_at, r.created_at) for r in out])


def heads(db: sqlite3.Connection, limit: int = 2000) -> list[Row]:
    """The oldest pending row of each (endpoint, key), oldest first (whole rows: one read per round)."""
    cols = ", ".join(f"o.{c.strip()}" for c in _COLS.split(","))
    q = (f"SELECT {cols} FROM (SELECT MIN(n) AS n FROM webhook_outbox WHERE status = 'pending'"
         " GROUP BY endpoint, okey) h JOIN webhook_outbox o ON o.n = h.n ORDER BY o.n LIMIT ?")
    return [Row(*r) for r in db.execute(q, (limit,))]


def head(r: Row) -> Head:
    return Head(r.n, r.endpoint, r.key, r.next_at)


def delivered(db: sqlite3.Connection, n: int, at: float, attempts: int) -> None:
    db.execute("UPDATE webhook_outbox SET status='delivered', delivered_at=?, attempts=?, last_error='' WHERE n=?",
               (at, attempts, n))


def failed(db: sqlite3.Connection, n: int, attempts: int, next_at: float | None, error: str) -> None:
    """``next_at`` None: a dead letter (kept; ``callcenter webhooks retry`` replays it)."""
    if next_at is None:
        db.execute("UPDATE webhook_outbox SET status='dead', attempts=?, last_error=? WHERE n=?",
                   (attempts, error[:300], n))
    else:
        db.execute("UPDATE webhook_outbox SET attempts=?, next_at=?, last_error=? WHERE n=?",
                   (attempts, next_at, error[:300], n))


def rows(db: sqlite3.Connection, *, status: str | None = None, limit: int = 100) -> list[Row]:
    """Newest first."""
    if status is None:
        cur = db.execute(f"SELECT {_COLS} FROM webhook_outbox ORDER BY n DESC LIMIT ?", (limit,))
    else:
        cur = db.execute(f"SELECT {_COLS} FROM webhook_outbox WHERE status=? ORDER BY n DESC LIMIT ?", (status, limit))
    return [Row(*r) for r in cur]


def counts(db: sqlite3.Connection) -> dict[str, int]:
    return dict(db.execute("SELECT status, COUNT(*) FROM webhook_outbox GROUP BY status").fetchall())


def retry(db: sqlite3.Connection, now: float, ids: Iterable[str] | None = None) -> int:
    """Dead letters back to pending, due now, with a fresh retry window (``ids`` None: all of them)."""
    with transaction(db):
        if ids is None:
            cur = db.execute("UPDATE webhook_outbox SET status='pending', since=?, next_at=? WHERE status='dead'",
                             (now, now))
            return cur.rowcount
        n = 0
        for i in ids:
            n += db.execute("UPDATE webhook_outbox SET status='pending', since=?, next_at=? WHERE status='dead'"
                            " AND id=?", (now, now, i)).rowcount
        return n


def endpoints(db: sqlite3.Connection) -> list[ApiEndpoint]:
    return [ApiEndpoint(name, url, tuple(json.loads(events)), secret, bool(enabled), max_age, timeout)
            for name, url, events, secret, enabled, max_age, timeout in db.execute(
                "SELECT name, url, events, secret, enabled, max_age_s, timeout_s FROM webhook_endpoints ORDER BY name")]


def put_endpoint(db: sqlite3.Connection, e: ApiEndpoint, now: float) -> None:
    db.execute("INSERT INTO webhook_endpoints(name, url, events, secret, enabled, max_age_s, timeout_s, created_at,"
               " updated_at) VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT(name) DO UPDATE SET url=excluded.url,"
               " events=excluded.events, secret=excluded.secret, enabled=excluded.enabled,"
               " max_age_s=excluded.max_age_s, timeout_s=excluded.timeout_s, updated_at=excluded.updated_at",
               (e.name, e.url, json.dumps(list(e.events)), e.secret, int(e.enabled), e.max_age_s, e.timeout_s, now,
                now))


def delete_endpoint(db: sqlite3.Connection, name: str) -> bool:
    return db.execute("DELETE FROM webhook_endpoints WHERE name=?", (name,)).rowcount > 0


class WebhookStore(Store):
    """The same tables on a connection of its own (the CLI)."""

    COMPONENT = "webhooks"
    MIGRATIONS = MIGRATIONS
