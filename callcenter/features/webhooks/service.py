"""The outbox hook and the delivery worker.

**Writing.** For every event the journal writes, :meth:`WebhookService.outbox_rows` (called by the
journal on the event loop, :meth:`~callcenter.journal.Journal.add_outbox`) turns it into one row
per subscribed endpoint and hands the journal a writer: the journal runs its own write and the
rows in one transaction on the database thread. Events the journal does not write (recordings,
dialler outcomes, dispositions) get their rows in a transaction of their own on the same thread.
Either way the worker is woken after the write is queued; its next read is queued behind it.

**Delivering.** One supervised loop (:meth:`WebhookService.run`) reads the head of each (endpoint,
ordering key) — the oldest pending row —, lets :func:`.model.plan` pick what may go now (one
attempt per key at a time, ``concurrency`` per endpoint), and starts an attempt for each. An
attempt POSTs the stored body with the three Standard Webhooks headers (signed by
``standardwebhooks``), then marks the row delivered (2xx) or schedules the next try
(:func:`.model.after_failure`) or makes it a dead letter; then it wakes the loop. The loop sleeps
until new rows, an attempt's end, the next due retry, or ``rescan_s`` (rows replayed by the CLI).

An attempt's mark is posted to the database thread (not awaited: the slot and the call's next
event are free as soon as the receiver answered); every later read of the worker is queued behind
it. A row whose attempt ended is not attempted again from a read that was queued before that end
(``_settled``): a stale read never sends a delivered row twice. A SIGKILL between the receiver's
2xx and the row's mark (or a failed mark, logged) sends it again, with the same ``webhook-id``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
import secrets
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from standardwebhooks import Webhook

from callcenter import events as ev
from callcenter.features.crm.model import CustomerIdentified
from callcenter.features.webhooks import store
from callcenter.features.webhooks.model import after_failure, plan
from callcenter.features.webhooks.payloads import Payloads
from callcenter.features.webhooks.schema import WebhooksConf, matches
from callcenter.journal import JOURNALLED, Journal
from callcenter.persistence import DbThread, migrate, transaction

__all__ = ["WebhookService", "Target", "new_id", "signed_headers"]

log = structlog.get_logger("callcenter.webhooks")
# Besides what the journal writes: these feed later messages (recording id, customer) or have their own.
OWN_EVENTS = (ev.RecordingEvent, ev.DialerOutcome, ev.DispositionSet, CustomerIdentified)
USER_AGENT = "callcenter-webhooks/1"


def new_id(now: float) -> str:
    """``msg_`` + 48 bits of milliseconds + 64 random bits (hex): unique, roughly time-ordered."""
    return f"msg_{int(now * 1000) & 0xFFFFFFFFFFFF:012x}{secrets.token_hex(8)}"


def signed_headers(signer: Webhook, msg_id: str, body: str, now: float) -> dict[str, str]:
    ts = dt.datetime.fromtimestamp(int(now), tz=dt.timezone.utc)
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(now)),
            "webhook-signature": signer.sign(msg_id, ts, body), "content-type": "application/json",
            "user-agent": USER_AGENT}


@dataclass(frozen=True)
class Target:
    """An endpoint as the worker uses it (from the config, or made through the API)."""

    name: str
    url: str
    events: tuple[str, ...]
    secret: str
    enabled: bool
    max_age_s: float
    timeout_s: float
    concurrency: int
    source: str  # config | api

    def wants(self, event_type: str) -> bool:
        return self.enabled and any(matches(p, event_type) for p in self.events)


class _Metrics:
    def __init__(self, r: CollectorRegistry) -> None:
        self.attempts = Counter("callcenter_webhook_attempts", "Webhook delivery attempts by endpoint and result "
                                "(delivered, failed, dead)", ["endpoint", "result"], registry=r)
        self.latency = Histogram("callcenter_webhook_delivery_seconds", "From the event to its delivery",
                                 ["endpoint"], registry=r,
                                 buckets=(0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 30, 300, 3600, 86400))
        self.written = Counter("callcenter_webhook_rows", "Outbox rows written", registry=r)
        self.in_flight = Gauge("callcenter_webhook_in_flight", "Attempts in flight", registry=r)


class WebhookService:
    """See the module doc. ``live_call(call_id)``: the ACD's live call, or None."""

    def __init__(self, cfg: Callable[[], Any], journal: Journal, db: DbThread, bus: ev.Bus, tasks: Any,
                 registry: CollectorRegistry, *, live_call: Callable[[str], Any] = lambda call_id: None,
                 clock: Callable[[], float] = time.time, rand: Callable[[], float] = random.random) -> None:
        self.cfg, self.db, self.tasks, self.clock, self.rand = cfg, db, tasks, clock, rand
        self.jdb: sqlite3.Connection = journal.db  # used on the database thread only
        migrate(self.jdb, "webhooks", store.MIGRATIONS)  # at start-up, like the journal's own
        self.payloads = Payloads(live_call)
        self.metrics = _Metrics(registry)
        self.api_endpoints: dict[str, store.ApiEndpoint] = {}
        self.targets: dict[str, Target] = {}
        self._signers: dict[str, Webhook] = {}
        self._wake = asyncio.Event()
        self._rebuild()
        self._in_flight: set[tuple[str, str]] = set()
        self._busy: dict[str, int] = {}
        self._settled: set[int] = set()
        self._session: aiohttp.ClientSession | None = None
        self.settled: list[Callable[[store.Row, str], None]] = []  # (row, delivered|failed|dead) after its mark
        journal.add_outbox(self.outbox_rows)
        for kind in OWN_EVENTS:
            assert kind not in JOURNALLED, kind
            bus.subscribe(kind, self._own)

    @property
    def conf(self) -> WebhooksConf:
        return self.cfg().webhooks  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ endpoints
    def _rebuild(self) -> None:
        out = {name: Target(name, e.url, tuple(e.events), e.secret, e.enabled, e.max_age_s, e.timeout_s,
                            e.concurrency, "config") for name, e in self.conf.endpoints.items()}
        for name, a in self.api_endpoints.items():
            out.setdefault(name, Target(name, a.url, a.events, a.secret, a.enabled, a.max_age_s, a.timeout_s, 8,
                                        "api"))
        self.targets = out
        self._any_enabled = any(t.enabled for t in out.values())
        self._signers = {name: Webhook(t.secret) for name, t in out.items()}
        self._wake.set()

    def reconfigure(self, cfg: Any) -> None:
        self._rebuild()

    async def put_endpoint(self, e: store.ApiEndpoint) -> None:
        await self.db.run(self._tx, lambda db: store.put_endpoint(db, e, self.clock()))
        self.api_endpoints[e.name] = e
        self._rebuild()

    async def delete_endpoint(self, name: str) -> bool:
        gone = await self.db.run(self._tx, lambda db: store.delete_endpoint(db, name))
        self.api_endpoints.pop(name, None)
        self._rebuild()
        return bool(gone)

    async def retry(self, ids: list[str] | None) -> int:
        n = await self.db.run(store.retry, self.jdb, self.clock(), ids)
        self._wake.set()
        return int(n)

    async def outbox(self, status: str | None, limit: int) -> list[store.Row]:
        return await self.db.run(lambda: store.rows(self.jdb, status=status, limit=limit))

    def _tx(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        with transaction(self.jdb):
            return fn(self.jdb)

    # ------------------------------------------------------------------ writing
    def outbox_rows(self, e: ev.DomainEvent) -> Callable[[sqlite3.Connection], None] | None:
        """The journal's hook (event loop): a writer of ``e``'s outbox rows, or None."""
        if not self._any_enabled:
            return None  # nobody subscribed: not even the per-call context is kept
        now = self.clock()
        msg = self.payloads.message(e, now)
        if msg is None:
            return None
        wanted = [t.name for t in self.targets.values() if t.wants(msg.type)]
        if not wanted:
            return None
        body = json.dumps(msg.body(), separators=(",", ":"))
        rows = [store.OutboxRow(new_id(now), name, msg.key, msg.type, body, now) for name in wanted]
        self.metrics.written.inc(len(rows))
        self._wake.set()  # the worker's next read is queued behind this write on the same thread
        return lambda db: store.insert(db, rows)

    def _own(self, e: ev.DomainEvent) -> None:
        writer = self.outbox_rows(e)
        if writer is not None:
            self.db.post(self._tx, writer)

    # ------------------------------------------------------------------ delivering
    async def start(self) -> None:
        self.api_endpoints = {e.name: e for e in await self.db.run(store.endpoints, self.jdb)}
        self._rebuild()
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, limit_per_host=64))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def run(self) -> None:
        """The delivery loop (supervised, essential)."""
        while True:
            self._wake.clear()
            settled_before = set(self._settled)
            rows = await self.db.run(store.heads, self.jdb)
            self._settled -= settled_before  # this read saw their marks (queued behind them)
            by_n = {r.n: r for r in rows if r.n not in self._settled}
            now = self.clock()
            limits = {t.name: t.concurrency for t in self.targets.values() if t.enabled}
            due, next_due = plan(map(store.head, by_n.values()), self._in_flight, self._busy, limits, now)
            for h in due:
                self._begin(by_n[h.n])
            wait = self.conf.rescan_s if next_due is None else min(self.conf.rescan_s, max(0.0, next_due - self.clock()))
            if wait > 0 and not self._wake.is_set():
                try:
                    await asyncio.wait_for(self._wake.wait(), wait)
                except TimeoutError:
                    pass

    def _begin(self, row: store.Row) -> None:
        key = (row.endpoint, row.key)
        self._in_flight.add(key)
        self._busy[row.endpoint] = self._busy.get(row.endpoint, 0) + 1
        self.metrics.in_flight.inc()
        self.tasks.spawn(self._attempt(row), "webhooks.attempt")

    async def _attempt(self, row: store.Row) -> None:
        try:
            t = self.targets.get(row.endpoint)
            if t is None:
                return  # deleted meanwhile: the row waits (replayable) and is not attempted
            ok, error = await self._post(t, row)
            now = self.clock()
            attempts = row.attempts + 1
            if ok:
                self.db.post(store.delivered, self.jdb, row.n, now, attempts)
                self.metrics.attempts.labels(t.name, "delivered").inc()
                self.metrics.latency.labels(t.name).observe(max(0.0, now - row.created_at))
                self._tell(row, "delivered")
                return
            c = self.conf
            next_at = after_failure(attempts, row.since, now, t.max_age_s, self.rand(), base_s=c.backoff_base_s,
                                    cap_s=c.backoff_cap_s)
            self.db.post(store.failed, self.jdb, row.n, attempts, next_at, error)
            self.metrics.attempts.labels(t.name, "failed" if next_at is not None else "dead").inc()
            log.info("webhooks.attempt_failed", endpoint=t.name, id=row.id, type=row.type, attempts=attempts,
                     error=error, dead=next_at is None,
                     retry_in_s=None if next_at is None else round(next_at - now, 2))
            self._tell(row, "failed" if next_at is not None else "dead")
        finally:
            self._in_flight.discard((row.endpoint, row.key))
            self._busy[row.endpoint] -= 1
            self.metrics.in_flight.dec()
            self._settled.add(row.n)
            self._wake.set()

    def _tell(self, row: store.Row, result: str) -> None:
        for fn in self.settled:
            fn(row, result)

    async def _post(self, t: Target, row: store.Row) -> tuple[bool, str]:
        assert self._session is not None, "start() first"
        headers = signed_headers(self._signers[t.name], row.id, row.body, self.clock())
        try:
            async with self._session.post(t.url, data=row.body.encode(), headers=headers, allow_redirects=False,
                                          timeout=aiohttp.ClientTimeout(total=t.timeout_s)) as resp:
                await resp.read()
                return 200 <= resp.status < 300, f"HTTP {resp.status}"
        except TimeoutError:
            return False, f"no answer within {t.timeout_s} s"
        except aiohttp.ClientError as e:
            return False, repr(e)[:200]

    def sizes(self) -> dict[str, int]:
        return {"webhook_calls": len(self.payloads.calls), "webhook_in_flight": len(self._in_flight)}

