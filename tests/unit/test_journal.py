"""The journal on the persistence layer: migrations, the bus subscriber, bounded window queries."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from callcenter import events as ev
from callcenter.features.acd.agents import AgentState
from callcenter.features.acd.model import Call
from callcenter.features.acd.store import AgentStore
from callcenter.features.callback.store import CallbackStore
from callcenter.features.stats import figures as stats
from callcenter.journal import Journal, outcome_counts_on
from callcenter.persistence import DbThread, connect

NOW = 1_800_000_000.0

OLD_SCHEMA = """
CREATE TABLE calls (
    call_id TEXT PRIMARY KEY, uniqueid TEXT NOT NULL, channel TEXT NOT NULL,
    caller_num TEXT NOT NULL DEFAULT '', caller_name TEXT NOT NULL DEFAULT '', did TEXT NOT NULL DEFAULT '',
    ivr_path TEXT NOT NULL DEFAULT '[]', queue TEXT, started_at REAL NOT NULL, entered_at REAL,
    answered_at REAL, ended_at REAL, agent TEXT, outcome TEXT);
CREATE TABLE callbacks (call_id TEXT PRIMARY KEY, call TEXT NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE agents (agent TEXT PRIMARY KEY, state TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '', since REAL NOT NULL);
CREATE TABLE pauses (agent TEXT NOT NULL, reason TEXT NOT NULL, started_at REAL NOT NULL, ended_at REAL);
INSERT INTO calls(call_id, uniqueid, channel, started_at, outcome) VALUES ('old', 'u', 'PJSIP/x', 1.0, 'completed');
INSERT INTO agents VALUES ('alice', 'Paused', 'lunch', 5.0);
"""


def test_adopts_a_journal_from_before_migrations(tmp_path: Path):
    """A journal without route column or migrations table keeps its rows, gains route and the window indexes."""
    path = tmp_path / "cc.sqlite3"
    raw = sqlite3.connect(path)
    raw.executescript(OLD_SCHEMA)
    raw.close()
    j = Journal(path)
    rec = j.call("old")
    assert rec is not None and rec.outcome == "completed" and rec.route == ""
    assert j.agents() == {"alice": (AgentState.PAUSED, "lunch", 5.0)}
    versions = set(j.db.execute("SELECT component, version FROM migrations"))
    assert {("journal", 1), ("journal", 2), ("journal", 3), ("callbacks", 1), ("agents", 1), ("agents", 2)} <= versions
    indexes = {r[0] for r in j.db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert {"calls_entered", "calls_ended", "calls_started", "pauses_open", "pauses_ended"} <= indexes
    j.close()
    again = Journal(path)  # idempotent: nothing re-applied, nothing lost
    assert again.call("old") is not None
    assert again.db.execute("SELECT COUNT(*) FROM migrations WHERE component='journal'").fetchone()[0] == 4
    again.close()


def _publish_one_call(bus: ev.Bus) -> None:
    bus.publish(ev.CallStarted("c1", "u1", "PJSIP/t-1", "555", "Ann", "5551000", NOW - 60))
    bus.publish(ev.CallPath("c1", ("main", "1")))
    bus.publish(ev.CallQueued("c1", "spill", NOW - 50))
    bus.publish(ev.CallOverflowed("c1", "sales"))
    bus.publish(ev.CallOffered("c1", "alice", "sales", "longest-idle: alice", NOW - 47))
    bus.publish(ev.CallAnswered("c1", "alice", NOW - 45))
    bus.publish(ev.CallEnded("c1", "completed", NOW - 15, agent="alice"))
    bus.publish(ev.CallEnded("c1", "abandoned", NOW - 10))  # first outcome wins


def test_subscriber_journals_a_call_from_bus_events():
    """Call events published on the bus become the call's row once the database thread has drained."""
    async def go() -> None:
        j, bus, th = Journal(":memory:"), ev.Bus(), DbThread("test-db")
        j.subscribe(bus, th)
        _publish_one_call(bus)
        await th.drain()
        rec = await th.run(j.call, "c1")
        th.close()
        assert rec is not None
        assert (rec.queue, rec.entered_at, rec.answered_at, rec.ended_at) == ("sales", NOW - 50, NOW - 45, NOW - 15)
        assert rec.ivr_path == ("main", "1", "overflow:sales")
        assert (rec.agent, rec.outcome, rec.route) == ("alice", "completed", "longest-idle: alice")
        assert th.failures == 0 and bus.failures == 0
    asyncio.run(go())


def test_subscriber_keeps_agents_pauses_and_callbacks():
    """AgentStateChanged saves the agent and its pause intervals; callbacks are stored and deleted."""
    async def go() -> None:
        j, bus, th = Journal(":memory:"), ev.Bus(), DbThread("test-db")
        j.subscribe(bus, th)
        bus.publish(ev.AgentStateChanged("alice", "Paused", "lunch", NOW - 100, None, True, "lunch", NOW - 100))
        bus.publish(ev.AgentStateChanged("alice", "Ready", "", NOW - 40, None, True, None, NOW - 40))
        bus.publish(ev.AgentStateChanged("alice", "Busy", "", NOW - 40, "c9", False, None, NOW - 30))
        cb = Call("c7", "sales", "", NOW - 500, caller_num="555", tried=frozenset({"bob"}), skills=(("es", 3),),
                  callback="555", trunk="pstn")
        bus.publish(ev.CallbackStored(cb, NOW - 20))
        bus.publish(ev.CallbackStored(Call("c8", "sales", "", NOW - 400, callback="556"), NOW - 19))
        bus.publish(ev.CallbackDone("c8", "answered"))
        await th.drain()
        agents = await th.run(j.agents)
        paused = await th.run(j.pause_seconds, NOW - 3600, NOW)
        callbacks = await th.run(j.callbacks)
        th.close()
        assert agents == {"alice": (AgentState.BUSY, "", NOW - 40)}
        assert paused == {"alice": {"lunch": 60.0}}
        assert callbacks == [cb] and callbacks[0].tried == frozenset({"bob"})
    asyncio.run(go())


def test_a_failed_write_is_counted_not_raised():
    """A write that fails on the database thread is counted there; the publisher never sees it."""
    async def go() -> None:
        j, bus, th = Journal(":memory:"), ev.Bus(), DbThread("test-db")
        j.subscribe(bus, th)
        j.db.execute("DROP TABLE calls")
        bus.publish(ev.CallStarted("c1", "u1", "PJSIP/t-1", "555", "", "5551000", NOW))
        await th.drain()
        th.close()
        assert th.failures == 1 and bus.failures == 0
    asyncio.run(go())


def test_callback_and_agent_stores_stand_alone():
    """The callback and agent stores work on any connection, with their own migrations."""
    db = connect(":memory:")
    cbs, agents = CallbackStore(db), AgentStore(db)
    cbs.save(Call("c1", "sales", "", 1.0, callback="555"), 2.0)
    agents.save_agent("bob", AgentState.READY, "", 3.0)
    assert [c.call_id for c in cbs.all()] == ["c1"] and agents.agents()["bob"][0] == AgentState.READY


def _history(db: sqlite3.Connection, rows: int) -> None:
    """``rows`` finished calls and closed pauses, all long before the statistics window."""
    old = NOW - 30 * 86400
    db.executemany("INSERT INTO calls(call_id, uniqueid, channel, queue, started_at, entered_at, answered_at,"
                   " ended_at, agent, outcome) VALUES (?,?,?,?,?,?,?,?,?,?)",
                   ((f"h{i}", "u", "PJSIP/x", "sales", old + i, old + i + 1, old + i + 5, old + i + 60, "alice",
                     "completed") for i in range(rows)))
    db.executemany("INSERT INTO pauses(agent, reason, started_at, ended_at) VALUES (?,?,?,?)",
                   (("alice", "lunch", old + i, old + i + 1) for i in range(rows)))


def _window_cost(j: Journal) -> tuple[int, object]:
    """SQLite VM steps (in hundreds) of the /status queries over the last hour, and their results."""
    steps = 0

    def tick() -> int:
        nonlocal steps
        steps += 1
        return 0

    j.db.set_progress_handler(tick, 100)
    since = NOW - 3600
    got = (stats.queue_figures(j.db, since), stats.agent_figures(j.db, since), j.pause_seconds(since, NOW),
           outcome_counts_on(j.db, since))
    j.db.set_progress_handler(None, 0)
    return steps, got


def test_window_queries_cost_the_same_with_a_long_history():
    """The status queries read only their window: 100,000 old calls and pauses add no work and change nothing."""
    small, big = Journal(":memory:"), Journal(":memory:")
    for j in (small, big):
        _publish_direct(j)
    _history(big.db, 100_000)
    small_steps, small_got = _window_cost(small)
    big_steps, big_got = _window_cost(big)
    assert big_got == small_got
    assert small_got[0]["sales"].answered == 1 and small_got[3] == {"completed": 1}
    assert big_steps <= small_steps + 2, (small_steps, big_steps)


def _publish_direct(j: Journal) -> None:
    j.call_started("c1", "u", "PJSIP/x", "555", "", "5551000", NOW - 60)
    j.call_queued("c1", "sales", NOW - 50)
    j.call_answered("c1", "alice", NOW - 45)
    j.call_ended("c1", "completed", NOW - 15)
    j.pause_changed("alice", "break", NOW - 200)
    j.pause_changed("alice", None, NOW - 100)


@pytest.mark.parametrize("sql", [
    "SELECT * FROM calls WHERE entered_at IS NOT NULL AND entered_at >= 0 AND queue IS NOT NULL",
    "SELECT COALESCE(outcome,'active'), COUNT(*) FROM calls WHERE started_at >= 0 GROUP BY 1",
    "SELECT * FROM pauses WHERE ended_at IS NOT NULL AND ended_at > 0",
    "UPDATE pauses SET ended_at=1 WHERE agent='a' AND ended_at IS NULL",
])
def test_window_queries_search_an_index(sql: str):
    """Each bounded query is an index search, never a scan of the whole table."""
    j = Journal(":memory:")
    plan = " ".join(r[3] for r in j.db.execute("EXPLAIN QUERY PLAN " + sql))
    assert "USING" in plan and "INDEX" in plan, plan
    assert "SCAN calls" not in plan and "SCAN pauses" not in plan, plan


def test_caller_text_is_journalled_as_one_bounded_line_of_data(tmp_path):
    """A CR/LF/NUL caller ID is stored escaped (still readable as data) and bounded in length."""
    from callcenter.journal import Journal
    j = Journal(tmp_path / "j.sqlite3")
    j.call_started("c1", "u1", "PJSIP/t-1", "5550703\nEvil: 1", "$(id)\r\x00" + "x" * 500, "5551000", 1.0)
    rec = j.call("c1")
    assert rec.caller_num == "5550703\\nEvil: 1"
    assert rec.caller_name.startswith("$(id)\\r\\x00") and len(rec.caller_name) == 128
    assert not any(ch in rec.caller_num + rec.caller_name for ch in "\r\n\x00")
