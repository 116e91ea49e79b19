"""Customer lookup, relationship routing and click-to-call on the lab Asterisk with pjsua2 phones.

A CRM runs in the test (a real local HTTP server whose answer, or hang, the test sets); callers
dial the DID that goes straight to ``sales`` (alice, bob)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.asterisk.conftest import SIP, DaemonProc, Floor, Witness

pytestmark = pytest.mark.asterisk
SALES_URI = f"sip:5551001@{SIP}"
TOKEN = {"Authorization": "Bearer east-lab-token"}  # lab.yaml: access.tokens.east (team east: alice, bob)


def _ts(ev: dict[str, object]) -> float:
    return datetime.fromisoformat(str(ev["timestamp"]).replace("Z", "+00:00")).timestamp()


class Crm:
    """The CRM: number -> record; numbers it does not know are 404; ``hang`` never answers."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}
        self.hang = False
        self.asked: list[str] = []
        self.release = asyncio.Event()

    async def handle(self, req: web.Request) -> web.StreamResponse:
        self.asked.append(req.query.get("number", ""))
        if self.hang:
            await self.release.wait()
        rec = self.records.get(req.query.get("number", ""))
        return web.json_response(rec) if rec is not None else web.Response(status=404)


@pytest.fixture
async def crm() -> AsyncIterator[tuple[Crm, str]]:
    c = Crm()
    app = web.Application()
    app.router.add_get("/customers", c.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield c, f"http://127.0.0.1:{runner.addresses[0][1]}/customers?number={{number}}&did={{did}}"
    c.release.set()
    await runner.cleanup()


@pytest.fixture
def start(daemon_config: Callable[..., Path]) -> Iterator[Callable[..., DaemonProc]]:
    made: list[DaemonProc] = []

    def run(**crm: Any) -> DaemonProc:
        d = DaemonProc(daemon_config(crm=crm)).start()
        d.wait_for("ami.resynced", 20)
        made.append(d)
        return d

    yield run
    for d in made:
        d.stop()


async def _call(floor: Floor, number: str) -> object:
    h = floor.caller(number).dial(SALES_URI)
    await floor.wait(lambda: h.state == "CONFIRMED", 10, "the queue to answer")
    return h


async def test_vip_caller_reaches_the_account_manager_though_another_idled_longer(
        start: Callable[..., DaemonProc], crm: tuple[Crm, str], floor: Floor) -> None:
    """bob logs in first (idles longer); the VIP caller whose account manager is alice rings alice."""
    server, url = crm
    server.records["5550401"] = {"name": "Ann VIP", "vip": True, "account_manager": "alice", "tags": ["gold"]}
    daemon = start(lookup={"url": url, "token": "crm-token-1", "timeout_ms": 300}, account_manager_wait_s=30)
    await floor.login(daemon, "bob")
    await asyncio.sleep(0.5)
    await floor.login(daemon, "alice")
    mark = daemon.mark()
    await _call(floor, "5550401")
    found = await daemon.until("crm.lookup", 10, after=mark, result="lookup")
    assert found["preferred"] == "alice" and found["priority"] == 10
    ring = await daemon.until("offer.ring", 10, after=mark, call_id=found["call_id"])
    assert ring["agent"] == "alice"
    await daemon.until("call.answered", 10, after=mark, call_id=found["call_id"], agent="alice")
    assert server.asked == ["5550401"]


async def test_busy_account_manager_past_the_limit_lets_the_other_agent_take_it(
        start: Callable[..., DaemonProc], crm: tuple[Crm, str], floor: Floor) -> None:
    """alice talks; her customer waits for her the configured 4 s, then bob (free all along) rings."""
    server, url = crm
    server.records["5550403"] = {"name": "Ann VIP", "vip": True, "account_manager": "alice"}
    daemon = start(lookup={"url": url}, account_manager_wait_s=4)
    await floor.login(daemon, "alice")
    mark = daemon.mark()
    await _call(floor, "5550402")  # not a customer: alice takes it and stays on it
    await daemon.until("call.answered", 10, after=mark, agent="alice")
    await floor.login(daemon, "bob")
    mark = daemon.mark()
    await _call(floor, "5550403")
    queued = await daemon.until("call.queued", 10, after=mark, preferred="alice")
    # the decision (bob reserved for it); the ring itself may wait for a queue hook's prompt to end
    chosen = await daemon.until("agent.state", 15, after=mark, call_id=queued["call_id"], state="Reserved")
    assert chosen["agent"] == "bob"
    waited = _ts(chosen) - _ts(queued)
    assert 3.7 <= waited < 4.6, f"bob was chosen {waited:.2f} s after entry (limit 4 s)"
    ring = await daemon.until("offer.ring", 15, after=mark, call_id=queued["call_id"])
    assert ring["agent"] == "bob"
    await daemon.until("call.answered", 10, after=mark, call_id=queued["call_id"], agent="bob")


async def test_hanging_lookup_delays_the_call_by_the_timeout_at_most(
        start: Callable[..., DaemonProc], crm: tuple[Crm, str], floor: Floor) -> None:
    """The CRM never answers: the call is offered to alice at most the 300 ms timeout later than usual."""
    server, url = crm
    server.hang = True
    daemon = start(lookup={"url": url, "timeout_ms": 300})
    await floor.login(daemon, "alice")
    mark = daemon.mark()
    await _call(floor, "5550404")
    started = await daemon.until("call.started", 10, after=mark)
    looked = await daemon.until("crm.lookup", 10, after=mark, call_id=started["call_id"])
    assert looked["result"] == "timeout" and float(str(looked["ms"])) < 400
    ring = await daemon.until("offer.ring", 10, after=mark, call_id=started["call_id"], agent="alice")
    gap = _ts(ring) - _ts(started)
    assert gap < 0.3 + 0.5, f"entry -> offer took {gap:.2f} s"
    assert server.asked == ["5550404"]


async def test_click_to_call_rings_the_agent_then_bridges_the_customer(
        start: Callable[..., DaemonProc], floor: Floor, witness: Witness) -> None:
    """POST /calls: alice's phone rings, she answers, the simulated network's number is dialled through
    trunk sim and bridged with her; a DNC number is refused (403 dnc) and never dialled."""
    daemon = start(click_to_call={"trunk": "sim", "caller_id": "+12125551000", "window": "00:00-24:00"})
    alice = await floor.login(daemon, "alice", auto_answer=False)
    base = f"http://127.0.0.1:{daemon.cfg.http.port}/api/v1"
    mark = daemon.mark()
    async with aiohttp.ClientSession(headers=TOKEN) as s:
        async with s.post(f"{base}/calls", json={"agent": "alice", "number": "+12125550101"}) as r:
            assert r.status == 202, await r.text()
            call_id = (await r.json())["call_id"]
        await floor.wait(lambda: any(h.state in ("INCOMING", "EARLY") for h in alice.calls), 10,
                         "alice's phone to ring")
        assert daemon.find("crm.click_to_call_dialling", call_id=call_id) == []  # the customer waits for her
        assert alice.answer_ringing()
        await daemon.until("crm.click_to_call_dialling", 10, after=mark, call_id=call_id, agent="alice")
        dialled = await daemon.until("callback.dialled", 15, after=mark, call_id=call_id)
        assert dialled["status"] == "ANSWER"
        await daemon.until("call.answered", 10, after=mark, call_id=call_id, agent="alice")
        await daemon.until("call.bridged", 10, after=mark, call_id=call_id, agent="alice")
        chans = await witness.channels()
        agent = [c for c in chans if c["Channel"].startswith("PJSIP/2001-") and c.get("BridgeId")]
        trunk = [c for c in chans if c["Channel"].startswith("PJSIP/trunk-sim-") and c.get("BridgeId")]
        assert any(a["BridgeId"] == t["BridgeId"] for a in agent for t in trunk), \
            [(c["Channel"], c.get("BridgeId"), c.get("Context"), c.get("Exten")) for c in chans]

        async with s.put(f"{base}/dnc/+12125550102") as r:
            assert r.status == 200
        async with s.post(f"{base}/calls", json={"agent": "alice", "number": "+12125550102"}) as r:
            assert r.status == 403 and (await r.json())["error"] == "dnc"
        assert [e["call_id"] for e in daemon.find("offer.ring", agent="alice")] == [call_id]  # never rung
    for h in alice.calls:
        h.hangup()
    await daemon.until("call.ended", 10, after=mark, call_id=call_id, outcome="completed")
    rec = daemon.call_record(call_id)
    assert rec["agent"] == "alice" and rec["answered_at"] is not None
