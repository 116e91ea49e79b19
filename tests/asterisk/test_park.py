"""Parking against the real Asterisk: an agent's pjsua2 desk phone blind-transfers its caller to the
park code; another agent's phone dials the slot and talks with the caller; a call parked too long
rings the agent who parked it again. The lab parks for 3 s (tests/asterisk/lab.yaml ``parking``)."""

from __future__ import annotations

import asyncio

import pjsua2 as pj
import pytest

from callcenter.lab.phones import _pj

from tests.asterisk.conftest import SIP, DaemonProc, Floor, Witness
from tests.asterisk.test_transfer import _legs, _states, _talking, _wait_bridged

pytestmark = pytest.mark.asterisk


async def _slot_state(witness: Witness, slot: str) -> str:
    """The slot's hint as a BLF key sees it (AMI ExtensionState in the phones' context): 0 free, 1 in use."""
    r = await witness.m.send_action({"Action": "ExtensionState", "Exten": slot, "Context": "cc-phones"})
    return str(r.get("Status"))


async def test_park_and_pick_up_from_another_phone(daemon: DaemonProc, floor: Floor, witness: Witness) -> None:
    """alice parks her caller (transfer to 700): slot 701 (its BLF hint in use), alice wraps up; bob dials 701
    and talks with the caller, Busy on the same call id; one record, legs alice (park) and bob."""
    alice, bob, h, call_id, mark = await _talking(daemon, floor)
    leg = alice.calls[-1]
    _pj(lambda: leg.call.xfer(f"sip:700@{SIP}", pj.CallOpParam(True)))
    await daemon.until("park.parked", 10, after=mark, call_id=call_id, slot="701")
    await daemon.until("transfer.done", 5, after=mark, call_id=call_id, to_kind="park", result="parked")
    await floor.wait(lambda: leg.ended, 5, "alice's leg to end")
    assert not h.ended
    assert await _slot_state(witness, "701") == "1", "the slot's BLF hint does not show the parked call (InUse)"
    assert await _slot_state(witness, "702") == "0"
    pick = bob.dial(f"sip:701@{SIP}")
    await daemon.until("park.picked_up", 10, after=mark, call_id=call_id, agent="bob", slot="701")
    await daemon.until("call.leg_started", 5, after=mark, call_id=call_id, agent="bob")
    await floor.wait(lambda: pick.state == "CONFIRMED", 5, "bob's pick-up")
    assert await _wait_bridged(witness, "2002"), "the caller is not bridged with bob"
    await asyncio.sleep(0.5)
    h.hangup()
    await daemon.until("call.ended", 10, after=mark, call_id=call_id, outcome="completed", agent="bob")
    assert daemon.call_record(call_id)["agent"] == "bob"  # (the journal has written the call's rows)
    a, b = _states(daemon, mark, "alice"), _states(daemon, mark, "bob")
    assert [s for _, s, _ in a][:3] == ["Reserved", "Busy", "WrapUp"], a
    assert [s for _, s, _ in b][:2] == ["Busy", "WrapUp"] and b[0][2] == call_id, b
    assert [(s, ag, how) for s, ag, how, _ in _legs(daemon, call_id)] == [(1, "alice", "park"), (2, "bob", "completed")]


async def test_a_call_parked_too_long_rings_the_agent_who_parked_it(daemon: DaemonProc, floor: Floor,
                                                                    witness: Witness) -> None:
    """alice parks in slot 703; nobody picks up: after 3 s the caller rings alice (Ready again) and talks with her."""
    alice, bob, h, call_id, mark = await _talking(daemon, floor)
    leg = alice.calls[-1]
    _pj(lambda: leg.call.xfer(f"sip:703@{SIP}", pj.CallOpParam(True)))
    await daemon.until("park.parked", 10, after=mark, call_id=call_id, slot="703")
    parked = daemon.mark()
    await daemon.until("park.timed_out", 8, after=mark, call_id=call_id, slot="703")
    await daemon.until("transfer.done", 5, after=mark, call_id=call_id, kind="park", to_kind="agent",
                       target="alice", result="returned")
    await daemon.until("call.leg_started", 10, after=mark, call_id=call_id, agent="alice")
    assert await _wait_bridged(witness, "2001"), "the caller is not bridged with alice again"
    assert not h.ended and not _states(daemon, parked, "bob"), "bob was not offered it"
    h.hangup()
    await daemon.until("call.ended", 10, after=mark, call_id=call_id, outcome="completed", agent="alice")
    assert daemon.call_record(call_id)["agent"] == "alice"  # (the journal has written the call's rows)
    assert [(s, ag, how) for s, ag, how, _ in _legs(daemon, call_id)] == [
        (1, "alice", "park"), (2, "alice", "completed")]
