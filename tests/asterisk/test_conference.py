"""Conference against the real Asterisk: alice, talking with a caller, brings bob in over the API
(caller, alice and bob in one ConfBridge), then hangs up: the caller and bob stay connected, bob holds
the call (Busy, a new leg); when the caller hangs up, bob's phone is hung up too."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from tests.asterisk.conftest import DaemonProc, Floor, Witness
from tests.asterisk.test_transfer import _legs, _states, _talking, _wait_bridged

pytestmark = pytest.mark.asterisk


async def _one_bridge(witness: Witness, exts: tuple[str, ...], timeout: float = 5.0) -> bool:
    """The trunk caller and a channel of each phone in ``exts`` share one bridge (AMI, an independent client)."""
    for _ in range(int(timeout / 0.1)):
        chans = await witness.channels()
        caller = {c["BridgeId"] for c in chans if c["Channel"].startswith("PJSIP/trunk-pstn-") and c.get("BridgeId")}
        if len(caller) == 1 and all(any(c["Channel"].startswith(f"PJSIP/{e}-") and c.get("BridgeId") in caller
                                        for c in chans) for e in exts):
            return True
        await asyncio.sleep(0.1)
    return False


async def test_conference_agent_leaves_caller_and_colleague_stay(daemon: DaemonProc, floor: Floor,
                                                                 witness: Witness) -> None:
    """POST /calls/{id}/conference to bob: three in one bridge; alice hangs up: caller and bob stay connected,
    bob holds the call; one record, legs alice (conference) and bob; every attempt audited."""
    alice, bob, h, call_id, mark = await _talking(daemon, floor)
    url = f"http://127.0.0.1:{daemon.cfg.http.port}/api/v1/calls/{call_id}/conference"
    east = {"Authorization": "Bearer east-lab-token"}
    async with aiohttp.ClientSession() as s:
        async with s.post(url, json={"to": "803"}, headers=east) as r:  # a queue is no third party
            assert r.status == 400 and (await r.json())["error"] == "bad_target"
        async with s.post(url, json={"to": "2002"}, headers=east) as r:
            assert r.status == 202, await r.text()
            assert await r.json() == {"call_id": call_id, "agent": "alice", "kind": "agent", "target": "bob"}
    await daemon.until("conference.joined", 10, after=mark, call_id=call_id, agent="bob")
    await daemon.until("agent.state", 5, after=mark, agent="bob", state="Busy", call_id=call_id)
    assert await _one_bridge(witness, ("2001", "2002")), "caller, alice and bob are not in one bridge"
    await asyncio.sleep(0.5)
    leg = alice.calls[-1]
    leg.hangup()
    await daemon.until("transfer.done", 10, after=mark, call_id=call_id, kind="conference", to_kind="agent",
                       target="bob", result="taken")
    await asyncio.sleep(1.0)
    assert not h.ended, "the caller was hung up when alice left"
    assert await _wait_bridged(witness, "2002"), "the caller is not connected with bob"
    bob_leg = next(x for x in bob.calls if x.state == "CONFIRMED")
    h.hangup()
    await daemon.until("call.ended", 10, after=mark, call_id=call_id, outcome="completed", agent="bob")
    await floor.wait(lambda: bob_leg.ended, 5, "bob's leg to be hung up with the caller gone")
    assert daemon.call_record(call_id)["agent"] == "bob"
    a, b = _states(daemon, mark, "alice"), _states(daemon, mark, "bob")
    assert [s for _, s, _ in a][:3] == ["Reserved", "Busy", "WrapUp"], a
    assert [s for _, s, _ in b][:3] == ["Busy", "Busy", "WrapUp"] and b[0][2] == call_id, b  # joined, then holding
    assert [(s, ag, how) for s, ag, how, _ in _legs(daemon, call_id)] == [
        (1, "alice", "conference"), (2, "bob", "completed")]
    with daemon.db() as db:
        audit = [(r["target"], r["outcome"]) for r in db.execute(
            "SELECT * FROM api_audit WHERE target LIKE 'conference:%' ORDER BY rowid")]
    assert audit == [(f"conference:{call_id}:803", "failed"), (f"conference:{call_id}:2002", "done")], audit


async def test_conference_from_the_desk_phone_code(daemon: DaemonProc, floor: Floor, witness: Witness) -> None:
    """alice presses *68 then 2002# on her call: bob joins, alice hangs up, the caller and bob stay connected."""
    alice, bob, h, call_id, mark = await _talking(daemon, floor)
    leg = alice.calls[-1]
    leg.dtmf("*68")
    await asyncio.sleep(1.5)  # the feature's code, then Asterisk's beep before the number (no event to wait for)
    leg.dtmf("2002#")
    await daemon.until("conference.feature", 10, after=mark, call_id=call_id, result="ok", target="bob")
    await daemon.until("conference.joined", 10, after=mark, call_id=call_id, agent="bob")
    assert await _one_bridge(witness, ("2001", "2002")), "caller, alice and bob are not in one bridge"
    leg.hangup()
    await daemon.until("transfer.done", 10, after=mark, call_id=call_id, kind="conference", result="taken")
    await asyncio.sleep(0.5)
    assert not h.ended and await _wait_bridged(witness, "2002")
    h.hangup()
    await daemon.until("call.ended", 10, after=mark, call_id=call_id, outcome="completed", agent="bob")


async def test_conference_with_an_outside_number_the_agent_leaves(daemon: DaemonProc, floor: Floor,
                                                                  witness: Witness) -> None:
    """alice brings in 5550302 (the transfer trunk's allow-list admits it) and hangs up: the caller and the
    outside party stay connected, the record ends ``transferred``; the caller's hang-up ends the other leg."""
    outside = floor.caller("5550302")  # the "outside" party: a phone on the trunk's side
    alice, bob, h, call_id, mark = await _talking(daemon, floor)
    url = f"http://127.0.0.1:{daemon.cfg.http.port}/api/v1/calls/{call_id}/conference"
    async with aiohttp.ClientSession() as s:
        async with s.post(url, json={"to": "5550302"}, headers={"Authorization": "Bearer east-lab-token"}) as r:
            assert r.status == 202, await r.text()
            assert (await r.json())["kind"] == "out"
    await floor.wait(lambda: any(x.state in ("INCOMING", "EARLY") for x in outside.calls), 10, "5550302 to ring")
    ring = next(x for x in outside.calls if x.state in ("INCOMING", "EARLY"))
    ring.phone._answer(ring)
    await floor.wait(lambda: ring.state == "CONFIRMED", 5, "the outside party to answer")
    assert await _one_bridge(witness, ("2001",)), "caller, alice and the outside party are not in one bridge"
    alice.calls[-1].hangup()
    await daemon.until("transfer.done", 10, after=mark, call_id=call_id, kind="conference", to_kind="out",
                       target="5550302", result="left")
    await daemon.until("call.ended", 5, after=mark, call_id=call_id, outcome="transferred", agent="alice")
    await asyncio.sleep(1.0)
    assert not h.ended and not ring.ended, "the caller and the outside party were not left connected"
    chans = await witness.channels()
    trunk = [c for c in chans if c["Channel"].startswith("PJSIP/trunk-pstn-") and c.get("BridgeId")]
    assert len(trunk) == 2 and trunk[0]["BridgeId"] == trunk[1]["BridgeId"], chans  # caller <-> outside
    assert [(s, ag, how) for s, ag, how, _ in _legs(daemon, call_id)] == [(1, "alice", "conference")]
    h.hangup()
    await floor.wait(lambda: ring.ended, 5, "the outside party's leg to end with the caller gone")
