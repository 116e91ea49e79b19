"""`callcenter bench loop-lag`: the journal it builds and one short end-to-end run."""

from __future__ import annotations

import time
from pathlib import Path

from callcenter.bench.loop_lag import build_journal, run_bench
from callcenter.journal import Journal


def test_build_journal_spreads_history_over_a_year(tmp_path: Path):
    """The rows are the daemon's schema, spread over a year: the last hour holds only a sliver of them."""
    now = time.time()
    build_journal(tmp_path / "cc.sqlite3", 20_000, now)
    j = Journal(tmp_path / "cc.sqlite3")
    assert j.db.execute("SELECT COUNT(*) FROM calls").fetchone()[0] == 20_000
    assert j.db.execute("SELECT COUNT(*) FROM pauses").fetchone()[0] == 200
    recent = j.db.execute("SELECT COUNT(*) FROM calls WHERE started_at >= ?", (now - 3600,)).fetchone()[0]
    assert recent < 20
    assert set(j.outcome_counts()) == {"completed", "abandoned", "ivr-hangup"}
    j.close()


def test_short_run_measures_the_locked_phase(tmp_path: Path):
    """A short run holds a verified write lock while AGI sessions and scrapes are served and timed."""
    out = run_bench(3000, 0.5, 1.0, None, str(tmp_path / "work"))
    assert out["lock_verified"] is True and out["db_locked_s"] >= 0.99
    assert out["journal_rows"] == 3000 and out["ami"] == "down" and out["daemon_exit"] == 0
    assert out["errors"] == {}
    locked = out["locked"]
    assert locked["lag_samples"] > 20 and locked["agi_sessions"] > 0 and locked["scrapes"] > 0
    assert out["lag_p99_ms"] == locked["lag_p99_ms"] and out["agi_p99_ms"] is not None
    j = Journal(tmp_path / "work" / "cc.sqlite3")  # the sessions were journalled, none lost to the lock
    assert j.db.execute("SELECT COUNT(*) FROM calls WHERE did='5550001' AND call_id NOT LIKE 'h%'"
                        " AND ended_at IS NOT NULL").fetchone()[0] > 0
    assert j.db.execute("SELECT COUNT(*) FROM calls WHERE call_id='bench-lock'").fetchone()[0] == 0
    j.close()
