"""``callcenter bench faults``: faults under load on the lab Asterisk with the real daemon and SIPp.

Three cases, each in a lab, daemon and SIPp agent pool of its own (:class:`FaultBench`, a
:class:`~callcenter.bench.load.LoadBench` whose daemon reaches AMI through :class:`AmiProxy`):

- **ami-cut**: the AMI connection is severed N times during a step of offered load. Per cut: the
  time to the daemon's next ``ami.resynced``, and right after it the daemon's calls (``/status``)
  against Asterisk's caller channels (a witness AMI session that is never cut; a channel that
  appears or goes between the two samples around ``/status`` is tolerated). Over the step: no
  ActionID sent twice, no Originate for a (call, agent) pair that already had one in flight across
  a cut unless the witness saw the first one fail or its leg hang up; lost and failed callers.
- **daemon-kill**: with N callers waiting, the daemon is SIGKILLed and a new one started on the
  same config and database: every caller must still be served, and no agent endpoint may ever
  carry two agent legs at once (Asterisk's channels sampled throughout).
- **asterisk-kill**: with calls connected, Asterisk is SIGKILLed: the time until ``/status`` shows
  those calls interrupted; then Asterisk is started again and a small step must be served (0 lost,
  0 failed) once the daemon has reconnected and resynced.

``--reduced`` runs the sizes of ``tests/asterisk/test_faults.py``. Ports move with
``$CALLCENTER_LAB_PORT_OFFSET`` as for ``bench load``; the proxy listens on an ephemeral loopback port.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import signal
import socket
import sqlite3
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from callcenter.bench.load import Daemon, LoadBench, _ts
from callcenter.lab.asterisk import LabError
from callcenter.lab.signals import interrupt_on_stop_signals
from callcenter.protocol.ami import AmiParser, Message

EVENTS = Daemon.KEEP | {"calls.interrupted", "ami.disconnected", "offer.ring"}


# --------------------------------------------------------------------------- the proxy

def _parse_action(block: bytes) -> dict[str, Any]:
    """One AMI action (``Key: Value`` lines) as a dict; ``Variable`` headers kept as a list."""
    out: dict[str, Any] = {"Variable": []}
    for line in block.decode("utf-8", "replace").split("\r\n"):
        k, sep, v = line.partition(":")
        if not sep:
            continue
        k, v = k.strip(), v.strip()
        if k.lower() == "variable":
            out["Variable"].append(v)
        else:
            out.setdefault(k, v)
    return out


class AmiProxy:
    """A loopback TCP proxy between the daemon and Asterisk's AMI: :meth:`cut` severs every
    connection; every action the daemon sends is logged (time, connection, Action, ActionID,
    ChannelId, and an Originate's Variable headers)."""

    def __init__(self, upstream_port: int, host: str = "127.0.0.1") -> None:
        self.host, self.upstream_port = host, upstream_port
        self.listener = socket.create_server((host, 0))
        self.port: int = self.listener.getsockname()[1]
        self.actions: list[dict[str, Any]] = []
        self.cuts: list[float] = []
        self.connections = 0
        self._lock = threading.Lock()
        self._socks: list[socket.socket] = []
        self._closed = False

    def start(self) -> AmiProxy:
        threading.Thread(target=self._accept, daemon=True, name="ami-proxy").start()
        return self

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection((self.host, self.upstream_port), timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self.connections += 1
                conn = self.connections
                self._socks += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, conn), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, None), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, conn: int | None) -> None:
        buf = b""
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if conn is not None:  # daemon -> Asterisk: log each complete action
                    buf += data
                    *blocks, buf = buf.split(b"\r\n\r\n")
                    now = time.time()
                    for b in blocks:
                        a = _parse_action(b)
                        if "Action" in a:
                            rec = {"t": now, "conn": conn, "action": a["Action"], "action_id": a.get("ActionID", ""),
                                   "channel_id": a.get("ChannelId", ""), "channel": a.get("Channel", ""),
                                   "value": a.get("Value", ""), "variables": a["Variable"]}
                            with self._lock:
                                self.actions.append(rec)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> float:
        """Sever every connection now (both directions); returns the time of the cut."""
        with self._lock:
            socks, self._socks = self._socks, []
            t = time.time()
            self.cuts.append(t)
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                s.close()
        return t

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self.listener.close()
        self.cut()


# --------------------------------------------------------------------------- the witness

class Witness:
    """An AMI session straight to Asterisk (never cut): Hangup and OriginateResponse events with
    their times, and Asterisk's channels (with their CC_* variables) on demand."""

    def __init__(self, port: int, username: str, secret: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.settimeout(None)
        self.hangups: dict[str, float] = {}  # Uniqueid -> time
        self.originate_failed: dict[str, float] = {}  # ActionID -> time
        self.dial_ends: dict[str, list[float]] = {}  # calling channel -> times of its DialEnd events
        self._lists: dict[str, tuple[list[Message], threading.Event]] = {}
        self._lock = threading.Lock()
        self._n = 0
        self._send("Login", {"Username": username, "Secret": secret, "Events": "call"})
        threading.Thread(target=self._read, daemon=True, name="ami-witness").start()

    def _send(self, action: str, headers: dict[str, str]) -> None:
        text = f"Action: {action}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        self.sock.sendall(text.encode())

    def _read(self) -> None:
        parser = AmiParser()
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            now = time.time()
            for m in parser.feed(data):
                ev = m.event
                if ev == "Hangup":
                    self.hangups.setdefault(m.get("Uniqueid"), now)
                elif ev == "OriginateResponse" and m.get("Response").lower() != "success":
                    self.originate_failed.setdefault(m.action_id, now)
                elif ev == "DialEnd":
                    self.dial_ends.setdefault(m.get("Channel"), []).append(now)
                with self._lock:
                    entry = self._lists.get(m.action_id)
                if entry is not None and ev:
                    if m.get("EventList").lower() == "complete":
                        entry[1].set()
                    else:
                        entry[0].append(m)

    def channels(self, timeout: float = 10) -> list[Message]:
        with self._lock:
            self._n += 1
            aid = f"witness-{self._n}"
            entry: tuple[list[Message], threading.Event] = ([], threading.Event())
            self._lists[aid] = entry
        self._send("CoreShowChannels", {"ActionID": aid})
        ok = entry[1].wait(timeout)
        with self._lock:
            del self._lists[aid]
        if not ok:
            raise RuntimeError("witness: no CoreShowChannels answer")
        return entry[0]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def caller_calls(chans: list[Message]) -> dict[str, str]:
    """Call id -> context of every caller channel (Surrogate/ and <ZOMBIE> copies left out)."""
    out = {}
    for m in chans:
        name = m.get("Channel")
        if name.startswith("Surrogate/") or "<" in name:
            continue
        v = m.variables()
        if v.get("CC_ROLE") == "caller" and v.get("CC_CALL_ID"):
            out[v["CC_CALL_ID"]] = m.get("Context")
    return out


def compare_state(daemon_calls: list[dict[str, Any]], before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Mismatches between the daemon's calls and Asterisk's caller channels sampled just before and
    just after them: a daemon call with no caller channel in either sample, or a caller waiting in
    ``cc-wait`` in both samples that the daemon does not know."""
    known = {c["call_id"] for c in daemon_calls}
    out = [f"daemon has {c['call_id']} ({c['state']}), Asterisk has no caller channel"
           for c in daemon_calls if c["call_id"] not in before and c["call_id"] not in after]
    out += [f"Asterisk has {cid} waiting in cc-wait, the daemon does not know it"
            for cid, ctx in after.items() if ctx == "cc-wait" and before.get(cid) == "cc-wait" and cid not in known]
    return out


def replayed_originates(actions: list[dict[str, Any]], cuts: list[float], witness: Witness) -> dict[str, Any]:
    """ActionIDs sent twice, and offers sent again across a cut with the first one's end unseen:
    an Originate for a (call, agent) pair whose earlier Originate was sent before a cut that lies
    between the two, with neither its failure nor its leg's hangup seen; or the same ``CC_OFFER``
    (phones, caller) set on the same caller channel again across a cut with no DialEnd of that
    caller between the two (the connect where the caller's own Dial() rings the agents)."""
    seen: dict[str, int] = {}
    for a in actions:
        if a["action_id"]:
            seen[a["action_id"]] = seen.get(a["action_id"], 0) + 1
    dup_ids = sorted(k for k, n in seen.items() if n > 1)
    by_pair: dict[tuple[str, str], list[dict[str, Any]]] = {}
    originates = [a for a in actions if a["action"].lower() == "originate"]
    for a in originates:
        v = dict(x.split("=", 1) for x in a["variables"] if "=" in x)
        by_pair.setdefault((v.get("CC_CALL_ID", ""), v.get("CC_AGENT", "")), []).append(a)
    ring_offers = [a for a in actions if a["action"].lower() == "setvar" and a["variables"] == ["CC_OFFER"]]
    by_ring: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for a in ring_offers:
        by_ring.setdefault((a["channel"], a["value"]), []).append(a)
    replays = []
    for (chan, value), sent in by_ring.items():
        for first, second in zip(sent, sent[1:]):
            if not any(first["t"] <= c <= second["t"] for c in cuts):
                continue
            if not any(first["t"] <= t <= second["t"] for t in witness.dial_ends.get(chan, [])):
                replays.append({"channel": chan, "offer": value[:60], "first": first["action_id"],
                                "second": second["action_id"]})
    for pair, sent in by_pair.items():
        for first, second in zip(sent, sent[1:]):
            if not any(first["t"] <= c <= second["t"] for c in cuts):
                continue
            ended = min(witness.originate_failed.get(first["action_id"], 1e18),
                        witness.hangups.get(first["channel_id"], 1e18))
            if ended > second["t"]:
                replays.append({"call_id": pair[0], "agent": pair[1], "first": first["action_id"],
                                "second": second["action_id"]})
    return {"originates": len(originates), "ring_offers": len(ring_offers), "offers": len(originates) + len(ring_offers),
            "actions": len(actions), "duplicate_action_ids": dup_ids,
            "replayed_originates": replays}


# --------------------------------------------------------------------------- the bench

@dataclass
class FaultBench(LoadBench):
    """A load bench whose daemon reaches AMI through :class:`AmiProxy`; Asterisk itself listens on
    the configured port (the lab is rendered from ``lab_config_path``, the daemon runs on
    ``config_path``)."""

    proxy: AmiProxy | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.ami_port = int(self.cfg["ami"]["port"])
        self.lab_config_path = self.workdir / "lab.yaml"
        self.lab_config_path.write_text(yaml.safe_dump(self.cfg))
        self.proxy = AmiProxy(self.ami_port)
        self.daemon_cfg = {**self.cfg, "ami": {**self.cfg["ami"], "port": self.proxy.port}}
        self.config_path.write_text(yaml.safe_dump(self.daemon_cfg))
        self.daemons: list[Daemon] = []

    def __enter__(self) -> FaultBench:
        assert self.proxy is not None
        try:
            self.proxy.start()
            self.stack.callback(self.proxy.close)
            self.info = self.stack.enter_context(self.lab.session(self.lab_config_path))
            self.lab.rx("channel request hangup all")
            self.stack.callback(self._stop_all)
            self.start_daemon()
            self._wait_http(20)
            self._login_pool()
        except BaseException:
            self.stack.close()
            raise
        return self

    def start_daemon(self, timeout: float = 30) -> float:
        """A daemon on this bench's config and database; returns when it has resynced (seconds taken)."""
        t0 = time.time()
        d = Daemon(self.config_path, self.workdir / "daemon.log")
        d.KEEP = EVENTS  # type: ignore[misc] - this bench also reads these
        self.daemon = d.start()
        self.daemons.append(d)
        d.wait_for("ami.resynced", timeout)
        return time.time() - t0

    def kill_daemon(self) -> float:
        assert self.daemon is not None and self.daemon.proc is not None
        t = time.time()
        os.killpg(self.daemon.proc.pid, signal.SIGKILL)
        self.daemon.proc.wait(10)
        return t

    def wait_event_after(self, event: str, after: float, timeout: float) -> dict[str, Any] | None:
        """The daemon's first ``event`` logged at or after ``after`` (epoch), or None on timeout."""
        assert self.daemon is not None
        d, deadline = self.daemon, time.monotonic() + timeout
        with d.cond:
            while True:
                for e in d.events:
                    if e.get("event") == event and "timestamp" in e and _ts(e["timestamp"]) >= after:
                        return e
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                d.cond.wait(left)

    def run_step(self, *args: Any, **kw: Any) -> tuple[threading.Thread, dict[str, Any]]:
        """:meth:`step` in a thread; its result (or its error) lands in the returned dict."""
        out: dict[str, Any] = {}

        def go() -> None:
            try:
                out.update(self.step(*args, **kw))
            except Exception as e:  # noqa: BLE001 - reported by the caller
                out["error"] = repr(e)
        t = threading.Thread(target=go, daemon=True, name="bench-step")
        t.start()
        return t, out

    def step_sipps(self) -> list[Any]:
        return [p for p in self.sipps if p.name.startswith(f"step{self.steps}-")]

    def wait_status(self, pred: Any, timeout: float, every: float = 0.1) -> tuple[float | None, dict[str, Any]]:
        """Poll /status until ``pred(status)``: (the time it first held, the status), or (None, last)."""
        deadline, last = time.monotonic() + timeout, {}
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError):
                last = self.status()
                if pred(last):
                    return time.time(), last
            time.sleep(every)
        return None, last

    def call_rows(self, since: float) -> list[sqlite3.Row]:
        return self._rows(since)


def _summary(xs: list[float]) -> dict[str, float | None]:
    return {"max_s": round(max(xs), 3) if xs else None, "p50_s": round(statistics.median(xs), 3) if xs else None}


def _step_figures(r: dict[str, Any]) -> dict[str, Any]:
    keys = ("offered", "completed", "failed", "lost", "not_queued", "outcomes", "calls_recorded", "channels_left",
            "channels_left_detail",
            "agents_not_ready", "ami_reconnects", "lost_examples", "sipp_errors", "error")
    return {k: r[k] for k in keys if k in r}


# --------------------------------------------------------------------------- case a

def _callers_running(b: FaultBench) -> bool:
    """The step's SIPp callers are still calling (a cut after them would find nothing to disturb)."""
    procs = [p for p in b.step_sipps() if not p.name.endswith("-login")]
    return any(p.running() for p in procs)


def ami_cuts(b: FaultBench, *, concurrent: int, calls: int, cuts: int, gap_s: float, rate: float = 10.0,
             first_after_s: float = 4.0) -> dict[str, Any]:
    """Cut AMI ``cuts`` times during one step: per cut the time to ``ami.resynced`` and the state check."""
    assert b.proxy is not None
    w = Witness(b.ami_port, b.cfg["ami"]["username"], b.cfg["ami"]["secret"])
    try:
        thread, res = b.run_step(concurrent, rate, calls, settle_s=30)
        time.sleep(first_after_s)
        per_cut: list[dict[str, Any]] = []
        while len(per_cut) < cuts and thread.is_alive() and _callers_running(b):
            t = b.proxy.cut()
            e = b.wait_event_after("ami.resynced", t, 30)
            if e is None:
                per_cut.append({"at": t, "resync_s": None, "mismatches": ["no ami.resynced within 30 s"]})
                continue
            resync_s = _ts(e["timestamp"]) - t
            before = caller_calls(w.channels())
            status = b.status()
            after = caller_calls(w.channels())
            mism = compare_state(status.get("calls", []), before, after)
            if mism:  # a caller hanging up as we sample: the daemon learns it one AMI event later
                time.sleep(1.0)
                before2 = caller_calls(w.channels())
                status2 = b.status()
                again = compare_state(status2.get("calls", []), before2, caller_calls(w.channels()))
                mism = [m for m in mism if m in again]  # only what still disagrees a second later
            per_cut.append({"at": t, "resync_s": round(resync_s, 3), "daemon_calls": len(status.get("calls", [])),
                            "asterisk_callers": len(after), "synced": status.get("synced"), "mismatches": mism})
            b.say(f"cut {len(per_cut)}: resynced in {resync_s:.2f} s, {len(status.get('calls', []))} calls, "
                  f"{len(mism)} mismatches")
            time.sleep(gap_s)
        thread.join()
        times = [c["resync_s"] for c in per_cut if c["resync_s"] is not None]
        replay = replayed_originates(list(b.proxy.actions), list(b.proxy.cuts), w)
    finally:
        w.close()
    return {"case": "ami-cut", "concurrent": concurrent, "cuts": len(per_cut), "cuts_planned": cuts,
            "resync": _summary(times), "resync_over_5s": sum(1 for x in times if x >= 5),
            "no_resync": sum(1 for c in per_cut if c["resync_s"] is None),
            "mismatches": sum(len(c["mismatches"]) for c in per_cut),
            "mismatch_examples": [m for c in per_cut for m in c["mismatches"]][:5],
            **replay, "replayed_originates": replay["replayed_originates"][:5],
            "replayed_originates_n": len(replay["replayed_originates"]),
            "per_cut": per_cut, "step": _step_figures(res)}


# --------------------------------------------------------------------------- case b

class LegSampler:
    """Samples Asterisk's channels every ``every`` s: the agent legs per desk phone endpoint
    (``PJSIP/30NN-…``); two at once for one endpoint is an agent offered two calls at once."""

    def __init__(self, b: FaultBench, every: float = 0.25) -> None:
        self.b, self.every = b, every
        self.samples = 0
        self.doubles: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name="leg-sampler")

    def __enter__(self) -> LegSampler:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.thread.join(10)

    def _run(self) -> None:
        phones = set(self.b.cfg["phones"])
        while not self._stop.wait(self.every):
            per: dict[str, list[str]] = {}
            for line in self.b.lab.rx("core show channels concise").splitlines():
                name = line.split("!", 1)[0]
                if not name.startswith("PJSIP/") or "<" in name:
                    continue
                ep = name[6:].rsplit("-", 1)[0]
                if ep in phones:
                    per.setdefault(ep, []).append(name)
            self.samples += 1
            for ep, names in per.items():
                if len(names) > 1:
                    self.doubles.append({"t": time.time(), "endpoint": ep, "channels": names})


def daemon_kill(b: FaultBench, *, waiting: int, rate: float = 10.0) -> dict[str, Any]:
    """SIGKILL the daemon with ``waiting`` callers waiting; start a new one; every caller served."""
    calls = waiting + b.agents
    with LegSampler(b) as legs:
        thread, res = b.run_step(calls, rate, calls, ivr_share=0.0, abandon_share=0.0, settle_s=30)
        t_wait, st = b.wait_status(lambda s: sum(1 for c in s.get("calls", []) if c["state"] == "waiting") >= waiting,
                                   timeout=calls / rate + 30, every=0.2)
        n_waiting = sum(1 for c in st.get("calls", []) if c["state"] == "waiting")
        t_kill = b.kill_daemon()
        b.say(f"daemon killed with {n_waiting} waiting")
        restart_s = b.start_daemon()
        _, st2 = b.wait_status(lambda s: True, 5)
        adopted = sum(1 for c in st2.get("calls", []) if c["state"] == "waiting")
        thread.join()
    doubles_after = [d for d in legs.doubles if d["t"] >= t_kill]
    return {"case": "daemon-kill", "waiting_at_kill": n_waiting, "reached_waiting": t_wait is not None,
            "restart_to_resync_s": round(restart_s, 3), "waiting_adopted": adopted,
            "leg_samples": legs.samples, "double_offers": len(legs.doubles), "double_offers_after_kill": len(doubles_after),
            "double_offer_examples": legs.doubles[:3], "step": _step_figures(res)}


# --------------------------------------------------------------------------- case c

def asterisk_kill(b: FaultBench, *, connected: int, after_calls: int, rate: float = 10.0) -> dict[str, Any]:
    """SIGKILL Asterisk with ``connected`` calls talking: time until /status flags them; restart
    Asterisk; the daemon reconnects and resyncs; a step of ``after_calls`` callers is served."""
    thread, res = b.run_step(connected, rate, connected, ivr_share=0.0, abandon_share=0.0, settle_s=5)
    t_talk, st = b.wait_status(lambda s: sum(1 for c in s.get("calls", []) if c["state"] == "talking") >= connected,
                               timeout=connected / rate + 30, every=0.2)
    talking = {c["call_id"] for c in st.get("calls", []) if c["state"] == "talking"}
    pid = b.lab.pid()
    if pid is None:
        raise RuntimeError("no lab Asterisk to kill")
    pidfd = os.pidfd_open(pid)  # to know when it is really gone (a busy kernel takes a while)
    t_kill = time.time()
    os.kill(pid, signal.SIGKILL)
    b.say(f"asterisk killed with {len(talking)} calls talking")
    t_flag, st_flag = b.wait_status(
        lambda s: bool(talking) and all(c.get("interrupted") for c in s.get("calls", []) if c["call_id"] in talking),
        timeout=10, every=0.05)
    ev = b.wait_event_after("calls.interrupted", t_kill, 0.5)
    t_unsynced, _ = b.wait_status(lambda s: s.get("synced") is False, timeout=5, every=0.05)
    for p in b.step_sipps():  # the callers' Asterisk is gone: their calls cannot end well
        p.stop()
    try:  # until the killed Asterisk has exited: before that, lab.up would find it "running"
        select.select([pidfd], [], [], 10)
    finally:
        os.close(pidfd)
    with contextlib.suppress(ChildProcessError, OSError):  # and reaped, if it was our child
        os.waitpid(pid, os.WNOHANG)
    t_up0 = time.time()
    b.lab.up(b.lab_config_path)
    t_up = time.time()
    e = b.wait_event_after("ami.resynced", t_up0, 30)
    thread.join()
    resync_after_up = (_ts(e["timestamp"]) - t_up0) if e else None  # the daemon may beat lab.up's boot wait
    # how the daemon closed the calls that were talking
    rows = {r["caller_num"]: dict(r) for r in b.call_rows(t_kill - 600)}
    closed = {}
    with contextlib.suppress(sqlite3.Error):
        c = sqlite3.connect(f"file:{b.db}?mode=ro", uri=True, timeout=10)
        qs = ",".join("?" * len(talking))
        closed = dict(c.execute(f"SELECT call_id, outcome FROM calls WHERE call_id IN ({qs})",  # noqa: S608
                                tuple(talking)).fetchall())
        c.close()
    not_ready = b._wait_agents_ready(30)
    after = b.step(after_calls, rate, 2 * after_calls) if e else {"error": "no resync after the restart"}
    return {"case": "asterisk-kill", "talking_at_kill": len(talking), "reached_talking": t_talk is not None,
            "flag_s": round(t_flag - t_kill, 3) if t_flag else None,
            "flag_event_s": round(_ts(ev["timestamp"]) - t_kill, 3) if ev else None,
            "unsynced_s": round(t_unsynced - t_kill, 3) if t_unsynced else None,
            "asterisk_restart_s": round(t_up - t_up0, 2),
            "restart_to_resync_s": round(resync_after_up, 3) if resync_after_up is not None else None,
            "outcomes_of_killed_calls": sorted(set(closed.values()), key=str), "killed_calls_recorded": len(closed),
            "flag_status_sample": [c for c in st_flag.get("calls", []) if c["call_id"] in talking][:2],
            "agents_not_ready_after": not_ready, "calls_in_db": len(rows),
            "killed_step": _step_figures(res), "after_step": _step_figures(after)}


# --------------------------------------------------------------------------- CLI

SIZES = {
    "full": {"cut": {"agents": 40, "concurrent": 100, "calls": 700, "cuts": 20, "gap_s": 2.0, "talk": 5.0},
             "kill": {"agents": 10, "waiting": 30, "talk": 8.0},
             "ast": {"agents": 20, "connected": 20, "after": 20, "talk": 15.0}},
    "reduced": {"cut": {"agents": 10, "concurrent": 30, "calls": 90, "cuts": 3, "gap_s": 3.0, "talk": 3.0},
                "kill": {"agents": 4, "waiting": 10, "talk": 6.0},
                "ast": {"agents": 6, "connected": 6, "after": 6, "talk": 10.0}},
}


def run_case(case: str, size: dict[str, Any], *, verbose: bool, workdir: Path | None = None,
             **bench_kw: Any) -> dict[str, Any]:
    kw = dict(bench_kw)
    if workdir is not None:
        kw["workdir"] = workdir
    if case == "ami-cut":
        s = size["cut"]
        with FaultBench(agents=s["agents"], talk_s=s["talk"], verbose=verbose, **kw) as b:
            return ami_cuts(b, concurrent=s["concurrent"], calls=s["calls"], cuts=s["cuts"], gap_s=s["gap_s"])
    if case == "daemon-kill":
        s = size["kill"]
        with FaultBench(agents=s["agents"], talk_s=s["talk"], verbose=verbose, **kw) as b:
            return daemon_kill(b, waiting=s["waiting"])
    s = size["ast"]
    with FaultBench(agents=s["agents"], talk_s=s["talk"], verbose=verbose, **kw) as b:
        return asterisk_kill(b, connected=s["connected"], after_calls=s["after"])


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="callcenter bench faults",
                                 description="faults under load: AMI cuts, daemon SIGKILL, Asterisk SIGKILL")
    ap.add_argument("--case", action="append", choices=("ami-cut", "daemon-kill", "asterisk-kill"),
                    help="run only this case (repeatable; default: all three)")
    ap.add_argument("--reduced", action="store_true", help="the sizes of tests/asterisk/test_faults.py")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("bench faults: the lab and SIPp need root", file=sys.stderr)
        return 1
    size = SIZES["reduced" if a.reduced else "full"]
    results: list[dict[str, Any]] = []
    try:
        with interrupt_on_stop_signals():
            for case in a.case or ["ami-cut", "daemon-kill", "asterisk-kill"]:
                r = run_case(case, size, verbose=a.verbose or not a.json)
                results.append(r)
                if not a.json:
                    print(json.dumps({k: v for k, v in r.items() if k != "per_cut"}, indent=1), flush=True)
    except (LabError, RuntimeError, OSError) as e:
        print(f"bench faults: {e}", file=sys.stderr)
        if a.json:
            print(json.dumps({"cases": results, "error": str(e)}))
        return 1
    except KeyboardInterrupt as e:
        print(f"bench faults: stopped ({e or 'SIGINT'})", file=sys.stderr)
        return 130
    if a.json:
        print(json.dumps({"cases": results}))
    return 0
