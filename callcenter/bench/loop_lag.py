"""``callcenter bench loop-lag``: is the daemon's event loop free while another writer holds the database?

What it does, all in a temporary directory:

1. builds a journal of ``--rows`` calls (default 1,000,000, spread over a year, so the statistics
   window holds what one hour of traffic leaves) plus pauses;
2. starts the daemon (``callcenter.app.serve``) in a subprocess wrapped with a
   :class:`~callcenter.telemetry.LoopLagMonitor` that samples the daemon's own loop every 10 ms;
   AMI points at the lab Asterisk when it is already up (``callcenter lab up``), else at a port
   where nothing listens (``"ami": "down"``: the daemon keeps reconnecting, FastAGI and HTTP serve);
3. drives load for ``--baseline`` seconds with the database free, then while another *process*
   holds the write lock for ``--lock`` seconds (``BEGIN IMMEDIATE`` and a write, as a 100,000-lead
   ``campaign import`` does): FastAGI sessions from a fake Asterisk (``ivr`` on a DID that hangs up,
   which journals the call; ``agent`` from an unknown phone, which touches no table), and
   ``/metrics`` and ``/status`` scraped back to back;
4. prints the loop lag, scrape and AGI latencies of the locked phase (and of the baseline), and the
   longest garbage-collector pause in the daemon (``gc_max_ms``: what the lag spikes that remain are).

``--gc-freeze`` runs the daemon with ``gc.freeze()`` before it starts, to measure what that gives.

Targets (issue 12): ``lag_p99_ms`` <= 50 and ``metrics_scrape_p99_ms`` <= 50 with 1,000,000 rows.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from callcenter.telemetry import percentile

__all__ = ["main", "build_journal"]

DID_HANGUP = "5550001"  # journals the call (started, path, ended) and hangs up
TARGET_LAG_P99_MS = 50.0
TARGET_SCRAPE_P99_MS = 50.0
REQUEST_TIMEOUT_S = 90.0
GC_FREEZE_ENV = "CALLCENTER_BENCH_GC_FREEZE"

LOCKER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], timeout=60, isolation_level=None)
db.execute("BEGIN IMMEDIATE")
db.execute("INSERT INTO calls(call_id, uniqueid, channel, started_at) VALUES ('bench-lock', 'u', 'x', 0)")
print(time.time(), flush=True)
time.sleep(float(sys.argv[2]))
db.execute("ROLLBACK")
print(time.time(), flush=True)
"""


# --------------------------------------------------------------------------- the journal
def build_journal(path: Path, rows: int, now: float, *, seed: int = 7) -> float:
    """``rows`` finished calls over the past year (queue ``sales``, agents alice/bob) and one
    pause per 100 calls; returns the seconds it took. The schema is the daemon's own."""
    from callcenter.journal import Journal
    from callcenter.persistence import transaction

    t0 = time.perf_counter()
    j = Journal(path)
    rnd = random.Random(seed)
    span = 365 * 86400.0

    def calls() -> Iterator[tuple[Any, ...]]:
        for i in range(rows):
            start = now - span + span * i / rows
            entered = start + 5
            roll = rnd.random()
            if roll < 0.8:
                ans, end, agent, outcome = entered + rnd.uniform(1, 60), None, rnd.choice(("alice", "bob")), "completed"
                end = ans + rnd.uniform(30, 600)
            elif roll < 0.9:
                ans, agent, outcome = None, None, "abandoned"
                end = entered + rnd.uniform(5, 120)
            else:
                ans, agent, outcome, end = None, None, "ivr-hangup", start + 20
                entered = None
            yield (f"h{i:08x}", f"{start:.3f}", "PJSIP/trunk-0001", "5550100", "", DID_HANGUP, '["bench"]',
                   "sales" if entered else None, start, entered, ans, end, agent, outcome)

    with transaction(j.db):
        j.db.executemany("INSERT INTO calls(call_id, uniqueid, channel, caller_num, caller_name, did, ivr_path,"
                         " queue, started_at, entered_at, answered_at, ended_at, agent, outcome)"
                         " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", calls())
        j.db.executemany("INSERT INTO pauses(agent, reason, started_at, ended_at) VALUES (?,?,?,?)",
                         ((("alice", "bob")[i % 2], "lunch", now - span + span * i / (rows // 100 or 1),
                           now - span + span * i / (rows // 100 or 1) + 1800) for i in range(rows // 100)))
    j.close()
    return time.perf_counter() - t0


# --------------------------------------------------------------------------- the daemon, wrapped
def serve_with_monitor(config_path: str, lag_out: str) -> int:
    """Run the daemon with a loop-lag monitor on its loop; on exit write the samples to ``lag_out``."""
    from callcenter.app import serve
    from callcenter.cli._config import load_or_exit
    from callcenter.telemetry import LoopLagMonitor, configure_logging

    cfg = load_or_exit(config_path)
    configure_logging("json", level=logging.WARNING)
    mon = LoopLagMonitor(interval_s=0.01, keep=500_000)
    gc_pauses: list[tuple[float, int, float]] = []  # (wall time, generation, seconds): to explain spikes
    gc_start: list[float] = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_start[0] = time.perf_counter()
        else:
            gc_pauses.append((time.time(), info["generation"], time.perf_counter() - gc_start[0]))

    gc.callbacks.append(on_gc)
    if os.environ.get(GC_FREEZE_ENV) == "1":  # --gc-freeze: what a gc.freeze() at start-up gives
        gc.collect()
        gc.freeze()

    async def run() -> None:
        task = asyncio.get_running_loop().create_task(mon.run(), name="bench-loop-lag")
        try:
            await serve(cfg)
        finally:
            task.cancel()
            Path(lag_out).write_text(json.dumps({"lag": list(mon.samples), "gc": gc_pauses}))

    asyncio.run(run())
    return 0


# --------------------------------------------------------------------------- load
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _agi_env(port: int, script: str, args: tuple[str, ...], n: int) -> bytes:
    lines = ["agi_network: yes", f"agi_network_script: {script}", f"agi_request: agi://127.0.0.1:{port}/{script}",
             f"agi_channel: PJSIP/bench-{n:08x}", "agi_language: en", "agi_type: PJSIP",
             f"agi_uniqueid: 1700000000.{n}", "agi_version: 20.0.0", "agi_callerid: 5550100",
             "agi_calleridname: Bench", "agi_callingpres: 0", "agi_callingani2: 0", "agi_callington: 0",
             "agi_callingtns: 0", f"agi_dnid: {args[0] if args else 'unknown'}", "agi_rdnis: unknown",
             "agi_context: cc-in", "agi_extension: s", "agi_priority: 1", "agi_enhanced: 0.0",
             "agi_accountcode: ", "agi_threadid: 1"]
    lines += [f"agi_arg_{i}: {a}" for i, a in enumerate(args, 1)]
    return ("\n".join(lines) + "\n\n").encode()


async def agi_session(port: int, script: str, args: tuple[str, ...], n: int) -> float:
    """One FastAGI session as Asterisk runs it (every command answered ``200 result=0``); its seconds."""
    t0 = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(_agi_env(port, script, args, n))
        await writer.drain()
        while line := await reader.readline():
            if line.strip():
                writer.write(b"200 result=1\n" if line.startswith(b"HANGUP") else b"200 result=0\n")
                await writer.drain()
    finally:
        writer.close()
    return time.perf_counter() - t0


class Load:
    """FastAGI sessions and HTTP scrapes, back to back, each timed; ``phase`` tags the samples."""

    def __init__(self, agi_port: int, http_port: int) -> None:
        self.agi_port, self.http_port = agi_port, http_port
        self.phase = "warmup"
        self.samples: dict[tuple[str, str], list[float]] = {}
        self.errors: dict[str, int] = {}
        self.stop = asyncio.Event()
        self.lock_verified = False
        self._n = 0

    def _err(self, kind: str, e: BaseException) -> None:
        key = f"{self.phase}:{kind}:{type(e).__name__}"
        self.errors[key] = self.errors.get(key, 0) + 1

    async def agi_worker(self, k: int) -> None:
        mine = 0
        while not self.stop.is_set():
            self._n += 1
            mine += 1
            script, args = (("ivr", (DID_HANGUP,)) if (mine + k) % 2 else ("agent", ("login", "9999")))
            phase = self.phase
            try:
                secs = await asyncio.wait_for(agi_session(self.agi_port, script, args, self._n), REQUEST_TIMEOUT_S)
            except (OSError, asyncio.TimeoutError) as e:
                self._err("agi", e)
                await asyncio.sleep(0.05)
                continue
            self.samples.setdefault((phase, "agi"), []).append(secs)
            self.samples.setdefault((phase, "agi:" + script), []).append(secs)

    async def scraper(self, path: str) -> None:
        import aiohttp
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            while not self.stop.is_set():
                phase, t0 = self.phase, time.perf_counter()
                try:
                    async with http.get(f"http://127.0.0.1:{self.http_port}{path}") as r:
                        body = await r.read()
                        if r.status != 200 or not body:
                            raise aiohttp.ClientResponseError(r.request_info, (), status=r.status)
                except (aiohttp.ClientError, asyncio.TimeoutError) as e:
                    self._err(path, e)
                    await asyncio.sleep(0.05)
                    continue
                self.samples.setdefault((phase, path), []).append(time.perf_counter() - t0)
                await asyncio.sleep(0.05)

    def figures(self, phase: str) -> dict[str, Any]:
        def p99_ms(kind: str) -> float | None:
            xs = sorted(self.samples.get((phase, kind), []))
            return round(percentile(xs, 99) * 1000, 1) if xs else None
        return {"metrics_scrape_p99_ms": p99_ms("/metrics"), "status_p99_ms": p99_ms("/status"),
                "agi_p99_ms": p99_ms("agi"), "agi_ivr_p99_ms": p99_ms("agi:ivr"),
                "agi_agent_p99_ms": p99_ms("agi:agent"),
                "scrapes": len(self.samples.get((phase, "/metrics"), [])),
                "agi_sessions": len(self.samples.get((phase, "agi"), []))}


async def _wait_http(port: int, proc: subprocess.Popen[bytes], timeout_s: float = 60.0) -> None:
    import aiohttp
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"daemon exited with {proc.returncode}")
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as r:
                    await r.read()
                    return
            except (aiohttp.ClientError, asyncio.TimeoutError):
                await asyncio.sleep(0.2)
    raise RuntimeError("daemon's HTTP did not come up")


async def _drive(load: Load, db: Path, baseline_s: float, lock_s: float) -> tuple[float, float]:
    """Baseline phase, then the locked phase; returns (lock start, lock end) wall times."""
    tasks = [asyncio.create_task(load.agi_worker(k)) for k in range(2)]
    tasks += [asyncio.create_task(load.scraper(p)) for p in ("/metrics", "/status")]
    try:
        await asyncio.sleep(1.0)  # warm-up: connections, first refreshes
        load.phase = "baseline"
        await asyncio.sleep(baseline_s)
        locker = await asyncio.create_subprocess_exec(sys.executable, "-c", LOCKER, str(db), str(lock_s),
                                                      stdout=asyncio.subprocess.PIPE)
        assert locker.stdout is not None
        first = await locker.stdout.readline()
        load.phase = "locked"
        started = float(first)
        load.lock_verified = _write_locked(db)
        last = await locker.stdout.readline()
        await locker.wait()
        ended = float(last)
        load.phase = "after"
        await asyncio.sleep(0.5)
    finally:
        load.stop.set()
    # every worker ends its current request (bounded by REQUEST_TIMEOUT_S) and returns
    await asyncio.gather(*tasks)
    return started, ended


def _write_locked(db: Path) -> bool:
    """Is the database really write-locked (a writer that does not wait is refused)?"""
    probe = sqlite3.connect(db, timeout=0, isolation_level=None)
    try:
        probe.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as e:
        return "locked" in str(e)
    else:
        probe.execute("ROLLBACK")
        return False
    finally:
        probe.close()


def _lab_ami(lab_config: str | None) -> dict[str, Any] | None:
    """AMI settings of the lab Asterisk if it is already running (never started here)."""
    from callcenter.lab.asterisk import Lab, port_offset, shift_ports
    if not lab_config or not Path(lab_config).exists() or not Lab.default().status().get("running"):
        return None
    data = shift_ports(yaml.safe_load(Path(lab_config).read_text()), port_offset())
    return dict(data["ami"])


def run_bench(rows: int, baseline_s: float, lock_s: float, lab_config: str | None, keep: str | None,
              *, gc_freeze: bool = False) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="cc-loop-lag-") as tmpdir:
        tmp = Path(keep) if keep else Path(tmpdir)
        tmp.mkdir(parents=True, exist_ok=True)
        db = tmp / "cc.sqlite3"
        if db.exists():
            raise SystemExit(f"loop-lag: {db} exists; give an empty --keep directory")
        now = time.time()
        build_s = build_journal(db, rows, now)
        ami = _lab_ami(lab_config)
        agi_port, http_port = _free_port(), _free_port()
        cfg = {
            "ami": ami or {"host": "127.0.0.1", "port": _free_port(), "username": "callcenter",
                           "secret": "bench-secret-1"},
            "agi": {"host": "127.0.0.1", "port": agi_port},
            "http": {"host": "127.0.0.1", "port": http_port},
            "audiosocket": {"host": "127.0.0.1", "port": _free_port()},
            "daemon": {"database": str(db), "log_format": "json", "reconnect_max_s": 2},
            "recordings": {"dir": str(tmp / "recordings")},
            "phones": {"2001": {"secret": "bench-secret-2001"}, "2002": {"secret": "bench-secret-2002"}},
            "agents": {"alice": {"phone": "2001"}, "bob": {"phone": "2002"}},
            "queues": {"sales": {"members": ["alice", "bob"], "fallback": {"hangup": ["goodbye"]}}},
            "menus": {},
            "trunks": {"pstn": {"match": ["127.0.0.2"], "dids": {DID_HANGUP: {"hangup": ["goodbye"]}}}},
        }
        cfg_path = tmp / "cc.yaml"
        cfg_path.write_text(yaml.safe_dump(cfg))
        lag_out = tmp / "lag.json"
        log_path = tmp / "daemon.log"
        with open(log_path, "wb") as log_file:
            proc = subprocess.Popen([sys.executable, "-m", "callcenter.bench.loop_lag", "--serve", str(cfg_path),
                                     "--lag-out", str(lag_out)], cwd=tmp, stdout=log_file, stderr=log_file,
                                    start_new_session=True, env={**os.environ, GC_FREEZE_ENV: "1" if gc_freeze else "0"})
            try:
                load = Load(agi_port, http_port)

                async def go() -> tuple[float, float]:
                    await _wait_http(http_port, proc)
                    return await _drive(load, db, baseline_s, lock_s)

                lock_start, lock_end = asyncio.run(go())
            finally:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        if not lag_out.exists():
            tail = log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the daemon wrote no loop-lag samples (exit {proc.returncode}); log tail:\n{tail}")
        recorded = json.loads(lag_out.read_text())
        samples, gc_pauses = recorded["lag"], recorded["gc"]

        def lag(since: float, until: float) -> dict[str, Any]:
            xs = sorted(v for at, v in samples if since <= at <= until)
            return {"lag_p99_ms": round(percentile(xs, 99) * 1000, 1),
                    "lag_max_ms": round((xs[-1] if xs else 0.0) * 1000, 1), "lag_samples": len(xs)}

        def gc_max(since: float, until: float) -> float:
            return round(max((d for at, _, d in gc_pauses if since <= at <= until), default=0.0) * 1000, 1)

        locked = {**lag(lock_start, lock_end), **load.figures("locked"), "gc_max_ms": gc_max(lock_start, lock_end)}
        base_start = lock_start - baseline_s
        out: dict[str, Any] = {
            "lag_p99_ms": locked["lag_p99_ms"], "lag_max_ms": locked["lag_max_ms"],
            "db_locked_s": round(lock_end - lock_start, 2), "lock_verified": load.lock_verified, "journal_rows": rows,
            "metrics_scrape_p99_ms": locked["metrics_scrape_p99_ms"], "status_p99_ms": locked["status_p99_ms"],
            "agi_p99_ms": locked["agi_p99_ms"], "ami": "lab" if ami else "down",
            "locked": locked, "baseline": {**lag(base_start, lock_start), **load.figures("baseline")},
            "errors": load.errors, "journal_build_s": round(build_s, 1),
            "daemon_exit": proc.returncode, "gc_freeze": gc_freeze,
        }
        m = out["metrics_scrape_p99_ms"]
        out["targets_met"] = bool(out["lag_p99_ms"] <= TARGET_LAG_P99_MS and m is not None
                                  and m <= TARGET_SCRAPE_P99_MS and not load.errors and load.lock_verified)
        return out


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="callcenter bench loop-lag", description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="journal rows (default 1,000,000)")
    ap.add_argument("--lock", type=float, default=10.0, help="seconds another process holds the write lock")
    ap.add_argument("--baseline", type=float, default=3.0, help="seconds of load before the lock")
    ap.add_argument("--lab-config", default=os.path.join("tests", "asterisk", "lab.yaml"),
                    help="config the running lab Asterisk was brought up with (its AMI is used if it is up)")
    ap.add_argument("--keep", help="work in this (empty) directory and keep it (journal, config, daemon log)")
    ap.add_argument("--json", action="store_true", help="one JSON object on stdout")
    ap.add_argument("--gc-freeze", action="store_true",
                    help="experiment: gc.freeze() in the daemon before it starts (long GC pauses are the spikes left)")
    ap.add_argument("--serve", help=argparse.SUPPRESS)  # internal: the daemon under test
    ap.add_argument("--lag-out", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.serve:
        return serve_with_monitor(a.serve, a.lag_out)
    out = run_bench(a.rows, a.baseline, a.lock, a.lab_config, a.keep, gc_freeze=a.gc_freeze)
    if a.json:
        print(json.dumps(out))
    else:
        print(json.dumps(out, indent=2))
    return 0 if out["targets_met"] else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
