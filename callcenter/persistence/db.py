"""SQLite connection policy, migrations, transactions and the database thread."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
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
    A posted write is one small tuple on a queue (no future): while another process holds the
    database locked, thousands may wait, and they must not make the garbage collector slow.
    """

    def __init__(self, name: str = "db") -> None:
        self._q: queue.SimpleQueue[tuple[Callable[..., Any], tuple[Any, ...], Any] | None] = queue.SimpleQueue()
        self.posted = 0  # written by the event loop's thread only
        self.done = 0  # written by the database thread only
        self.failures = 0
        self._closed = False
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        """Posted writes not yet done (a locked database makes this grow)."""
        return self.posted - self.done

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._closed:
            raise RuntimeError("database thread closed")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        self._q.put((fn, args, (loop, fut)))
        return await fut

    def post(self, fn: Callable[..., object], *args: Any) -> None:
        if self._closed:
            raise RuntimeError("database thread closed")
        self.posted += 1
        self._q.put((fn, args, None))

    def _work(self) -> None:
        while (item := self._q.get()) is not None:
            fn, args, waiter = item
            try:
                result = fn(*args)
            except BaseException as e:  # noqa: BLE001 - handed to the waiter, or logged and counted
                if waiter is None:
                    self.done += 1
                    self.failures += 1
                    log.error("db.write_failed", op=getattr(fn, "__qualname__", repr(fn)), error=repr(e))
                else:
                    waiter[0].call_soon_threadsafe(_settle, waiter[1], None, e)
                continue
            if waiter is None:
                self.done += 1
            else:
                waiter[0].call_soon_threadsafe(_settle, waiter[1], result, None)

    async def drain(self) -> None:
        """Wait until everything posted so far is written."""
        await self.run(lambda: None)

    def close(self) -> None:
        """Finish what is queued, then stop the thread."""
        if self._closed:
            return
        self._closed = True
        self._q.put(None)
        self._thread.join()


def _settle(fut: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
    if fut.done():  # the waiter was cancelled meanwhile
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(result)
