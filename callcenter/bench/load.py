"""``callcenter bench load``: steps of offered load on the lab Asterisk with the real daemon and SIPp.

A SIPp pool of agent phones (one UDP port) REGISTERs N desk phones with digest auth, logs each in
with the feature code and then, as a UAS on the same port (the endpoints rewrite contacts to the
source port), answers every offer, talks a while and hangs up. SIPp callers come from the trunk's
address (127.0.0.2): half through the IVR menu with an RFC 2833 digit, half on a DID straight to
the queue; a share of them give up while waiting. Per step it prints offered, SIPp's completed and
failed, **lost** (entered a queue but neither answered, abandoned by its caller, nor routed by a
rule), the daemon's outcomes, wait p50/p90, agent free → bridged p50/p99, daemon and Asterisk CPU,
the event loop's lag p99, AMI reconnects, and after the step the channels left in Asterisk and the
agents not back to Ready.

The lab is taken down at the end unless it was already up; ``$CALLCENTER_LAB_PORT_OFFSET`` moves
every port (and the SIPp ports), ``$CALLCENTER_CACHE`` the lab's chroot, for a second lab.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from callcenter.cli.screen import fetch_status, wait_healthy
from callcenter.lab.asterisk import Lab, LabError, port_offset, shift_ports
from callcenter.lab.signals import interrupt_on_stop_signals, stop_children
from callcenter.lab.sipp import Sipp, clock_ticks, dtmf_block, scenario, stop_all

IVR_DID, QUEUE_DID = "5551100", "5551101"
# Caller numbers (From user) by kind: never a phone extension (PJSIP identifies by user first).
PREFIX = {"ivr": "5557", "direct": "5558", "abandon": "5559"}
TRUNK_IP = "127.0.0.2"


def build_config(agents: int, db: Path, *, queues: int = 1, offset: int = 0, record: bool = False,
                 wrapup_s: float = 1, max_wait_s: int = 900) -> dict[str, Any]:
    """The lab configuration (tests/asterisk/lab.yaml's shape) with N phones 3001.. and N agents in one
    queue ``load`` (or two, ``load`` and ``load2``, every agent in both), a DID straight to ``load``
    and an IVR menu DID (digit 1 → the last queue)."""
    if not 1 <= agents <= 99:
        raise ValueError("agents: 1..99 (phones 3001..3099)")
    phones = {f"30{i:02d}": {"secret": f"load-secret-30{i:02d}"} for i in range(1, agents + 1)}
    names = [f"load{i:02d}" for i in range(1, agents + 1)]
    qnames = ["load", "load2"][:queues]
    q = {"members": names, "ring_timeout_s": 10, "max_no_answer": 3, "wrapup_s": wrapup_s,
         "max_wait_s": max_wait_s, "hook_interval_s": 20, "fallback": {"hangup": ["goodbye"]},
         "recording": {"mode": "all" if record else "none"}}
    cfg = {
        "ami": {"host": "127.0.0.1", "port": 5038, "username": "callcenter", "secret": "load-ami-secret-1"},
        "agi": {"host": "127.0.0.1", "port": 4573},
        "http": {"host": "127.0.0.1", "port": 9184},
        "sip": {"bind": "127.0.0.1", "port": 5060, "rtp_start": 10000, "rtp_end": 10999},
        "daemon": {"database": str(db), "log_format": "json", "reconnect_max_s": 2},
        "phones": phones,
        "agents": {n: {"phone": f"30{i:02d}"} for i, n in enumerate(names, 1)},
        "queues": {name: dict(q) for name in qnames},
        "menus": {"loadmenu": {"prompt": ["beep"], "timeout_s": 4, "max_retries": 2,
                               "options": {"1": {"queue": qnames[-1]}}, "on_failure": {"hangup": ["goodbye"]}}},
        "trunks": {"pstn": {"match": [TRUNK_IP], "host": TRUNK_IP, "port": 5062,
                            "dids": {IVR_DID: {"menu": "loadmenu"}, QUEUE_DID: {"queue": "load"}}}},
    }
    return shift_ports(cfg, offset)


def _ts(s: str) -> float:
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


class Daemon:
    """``callcenter run`` in its own process group; the JSON log lines it writes on stderr kept."""

    KEEP = {"agent.state", "offer.ring", "call.bridged", "call.connecting", "call.answered", "ami.resynced",
            "ami.logged_in", "daemon.fatal", "process.exit"}

    def __init__(self, config: Path, log_path: Path):
        self.config, self.log_path = config, log_path
        self.events: list[dict[str, Any]] = []
        self.cond = threading.Condition()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Daemon:
        self.proc = subprocess.Popen([sys.executable, "-m", "callcenter", "run", "--config", str(self.config)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     start_new_session=True)
        threading.Thread(target=self._read, daemon=True).start()
        return self

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        with open(self.log_path, "ab") as out:
            for raw in self.proc.stderr:
                out.write(raw)
                try:
                    e = json.loads(raw)
                except ValueError:
                    continue
                if e.get("event") in self.KEEP:
                    with self.cond:
                        self.events.append(e)
                        self.cond.notify_all()
        with self.cond:
            self.events.append({"event": "process.exit"})
            self.cond.notify_all()

    def wait_for(self, event: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for e in self.events:
                    if e.get("event") == event:
                        return e
                    if e.get("event") in ("process.exit", "daemon.fatal"):
                        raise RuntimeError(f"the daemon stopped; see {self.log_path}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError(f"no {event} from the daemon within {timeout:.0f}s; see {self.log_path}")
                self.cond.wait(left)

    def since(self, at: float) -> list[dict[str, Any]]:
        with self.cond:
            return [e for e in self.events if "timestamp" in e and _ts(e["timestamp"]) >= at]

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def stop(self) -> None:
        stop_children([self.proc], timeout=10)


def cpu_s(pid: int | None) -> float:
    """User + system CPU seconds of a process so far (0 when it is gone)."""
    if not pid:
        return 0.0
    try:
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / clock_ticks()
    except (OSError, IndexError, ValueError):
        return 0.0


def pct(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, int(round(q * len(s))) - 1))]


def _r(x: float | None, n: int = 3) -> float | None:
    return None if x is None else round(x, n)


@dataclass
class LoadBench:
    """The lab, the daemon and the SIPp agent pool; :meth:`step` runs one step of offered load."""

    agents: int = 20
    queues: int = 1
    talk_s: float = 3.0
    record: bool = False
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="cc-load-")))
    lab: Lab = field(default_factory=Lab.default)
    offset: int = field(default_factory=port_offset)
    verbose: bool = False

    def __post_init__(self) -> None:
        self.db = self.workdir / "load.sqlite3"
        self.cfg = build_config(self.agents, self.db, queues=self.queues, offset=self.offset, record=self.record)
        self.config_path = self.workdir / "load.yaml"
        self.config_path.write_text(yaml.safe_dump(self.cfg))
        self.sip_port = self.cfg["sip"]["port"]
        self.http = f"http://127.0.0.1:{self.cfg['http']['port']}"
        # SIPp's own ports, moved with the lab's: the pool on 127.0.0.1, callers on the trunk address.
        self.pool_port = 5090 + self.offset
        self.caller_ports = {k: 5091 + i + self.offset for i, k in enumerate(PREFIX)}
        self.media_base = 30000 + 10 * self.offset
        self.stack = ExitStack()
        self.daemon: Daemon | None = None
        self.uas: Sipp | None = None
        self.sipps: list[Sipp] = []
        self.info: dict[str, Any] = {}
        self.steps = 0

    def say(self, msg: str) -> None:
        if self.verbose:
            print(f"bench load: {msg}", file=sys.stderr, flush=True)

    # ------------------------------------------------------------------ set-up and tear-down
    def __enter__(self) -> LoadBench:
        try:
            self.info = self.stack.enter_context(self.lab.session(self.config_path))
            self.lab.rx("channel request hangup all")
            self.stack.callback(self._stop_all)
            self.daemon = Daemon(self.config_path, self.workdir / "daemon.log").start()
            self.daemon.wait_for("ami.resynced", 30)
            self._wait_http(20)
            self._login_pool()
        except BaseException:
            self.stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stack.close()

    def _stop_all(self) -> None:
        stop_all(self.sipps)
        if self.daemon is not None:
            self.daemon.stop()
        self.lab.rx("channel request hangup all")

    def _wait_http(self, timeout: float) -> None:
        if not wait_healthy("127.0.0.1", self.cfg["http"]["port"], timeout):
            raise RuntimeError("the daemon's HTTP did not answer")

    def _sipp(self, name: str, argv: list[str]) -> Sipp:
        p = Sipp(name, argv, self.workdir)
        self.sipps.append(p)
        return p.start()

    def _login_pool(self) -> None:
        """REGISTER every phone and dial the login code from the pool's port, then answer there."""
        csv_path = self.workdir / "agents.csv"
        csv_path.write_text("SEQUENTIAL\n" + "".join(f"{ext};{p['secret']}\n" for ext, p in self.cfg["phones"].items()))
        sc = scenario("agent_login", self.workdir, LOGIN="*61")
        remote = f"127.0.0.1:{self.sip_port}"
        login = self._sipp("agents-login", ["-sf", str(sc), "-inf", str(csv_path), "-i", "127.0.0.1", "-p",
                                            str(self.pool_port), "-mp", str(self.media_base), "-m", str(self.agents),
                                            "-r", "10", "-l", "10", "-timeout", "90s", "-timeout_error", remote])
        rc = login.wait(100)
        st = login.stats()
        if rc != 0 or st["successful"] != self.agents:
            login.stop()
            raise RuntimeError(f"agent pool login: sipp exit {rc}, {st}; {login.errors_tail()}")
        sc = scenario("agent_answer", self.workdir, TALK_MS=int(self.talk_s * 1000))
        self.uas = self._sipp("agents", ["-sf", str(sc), "-i", "127.0.0.1", "-p", str(self.pool_port),
                                         "-mp", str(self.media_base + 10), "-timeout", "3h"])
        not_ready = self._wait_agents_ready(30)
        if not_ready:
            raise RuntimeError(f"agents not Ready after login: {not_ready}")
        self.say(f"{self.agents} agents registered and Ready")

    # ------------------------------------------------------------------ probes
    def status(self) -> dict[str, Any]:
        return fetch_status("127.0.0.1", self.cfg["http"]["port"], timeout=5)

    def not_ready(self) -> dict[str, str]:
        try:
            agents = self.status().get("agents", {})
        except OSError as e:
            return {"/status": str(e)}
        return {n: a.get("state") for n, a in agents.items() if a.get("state") != "Ready"}

    def _wait_agents_ready(self, timeout: float) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while True:
            left = self.not_ready()
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(0.3)

    def metrics(self) -> dict[str, float]:
        out: dict[str, float] = {}
        try:
            with urllib.request.urlopen(f"{self.http}/metrics", timeout=5) as r:  # noqa: S310 - loopback
                text = r.read().decode()
        except OSError:
            return out
        for line in text.splitlines():
            m = re.match(r"^(callcenter_loop_lag_recent_p99_seconds|callcenter_ami_reconnects_total|"
                         r"callcenter_calls_total)(?:\{[^}]*\})?"
                         r" ([0-9.eE+-]+)$", line)
            if m:
                out[m.group(1)] = out.get(m.group(1), 0.0) + float(m.group(2))
        return out

    def entries(self) -> dict[str, int]:
        """The daemon's own maps (``callcenter_daemon_entries``), by name."""
        try:
            with urllib.request.urlopen(f"{self.http}/metrics", timeout=5) as r:  # noqa: S310 - loopback
                text = r.read().decode()
        except OSError:
            return {}
        return {m[1]: int(float(m[2])) for m in
                re.finditer(r'^callcenter_daemon_entries\{map="(\w+)"\} (\S+)$', text, re.M)}

    def daemon_footprint(self) -> dict[str, int | float | None]:
        """The daemon's resident memory (MB) and open file descriptors now."""
        pid = self.daemon.pid if self.daemon else None
        try:
            rss = next(int(x.split()[1]) for x in Path(f"/proc/{pid}/status").read_text().splitlines()
                       if x.startswith("VmRSS:"))
            return {"daemon_rss_mb": round(rss / 1024, 1), "daemon_fds": len(os.listdir(f"/proc/{pid}/fd"))}
        except (OSError, StopIteration, ValueError):
            return {"daemon_rss_mb": None, "daemon_fds": None}

    def channels(self) -> int:
        out = self.lab.rx("core show channels count")
        m = re.search(r"(\d+) active channels?", out)
        return int(m.group(1)) if m else -1

    def _wait_channels_gone(self, timeout: float) -> int:
        """Channels left once the step is over (calls still ending get a moment)."""
        deadline = time.monotonic() + timeout
        while True:
            n = self.channels()
            if n == 0 or time.monotonic() > deadline:
                return n
            time.sleep(0.5)

    def _rows(self, since: float) -> list[sqlite3.Row]:
        c = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10)
        c.row_factory = sqlite3.Row
        try:
            return c.execute("SELECT caller_num, did, queue, started_at, entered_at, answered_at, ended_at, outcome"
                             " FROM calls WHERE started_at >= ?", (since,)).fetchall()
        finally:
            c.close()

    # ------------------------------------------------------------------ one step
    def step(self, concurrent: int, rate: float = 10.0, calls: int | None = None, *, ivr_share: float = 0.5,
             abandon_share: float = 0.1, abandon_s: float = 2.0, settle_s: float = 30.0) -> dict[str, Any]:
        """``calls`` callers (default: twice ``concurrent``) at up to ``rate`` calls/s, at most
        ``concurrent`` at once; a share through the IVR, a share giving up after ``abandon_s``."""
        assert self.daemon is not None
        self.steps += 1
        calls = calls or 2 * concurrent
        kinds = {"ivr": ivr_share * (1 - abandon_share), "direct": (1 - ivr_share) * (1 - abandon_share),
                 "abandon": abandon_share}
        split = {k: int(round(calls * s)) for k, s in kinds.items()}
        split["direct"] += calls - sum(split.values())
        # the longest a caller can take: every one served in turn, plus the IVR and a margin
        capacity = self.agents / (self.talk_s + float(self.cfg["queues"]["load"]["wrapup_s"]) + 0.5)
        bound_s = int(calls / max(rate, 0.1) + calls / capacity + 60)
        hold_ms = bound_s * 1000
        remote = f"127.0.0.1:{self.sip_port}"
        t0, wall0 = time.monotonic(), time.time()
        cpu_d0, cpu_a0 = cpu_s(self.daemon.pid), cpu_s(self.lab.pid())
        m0 = self.metrics()
        uas0 = self.uas.stats() if self.uas else {"successful": 0, "failed": 0}
        procs: dict[str, Sipp] = {}
        lags: list[float] = []
        rss: list[tuple[int, float | None]] = []
        peak = 0
        for kind, n in split.items():
            if n <= 0:
                continue
            share = n / calls
            sc = scenario("caller", self.workdir, PREFIX=PREFIX[kind],
                          HOLD_MS=int(abandon_s * 1000) if kind == "abandon" else hold_ms,
                          DTMF_BLOCK=dtmf_block("1" if kind == "ivr" else None, 1200))
            r10 = max(1, int(round(rate * share * 10)))  # calls per 10 s (SIPp's rate is an integer)
            procs[kind] = self._sipp(f"step{self.steps}-{kind}", [
                "-sf", str(sc), "-s", IVR_DID if kind == "ivr" else QUEUE_DID,
                "-i", TRUNK_IP, "-bind_local", "-p", str(self.caller_ports[kind]),
                "-mp", str(self.media_base + 10 * (2 + list(PREFIX).index(kind))),
                "-m", str(n), "-l", str(max(1, int(round(concurrent * share)))), "-r", str(r10), "-rp", "10000",
                "-timeout", f"{bound_s + 30}s", "-timeout_error", remote])
        self.say(f"step {self.steps}: {calls} callers, {concurrent} at once, {rate}/s: {split}")
        # wait for the callers (each SIPp is bounded by -timeout), sampling the loop lag meanwhile
        deadline = time.monotonic() + bound_s + 60
        while any(p.running() for p in procs.values()) and time.monotonic() < deadline:
            lag = self.metrics().get("callcenter_loop_lag_recent_p99_seconds")
            if lag is not None:
                lags.append(lag)
            stats = [p.stats() for p in procs.values()]
            peak = max(peak, sum(st["current"] for st in stats))
            done = sum(st["successful"] + st["failed"] for st in stats)
            if done >= len(rss) * calls / 10:  # the daemon's RSS at every tenth of the callers
                rss.append((done, self.daemon_footprint()["daemon_rss_mb"]))
            time.sleep(2)
        for p in procs.values():
            if p.running():
                p.stop()
        sipp_s = time.monotonic() - t0
        cpu_d1, cpu_a1 = cpu_s(self.daemon.pid), cpu_s(self.lab.pid())
        # after the step: the calls end, the agents come back, the channels go
        settle_deadline = time.monotonic() + settle_s
        while time.monotonic() < settle_deadline:
            rows = self._rows(wall0 - 1)
            if all(r["ended_at"] is not None for r in rows) and self.channels() == 0 and not self.not_ready():
                break
            time.sleep(0.5)
        m1 = self.metrics()
        rows = self._rows(wall0 - 1)
        uas1 = self.uas.stats() if self.uas else {"successful": 0, "failed": 0}
        res = self._report(concurrent, rate, calls, split, procs, rows, wall0, sipp_s, cpu_d1 - cpu_d0,
                           cpu_a1 - cpu_a0, lags, m0, m1, uas0, uas1)
        return {"concurrent": concurrent, "peak_concurrent": peak, **res, "rss_mb_by_calls_done": rss}

    def _report(self, concurrent: int, rate: float, calls: int, split: dict[str, int], procs: dict[str, Sipp],
                rows: list[sqlite3.Row], wall0: float, sipp_s: float, cpu_d: float, cpu_a: float,
                lags: list[float], m0: dict[str, float], m1: dict[str, float], uas0: dict[str, int],
                uas1: dict[str, int]) -> dict[str, Any]:
        outcomes: dict[str, int] = {}
        for r in rows:
            outcomes[r["outcome"] or "active"] = outcomes.get(r["outcome"] or "active", 0) + 1
        lost, not_queued = [], 0
        for r in rows:
            kind = next((k for k, p in PREFIX.items() if (r["caller_num"] or "").startswith(p)), "other")
            if r["entered_at"] is None:
                not_queued += 1  # never reached a queue (IVR failure, hung up in the IVR)
                continue
            if r["answered_at"] is not None and r["outcome"] == "completed":
                continue
            if kind == "abandon" and r["outcome"] == "abandoned":
                continue  # our caller gave up while waiting: that is its script
            if r["outcome"] in ("fallback", "callback"):
                continue  # routed by a configured rule
            lost.append(r)  # includes a caller who never meant to hang up, shown as abandoned
        waits = [r["answered_at"] - r["entered_at"] for r in rows if r["answered_at"] and r["entered_at"]]
        free_to_bridge = self._free_to_bridged(wall0)
        stats = {k: p.stats() for k, p in procs.items()}
        st = {k: {"offered": split[k], **v} for k, v in stats.items()}
        ready = self.not_ready()
        return {
            "concurrent": concurrent, "rate": rate, "offered": calls,
            "completed": sum(v["successful"] for v in stats.values()),
            "failed": sum(v["failed"] for v in stats.values()) + (calls - sum(v["created"] for v in stats.values())),
            "sipp": st,
            "agents_answered": uas1["successful"] - uas0["successful"],
            "agents_failed": uas1["failed"] - uas0["failed"],
            "calls_recorded": len(rows), "lost": len(lost), "not_queued": not_queued,
            "outcomes": dict(sorted(outcomes.items())),
            "wait_p50_s": _r(pct(waits, 0.5), 2), "wait_p90_s": _r(pct(waits, 0.9), 2),
            "free_to_bridged_p50_ms": _r(pct(free_to_bridge, 0.5), 1),
            "free_to_bridged_p99_ms": _r(pct(free_to_bridge, 0.99), 1),
            "free_to_bridged_n": len(free_to_bridge),
            "duration_s": round(sipp_s, 1),
            "daemon_cpu_pct": round(100 * cpu_d / sipp_s, 1), "asterisk_cpu_pct": round(100 * cpu_a / sipp_s, 1),
            "loop_lag_p99_ms": _r(max(lags) * 1000 if lags else None, 1),
            "ami_reconnects": int(m1.get("callcenter_ami_reconnects_total", 0)
                                  - m0.get("callcenter_ami_reconnects_total", 0)),
            "metrics_calls_ended": int(m1.get("callcenter_calls_total", 0) - m0.get("callcenter_calls_total", 0)),
            "channels_left": (left := self._wait_channels_gone(25.0)),
            "channels_left_detail": self.lab.rx("core show channels concise").splitlines()[:5] if left else [],
            "agents_not_ready": ready,
            **self.daemon_footprint(),
            "lost_examples": [dict(r) for r in lost[:3]],
            "sipp_errors": {k: p.errors_tail(3) for k, p in procs.items() if p.errors_tail(1)},
        }

    def _free_to_bridged(self, since: float) -> list[float]:
        """Per agent: Ready and an offer at once (a caller was waiting; the ring is sent, and logged,
        before the step logs the agent's Ready), then the caller connected to that agent's leg (ms):
        ``call.bridged`` (BridgeEnter), else ``call.answered`` (the claim)."""
        assert self.daemon is not None
        ready_at: dict[str, float] = {}
        rung: dict[str, tuple[float, str]] = {}  # agent -> its last ring not yet matched to a Ready
        start: dict[str, float] = {}  # call id -> when its agent became free
        ends: dict[str, dict[str, float]] = {}
        for e in self.daemon.since(since):
            agent, ev, cid = e.get("agent"), e.get("event"), e.get("call_id")
            t = _ts(e["timestamp"])
            if ev == "agent.state" and e.get("state") == "Ready":
                ready_at[agent] = t
                ring = rung.pop(agent, None)
                if ring is not None and t - ring[0] <= 0.25:  # the ring leaves before the step logs
                    start[ring[1]] = ring[0]
            elif ev == "offer.ring" and cid:
                free = ready_at.pop(agent, None)
                if free is not None and t - free <= 0.25:  # offered straight away: somebody was waiting
                    start[cid] = free
                else:
                    rung[agent] = (t, cid)
            elif ev in ("call.bridged", "call.connecting", "call.answered") and cid in start:
                ends.setdefault(cid, {}).setdefault(ev, t)
        out = []
        for cid, t0 in start.items():
            e = ends.get(cid, {})
            t1 = e.get("call.bridged") or e.get("call.connecting") or e.get("call.answered")
            if t1 is not None:
                out.append((t1 - t0) * 1000)
        return out


ROW = ("{concurrent:>5} {peak_concurrent:>5} {offered:>7} {completed:>5} {failed:>4} {lost:>4} "
       "{wait_p50_s!s:>6} {wait_p90_s!s:>6} "
       "{free_to_bridged_p50_ms!s:>7} {free_to_bridged_p99_ms!s:>7} {daemon_cpu_pct:>5} {asterisk_cpu_pct:>5} "
       "{loop_lag_p99_ms!s:>6} {ami_reconnects:>3} {channels_left:>4} {nr:>4}  {outcomes}")
HEAD = (f"{'conc':>5} {'peak':>5} {'offered':>7} {'done':>5} {'fail':>4} {'lost':>4} {'w.p50':>6} {'w.p90':>6} "
        f"{'fb.p50':>7} {'fb.p99':>7} {'dCPU%':>5} {'aCPU%':>5} {'lag99':>6} {'rec':>3} {'chan':>4} {'!rdy':>4}"
        "  outcomes")


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="callcenter bench load",
                                 description="steps of offered load: lab Asterisk, the daemon, SIPp agents and callers")
    ap.add_argument("--steps", default="25,50,100,150,200", help="concurrent callers per step (comma-separated)")
    ap.add_argument("--rate", type=float, default=10.0, help="calls per second at most")
    ap.add_argument("--calls", type=float, default=2.0, help="callers per step, as a multiple of its concurrency")
    ap.add_argument("--agents", type=int, default=40)
    ap.add_argument("--queues", type=int, choices=(1, 2), default=1)
    ap.add_argument("--talk", type=float, default=None,
                    help="seconds an agent talks before hanging up (default 5; 12 with --soak)")
    ap.add_argument("--ivr-share", type=float, default=0.5)
    ap.add_argument("--abandon-share", type=float, default=0.1)
    ap.add_argument("--abandon-after", type=float, default=2.0, help="seconds before a giving-up caller hangs up")
    ap.add_argument("--record", action="store_true", help="record every agent call (MixMonitor)")
    ap.add_argument("--stop-on-failure", action="store_true",
                    help="stop after the first step that failed or lost calls")
    ap.add_argument("--soak", action="store_true",
                    help="one long step instead: 30 concurrent callers at 2 calls/s for --duration seconds")
    ap.add_argument("--duration", type=float, default=1800, help="--soak: seconds of arrivals (default 1800)")
    ap.add_argument("--leak", type=int, default=0, metavar="CALLS",
                    help="one step of CALLS callers (e.g. 10000) at --rate, 100 at once: channels left, the "
                         "daemon's fds, RSS and own maps before and after")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args(argv)
    if os.geteuid() != 0 and a.ivr_share > 0:
        print("bench load: playing RFC 2833 DTMF from a pcap needs root (or --ivr-share 0)", file=sys.stderr)
        return 1
    steps = [int(x) for x in a.steps.split(",") if x.strip()]
    if a.soak:  # every caller ends connected, abandoned or routed by policy; metrics = records = SIPp
        steps, a.rate = [30], 2.0
        a.calls = a.rate * a.duration / 30
    if a.leak:
        steps, a.calls = [100], a.leak / 100
    a.talk = a.talk if a.talk is not None else 12.0 if a.soak else 5.0
    results: list[dict[str, Any]] = []
    try:
        with interrupt_on_stop_signals(), LoadBench(agents=a.agents, queues=a.queues, talk_s=a.talk,
                                                    record=a.record, verbose=a.verbose or not a.json) as b:
            if not a.json:
                print(f"{a.agents} agents, talk {a.talk:.0f} s, up to {a.rate:g} calls/s, work dir {b.workdir}")
                print(HEAD)
            for n in steps:
                before = {**b.daemon_footprint(), "entries": b.entries()}
                res = b.step(n, a.rate, int(n * a.calls), ivr_share=a.ivr_share, abandon_share=a.abandon_share,
                             abandon_s=a.abandon_after)
                if a.leak or a.soak:
                    after = {**b.daemon_footprint(), "entries": b.entries()}
                    res["footprint"] = {"before": before, "after": after, "entries_not_idle": {
                        k: v for k, v in after["entries"].items() if v != before["entries"].get(k)}}
                results.append(res)
                with open(b.workdir / "steps.jsonl", "a") as f:
                    f.write(json.dumps(res) + "\n")
                if not a.json:
                    print(ROW.format(**res, nr=len(res["agents_not_ready"])), flush=True)
                    for line in res["channels_left_detail"] + [json.dumps(x) for x in res["lost_examples"]]:
                        print(f"      {line}", flush=True)
                    if "footprint" in res:
                        print(f"      footprint: {json.dumps(res['footprint'])}", flush=True)
                if a.stop_on_failure and (res["failed"] or res["lost"] or res["channels_left"]):
                    break
    except (LabError, RuntimeError, OSError) as e:
        print(f"bench load: {e}", file=sys.stderr)
        if results and a.json:
            print(json.dumps({"steps": results, "error": str(e)}))
        return 1
    except KeyboardInterrupt as e:
        print(f"bench load: stopped ({e or 'SIGINT'})", file=sys.stderr)
        return 130
    if a.json:
        print(json.dumps({"agents": a.agents, "talk_s": a.talk, "rate": a.rate, "steps": results}))
    return 0
