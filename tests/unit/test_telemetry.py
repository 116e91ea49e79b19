"""Metrics from the domain-event bus, and the event loop's lag."""

from __future__ import annotations

import asyncio
import time

import pytest
from prometheus_client import generate_latest

from callcenter import events as ev
from callcenter.telemetry import LoopLagMonitor, Metrics, percentile


def _value(m: Metrics, name: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(name, labels)


def test_metrics_follow_the_bus():
    """Outcomes, offers, AMD verdicts and dialler outcomes are counted; queue figures set the gauges."""
    m, bus = Metrics(), ev.Bus()
    m.subscribe(bus)
    bus.publish(ev.CallOffered("c1", "alice", "sales", "x", 1.0))
    bus.publish(ev.CallAnswered("c1", "alice", 2.0))
    bus.publish(ev.CallEnded("c1", "completed", 3.0))
    bus.publish(ev.CallEnded("c2", "completed", 3.0))
    bus.publish(ev.CallEnded("c3", "abandoned", 3.0))
    bus.publish(ev.CallbackDone("c4", "answered"))
    bus.publish(ev.AmdVerdict("machine", 2500, 4100))
    bus.publish(ev.DialerOutcome("spring", "human", 7))
    bus.publish(ev.QueueFigures(waiting=(("sales", 3), ("empty", 0)), agents=(("Ready", 2), ("Busy", 1))))
    bus.publish(ev.QueueFigures(waiting=(("sales", 1), ("empty", 0)), agents=(("Ready", 1), ("Busy", 2))))
    assert _value(m, "callcenter_calls_total", outcome="completed") == 2
    assert _value(m, "callcenter_calls_total", outcome="abandoned") == 1
    assert _value(m, "callcenter_calls_total", outcome="callback-answered") == 1
    assert _value(m, "callcenter_offers_total", result="offered") == 1
    assert _value(m, "callcenter_offers_total", result="answered") == 1
    assert _value(m, "callcenter_amd_verdicts_total", verdict="machine") == 1
    assert _value(m, "callcenter_dialer_outcomes_total", campaign="spring", outcome="human") == 1
    assert _value(m, "callcenter_queue_waiting", queue="sales") == 1
    assert _value(m, "callcenter_agents", state="Busy") == 2
    assert bus.failures == 0
    assert b"c1" not in generate_latest(m.registry)  # no per-call label values


def test_percentile_is_nearest_rank():
    """p99 of 1..100 is 99, p50 is 50, the max is p100; no samples gives 0."""
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 99), percentile(values, 50), percentile(values, 100)) == (99.0, 50.0, 100.0)
    assert percentile([], 99) == 0.0


def test_loop_lag_monitor_sees_a_blocked_loop():
    """A loop blocked for 150 ms shows up as a lag of at least ~150 ms, in the summary and the histogram."""
    m = Metrics()
    mon = LoopLagMonitor(m.registry, interval_s=0.01)

    async def go() -> None:
        task = asyncio.get_running_loop().create_task(mon.run())
        while mon.count < 3:  # the monitor is running
            await asyncio.sleep(0)
        before = mon.count
        time.sleep(0.15)  # the thing measured: synchronous work holding the loop
        while mon.count == before:
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(go())
    s = mon.summary()
    assert s["lag_max_ms"] >= 140 and s["samples"] == mon.count
    assert _value(m, "callcenter_loop_lag_seconds_count") == mon.count
    assert _value(m, "callcenter_loop_lag_seconds_bucket", le="0.1") < mon.count  # the blocked sample is above
    assert _value(m, "callcenter_loop_lag_recent_max_seconds") >= 0.14


def test_loop_lag_summary_window():
    """The summary covers only samples taken inside [since, until]."""
    mon = LoopLagMonitor()
    for at, lag in ((10.0, 0.5), (20.0, 0.002), (21.0, 0.004), (30.0, 0.9)):
        mon.record(lag, at=at)
    assert mon.summary(15.0, 25.0) == {"samples": 2, "lag_p50_ms": 2.0, "lag_p99_ms": 4.0, "lag_max_ms": 4.0}


def test_db_thread_backlog_and_failures_are_exported():
    """Pending and failed writes of the database thread are scraped from its counters."""
    from callcenter.persistence import DbThread

    def fail() -> None:
        raise RuntimeError("disk full")

    async def go() -> DbThread:
        th = DbThread("test-db")
        th.post(fail)
        await th.drain()
        return th

    th = asyncio.run(go())
    m = Metrics()
    m.watch_db(th)
    th.posted += 7  # as if seven writes were waiting for a lock
    assert _value(m, "callcenter_db_pending_writes") == 7
    assert _value(m, "callcenter_db_write_failures_total") == 1
    th.close()
