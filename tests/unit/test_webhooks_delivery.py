"""The delivery worker against a real HTTP receiver on 127.0.0.1 that fails, hangs and recovers on command:
retries carry the same id, each call's events arrive in order, dead letters are kept and replayed."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from callcenter import events as ev
from callcenter.bench.webhooks import SECRET, Receiver
from callcenter.features.webhooks import store
from callcenter.features.webhooks.schema import EndpointConf, WebhooksConf
from callcenter.features.webhooks.service import WebhookService
from callcenter.journal import Journal
from callcenter.persistence import DbThread
from callcenter.tasks import Supervisor

_ids = itertools.count(1)


@dataclass
class _Cfg:
    webhooks: WebhooksConf


@dataclass
class Rig:
    svc: WebhookService
    bus: ev.Bus
    rx: Receiver
    db: DbThread
    results: list[tuple[str, str]]
    fatal: list[str]

    async def settled(self, cond: Callable[[list[tuple[str, str]]], bool], timeout: float = 10.0) -> None:
        """Until ``cond(results)`` holds after an attempt's end (each a (webhook id, result))."""
        changed = asyncio.Event()
        self.svc.settled.append(lambda row, result: changed.set())
        async with asyncio.timeout(timeout):
            while not cond(self.results):
                changed.clear()
                await changed.wait()

    async def rows(self) -> list[store.Row]:
        return await self.db.run(lambda: store.rows(self.svc.jdb, limit=1000))


@pytest.fixture
async def rig(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Rig]:
    rx = await Receiver().start()
    over: dict[str, Any] = getattr(request, "param", {})
    conf = WebhooksConf(endpoints={"crm": EndpointConf(url=rx.url, events=("*",), secret=SECRET,
                                                        timeout_s=over.get("timeout_s", 2.0),
                                                        max_age_s=over.get("max_age_s", 3600.0))},
                        backoff_base_s=0.05, backoff_cap_s=0.3, rescan_s=0.5)
    bus, db, fatal = ev.Bus(), DbThread(), []
    journal = Journal(tmp_path / "cc.sqlite3")
    journal.subscribe(bus, db)
    tasks = Supervisor(lambda name, exc: fatal.append(name))
    svc = WebhookService(lambda: _Cfg(conf), journal, db, bus, tasks, CollectorRegistry())
    results: list[tuple[str, str]] = []
    svc.settled.append(lambda row, result: results.append((row.id, result)))
    await svc.start()
    tasks.spawn(svc.run(), "webhooks", essential=True)
    yield Rig(svc, bus, rx, db, results, fatal)
    await tasks.close()
    await svc.close()
    await rx.close()
    db.close()
    journal.close()
    assert not fatal


def _call(bus: ev.Bus, call_id: str, t: float) -> None:
    bus.publish(ev.CallStarted(call_id, f"{t}", "PJSIP/trunk", "+1555", "", "5552000", t))
    bus.publish(ev.CallQueued(call_id, "sales", t + 1))


def _finish(bus: ev.Bus, call_id: str, t: float) -> None:
    bus.publish(ev.CallOffered(call_id, "alice", "sales", "", t + 2))
    bus.publish(ev.CallAnswered(call_id, "alice", t + 3))
    bus.publish(ev.CallEnded(call_id, "answered", t + 4, "alice"))


ORDER = ["call.entered", "call.offered", "call.answered", "call.ended"]


def _by_call(rx: Receiver) -> dict[str, list[str]]:
    """Per call id, the types of first 2xx receipts in arrival order."""
    out: dict[str, list[str]] = {}
    seen: set[str] = set()
    for r in rx.receipts:
        if 200 <= r.status < 300 and r.id not in seen:
            seen.add(r.id)
            m = r.json()
            out.setdefault(m["data"]["call_id"], []).append(m["type"])
    return out


async def test_failures_are_retried_with_the_same_id_and_each_call_stays_in_order(rig: Rig) -> None:
    """Receiver answering 500 while 5 calls' events come in interleaved; after it recovers every message is
    delivered once, its failed attempts carried its id, and each call's events arrived in their order."""
    rig.rx.fail(500)
    calls = [f"{next(_ids):016x}" for _ in range(5)]
    for i, c in enumerate(calls):
        _call(rig.bus, c, 100.0 + i)
    for i, c in enumerate(calls):
        _finish(rig.bus, c, 100.0 + i)
    await rig.settled(lambda res: sum(1 for _, r in res if r == "failed") >= 10)
    assert rig.rx.receipts and all(r.status == 500 for r in rig.rx.receipts)
    assert {r.json()["type"] for r in rig.rx.receipts} == {"call.entered"}  # the heads only: later ones wait
    rig.rx.recover()
    await rig.settled(lambda res: sum(1 for _, r in res if r == "delivered") == 20)
    assert _by_call(rig.rx) == {c: ORDER for c in calls}
    failed_ids = {r.id for r in rig.rx.receipts if r.status == 500}
    assert failed_ids <= set(rig.rx.delivered_ids())
    assert all(r.verified for r in rig.rx.receipts)
    rows = await rig.rows()
    assert len(rows) == 20 and {r.status for r in rows} == {"delivered"}
    assert len(rig.rx.delivered_ids()) == sum(1 for r in rig.rx.receipts if r.status == 204)  # no duplicates


@pytest.mark.parametrize("rig", [{"timeout_s": 0.3}], indirect=True)
async def test_a_hanging_receiver_times_out_and_the_message_is_sent_again(rig: Rig) -> None:
    """No answer within timeout_s is a failed attempt; once the receiver answers again, the same id gets in."""
    rig.rx.hang()
    call = f"{next(_ids):016x}"
    _call(rig.bus, call, 1.0)
    await rig.settled(lambda res: sum(1 for _, r in res if r == "failed") >= 2)
    hung = {r.id for r in rig.rx.receipts if r.status == 0}
    assert len(hung) == 1
    rig.rx.recover()
    await rig.settled(lambda res: any(r == "delivered" for _, r in res))
    assert hung == set(rig.rx.delivered_ids())


@pytest.mark.parametrize("rig", [{"max_age_s": 1.0}], indirect=True)
async def test_messages_past_their_max_age_are_dead_letters_kept_and_replayed_in_order(rig: Rig) -> None:
    """Failing for longer than max_age_s: the call's first message is retried until dead (its next one waiting
    behind it), then the next one dies too; both kept; replayed after recovery: delivered in order, same ids."""
    rig.rx.fail(503)
    call = f"{next(_ids):016x}"
    _call(rig.bus, call, 1.0)
    rig.bus.publish(ev.CallEnded(call, "abandoned", 5.0))
    await rig.settled(lambda res: sum(1 for _, r in res if r == "dead") == 2)
    first_dead = next(i for i, (_, r) in enumerate(rig.results) if r == "dead")
    assert {rig.results[i][0] for i in range(first_dead + 1)} == {rig.rx.receipts[0].id}  # only the head, till dead
    dead = sorted((r for r in await rig.rows() if r.status == "dead"), key=lambda r: r.n)
    assert [r.type for r in dead] == ["call.entered", "call.ended"] and dead[0].attempts >= 3
    rig.rx.recover()
    assert await rig.svc.retry(None) == 2
    await rig.settled(lambda res: sum(1 for _, r in res if r == "delivered") == 2)
    assert rig.rx.delivered_ids() == [r.id for r in dead]


async def test_only_subscribed_types_get_rows(rig: Rig, tmp_path: Path) -> None:
    """An endpoint for callback.* only: a call's events write no row for it; a callback does."""
    from callcenter.features.acd.model import Call
    conf = WebhooksConf(endpoints={"cb": EndpointConf(url=rig.rx.url, events=("callback.*",), secret=SECRET)})
    rig.svc.cfg = lambda: _Cfg(conf)
    rig.svc.reconfigure(None)
    call = f"{next(_ids):016x}"
    _call(rig.bus, call, 1.0)
    rig.bus.publish(ev.CallbackStored(Call(call, "sales", "", 1.0, callback="5551234"), 2.0))
    rig.bus.publish(ev.CallbackDone(call, "answered"))
    await rig.settled(lambda res: sum(1 for _, r in res if r == "delivered") == 2)
    assert [(r.endpoint, r.type) for r in reversed(await rig.rows())] == [("cb", "callback.stored"),
                                                                         ("cb", "callback.done")]
