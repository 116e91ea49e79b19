"""SQLite connection policy, migrations, transactions and the database thread."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import structlog

__all__ = ["DbThread", "Migration", "Store", "connect", "migrate", "transaction"]

T = TypeVar("T")
log = structlog.get_logger("callcenter.db")

MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS migrations (
    component  TEXT NOT NULL,
    version    INTEGER NOT NULL,
    applied_at REAL NOT NULL,
    PRIMARY KEY (component, version)
)"""


def connect(path: str | Path, *, timeout_s: float = 30.0, readonly: bool = False,
            row_factory: Any = None) -> sqlite3.Connection:
    """The one connection policy: autocommit (explicit transactions), WAL, NORMAL sync, busy timeout.

    ``check_same_thread`` is off because the daemon hands the connection to its database thread;
    a connection is still used by one thread at a time.
    """
    path = str(path)
    if readonly:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=timeout_s, isolation_level=None,
                             check_same_thread=False)
    else:
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, timeout=timeout_s, isolation_level=None, check_same_thread=False)
        if path != ":memory:":
            db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA foreign_keys=ON")
    db.execute(f"PRAGMA busy_timeout={int(timeout_s * 1000)}")
    if row_factory is not None:
        db.row_factory = row_factory
    return db


@contextlib.contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` (take the write lock first, so no upgrade deadlock), commit, or roll back."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


@dataclass(frozen=True)
class Migration:
    """One numbered schema step of one component (``journal`` v1, v2 …): SQL, or a function."""

    version: int
    sql: str = ""
    fn: Callable[[sqlite3.Connection], None] | None = None


def migrate(db: sqlite3.Connection, component: str, steps: Sequence[Migration]) -> int:
    """Apply the component's steps not yet recorded in ``migrations``; each in its own transaction.

    Returns the version now in force. Step 1 of every component uses ``IF NOT EXISTS`` so that a
    database made before this table existed is adopted as it is.
    """
    db.execute(MIGRATIONS_TABLE)
    done = {v for (v,) in db.execute("SELECT version FROM migrations WHERE component=?", (component,))}
    versions = [s.version for s in steps]
    if versions != sorted(set(versions)):
        raise ValueError(f"{component}: migration versions must be unique and ascending: {versions}")
    for step in steps:
        if step.version in done:
            continue
        with transaction(db):
            if step.sql:
                for stmt in _statements(step.sql):
                    db.execute(stmt)
            if step.fn is not None:
                step.fn(db)
            db.execute("INSERT INTO migrations(component, version, applied_at) VALUES (?,?,?)",
                       (component, step.version, time.time()))
    return max(versions, default=0)


def _statements(sql: str) -> list[str]:
    """Split a script into statements (``executescript`` would commit our transaction)."""
    out, buf = [], ""
    for piece in sql.split(";"):
        buf += piece + ";"
        if sqlite3.complete_statement(buf):
            if buf.strip(" \n\t;"):
                out.append(buf.strip())
            buf = ""
    return out


def column_missing(db: sqlite3.Connection, table: str, column: str) -> bool:
    """For adopting databases from before the migrations table: is this column still to be added?"""
    return column not in {r[1] for r in db.execute(f"PRAGMA table_info({table})")}


class Store:
    """Base of a store that owns its connection: opened with the one policy, migrated as
    ``COMPONENT`` with ``MIGRATIONS`` (not when read-only), closed once; a context manager."""

    COMPONENT: str = ""
    MIGRATIONS: Sequence[Migration] = ()
    ROW_FACTORY: Any = None

    def __init__(self, path: str | Path, *, readonly: bool = False, timeout_s: float = 30.0) -> None:
        self.path = str(path)
        self.db: sqlite3.Connection = connect(self.path, readonly=readonly, timeout_s=timeout_s,
                                              row_factory=self.ROW_FACTORY)
        if not readonly:
            migrate(self.db, self.COMPONENT, self.MIGRATIONS)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class DbThread:
    """All database work of the daemon, on one thread, in submission order, off the event loop.

    ``await run(fn, *args)`` waits for a result (a read, or a write the caller must see done);
    ``post(fn, *args)`` queues a write and returns at once (journal writes): its failure is logged
    and counted, never raised into the caller. One thread keeps writes ordered as they were made.
    """

    def __init__(self, name: str = "db") -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self.pending = 0
        self.failures = 0
        self._closed = False

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: fn(*args))

    def post(self, fn: Callable[..., object], *args: Any) -> concurrent.futures.Future[object]:
        if self._closed:
            raise RuntimeError("database thread closed")
        self.pending += 1
        fut = self._pool.submit(fn, *args)
        fut.add_done_callback(lambda f: self._posted_done(f, getattr(fn, "__qualname__", repr(fn))))
        return fut

    def _posted_done(self, fut: concurrent.futures.Future[object], what: str) -> None:
        self.pending -= 1
        if fut.cancelled():
            return
        exc = fut.exception()
        if exc is not None:
            self.failures += 1
            log.error("db.write_failed", op=what, error=repr(exc))

    async def drain(self) -> None:
        """Wait until everything posted so far is written."""
        await self.run(lambda: None)

    def close(self) -> None:
        """Finish what is queued, then stop the thread."""
        self._closed = True
        self._pool.shutdown(wait=True)
