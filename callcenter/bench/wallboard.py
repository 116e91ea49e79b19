"""``callcenter bench wallboard``: from an AMI event to 200 live viewers, and what the viewers cost the daemon.

The real daemon (``callcenter run``, in a subprocess, on free loopback ports) is fed by a fake
Asterisk in this process: an AMI *server* and a FastAGI *client*. Nothing talks to a real Asterisk.

**The stream.** ``data/wallboard_ami.jsonl.gz`` is 272 AMI events recorded from the lab Asterisk
(``callcenter bench load --steps 8 --agents 6 --abandon-share 0.3``, logged in as the daemon's AMI
user, so Asterisk's event filter applied: Newchannel, DialBegin, DialEnd, BridgeEnter, Hangup,
DeviceStateChange, FullyBooted). One recorded event of each shape is the template of what is
replayed; the identifiers (channels, uniqueids, linkedid, bridge, call id, agent, phone,
``CC_ENTERED``, queue) are rewritten per simulated call, everything else is sent as recorded.
``--callers`` simulated callers (60) call again and again, each call in the recorded order:

1. ``Newchannel`` of the trunk channel, then the FastAGI ``ivr`` session Asterisk would run (a DID
   straight to queue ``wall``: the daemon answers, sets ``CC_CALL_ID``, queues the call);
2. waiting until the daemon rings an agent — its ``Setvar CC_OFFER`` + ``Redirect`` on AMI, or
   ``CC_OFFER`` set inside the AGI session — or giving up after 4–20 s (caller ``Hangup``);
3. the ring: ``Newchannel`` of the agent leg, ``DialBegin`` (caller → ``PJSIP/<phone>-…``),
   ``DeviceStateChange`` BUSY (SIPp's phones showed BUSY, not RINGING), 0.3–2 s, then one of
   65 % answered (the ``agent-claim`` FastAGI session of the leg, ``DialEnd`` ANSWER, two
   ``BridgeEnter``, 1–4 s talk, caller ``Hangup``, agent-leg ``Hangup`` with ``CC_ROLE=agent``,
   ``DeviceStateChange`` NOT_INUSE), 20 % not answered (``DialEnd`` NOANSWER — the recording has
   only ANSWER and CANCEL: the CANCEL event with its status changed —, the leg's ``Hangup``,
   NOT_INUSE; the caller waits for the next ring) or 15 % the caller hangs up while it rings
   (caller ``Hangup``, ``DialEnd`` CANCEL, the leg's ``Hangup``, NOT_INUSE).

The AMI events are written at ``--rate`` per second exactly; when no call has an event due, the
slot is filled with a recorded ``DeviceStateChange`` of the trunk (which the daemon parses and
drops), so ``--events`` events always take ``events / rate`` seconds. The agents (40, phones
3001..) are logged in through the API before the replay; ``wrapup_s`` 1, ``retry_s`` 1, no
auto-pause. The fake AMI answers the resync (no channels; every phone NOT_INUSE) and every action
with ``Response: Success``.

**Latency.** The AMI events whose effect on the stream is certain are timed: an agent leg's
``Hangup`` → ``call.ended`` (that call), a caller's ``Hangup`` while waiting or ringing →
``call.ended`` (that call), ``DialEnd`` NOANSWER → ``agent.state`` of that agent leaving Reserved.
The stream event is the first of that kind and key whose ``at`` (the daemon's clock, the same host
clock) is after the write; its ``seq`` is then looked up in every viewer: latency = when that
viewer's socket delivered it − when the AMI event was written, over all (event, viewer) pairs.
``call.queued`` / ``call.answered`` come from FastAGI and are reported apart (``agi_*``). The
viewers are raw WebSocket clients (``GET /api/v1/events?access_token=…``, read-only token, every
team) in this process that only find each message's ``seq``: they cost a few microseconds per
message, so the latency is the daemon's.

**Cost of the viewers.** Two replays of the same seeded stream, each with a fresh daemon: first
with no viewer, then with ``--viewers``. ``cpu_share`` = (the daemon's CPU seconds, utime+stime of
all its threads from ``/proc/<pid>/stat``, during the replay with viewers − during the one without)
/ wall seconds: the share of one core the viewers add. ``db_queries_per_viewer`` = (SQL statements
the daemon ran during the replay with viewers − without) / viewers, counted exactly: the daemon
runs under ``--serve``, which is ``callcenter run`` with a trace callback on every SQLite
connection (``sqlite3.connect`` wrapped before the daemon is imported; the daemon's code is
unchanged); the baseline is scaled by the ratio of calls started (the callers react to the daemon,
so one replay may start a call or two more), and ``sql_differences`` names the statements whose
counts differ most (literals folded). ``ami_actions_per_viewer`` likewise from the actions the fake
AMI received. The statements run while the viewers connect (token, snapshot) are reported too.
``--profile FILE`` runs the daemon of the second replay under cProfile, to see where the time goes.

Targets (issue): p95 ≤ 250 ms; 200 viewers add ≤ 10 % of one core; no database or AMI query per
viewer (met when the difference is below half a statement per viewer: the two replays are the same
stream, but the daemon's routing may differ by a call or two between them).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import contextlib
import gzip
import hashlib
import json
import os
import random
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from callcenter.bench.load import cpu_s
from callcenter.protocol.ami import AmiParser, Message
from callcenter.telemetry import percentile

__all__ = ["main", "run_bench", "load_recording", "Templates"]

DATA = Path(__file__).with_name("data") / "wallboard_ami.jsonl.gz"
DID, QUEUE, TRUNK_DEVICE = "5552000", "wall", "PJSIP/trunk-pstn"
READ_TOKEN = "wallboard-bench-read-token"  # scopes [read], every team: the kiosk's token
OPS_TOKEN = "wallboard-bench-ops-token"  # scopes [read, agent, supervise]: logs the agents in
TARGET_P95_MS, TARGET_CPU_SHARE, TARGET_PER_VIEWER = 250.0, 0.10, 0.5
SQL_OUT_ENV = "CALLCENTER_BENCH_SQL_OUT"
PROFILE_ENV = "CALLCENTER_BENCH_PROFILE"  # --profile: cProfile of the daemon with viewers, to this file
ANSWER, NOANSWER = 0.65, 0.20  # of the rings; the rest (0.15): the caller hangs up while it rings
Headers = tuple[tuple[str, str], ...]


# --------------------------------------------------------------------------- the recording
def load_recording(path: Path = DATA) -> list[tuple[float, Headers]]:
    """The recorded events: (seconds since the first, headers in order)."""
    with gzip.open(path, "rt") as f:
        return [(t, tuple((k, v) for k, v in h)) for t, h in (json.loads(line) for line in f)]


def _vars(h: Headers, key: str = "ChanVariable") -> dict[str, str]:
    return dict(v.split("=", 1) for k, v in h if k == key and "=" in v)


def _normalise(h: Headers, ids: dict[str, str]) -> Headers:
    """Recorded identifiers -> ``{placeholders}`` (longest first: a channel name holds its phone)."""
    order = sorted(ids, key=len, reverse=True)
    out = []
    for k, v in h:
        for old in order:
            if old and old in v:
                v = v.replace(old, "{" + ids[old] + "}")
        out.append((k, v))
    return tuple(out)


_SLOT = re.compile(r"\{(\w+)\}")
_LITERAL = re.compile(r"'(?:[^']|'')*'|\b\d+(?:\.\d+)?\b")  # the values the trace shows bound into SQL


@dataclass(frozen=True)
class Templates:
    """One recorded event of each shape the replay sends, identifiers as ``{placeholders}``."""

    shapes: dict[str, Headers]

    @classmethod
    def from_recording(cls, rec: list[tuple[float, Headers]]) -> Templates:
        evs = [dict(h) | {"_h": h} for _, h in rec]  # type: ignore[operator]
        ans = next(e for e in evs if e["Event"] == "DialEnd" and e["DialStatus"] == "ANSWER")
        can = next(e for e in evs if e["Event"] == "DialEnd" and e["DialStatus"] == "CANCEL")

        def ids(d: dict[str, Any]) -> dict[str, str]:
            cv, dv = _vars(d["_h"]), _vars(d["_h"], "DestChanVariable")
            phone = d["DestChannel"].split("/", 1)[1].rsplit("-", 1)[0]
            out = {d["Channel"]: "caller", d["Uniqueid"]: "cuid", d["DestChannel"]: "leg",
                   d["DestUniqueid"]: "luid", cv["CC_CALL_ID"]: "call", cv["CC_ENTERED"]: "entered",
                   "CC_QUEUE=" + cv["CC_QUEUE"]: "queue", "PJSIP/" + phone: "device", d["CallerIDNum"]: "num",
                   d["CallerIDName"]: "name"}
            if dv.get("CC_AGENT"):
                out[dv["CC_AGENT"]] = "agent"
            out[phone] = "phone"
            return out

        a_ids, c_ids = ids(ans), ids(can)
        call_a = {ans["Channel"], ans["DestChannel"]}

        def pick(event: str, pred: Callable[[dict[str, Any]], bool], ids_: dict[str, str]) -> Headers:
            return _normalise(next(e for e in evs if e["Event"] == event and pred(e))["_h"], ids_)

        bridge = next(e for e in evs if e["Event"] == "BridgeEnter" and e["Channel"] in call_a)
        a_ids[bridge["BridgeUniqueid"]] = "bridge"
        dsc = next(e for e in evs if e["Event"] == "DeviceStateChange")
        shapes = {
            "caller_new": pick("Newchannel", lambda e: e["Channel"] == ans["Channel"], a_ids),
            "leg_new": pick("Newchannel", lambda e: e["Channel"] == ans["DestChannel"], a_ids),
            "dial_begin": pick("DialBegin", lambda e: e["Channel"] == ans["Channel"], a_ids),
            "dial_end_answer": _normalise(ans["_h"], a_ids),
            "dial_end_cancel": _normalise(can["_h"], c_ids),
            "bridge_leg": pick("BridgeEnter", lambda e: e["Channel"] == ans["DestChannel"], a_ids),
            "bridge_caller": pick("BridgeEnter", lambda e: e["Channel"] == ans["Channel"], a_ids),
            "hangup_caller": pick("Hangup", lambda e: e["Channel"] == ans["Channel"], a_ids),
            "hangup_leg_answered": pick("Hangup", lambda e: e["Channel"] == ans["DestChannel"], a_ids),
            "hangup_leg_unanswered": pick("Hangup", lambda e: e["Channel"] == can["DestChannel"], c_ids),
            "dsc": tuple((k, "{state}" if k == "State" else v)  # its State is set per event
                         for k, v in _normalise(dsc["_h"], {dsc["Device"]: "device"})),
            "booted": next(e for e in evs if e["Event"] == "FullyBooted")["_h"],
        }
        return cls(shapes)

    def event(self, shape: str, **values: str) -> bytes:
        """The event ``shape`` with its placeholders filled (one not given: empty, as a caller who
        hangs up before any ring has no connected line)."""
        lines = []
        for k, v in self.shapes[shape]:
            if "{" in v:
                v = _SLOT.sub(lambda m: values.get(m[1], ""), v)
            lines.append(f"{k}: {v}\r\n")
        return ("".join(lines) + "\r\n").encode()


def _encode(headers: Headers | list[tuple[str, str]]) -> bytes:
    return ("".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n").encode()


# --------------------------------------------------------------------------- the fake Asterisk: AMI
class FakeAmi:
    """An AMI server for one client (the daemon): login, the resync lists, ``Success`` to every
    other action; ``on_offer(channel, value)`` for each ``Setvar CC_OFFER``."""

    def __init__(self, phones: list[str], booted: Headers, on_offer: Callable[[str, str], None]):
        self.phones, self.booted, self.on_offer = phones, booted, on_offer
        self.writer: asyncio.StreamWriter | None = None
        self.ready = asyncio.Event()
        self.actions: collections.Counter[str] = collections.Counter()
        self.server: asyncio.AbstractServer | None = None
        self.logins = 0

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 2)

    def write(self, data: bytes) -> None:
        if self.writer is not None and not self.writer.is_closing():
            self.writer.write(data)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"Asterisk Call Manager/7.0.3\r\n")
        parser = AmiParser()
        parser.banner = "Asterisk Call Manager/7.0.3 (the client sends none)"
        try:
            while data := await reader.read(65536):
                for m in parser.feed(data):
                    self._action(m, writer)
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            if self.writer is writer:
                self.writer = None
            writer.close()

    def _action(self, m: Message, w: asyncio.StreamWriter) -> None:
        name, aid = m.get("Action").lower(), m.get("ActionID")
        self.actions[name] += 1
        ok = [("Response", "Success"), ("ActionID", aid)]
        if name == "login":
            self.logins += 1
            w.write(_encode([*ok, ("Message", "Authentication accepted")]))
            w.write(_encode(self.booted))
            self.writer = w
            self.ready.set()
        elif name == "coreshowchannels":
            w.write(_encode([*ok, ("EventList", "start"), ("Message", "Channels will follow")]))
            w.write(_encode([("Event", "CoreShowChannelsComplete"), ("ActionID", aid), ("EventList", "Complete"),
                             ("ListItems", "0")]))
        elif name == "devicestatelist":
            w.write(_encode([*ok, ("EventList", "start"), ("Message", "Device State Changes will follow")]))
            for p in self.phones:
                w.write(_encode([("Event", "DeviceStateChange"), ("ActionID", aid), ("Device", f"PJSIP/{p}"),
                                 ("State", "NOT_INUSE")]))
            w.write(_encode([("Event", "DeviceStateListComplete"), ("ActionID", aid), ("EventList", "Complete"),
                             ("ListItems", str(len(self.phones)))]))
        else:
            w.write(_encode(ok))
            if name == "setvar" and m.get("Variable") == "CC_OFFER":
                self.on_offer(m.get("Channel"), m.get("Value"))


# --------------------------------------------------------------------------- the fake Asterisk: FastAGI
def _agi_env(port: int, script: str, args: tuple[str, ...], channel: str, uniqueid: str, num: str,
             name: str) -> bytes:
    lines = ["agi_network: yes", f"agi_network_script: {script}", f"agi_request: agi://127.0.0.1:{port}/{script}",
             f"agi_channel: {channel}", "agi_language: en", "agi_type: PJSIP", f"agi_uniqueid: {uniqueid}",
             "agi_version: 20.0.0", f"agi_callerid: {num}", f"agi_calleridname: {name}", "agi_callingpres: 0",
             "agi_callingani2: 0", "agi_callington: 0", "agi_callingtns: 0", f"agi_dnid: {DID}",
             "agi_rdnis: unknown", "agi_context: cc-trunk-pstn", f"agi_extension: {DID}", "agi_priority: 2",
             "agi_enhanced: 0.0", "agi_accountcode: ", "agi_threadid: 1"]
    lines += [f"agi_arg_{i}: {a}" for i, a in enumerate(args, 1)]
    return ("\n".join(lines) + "\n\n").encode()


async def agi_session(port: int, script: str, args: tuple[str, ...], channel: str, uniqueid: str,
                      variables: dict[str, str], *, num: str = "5550100", name: str = "Bench") -> float:
    """Run one FastAGI session as Asterisk would: every command answered, ``SET VARIABLE`` kept in
    ``variables`` (and read back by ``GET VARIABLE``). Returns when the env was written."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        t = time.time()
        writer.write(_agi_env(port, script, args, channel, uniqueid, num, name))
        while line := await asyncio.wait_for(reader.readline(), 30):
            words = shlex.split(line.decode("utf-8", "replace"))
            if not words:
                continue
            verb = " ".join(words[:2]).upper()
            if verb == "SET VARIABLE" and len(words) >= 4:
                variables[words[2]] = words[3]
                writer.write(b"200 result=1\n")
            elif verb == "GET VARIABLE" and len(words) >= 3:
                val = variables.get(words[2])
                writer.write(f"200 result=1 ({val})\n".encode() if val else b"200 result=0\n")
            elif words[0].upper() == "HANGUP":
                writer.write(b"200 result=1\n")
            else:
                writer.write(b"200 result=0\n")
        return t
    finally:
        writer.close()


# --------------------------------------------------------------------------- the viewers
class Viewer(asyncio.Protocol):
    """A raw WebSocket client of ``/api/v1/events``: notes when each event's ``seq`` arrived (and,
    for the reference viewer, the event itself); answers pings. No JSON per message otherwise."""

    PREFIX = b'{"type":"event","seq":'

    def __init__(self, request: bytes, *, reference: bool = False):
        loop = asyncio.get_running_loop()
        self.request, self.reference = request, reference
        self.recv: dict[int, float] = {}
        self.events: list[dict[str, Any]] = []
        self.floors = self.snapshots = self.messages = 0
        self.buf = bytearray()
        self.open = False
        self.lost_at: float | None = None
        self.snapshot = loop.create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(self.request)  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        self.lost_at = time.time()
        if not self.snapshot.done():
            self.snapshot.set_exception(ConnectionError("closed before the snapshot"))

    def data_received(self, data: bytes) -> None:
        now = time.time()
        self.buf += data
        if not self.open:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buf[:end])
            del self.buf[:end + 4]
            if not head.startswith(b"HTTP/1.1 101"):
                if not self.snapshot.done():
                    self.snapshot.set_exception(ConnectionError(head.split(b"\r\n", 1)[0].decode()))
                return
            self.open = True
        buf, pos, n = self.buf, 0, len(self.buf)
        while n - pos >= 2:
            b0, size, hdr = buf[pos], buf[pos + 1] & 0x7F, 2
            if size == 126:
                if n - pos < 4:
                    break
                size, hdr = int.from_bytes(buf[pos + 2:pos + 4], "big"), 4
            elif size == 127:
                if n - pos < 10:
                    break
                size, hdr = int.from_bytes(buf[pos + 2:pos + 10], "big"), 10
            if n - pos < hdr + size:
                break
            payload = bytes(buf[pos + hdr:pos + hdr + size])
            pos += hdr + size
            op = b0 & 0x0F
            if op == 1:  # one JSON message per line: the daemon batches what is due in one frame
                for line in payload.split(b"\n"):
                    self._text(line, now)
            elif op == 9:
                self._send(0xA, payload)
            elif op == 8 and self.transport is not None:
                self.transport.close()
        del buf[:pos]

    def _text(self, p: bytes, now: float) -> None:
        self.messages += 1
        if p.startswith(self.PREFIX):
            seq = int(p[len(self.PREFIX):p.index(b",", len(self.PREFIX))])
            self.recv[seq] = now
            if self.reference:
                self.events.append(json.loads(p))
        elif p.startswith(b'{"type":"floor"'):
            self.floors += 1
        elif p.startswith(b'{"type":"snapshot"'):
            self.snapshots += 1
            if not self.snapshot.done():
                self.snapshot.set_result(now)

    def _send(self, op: int, payload: bytes) -> None:
        if self.transport is None or self.transport.is_closing() or len(payload) > 125:
            return
        mask = os.urandom(4)
        self.transport.write(bytes([0x80 | op, 0x80 | len(payload)]) + mask
                             + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self._send(0x8, b"\x03\xe8")
            self.transport.close()


async def connect_viewers(port: int, n: int, timeout_s: float = 60.0) -> list[Viewer]:
    """``n`` viewers, 20 connecting at a time; each has its snapshot when this returns."""
    loop = asyncio.get_running_loop()
    viewers: list[Viewer] = []

    async def one(i: int) -> Viewer:
        key = base64.b64encode(os.urandom(16)).decode()
        req = (f"GET /api/v1/events?access_token={READ_TOKEN} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
               f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n").encode()
        _, v = await loop.create_connection(lambda: Viewer(req, reference=i == 0), "127.0.0.1", port)
        viewers.append(v)
        await asyncio.wait_for(v.snapshot, timeout_s)
        return v

    out: list[Viewer] = []
    for start in range(0, n, 20):
        out += await asyncio.gather(*(one(i) for i in range(start, min(n, start + 20))))
    return out


# --------------------------------------------------------------------------- the simulated floor
@dataclass
class Expect:
    """An event written whose stream event is certain: ``kind`` for ``key`` (a call id or an agent)."""

    source: str  # ami | agi
    kind: str
    key: str
    at: float
    seq: int | None = None


@dataclass
class Replay:
    """Writes ``events`` AMI events at ``rate``/s: the callers' events when due, else filler."""

    tpl: Templates
    ami: FakeAmi
    agi_port: int
    agents: dict[str, str]  # phone -> agent
    events: int
    rate: float
    callers: int
    seed: int
    queue: asyncio.Queue[tuple[bytes, Expect | None, asyncio.Future[float] | None, str]] = field(
        default_factory=asyncio.Queue)
    expects: list[Expect] = field(default_factory=list)
    written: collections.Counter[str] = field(default_factory=collections.Counter)
    outcomes: collections.Counter[str] = field(default_factory=collections.Counter)
    offers: dict[str, asyncio.Future[str]] = field(default_factory=dict)  # caller channel -> CC_OFFER
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    agi_s: list[float] = field(default_factory=list)  # FastAGI ``ivr`` sessions: start to end
    started: float = 0.0
    ended: float = 0.0
    _n: int = 0

    def on_offer(self, channel: str, value: str) -> None:
        fut = self.offers.get(channel)
        if fut is not None and not fut.done():
            fut.set_result(value)

    def _uid(self) -> str:
        self._n += 1
        return f"1796300000.{self._n}"

    async def emit(self, shape: str, label: str, expect: Expect | None = None, **values: str) -> float:
        fut: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        await self.queue.put((self.tpl.event(shape, **values), expect, fut, label))
        return await fut

    async def writer(self) -> None:
        filler = [self.tpl.event("dsc", device=TRUNK_DEVICE, state=s) for s in ("INUSE", "NOT_INUSE")]
        t0 = time.perf_counter()
        self.started = time.time()
        for i in range(self.events):
            delay = t0 + i / self.rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                data, expect, fut, label = self.queue.get_nowait()
            except asyncio.QueueEmpty:
                data, expect, fut, label = filler[i % len(filler)], None, None, "filler"
            t = time.time()
            self.ami.write(data)
            self.written[label] += 1
            if expect is not None:
                expect.at = t
                self.expects.append(expect)
            if fut is not None and not fut.done():
                fut.set_result(t)
        self.ended = time.time()

    async def caller(self, k: int) -> None:
        rnd = random.Random(self.seed * 1000 + k)
        while True:
            try:
                await self._call(rnd, k)
            except (OSError, asyncio.TimeoutError, ValueError) as e:
                self.errors[type(e).__name__] += 1
                await asyncio.sleep(0.5)

    async def _call(self, rnd: random.Random, k: int) -> None:
        cuid = self._uid()
        v = {"caller": f"PJSIP/trunk-pstn-{self._n:08x}", "cuid": cuid, "num": f"5558{k:04d}", "name": f"Bench {k}",
             "queue": f"CC_QUEUE={QUEUE}", "call": "", "entered": ""}
        await self.emit("caller_new", "caller_new", **v)
        variables: dict[str, str] = {}
        offer: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.offers[v["caller"]] = offer
        try:
            t = await agi_session(self.agi_port, "ivr", (DID,), v["caller"], cuid, variables, num=v["num"],
                                  name=v["name"])
            self.agi_s.append(time.time() - t)
            v["call"], v["entered"] = variables.get("CC_CALL_ID", ""), variables.get("CC_ENTERED", "")
            if not v["call"]:
                self.outcomes["not_queued"] += 1
                return
            self.expects.append(Expect("agi", "call.queued", v["call"], t))
            if variables.get("CC_NEXT") == "offer" and variables.get("CC_OFFER") and not offer.done():
                offer.set_result(variables["CC_OFFER"])  # rung from inside the AGI session
            deadline = time.monotonic() + rnd.uniform(4, 20)
            while True:
                try:
                    value = await asyncio.wait_for(asyncio.shield(offer), max(0.0, deadline - time.monotonic()))
                except asyncio.TimeoutError:
                    await self.emit("hangup_caller", "hangup_caller", Expect("ami", "call.ended", v["call"], 0.0), **v)
                    self.outcomes["gave_up_waiting"] += 1
                    return
                offer = asyncio.get_running_loop().create_future()
                self.offers[v["caller"]] = offer
                if await self._ring(rnd, v, value):
                    return
        finally:
            self.offers.pop(v["caller"], None)

    async def _ring(self, rnd: random.Random, v: dict[str, str], value: str) -> bool:
        """One ring of the offer ``value``; True when the call is over."""
        phone = value.split("|", 1)[0].split("&", 1)[0].removeprefix("PJSIP/")
        agent = self.agents.get(phone, "")
        luid = self._uid()
        r = {**v, "phone": phone, "device": f"PJSIP/{phone}", "agent": agent, "leg": f"PJSIP/{phone}-{self._n:08x}",
             "luid": luid, "bridge": f"b{self._n:035x}"}
        await self.emit("leg_new", "leg_new", **r)
        await self.emit("dial_begin", "dial_begin", **r)
        await self.emit("dsc", "dsc", **r, state="BUSY")
        await asyncio.sleep(rnd.uniform(0.3, 2.0))
        roll = rnd.random()
        if roll < ANSWER:
            claim: dict[str, str] = {}
            t = await agi_session(self.agi_port, "agent-claim", (v["call"], phone), r["leg"], luid, claim)
            if claim.get("CC_CLAIM") != "ok":
                self.outcomes["claim_refused"] += 1
                await self._unanswered(r, "CANCEL")
                return False
            self.expects.append(Expect("agi", "call.answered", v["call"], t))
            await self.emit("dial_end_answer", "dial_end_answer", **r)
            await self.emit("bridge_leg", "bridge_enter", **r)
            await self.emit("bridge_caller", "bridge_enter", **r)
            await asyncio.sleep(rnd.uniform(1, 4))
            await self.emit("hangup_caller", "hangup_caller", **r)
            await self.emit("hangup_leg_answered", "hangup_leg", Expect("ami", "call.ended", v["call"], 0.0), **r)
            await self.emit("dsc", "dsc", **r, state="NOT_INUSE")
            self.outcomes["answered"] += 1
            return True
        if roll < ANSWER + NOANSWER:
            await self._unanswered(r, "NOANSWER", Expect("ami", "agent.state", agent, 0.0))
            self.outcomes["noanswer"] += 1
            return False
        await self.emit("hangup_caller", "hangup_caller", Expect("ami", "call.ended", v["call"], 0.0), **r)
        await self._unanswered(r, "CANCEL")
        self.outcomes["gave_up_ringing"] += 1
        return True

    async def _unanswered(self, r: dict[str, str], status: str, expect: Expect | None = None) -> None:
        data = self.tpl.event("dial_end_cancel", **r).replace(b"DialStatus: CANCEL", f"DialStatus: {status}".encode())
        fut: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        await self.queue.put((data, expect, fut, "dial_end_" + status.lower()))
        await fut
        await self.emit("hangup_leg_unanswered", "hangup_leg", **r)
        await self.emit("dsc", "dsc", **r, state="NOT_INUSE")

    async def run(self) -> None:
        tasks = [asyncio.create_task(self.caller(k)) for k in range(self.callers)]
        try:
            await self.writer()
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


# --------------------------------------------------------------------------- the daemon
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build_config(tmp: Path, ami_port: int, agents: int) -> tuple[dict[str, Any], dict[str, str]]:
    """The daemon's config (ports free on loopback, a fresh database) and phone -> agent."""
    phones = {f"{3001 + i}": f"wb{i + 1:02d}" for i in range(agents)}
    cfg = {
        "ami": {"host": "127.0.0.1", "port": ami_port, "username": "callcenter", "secret": "bench-ami-secret-1"},
        "agi": {"host": "127.0.0.1", "port": _free_port()},
        "http": {"host": "127.0.0.1", "port": _free_port()},
        "audiosocket": {"host": "127.0.0.1", "port": _free_port()},
        "daemon": {"database": str(tmp / "cc.sqlite3"), "log_format": "json", "reconnect_max_s": 2},
        "recordings": {"dir": str(tmp / "recordings")},
        "phones": {p: {"secret": f"bench-secret-{p}"} for p in phones},
        "agents": {a: {"phone": p} for p, a in phones.items()},
        "queues": {QUEUE: {"members": list(phones.values()), "ring_timeout_s": 60, "wrapup_s": 1, "retry_s": 1,
                           "max_no_answer": 0, "max_wait_s": 900, "hook_interval_s": 60,
                           "fallback": {"hangup": ["goodbye"]}, "recording": {"mode": "none"}}},
        "menus": {},
        "trunks": {"pstn": {"match": ["127.0.0.2"], "dids": {DID: {"queue": QUEUE}}}},
        "access": {"tokens": {
            "wall": {"sha256": hashlib.sha256(READ_TOKEN.encode()).hexdigest(), "scopes": ["read"], "teams": ["*"]},
            "ops": {"sha256": hashlib.sha256(OPS_TOKEN.encode()).hexdigest(), "scopes": ["read", "agent", "supervise"],
                    "teams": ["*"]}}},
    }
    return cfg, phones


def serve_counting_sql(config_path: str) -> int:
    """``callcenter run --config PATH`` with every SQLite statement counted (SIGUSR1 writes the count)."""
    import sqlite3
    # per thread (no lost increments), by statement (its first words: which table, which query)
    counts: dict[int, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    real_connect = sqlite3.connect

    def connect(*a: Any, **kw: Any) -> sqlite3.Connection:
        db = real_connect(*a, **kw)

        def trace(_sql: str) -> None:
            counts[threading.get_ident()][" ".join(_LITERAL.sub("?", _sql[:200]).split()[:6])[:80]] += 1

        db.set_trace_callback(trace)
        return db

    sqlite3.connect = connect  # type: ignore[assignment]
    out = Path(os.environ[SQL_OUT_ENV])

    def dump(*_: Any) -> None:
        tmp = out.with_suffix(".tmp")
        total: collections.Counter[str] = collections.Counter()
        for c in list(counts.values()):
            total.update(c)
        tmp.write_text(json.dumps(total))
        tmp.replace(out)

    signal.signal(signal.SIGUSR1, dump)
    from callcenter.cli import main as cli_main
    profile_to = os.environ.get(PROFILE_ENV)
    if not profile_to:
        return int(cli_main(["run", "--config", config_path]) or 0)
    import cProfile
    prof = cProfile.Profile()
    try:
        return int(prof.runcall(cli_main, ["run", "--config", config_path]) or 0)
    finally:
        prof.dump_stats(profile_to)


async def _sql_count(proc: subprocess.Popen[bytes], out: Path) -> collections.Counter[str]:
    """The statements the daemon has run so far, by statement."""
    out.unlink(missing_ok=True)
    proc.send_signal(signal.SIGUSR1)
    for _ in range(200):
        if out.exists():
            return collections.Counter(json.loads(out.read_text()))
        await asyncio.sleep(0.01)
    raise RuntimeError("the daemon did not report its SQL count")


async def _wait_healthy(port: int, proc: subprocess.Popen[bytes], timeout_s: float = 60.0) -> None:
    import aiohttp
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"daemon exited with {proc.returncode}")
            with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                async with http.get(f"http://127.0.0.1:{port}/healthz") as r:
                    if r.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise RuntimeError("the daemon did not become healthy (AMI synced)")


async def _login_agents(port: int, agents: list[str]) -> None:
    import aiohttp
    h = {"Authorization": f"Bearer {OPS_TOKEN}"}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        for a in agents:
            async with http.post(f"http://127.0.0.1:{port}/api/v1/agents/{a}/login", headers=h) as r:
                if r.status != 200:
                    raise RuntimeError(f"login {a}: {r.status} {await r.text()}")


async def _scrape_lag(port: int, into: list[float]) -> None:
    """The daemon's own loop lag (``callcenter_loop_lag_recent_p99_seconds``), once a second."""
    import aiohttp
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
        while True:
            await asyncio.sleep(1.0)
            with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                async with http.get(f"http://127.0.0.1:{port}/metrics") as r:
                    m = re.search(r"^callcenter_loop_lag_recent_p99_seconds (\S+)$", await r.text(), re.M)
                    if m:
                        into.append(float(m[1]))


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --------------------------------------------------------------------------- one replay
async def replay_once(*, viewers: int, events: int, rate: float, callers: int, agents: int, seed: int,
                      tmp: Path, tpl: Templates, tail_s: float = 1.0, profile: str | None = None) -> dict[str, Any]:
    """A fresh daemon, ``viewers`` connected, the stream replayed; the raw figures of that phase."""
    tmp.mkdir(parents=True, exist_ok=True)
    replay: Replay | None = None
    ami = FakeAmi([], tpl.shapes["booted"], lambda c, v: replay.on_offer(c, v) if replay else None)
    ami_port = await ami.start()
    cfg, phones = build_config(tmp, ami_port, agents)
    ami.phones = list(phones)
    cfg_path = tmp / "cc.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    sql_out = tmp / "sql.count"
    conns: list[Viewer] = []
    with open(tmp / "daemon.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "callcenter.bench.wallboard", "--serve", str(cfg_path)],
                                cwd=tmp, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                                env={**os.environ, SQL_OUT_ENV: str(sql_out),
                                     **({PROFILE_ENV: profile} if profile else {})})
    try:
        http_port = cfg["http"]["port"]
        await _wait_healthy(http_port, proc)
        await _login_agents(http_port, list(phones.values()))
        await asyncio.sleep(0.5)
        sql_before_connect = await _sql_count(proc, sql_out)
        t_connect = time.time()
        conns = await connect_viewers(http_port, viewers) if viewers else []
        connect_s = time.time() - t_connect
        sql_after_connect = await _sql_count(proc, sql_out)
        await asyncio.sleep(0.5)
        replay = Replay(tpl, ami, cfg["agi"]["port"], phones, events, rate, callers, seed)
        actions0, sql0, cpu0, own0 = sum(ami.actions.values()), await _sql_count(proc, sql_out), cpu_s(proc.pid), \
            time.process_time()
        lags: list[float] = []
        scraper = asyncio.create_task(_scrape_lag(http_port, lags))
        try:
            await replay.run()
        finally:
            scraper.cancel()
        cpu1, own1, sql1, actions1 = cpu_s(proc.pid), time.process_time(), await _sql_count(proc, sql_out), \
            sum(ami.actions.values())
        wall = replay.ended - replay.started
        await asyncio.sleep(tail_s)  # the last events reach the viewers
        viewing_s = time.time() - t_connect
        if proc.poll() is not None:
            raise RuntimeError(f"the daemon exited with {proc.returncode} during the replay")
        phase = {"calls_started": replay.written["caller_new"], "calls": dict(replay.outcomes),
                 "events_by_label": dict(replay.written), "cpu_share": round((cpu1 - cpu0) / wall, 4),
                 "sql": (sql1 - sql0).total(), "ami_actions": actions1 - actions0,
                 "loop_lag_p99_ms_max": round(max(lags, default=0.0) * 1000, 1),
                 "agi_ivr_session_p95_ms": _ms(replay.agi_s, 95),
                 "viewers_dropped": sum(1 for v in conns if v.lost_at is not None)}
        return {"viewers": conns, "replay": replay, "wall_s": wall, "cpu_s": cpu1 - cpu0, "bench_cpu_s": own1 - own0,
                "sql": (sql1 - sql0).total(), "sql_by_statement": sql1 - sql0,
                "sql_connect": (sql_after_connect - sql_before_connect).total(), "connect_s": connect_s,
                "viewing_s": viewing_s,
                "ami_actions": actions1 - actions0, "ami_logins": ami.logins,
                "actions_by_name": dict(ami.actions), "phase": phase}
    finally:
        for v in conns:
            v.close()
        _stop(proc)
        await ami.close()


# --------------------------------------------------------------------------- figures
def correlate(expects: list[Expect], reference: list[dict[str, Any]]) -> int:
    """Give each expectation the ``seq`` of the first stream event of its kind and key after it was
    written (``agent.state``: the agent leaving Reserved). Returns how many stayed unmatched."""
    by_key: dict[tuple[str, str], list[tuple[float, int]]] = collections.defaultdict(list)
    for e in reference:
        d = e.get("data") or {}
        if e["kind"] in ("call.ended", "call.queued", "call.answered"):
            by_key[(e["kind"], d.get("call_id", ""))].append((e["at"], e["seq"]))
        elif e["kind"] == "agent.state" and d.get("state") != "Reserved":
            by_key[("agent.state", d.get("agent", ""))].append((e["at"], e["seq"]))
    unmatched = 0
    for x in expects:
        cands = by_key.get((x.kind, x.key), [])
        x.seq = next((seq for at, seq in cands if at >= x.at), None)
        unmatched += x.seq is None
    return unmatched


def _ms(xs: list[float], p: float) -> float | None:
    return round(percentile(sorted(xs), p) * 1000, 1) if xs else None


def _sql_differences(base: collections.Counter[str], live: collections.Counter[str], scale: float,
                     top: int = 6) -> dict[str, list[float]]:
    """The statements whose counts differ most between the replays: [without (scaled), with]."""
    keys = sorted(set(base) | set(live), key=lambda k: -abs(live[k] - base[k] * scale))[:top]
    return {k: [round(base[k] * scale, 1), live[k]] for k in keys}


def figures(base: dict[str, Any], live: dict[str, Any], viewers: int) -> dict[str, Any]:
    replay: Replay = live["replay"]
    conns: list[Viewer] = live["viewers"]
    ref = conns[0].events if conns else []
    unmatched = correlate(replay.expects, ref)
    lat: dict[str, list[float]] = collections.defaultdict(list)
    missing = 0
    for x in replay.expects:
        if x.seq is None:
            continue
        for v in conns:
            got = v.recv.get(x.seq)
            if got is None:
                missing += 1
            else:
                lat[x.source].append(got - x.at)
                lat[f"{x.source}:{x.kind}"].append(got - x.at)
    window = [e["seq"] for e in ref if replay.started <= e["at"] <= replay.ended]  # the replay's own events
    every = bool(conns) and all(all(s in v.recv for s in window) for v in conns)
    ami = lat.get("ami", [])
    wall = live["wall_s"]
    share_live, share_base = live["cpu_s"] / wall, base["cpu_s"] / base["wall_s"]
    added = share_live - share_base
    # The replays are the same seeded stream, but the callers react to the daemon: one may start a
    # few calls more than the other. Statements and actions are per call, so the baseline is scaled
    # by the ratio of calls started before the difference is taken.
    scale = live["phase"]["calls_started"] / max(1, base["phase"]["calls_started"])
    sql_pv = (live["sql"] - base["sql"] * scale) / viewers
    act_pv = (live["ami_actions"] - base["ami_actions"] * scale) / viewers
    out: dict[str, Any] = {
        "p95_ms": _ms(ami, 95), "p99_ms": _ms(ami, 99),
        "cpu_share": round(added, 4),
        "db_queries_per_viewer": round(sql_pv, 3),
        "db_method": "every SQL statement the daemon ran (sqlite3 trace callback on each of its connections), "
                     "replay with viewers minus replay without (scaled by calls started), / viewers",
        "ami_actions_per_viewer": round(act_pv, 3),
        "p50_ms": _ms(ami, 50), "max_ms": _ms(ami, 100),
        "latency_pairs": len(ami), "timed_ami_events": sum(1 for x in replay.expects if x.source == "ami"),
        "by_kind_p95_ms": {k.split(":", 1)[1]: _ms(xs, 95) for k, xs in sorted(lat.items()) if k.startswith("ami:")},
        "agi_p95_ms": _ms(lat.get("agi", []), 95), "agi_p99_ms": _ms(lat.get("agi", []), 99),
        "agi_by_kind_p95_ms": {k.split(":", 1)[1]: _ms(xs, 95) for k, xs in sorted(lat.items())
                               if k.startswith("agi:")},
        "unmatched_expectations": unmatched, "missing_pairs": missing, "every_viewer_got_every_event": every,
        "viewers_connected": len(conns), "viewers_connect_s": round(live["connect_s"], 2),
        "events_replayed": sum(replay.written.values()), "replay_s": round(wall, 2),
        "events_by_label": dict(replay.written), "calls": dict(replay.outcomes), "sim_errors": dict(replay.errors),
        "stream_events": len(window),
        "stream_messages_received": sum(v.messages for v in conns),
        "floor_per_viewer_per_s": (round(sum(v.floors for v in conns) / len(conns) / live["viewing_s"], 2)
                                   if conns else 0),
        "cpu_share_with_viewers": round(share_live, 4), "cpu_share_without": round(share_base, 4),
        "bench_cpu_share": round(live["bench_cpu_s"] / wall, 4),
        "sql_with_viewers": live["sql"], "sql_without": base["sql"], "sql_while_viewers_connected": live["sql_connect"],
        "ami_actions_with_viewers": live["ami_actions"], "ami_actions_without": base["ami_actions"],
        "ami_logins": [base["ami_logins"], live["ami_logins"]],
        "load_avg": [round(x, 2) for x in os.getloadavg()],
        "viewers_missing_events": sum(1 for v in conns if not all(s in v.recv for s in window)),
        "sql_differences": _sql_differences(base["sql_by_statement"], live["sql_by_statement"], scale),
        "without": base["phase"], "with": live["phase"],
    }
    p95 = out["p95_ms"]
    out["targets_met"] = bool(p95 is not None and p95 <= TARGET_P95_MS and added <= TARGET_CPU_SHARE
                              and sql_pv < TARGET_PER_VIEWER and act_pv < TARGET_PER_VIEWER and every
                              and not unmatched and not missing)
    return out


def run_bench(*, viewers: int = 200, events: int = 10_000, rate: float = 200.0, callers: int = 60, agents: int = 40,
              seed: int = 7, keep: str | None = None, profile: str | None = None) -> dict[str, Any]:
    """The replay without viewers (baseline), then with ``viewers``; see the module doc."""
    if not 1 <= agents <= 99 or viewers < 1 or events < 1 or rate <= 0:
        raise ValueError("agents 1..99, viewers >= 1, events >= 1, rate > 0")
    tpl = Templates.from_recording(load_recording())
    with tempfile.TemporaryDirectory(prefix="cc-wallboard-") as tmpdir:
        tmp = Path(keep) if keep else Path(tmpdir)

        async def go() -> dict[str, Any]:
            kw = dict(events=events, rate=rate, callers=callers, agents=agents, seed=seed, tpl=tpl)
            base = await replay_once(viewers=0, tmp=tmp / "without", **kw)  # type: ignore[arg-type]
            live = await replay_once(viewers=viewers, tmp=tmp / "with", profile=profile, **kw)  # type: ignore[arg-type]
            return figures(base, live, viewers)

        return asyncio.run(go())


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="callcenter bench wallboard", description=__doc__.split("\n")[0])
    ap.add_argument("--viewers", type=int, default=200)
    ap.add_argument("--events", type=int, default=10_000, help="AMI events replayed per phase")
    ap.add_argument("--rate", type=float, default=200.0, help="AMI events per second")
    ap.add_argument("--callers", type=int, default=60, help="simulated callers calling again and again")
    ap.add_argument("--agents", type=int, default=40)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--keep", help="work in this directory and keep it (configs, daemon logs)")
    ap.add_argument("--json", action="store_true", help="one JSON object on stdout")
    ap.add_argument("--profile", help="cProfile the daemon of the replay with viewers into this file (slows it: "
                    "for where the time goes, not for the figures)")
    ap.add_argument("--serve", help=argparse.SUPPRESS)  # internal: the daemon under test, SQL counted
    a = ap.parse_args(argv)
    if a.serve:
        return serve_counting_sql(a.serve)
    from callcenter.lab.signals import interrupt_on_stop_signals
    try:
        with interrupt_on_stop_signals():  # Ctrl-C / SIGTERM: the finally blocks stop the daemons
            out = run_bench(viewers=a.viewers, events=a.events, rate=a.rate, callers=a.callers, agents=a.agents,
                            seed=a.seed, keep=a.keep, profile=os.path.abspath(a.profile) if a.profile else None)
    except KeyboardInterrupt:
        print("callcenter bench wallboard: interrupted", file=sys.stderr)
        return 130
    print(json.dumps(out) if a.json else json.dumps(out, indent=2))
    return 0 if out["targets_met"] else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
