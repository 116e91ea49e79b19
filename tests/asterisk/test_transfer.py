"""Transfers against the real Asterisk: pjsua2 desk phones send REFER (blind) and REFER with Replaces
(attended); the daemon keeps one call record with a leg per agent and both agents' states right."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pjsua2 as pj
import pytest

from callcenter.lab.phones import _pj

from tests.asterisk.conftest import SIP, DaemonProc, Floor, Witness
from tests.asterisk.test_recording_supervision import media_dirs, recording_daemon  # noqa: F401 - fixtures

pytestmark = pytest.mark.asterisk


def _states(daemon: DaemonProc, mark: int, agent: str) -> list[tuple[int, str, Any]]:
    """(log index, state, call id) of ``agent``'s state changes since ``mark``."""
    return [(i, e["state"], e.get("call_id")) for i, e in enumerate(daemon.events) if i >= mark
            and e.get("event") == "agent.state" and e.get("agent") == agent]


def _index(daemon: DaemonProc, mark: int, event: str, **fields: object) -> int:
    return next(i for i, e in enumerate(daemon.events) if i >= mark and e.get("event") == event
                and all(e.get(k) == v for k, v in fields.items()))


def _bridged_with(chans: list[dict[str, str]], ext: str) -> bool:
    """AMI shows the trunk caller and a channel of phone ``ext`` in one bridge."""
    callers = {c["BridgeId"] for c in chans if c["Channel"].startswith("PJSIP/trunk-pstn-") and c.get("BridgeId")}
    return any(c["Channel"].startswith(f"PJSIP/{ext}-") and c.get("BridgeId") in callers for c in chans)


async def _wait_bridged(witness: Witness, ext: str, timeout: float = 5.0) -> bool:
    """Poll AMI (an independent client) until the trunk caller and phone ``ext`` share a bridge."""
    for _ in range(int(timeout / 0.1)):
        if _bridged_with(await witness.channels(), ext):
            return True
        await asyncio.sleep(0.1)
    return False


async def _talking(daemon: DaemonProc, floor: Floor) -> tuple[Any, Any, Any, str, int]:
    """alice (idle longest) talks with a caller of sales; bob is Ready."""
    alice = await floor.login(daemon, "alice")
    bob = await floor.login(daemon, "bob")
    mark = daemon.mark()
    caller = floor.caller("5550141", "Tess Transfer")
    h = caller.dial(f"sip:5551001@{SIP}")
    ans = await daemon.until("call.answered", 15, after=mark, agent="alice")
    call_id = str(ans["call_id"])
    await daemon.until("call.bridged", 10, after=mark, call_id=call_id, agent="alice")
    await floor.wait(lambda: alice.calls[-1].state == "CONFIRMED" and alice.calls[-1].media, 5, "alice's leg")
    await asyncio.sleep(1.0)  # a second of conversation (and of recording) before the transfer
    return alice, bob, h, call_id, mark


async def _ends(daemon: DaemonProc, floor: Floor, h: Any, call_id: str, mark: int, agent: str) -> Any:
    """After a second with ``agent`` the caller hangs up: the call ends completed; returns its record."""
    await asyncio.sleep(1.0)
    h.hangup()
    await daemon.until("call.ended", 10, after=mark, call_id=call_id, outcome="completed", agent=agent)
    await daemon.until("agent.state", 10, after=mark, agent=agent, state="WrapUp")  # (Ready after the queue's wrap-up)
    return daemon.call_record(call_id)


def _legs(daemon: DaemonProc, call_id: str) -> list[tuple[int, str, str, float]]:
    """(seq, agent, how, talk seconds) of the call's legs; the first leg starts at the record's answer."""
    with daemon.db() as db:
        rows = db.execute("SELECT * FROM call_legs WHERE call_id=? ORDER BY seq", (call_id,)).fetchall()
        first = db.execute("SELECT answered_at FROM calls WHERE call_id=?", (call_id,)).fetchone()[0]
    assert rows and rows[0]["answered_at"] == first
    assert all(a["ended_at"] <= b["answered_at"] for a, b in zip(rows, rows[1:])), [dict(r) for r in rows]
    return [(r["seq"], r["agent"], r["how"], r["ended_at"] - r["answered_at"]) for r in rows]


async def _recordings(daemon: DaemonProc, call_id: str, n: int) -> list[Any]:
    """The call's ``n`` recordings, once finished (finalize runs after each leg's hang-up): each a
    complete stereo file of at least a second, all of the one call id."""
    rows: list[Any] = []
    for _ in range(150):
        with daemon.db() as db:
            rows = db.execute("SELECT * FROM recordings WHERE call_id=? ORDER BY started_at", (call_id,)).fetchall()
        if len(rows) >= n and all(r["status"] not in ("recording", "finalizing") for r in rows):
            break
        await asyncio.sleep(0.2)
    assert len(rows) == n and all(r["status"] == "done" and r["duration_s"] >= 0.8 for r in rows), \
        [dict(r) for r in rows]
    return rows


async def test_blind_transfer_agent_to_agent(recording_daemon: Any, floor: Floor, witness: Witness) -> None:
    """alice blind-transfers to bob's extension: bob rings and talks with the caller; one record, two legs,
    two recordings of the one call id (alice's part, bob's part)."""
    daemon = recording_daemon("all")
    alice, bob, h, call_id, mark = await _talking(daemon, floor)
    leg = alice.calls[-1]
    _pj(lambda: leg.call.xfer(f"sip:2002@{SIP}", pj.CallOpParam(True)))
    await daemon.until("transfer.done", 10, after=mark, call_id=call_id, kind="blind", to_kind="agent",
                       target="bob", result="ringing")
    await daemon.until("call.leg_started", 10, after=mark, call_id=call_id, agent="bob")
    await daemon.until("call.bridged", 10, after=mark, call_id=call_id, agent="bob")
    assert await _wait_bridged(witness, "2002"), "the caller is not bridged with bob"
    await floor.wait(lambda: leg.ended, 5, "alice's leg to end")
    assert not h.ended
    rec = await _ends(daemon, floor, h, call_id, mark, "bob")

    a, b = _states(daemon, mark, "alice"), _states(daemon, mark, "bob")
    assert [s for _, s, _ in a] == ["Reserved", "Busy", "WrapUp", "Ready"], a
    assert [s for _, s, _ in b] == ["Reserved", "Busy", "WrapUp"], b
    blind = _index(daemon, mark, "transfer.blind", call_id=call_id)
    # alice left before bob was rung; the AMI BlindTransfer and the cc-xfer AGI race, so the log line
    # may come after her wrap-up (either one starts the transfer in the core)
    assert a[1][0] < blind and a[1][0] < a[2][0] < b[0][0], (a, blind, b)
    assert a[1][2] == b[1][2] == call_id
    assert rec["agent"] == "bob" and rec["outcome"] == "completed" and rec["queue"] == "sales"
    legs = _legs(daemon, call_id)
    assert [(s, ag, how) for s, ag, how, _ in legs] == [(1, "alice", "transfer:blind"), (2, "bob", "completed")]
    assert all(t > 0.5 for *_, t in legs), legs
    assert "transfer:blind:agent:bob" in json.loads(rec["ivr_path"])
    recs = await _recordings(daemon, call_id, 2)  # sales records every call: one file pair per agent, linked
    assert [r["agent"] for r in recs] == ["alice", "bob"], [dict(r) for r in recs]


async def test_blind_transfer_agent_to_queue_keeps_seniority(daemon: DaemonProc, floor: Floor,
                                                             witness: Witness) -> None:
    """alice blind-transfers to queue code 803 (queue empty): carol takes it; the caller kept its entry time."""
    await floor.login(daemon, "carol")  # in queue "empty" only: never offered the sales call
    alice, bob, h, call_id, mark = await _talking(daemon, floor)
    entered = daemon.call_record(call_id)["entered_at"]
    leg = alice.calls[-1]
    _pj(lambda: leg.call.xfer(f"sip:803@{SIP}", pj.CallOpParam(True)))
    await daemon.until("transfer.done", 10, after=mark, call_id=call_id, to_kind="queue", target="empty",
                       result="queued")
    await daemon.until("call.leg_started", 10, after=mark, call_id=call_id, agent="carol")
    await daemon.until("call.bridged", 10, after=mark, call_id=call_id, agent="carol")
    assert await _wait_bridged(witness, "2003")
    rec = await _ends(daemon, floor, h, call_id, mark, "carol")
    a, c = _states(daemon, mark, "alice"), _states(daemon, mark, "carol")
    assert [s for _, s, _ in a] == ["Reserved", "Busy", "WrapUp", "Ready"], a
    assert [s for _, s, _ in c] == ["Reserved", "Busy", "WrapUp"], c
    assert not _states(daemon, mark, "bob"), "bob was never offered it"
    assert rec["queue"] == "empty" and rec["entered_at"] == entered and rec["agent"] == "carol"
    assert [(s, ag, how) for s, ag, how, _ in _legs(daemon, call_id)] == [
        (1, "alice", "transfer:blind"), (2, "carol", "completed")]


async def test_attended_transfer_agent_to_agent(recording_daemon: Any, floor: Floor, witness: Witness) -> None:
    """alice holds the caller, consults bob, then completes: caller with bob; bob Busy from his answer;
    the recording carries on on bob's leg (a second file of the same call id, from his answer). bob then
    blind-transfers it on to carol's queue: one record, three legs, three recordings."""
    daemon = recording_daemon("all")
    await floor.login(daemon, "carol")
    alice, bob, h, call_id, mark = await _talking(daemon, floor)
    leg = alice.calls[-1]
    _pj(lambda: leg.call.setHold(pj.CallOpParam(True)))
    consult = alice.dial(f"sip:2002@{SIP}")
    await daemon.until("consult.answered", 10, after=mark, call_id=call_id, colleague="bob", ok=True)
    await daemon.until("agent.state", 5, after=mark, agent="bob", state="Busy", call_id=call_id)
    await floor.wait(lambda: consult.state == "CONFIRMED", 5, "the consult call")
    await asyncio.sleep(1.0)
    _pj(lambda: leg.call.xferReplaces(consult.call, pj.CallOpParam(True)))
    await daemon.until("transfer.done", 10, after=mark, call_id=call_id, kind="attended", to_kind="agent",
                       target="bob", result="taken")
    await floor.wait(lambda: leg.ended and consult.ended, 5, "alice's two legs to end")
    assert await _wait_bridged(witness, "2002"), "the caller is not bridged with bob"
    assert not h.ended
    a, b = _states(daemon, mark, "alice"), _states(daemon, mark, "bob")
    assert [s for _, s, _ in a] == ["Reserved", "Busy", "WrapUp"], a
    assert [s for _, s, _ in b] == ["Busy", "Busy"], b  # from the consult's answer, then holding the call
    att = _index(daemon, mark, "transfer.attended", call_id=call_id)
    assert b[0][0] < att <= a[2][0], (a, att, b)  # bob Busy from the consult; alice left at the transfer
    await asyncio.sleep(1.0)
    bob_leg = next(x for x in bob.calls if x.state == "CONFIRMED")
    _pj(lambda: bob_leg.call.xfer(f"sip:803@{SIP}", pj.CallOpParam(True)))  # and on to carol's queue
    await daemon.until("call.leg_started", 10, after=mark, call_id=call_id, agent="carol")
    rec = await _ends(daemon, floor, h, call_id, mark, "carol")
    b, c = _states(daemon, mark, "bob"), _states(daemon, mark, "carol")
    assert [s for _, s, _ in b] == ["Busy", "Busy", "WrapUp", "Ready"], b
    assert [s for _, s, _ in c] == ["Reserved", "Busy", "WrapUp"], c
    assert b[2][0] < c[0][0], (b, c)  # bob left before carol was rung
    assert rec["agent"] == "carol" and rec["outcome"] == "completed" and rec["queue"] == "empty"
    legs = _legs(daemon, call_id)
    assert [(s, ag, how) for s, ag, how, _ in legs] == [
        (1, "alice", "transfer:attended"), (2, "bob", "transfer:blind"), (3, "carol", "completed")]
    recs = await _recordings(daemon, call_id, 3)
    assert [r["agent"] for r in recs] == ["alice", "bob", "carol"]


async def test_api_transfer_to_agent_is_authorised_and_audited(daemon: DaemonProc, floor: Floor,
                                                               witness: Witness) -> None:
    """POST /calls/{id}/transfer: the kiosk token is refused, a bad target is refused, team east's token
    moves alice's caller to bob; every attempt is in the audit."""
    import aiohttp
    alice, bob, h, call_id, mark = await _talking(daemon, floor)
    url = f"http://127.0.0.1:{daemon.cfg.http.port}/api/v1/calls/{call_id}/transfer"
    async with aiohttp.ClientSession() as s:
        async with s.post(url, json={"to": "2002"}, headers={"Authorization": "Bearer wall-lab-kiosk-token"}) as r:
            assert r.status == 403 and (await r.json())["error"] == "missing_scope"
        east = {"Authorization": "Bearer east-lab-token"}
        async with s.post(url, json={"to": "4999"}, headers=east) as r:
            assert r.status == 400 and (await r.json())["error"] == "bad_target"
        async with s.post(url, json={"to": "2002;x"}, headers=east) as r:
            assert r.status == 400
        async with s.post(url, json={"to": "2002"}, headers=east) as r:
            assert r.status == 202, await r.text()
            assert await r.json() == {"call_id": call_id, "agent": "alice", "kind": "agent", "target": "bob"}
    await daemon.until("transfer.done", 10, after=mark, call_id=call_id, to_kind="agent", target="bob",
                       result="ringing")
    await daemon.until("call.bridged", 10, after=mark, call_id=call_id, agent="bob")
    assert await _wait_bridged(witness, "2002")
    await floor.wait(lambda: alice.calls[-1].ended, 5, "alice's leg to end")
    rec = await _ends(daemon, floor, h, call_id, mark, "bob")
    assert [s for _, s, _ in _states(daemon, mark, "alice")] == ["Reserved", "Busy", "WrapUp", "Ready"]
    assert rec["agent"] == "bob"
    assert [(s, ag, how) for s, ag, how, _ in _legs(daemon, call_id)] == [
        (1, "alice", "transfer:blind"), (2, "bob", "completed")]
    with daemon.db() as db:
        audit = [(r["action"], r["target"], r["outcome"]) for r in db.execute(
            "SELECT * FROM api_audit WHERE target LIKE 'transfer:%' ORDER BY rowid")]
    assert audit[-2:] == [("agent.state", f"transfer:{call_id}:4999", "failed"),
                          ("agent.state", f"transfer:{call_id}:2002", "done")], audit


async def test_blind_transfer_to_an_allowed_outside_number(daemon: DaemonProc, floor: Floor,
                                                           witness: Witness) -> None:
    """alice blind-transfers to 5550302 (the transfer trunk's allow-list admits _555XXXX): the caller is
    connected through the trunk; the record ends ``transferred`` with alice's leg."""
    outside = floor.caller("5550302")  # the "outside" party: a phone on the trunk's side
    alice, bob, h, call_id, mark = await _talking(daemon, floor)
    leg = alice.calls[-1]
    _pj(lambda: leg.call.xfer(f"sip:5550302@{SIP}", pj.CallOpParam(True)))
    await daemon.until("transfer.done", 10, after=mark, call_id=call_id, to_kind="out", target="5550302")
    await floor.wait(lambda: any(x.state in ("INCOMING", "EARLY") for x in outside.calls), 10, "5550302 to ring")
    ring = next(x for x in outside.calls if x.state in ("INCOMING", "EARLY"))
    ring.phone._answer(ring)
    await floor.wait(lambda: ring.state == "CONFIRMED", 5, "the outside party to answer")
    for _ in range(50):  # Asterisk bridges the two a moment after the answer
        chans = await witness.channels()
        trunk = [c for c in chans if c["Channel"].startswith("PJSIP/trunk-pstn-") and c.get("BridgeId")]
        if len(trunk) == 2:
            break
        await asyncio.sleep(0.1)
    assert len(trunk) == 2 and trunk[0]["BridgeId"] == trunk[1]["BridgeId"], chans  # caller <-> outside
    assert not h.ended
    rec = daemon.call_record(call_id)
    assert rec["outcome"] == "transferred" and rec["agent"] == "alice"
    assert "transfer:blind:out:5550302" in json.loads(rec["ivr_path"])
    assert [(s, ag, how) for s, ag, how, _ in _legs(daemon, call_id)] == [(1, "alice", "transfer:blind")]
    assert [s for _, s, _ in _states(daemon, mark, "alice")][:3] == ["Reserved", "Busy", "WrapUp"]
    h.hangup()
