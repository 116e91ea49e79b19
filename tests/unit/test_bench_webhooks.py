"""``callcenter bench webhooks`` run tiny: the real daemon, a local receiver, agent operations through the API."""

from __future__ import annotations

import asyncio
from pathlib import Path

from callcenter.bench import webhooks


def test_tiny_run_delivers_every_event_once_signed_and_times_each(tmp_path: Path) -> None:
    """60 events at 50/s over 6 agents: all delivered, none missing or duplicated, every one timed, p95 sane."""
    out = asyncio.run(webhooks.run_bench(rate=50, events=60, agents=6, tmp=tmp_path))
    assert out["events_caused"] == 60 and out["api_refused"] == 0
    assert out["expected"] >= 60 and out["delivered"] == out["expected"] and out["missing"] == 0
    assert out["duplicates"] == 0 and out["signature_failures"] == 0 and out["matched"] == 60
    assert 0 < out["p50_ms"] <= out["p95_ms"] <= out["p99_ms"] < 2000
    assert out["daemon_exit"] == 0
