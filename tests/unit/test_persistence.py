"""The persistence layer: migrations applied once and in order, transactions roll back, and the
database thread keeps order, reports failures and never runs SQLite on the event loop."""

from __future__ import annotations

import asyncio
import sqlite3
import threading

import pytest

from callcenter.persistence import DbThread, Migration, connect, migrate, transaction


def test_migrations_apply_once_in_order_and_adopt_an_existing_table(tmp_path) -> None:
    """Step 1 (IF NOT EXISTS) adopts a table made before migrations; step 2 runs once; versions recorded."""
    db = connect(tmp_path / "x.sqlite3")
    db.execute("CREATE TABLE t (a TEXT)")
    db.execute("INSERT INTO t VALUES ('kept')")
    steps = [Migration(1, "CREATE TABLE IF NOT EXISTS t (a TEXT); CREATE INDEX IF NOT EXISTS ta ON t(a);"),
             Migration(2, fn=lambda d: d.execute("ALTER TABLE t ADD COLUMN b TEXT DEFAULT ';'"))]
    assert migrate(db, "x", steps) == 2
    assert migrate(db, "x", steps) == 2  # nothing applied twice (a second ALTER would fail)
    assert db.execute("SELECT a, b FROM t").fetchall() == [("kept", ";")]
    assert [v for (v,) in db.execute("SELECT version FROM migrations WHERE component='x' ORDER BY version")] == [1, 2]


def test_unordered_migrations_are_refused() -> None:
    """Versions must be unique and ascending."""
    with pytest.raises(ValueError):
        migrate(connect(":memory:"), "y", [Migration(2, "SELECT 1"), Migration(1, "SELECT 1")])


def test_transaction_rolls_back_on_error() -> None:
    """An exception inside transaction() leaves nothing written."""
    db = connect(":memory:")
    db.execute("CREATE TABLE t (a)")
    with pytest.raises(RuntimeError), transaction(db):
        db.execute("INSERT INTO t VALUES (1)")
        raise RuntimeError
    assert db.execute("SELECT count(*) FROM t").fetchone() == (0,)


async def test_db_thread_keeps_order_runs_off_the_loop_and_counts_failures(tmp_path) -> None:
    """Posted writes run in order on another thread; a failing one is counted; run() returns results."""
    th = DbThread("t")
    loop_thread = threading.get_ident()
    seen: list[tuple[int, int]] = []

    def write(i: int) -> None:
        seen.append((i, threading.get_ident()))

    def broken() -> None:
        raise sqlite3.OperationalError("database is locked")

    for i in range(1000):
        th.post(write, i)
    th.post(broken)
    assert await th.run(lambda: 42) == 42
    assert [i for i, _ in seen] == list(range(1000))
    assert all(ident != loop_thread for _, ident in seen)
    assert th.failures == 1 and th.pending == 0
    with pytest.raises(sqlite3.OperationalError):
        await th.run(broken)
    th.close()


async def test_a_cancelled_waiter_does_not_break_the_thread() -> None:
    """Cancelling an awaited run() while the thread is busy leaves later work intact."""
    th = DbThread("t2")
    gate = threading.Event()
    task = asyncio.create_task(th.run(gate.wait))
    await asyncio.sleep(0.01)
    task.cancel()
    gate.set()
    assert await th.run(lambda: "next") == "next"
    th.close()
