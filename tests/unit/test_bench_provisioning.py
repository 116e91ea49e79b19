"""``callcenter bench provisioning`` run tiny: the real daemon's listener, phones fetching with digest auth."""

from __future__ import annotations

import asyncio
from pathlib import Path

from callcenter.bench import provisioning


def test_tiny_run_serves_every_phone_its_own_file(tmp_path: Path) -> None:
    """40 authenticated fetches over 8 phones: every body holds its phone's secret, each logged, none
    unauthenticated gets a secret, no secret or password in the daemon's log, the daemon exits cleanly."""
    out = asyncio.run(provisioning.run_bench(fetches=40, phones=8, concurrency=4, unauthenticated=8, tmp=tmp_path))
    assert out["authenticated_ok"] == 40 and out["served_logged"] == 40
    assert out["unauthenticated_refused_without_secret"] == 8 and out["baseline_public_ok"] == 40
    assert out["secrets_in_log"] == 0 and out["daemon_exit"] == 0
    assert 0 < out["p50_ms"] <= out["p95_ms"] and out["fetches_per_s"] > 0
    assert out["ok"] is True
