"""``callcenter bench webhooks``: from an event to a healthy local receiver, through the real daemon.

The real daemon (``callcenter run``, a subprocess, free loopback ports, no Asterisk: the AMI port
is one nobody listens on) has one webhook endpoint, ``bench``, subscribed to every event type and
pointing at :class:`Receiver`, an aiohttp server in this process that verifies each request's
signature (``standardwebhooks``) and answers 204.

Events are caused at ``--rate`` per second exactly: agent operations through the API with an admin
token (``--agents`` agents, round robin, each cycling login → pause → unpause → logout; an agent's
next operation waits for its previous answer), each one ``agent.state`` webhook. **Latency** of an
operation = when the receiver got its ``agent.state`` (matched per agent, in order, by the state
it leads to) − when the request was sent: the API, the ACD, the outbox write in the journal's
transaction, the worker's read and the signed POST. Afterwards the daemon is stopped and its outbox
read: ``expected`` = rows for the endpoint (every one must have reached the receiver: ``missing``),
``duplicates`` = receipts beyond the first per ``webhook-id``.

Target (issue 15): p95 ≤ 200 ms at 100 events/s.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp import web
from standardwebhooks import Webhook, WebhookVerificationError

from callcenter.telemetry import percentile

__all__ = ["Receiver", "Receipt", "main", "run_bench", "build_config", "start_daemon", "stop_daemon",
           "ADMIN_TOKEN", "SECRET"]

ADMIN_TOKEN = "webhooks-bench-admin-token"
SECRET = "whsec_" + base64.b64encode(b"callcenter webhooks bench secret 32b!"[:32]).decode()
TARGET_P95_MS = 200.0
CYCLE = (("login", "Ready"), ("pause", "Paused"), ("unpause", "Ready"), ("logout", "LoggedOut"))


# --------------------------------------------------------------------------- the receiver
@dataclass(frozen=True)
class Receipt:
    id: str
    at: float  # time.time() when the request's body was read
    status: int  # what we answered (0: hung, never answered in time)
    verified: bool
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """An HTTP receiver on 127.0.0.1 that can fail (``mode = 500``), hang (``"hang"``: no answer until
    :meth:`recover`) and recover on command; it records every request and verifies its signature."""

    secret: str = SECRET
    mode: int | str = 204
    delay_s: float = 0.0  # a slow receiver: each answer this late
    receipts: list[Receipt] = field(default_factory=list)
    port: int = 0
    _runner: web.AppRunner | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _release: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def close(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()

    def fail(self, status: int = 500) -> None:
        self.mode = status

    def hang(self) -> None:
        self._release.clear()
        self.mode = "hang"

    def recover(self) -> None:
        self.mode = 204
        self._release.set()

    async def _handle(self, req: web.Request) -> web.StreamResponse:
        body = await req.read()
        at = time.time()
        headers = {k.lower(): v for k, v in req.headers.items()}
        try:
            Webhook(self.secret).verify(body, headers, json_parse=False)
            ok = True
        except WebhookVerificationError:
            ok = False
        mode = self.mode
        status = 0 if mode == "hang" else int(mode)
        self.receipts.append(Receipt(headers.get("webhook-id", ""), at, status, ok, headers, body))
        self._changed.set()
        if mode == "hang":
            await self._release.wait()
            return web.Response(status=204)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)  # the slow CRM being simulated
        return web.Response(status=status)

    def delivered_ids(self) -> list[str]:
        """Ids answered 2xx, first receipt each, in arrival order."""
        seen: dict[str, None] = {}
        for r in self.receipts:
            if 200 <= r.status < 300:
                seen.setdefault(r.id, None)
        return list(seen)

    async def wait_for(self, cond: Callable[[Receiver], bool], timeout: float) -> bool:
        """Until ``cond(self)`` holds after some receipt (False: not within ``timeout``)."""
        deadline = time.monotonic() + timeout
        while not cond(self):
            self._changed.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)
        return True


# --------------------------------------------------------------------------- the daemon
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build_config(tmp: Path, url: str, agents: int, *, events: list[str] | None = None,
                 endpoint: dict[str, Any] | None = None) -> dict[str, Any]:
    """A daemon config: ``agents`` agents (``wh01``...), a queue, an admin token, the ``bench`` endpoint."""
    names = [f"wh{i + 1:02d}" for i in range(agents)]
    phones = {n: f"{3001 + i}" for i, n in enumerate(names)}
    return {
        "ami": {"host": "127.0.0.1", "port": _free_port(), "username": "callcenter", "secret": "bench-ami-secret-1"},
        "agi": {"host": "127.0.0.1", "port": _free_port()},
        "http": {"host": "127.0.0.1", "port": _free_port()},
        "audiosocket": {"host": "127.0.0.1", "port": _free_port()},
        "daemon": {"database": str(tmp / "cc.sqlite3"), "log_format": "json", "reconnect_max_s": 2},
        "recordings": {"dir": str(tmp / "recordings")},
        "phones": {p: {"secret": f"bench-secret-{p}"} for p in phones.values()},
        "agents": {a: {"phone": p} for a, p in phones.items()},
        "queues": {"hooks": {"members": names, "fallback": {"hangup": ["goodbye"]}}},
        "menus": {},
        "trunks": {"pstn": {"match": ["127.0.0.2"], "dids": {"5553000": {"queue": "hooks"}}}},
        "access": {"tokens": {"admin": {"sha256": hashlib.sha256(ADMIN_TOKEN.encode()).hexdigest(),
                                        "scopes": ["read", "agent", "supervise", "admin"], "teams": ["*"]}}},
        "webhooks": {"endpoints": {"bench": {"url": url, "events": events or ["*"], "secret": SECRET,
                                             **(endpoint or {})}},
                     "backoff_base_s": 0.2, "backoff_cap_s": 2.0},
    }


async def start_daemon(cfg: dict[str, Any], tmp: Path, *, log_name: str = "daemon.log") -> subprocess.Popen[bytes]:
    """``python -m callcenter run`` with ``cfg``; returns once its API answers."""
    path = tmp / "callcenter.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with open(tmp / log_name, "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "callcenter", "run", "--config", str(path)], cwd=tmp,
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url = f"http://127.0.0.1:{cfg['http']['port']}/api/v1/openapi.json"
    deadline = time.monotonic() + 30
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"daemon exited with {proc.returncode}: {(tmp / log_name).read_text()[-2000:]}")
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with http.get(url) as r:
                    if r.status == 200:
                        return proc
            await asyncio.sleep(0.05)  # a process starting: nothing to wait on but its port
    proc.kill()
    raise RuntimeError("the daemon's API did not come up")


def stop_daemon(proc: subprocess.Popen[bytes], *, kill: bool = False) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def outbox(db_path: str | Path, endpoint: str = "bench") -> list[tuple[int, str, str, str, str]]:
    """(n, id, key, type, status) of the endpoint's rows, in order (the daemon stopped, or killed: this
    connection replays its write-ahead log)."""
    db = sqlite3.connect(db_path)
    try:
        return db.execute("SELECT n, id, okey, type, status FROM webhook_outbox WHERE endpoint=? ORDER BY n",
                          (endpoint,)).fetchall()
    finally:
        db.close()


# --------------------------------------------------------------------------- the run
async def _agent_op(http: aiohttp.ClientSession, base: str, agent: str, op: str) -> int:
    body = {"reason": "lunch"} if op == "pause" else None
    async with http.post(f"{base}/api/v1/agents/{agent}/{op}", json=body,
                         headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as r:
        await r.read()
        return r.status


async def drive(base: str, agents: list[str], events: int, rate: float,
                answered: asyncio.Event | None = None, half: int = 0) -> list[tuple[str, str, float, int]]:
    """``events`` agent operations at ``rate``/s: (agent, expected state, sent at, HTTP status) each.
    ``answered`` is set once ``half`` of them have been answered (the crash test kills the daemon then)."""
    done: list[tuple[str, str, float, int]] = []
    step = {a: 0 for a in agents}
    last: dict[str, asyncio.Task[Any]] = {}
    t0 = time.monotonic() + 0.2
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        async def one(agent: str, op: str, state: str, before: asyncio.Task[Any] | None) -> None:
            if before is not None:
                await before  # an agent's operations in order
            sent = time.time()
            try:
                status = await _agent_op(http, base, agent, op)
            except (aiohttp.ClientError, TimeoutError):
                status = 0  # the daemon is gone (the crash test kills it mid-burst)
            done.append((agent, state, sent, status))
            if answered is not None and len(done) >= half:
                answered.set()

        for i in range(events):
            delay = t0 + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)  # the schedule itself: events at exactly `rate`
            agent = agents[i % len(agents)]
            op, state = CYCLE[step[agent] % len(CYCLE)]
            step[agent] += 1
            last[agent] = asyncio.create_task(one(agent, op, state, last.get(agent)))
        await asyncio.gather(*last.values())
    return done


def latencies(ops: list[tuple[str, str, float, int]], receipts: list[Receipt]) -> list[float]:
    """Per agent, in order: each operation's ``agent.state`` (first receipt with that state after the
    previous match) − when it was sent."""
    by_agent: dict[str, list[tuple[str, float]]] = {}
    seen: set[str] = set()
    for r in receipts:
        if not 200 <= r.status < 300 or r.id in seen:
            continue
        seen.add(r.id)
        msg = r.json()
        if msg["type"] == "agent.state":
            by_agent.setdefault(msg["data"]["agent"], []).append((msg["data"]["state"], r.at))
    out: list[float] = []
    pos: dict[str, int] = {}
    for agent, state, sent, status in sorted(ops, key=lambda o: o[2]):
        if status != 200:
            continue
        got = by_agent.get(agent, [])
        i = pos.get(agent, 0)
        while i < len(got) and got[i][0] != state:
            i += 1
        if i < len(got):
            out.append(got[i][1] - sent)
            pos[agent] = i + 1
    return out


async def run_bench(*, rate: float, events: int, agents: int, tmp: Path) -> dict[str, Any]:
    rx = await Receiver().start()
    cfg = build_config(tmp, rx.url, agents)
    proc = await start_daemon(cfg, tmp)
    base = f"http://127.0.0.1:{cfg['http']['port']}"
    try:
        t0 = time.monotonic()
        ops = await drive(base, list(cfg["agents"]), events, rate)
        wall = time.monotonic() - t0
        refused = sum(1 for o in ops if o[3] != 200)
        ok_ops = len(ops) - refused
        await rx.wait_for(lambda r: len(r.delivered_ids()) >= ok_ops, 30)
        await asyncio.sleep(0.5)  # stragglers (an operation that caused two state changes)
    finally:
        code = stop_daemon(proc)
        await rx.close()
    rows = outbox(cfg["daemon"]["database"])
    ids = {r[1] for r in rows}
    got = rx.delivered_ids()
    lat = sorted(latencies(ops, rx.receipts))
    ms = lambda q: round(percentile(lat, q) * 1000, 1)  # noqa: E731
    result = {
        "bench": "webhooks", "rate": rate, "events_caused": len(ops), "api_refused": refused,
        "wall_s": round(wall, 2), "expected": len(rows), "delivered": len(ids & set(got)),
        "missing": len(ids - set(got)), "unexpected": len(set(got) - ids),
        "duplicates": sum(1 for r in rx.receipts if 200 <= r.status < 300) - len(got),
        "signature_failures": sum(1 for r in rx.receipts if not r.verified),
        "matched": len(lat), "p50_ms": ms(50), "p95_ms": ms(95), "p99_ms": ms(99),
        "max_ms": round(lat[-1] * 1000, 1) if lat else 0.0, "target_p95_ms": TARGET_P95_MS,
        "daemon_exit": code,
    }
    result["ok"] = bool(lat) and result["p95_ms"] <= TARGET_P95_MS and result["missing"] == 0 and \
        result["signature_failures"] == 0 and code == 0
    return result


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="callcenter bench webhooks")
    ap.add_argument("--rate", type=float, default=100.0, help="events caused per second")
    ap.add_argument("--events", type=int, default=3000)
    ap.add_argument("--agents", type=int, default=40)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--keep", help="a directory for the daemon's database and log (else a temporary one)")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="cc-bench-wh-") as tmpd:
        tmp = Path(a.keep) if a.keep else Path(tmpd)
        tmp.mkdir(parents=True, exist_ok=True)
        result = asyncio.run(run_bench(rate=a.rate, events=a.events, agents=a.agents, tmp=tmp))
    if a.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:>20}: {v}")
    return 0 if result["ok"] else 1
