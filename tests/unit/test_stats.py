"""Live statistics from the journal: service level, ASA, AHT, abandon rate, expected wait."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from callcenter.features.stats import figures as stats
from callcenter.journal import Journal as Store

NOW = 1_800_000_000.0


def _journal(store: Store) -> None:
    # (call, queue, entered, answered, ended, agent, outcome)
    rows = [
        ("c1", "sales", NOW - 100, NOW - 95, NOW - 35, "alice", "completed"),   # 5 s wait, 60 s talk
        ("c2", "sales", NOW - 90, NOW - 60, NOW - 20, "bob", "completed"),      # 30 s wait, 40 s talk
        ("c3", "sales", NOW - 80, None, NOW - 70, None, "abandoned"),
        ("c4", "sales", NOW - 10, NOW - 5, None, "alice", None),                # talking: answered, no AHT
        ("c5", "support", NOW - 50, NOW - 49, NOW - 19, "carol", "completed"),
        ("old", "sales", NOW - 9000, NOW - 8990, NOW - 8900, "bob", "completed"),  # outside the window
    ]
    for cid, q, ent, ans, end, agent, outcome in rows:
        store.call_started(cid, "u-" + cid, "PJSIP/x", "555", "", "5551000", ent - 3)
        store.call_queued(cid, q, ent)
        if ans:
            store.call_answered(cid, agent, ans)
        if end:
            store.call_ended(cid, outcome, end)


def test_queue_figures_follow_the_definitions():
    """SL counts answers within the threshold over answered+abandoned; ASA/AHT average the right spans."""
    s = Store(":memory:")
    _journal(s)
    f = stats.queue_figures(s.db, NOW - 3600, 20.0)
    sales = f["sales"]
    assert (sales.offered, sales.answered, sales.abandoned) == (4, 3, 1)
    assert sales.answered_in_sl == 2  # c1 (5 s) and c4 (5 s); c2 waited 30 s
    assert sales.service_level == pytest.approx(2 / 4)
    assert sales.abandon_rate == pytest.approx(1 / 4)
    assert sales.asa_s == pytest.approx((5 + 30 + 5) / 3)
    assert sales.aht_s == pytest.approx((60 + 40) / 2)
    assert f["support"].service_level == 1.0 and f["support"].aht_s == pytest.approx(30)


def test_agent_figures_and_window():
    """Per-agent figures count only calls that entered inside the window."""
    s = Store(":memory:")
    _journal(s)
    a = stats.agent_figures(s.db, NOW - 3600)
    assert a["alice"].answered == 2 and a["bob"].answered == 1
    assert a["bob"].aht_s == pytest.approx(40)
    assert stats.agent_figures(s.db, NOW - 10_000)["bob"].answered == 2


def test_expected_wait_scales_with_position_and_staff():
    """position x AHT / staffed agents; no AHT yet falls back to the default."""
    assert stats.expected_wait(3, 2, 120.0) == pytest.approx(180.0)
    assert stats.expected_wait(1, 4, None, default_aht_s=200) == pytest.approx(50.0)
    assert stats.expected_wait(2, 0, 60.0) == pytest.approx(120.0)
    assert stats.expected_wait(0, 3, 60.0) == 0.0


def test_stats_cli_reads_the_journal(tmp_path: Path):
    """`callcenter stats --json` reports per-queue and per-agent figures from the database."""
    cfg = yaml.safe_load(Path("tests/asterisk/lab.yaml").read_text())
    cfg["daemon"]["database"] = str(tmp_path / "cc.sqlite3")
    (tmp_path / "cc.yaml").write_text(yaml.safe_dump(cfg))
    s = Store(tmp_path / "cc.sqlite3")
    now = time.time()
    s.call_started("c1", "u", "PJSIP/x", "555", "", "5551000", now - 60)
    s.call_queued("c1", "sales", now - 50)
    s.call_answered("c1", "alice", now - 45)
    s.call_ended("c1", "completed", now - 15)
    s.close()
    out = subprocess.run([sys.executable, "-m", "callcenter", "stats", "--config", str(tmp_path / "cc.yaml"), "--json"],
                         capture_output=True, text=True, check=True).stdout
    data = json.loads(out)
    assert data["queues"]["sales"]["answered"] == 1 and data["queues"]["empty"] is None
    assert data["queues"]["sales"]["asa_s"] == pytest.approx(5, abs=0.01)
    assert data["agents"]["alice"]["aht_s"] == pytest.approx(30, abs=0.01)
    table = subprocess.run([sys.executable, "-m", "callcenter", "stats", "--config", str(tmp_path / "cc.yaml")],
                           capture_output=True, text=True, check=True).stdout
    assert "sales" in table and "100%" in table


def test_pause_durations_by_reason_within_the_window():
    """Closed and open pauses are summed per agent and reason, clipped to the window."""
    s = Store(":memory:")
    s.pause_changed("alice", "lunch", NOW - 4000)   # starts before the window
    s.pause_changed("alice", None, NOW - 3000)      # 600 s of it inside [NOW-3600, NOW]
    s.pause_changed("alice", "training", NOW - 100)
    s.pause_changed("alice", "break", NOW - 40)     # switching reason closes training (60 s)
    s.pause_changed("bob", "lunch", NOW - 30)       # still open: counts up to now
    got = s.pause_seconds(NOW - 3600, NOW)
    assert got == {"alice": {"lunch": 600.0, "training": 60.0, "break": 40.0}, "bob": {"lunch": 30.0}}


def _file_journal(tmp_path: Path) -> tuple[Path, Store]:
    path = tmp_path / "cc.sqlite3"
    s = Store(path)
    _journal(s)
    return path, s


def test_stats_cache_refreshes_window_figures_off_the_loop(tmp_path: Path):
    """A refresh on the database thread gives each queue its own SL threshold, the agents, pauses and outcomes."""
    from callcenter.features.stats.cache import StatsCache
    from callcenter.persistence import DbThread

    path, s = _file_journal(tmp_path)
    s.pause_changed("bob", "lunch", NOW - 300)
    s.pause_changed("bob", None, NOW - 100)
    cache = StatsCache(path, {"sales": 20.0, "support": 0.5}, 3600)
    th = DbThread("test-stats")

    async def go() -> None:
        assert cache.snapshot.at == 0.0 and cache.queue_figures() == {}
        snap = await th.run(cache.compute, NOW)
        cache.snapshot = snap
    asyncio.run(go())
    th.close()
    cache.close()
    assert cache.queue_figures()["sales"] == stats.queue_figures(s.db, NOW - 3600, 20.0)["sales"]
    assert cache.queue_figures()["support"].answered_in_sl == 0  # 1 s wait > its 0.5 s threshold
    assert cache.agent_figures()["alice"].answered == 2
    assert cache.snapshot.paused == {"bob": {"lunch": 200.0}}
    assert cache.snapshot.outcomes == {"completed": 3, "abandoned": 1, "active": 1}  # "old" is outside


def test_stats_cache_refreshes_while_another_writer_holds_the_lock(tmp_path: Path):
    """With the journal write-locked by another connection, a refresh still completes (WAL readers never wait)."""
    from callcenter.features.stats.cache import StatsCache
    from callcenter.persistence import DbThread, connect

    path, s = _file_journal(tmp_path)
    locker = connect(path, timeout_s=0.1)
    locker.execute("BEGIN IMMEDIATE")
    locker.execute("UPDATE calls SET outcome='x' WHERE call_id='c1'")  # uncommitted: invisible to readers
    cache = StatsCache(path, {"sales": 20.0}, 1e9)
    th = DbThread("test-stats")
    try:
        snap = asyncio.run(cache.refresh(th))
    finally:
        locker.execute("ROLLBACK")
        th.close()
        cache.close()
    assert snap.outcomes["completed"] == 4 and "x" not in snap.outcomes and cache.refreshes == 1


def test_scrape_serves_cached_figures_without_the_database(tmp_path: Path):
    """The Prometheus collector reads the cached snapshot: with every connection closed a scrape still answers."""
    from prometheus_client import generate_latest

    from callcenter.features.stats.cache import StatsCache
    from callcenter.telemetry import Metrics, StatsCollector

    path, s = _file_journal(tmp_path)
    cache = StatsCache(path, {"sales": 20.0}, 3600)
    cache.snapshot = cache.compute(NOW)
    cache.close()
    s.close()
    m = Metrics()
    m.registry.register(StatsCollector(lambda: {
        "queues": {q: f.as_dict() for q, f in cache.queue_figures().items()},
        "agents": {a: {**f.as_dict(), "paused_s": cache.snapshot.paused.get(a, {})}
                   for a, f in cache.agent_figures().items()}}))
    text = generate_latest(m.registry).decode()
    assert 'callcenter_queue_service_level{queue="sales"} 0.5' in text
    assert 'callcenter_agent_answered{agent="alice"} 2.0' in text


def test_stats_cache_run_survives_a_database_error():
    """A failing refresh is counted and logged; the previous figures stay and the task keeps running."""
    from callcenter.features.stats.cache import StatsCache
    from callcenter.persistence import DbThread

    s = Store(":memory:")
    _journal(s)
    cache = StatsCache(s.db, {"sales": 20.0}, 1e9, every_s=0.01)
    th = DbThread("test-stats")

    async def go() -> None:
        await cache.refresh(th)
        before = cache.snapshot
        await th.run(s.db.execute, "DROP TABLE calls")
        task = asyncio.get_running_loop().create_task(cache.run(th))
        while cache.failures < 2:
            await asyncio.sleep(0)
        assert not task.done() and cache.snapshot is before
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    asyncio.run(go())
    th.close()
