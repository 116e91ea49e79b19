"""Parking: the core's park events (held, picked up, back), the config checks and the rendered
res_parking.conf and slot extensions."""

from __future__ import annotations

import dataclasses

import pytest

from callcenter.asterisk.render import render
from callcenter.features.acd import model as acd
from callcenter.features.acd import transfer as xfer
from callcenter.features.acd.agents import AgentState
from callcenter.features.parking.schema import ParkingConf, problems

from tests.unit.test_acd_core import CFG, of
from tests.unit.test_transfer_core import talking

S = AgentState


def parked(cid: str = "c1", *ready: str) -> acd.AcdState:
    """alice parked the caller of ``cid`` at 20 (blind transfer to the park code)."""
    state = talking(cid, "alice", *ready)
    state, _ = acd.step(CFG, state, xfer.BlindTransferStarted(cid, "alice", "park"), 20)
    state, cmds = acd.step(CFG, state, xfer.TransferTarget(cid, "park", ""), 20)
    assert of(cmds, xfer.TransferDone) == [xfer.TransferDone(cid, "blind", "alice", "park", "", "parked")]
    return state


def test_parking_holds_the_call_and_wraps_up_the_agent():
    """Parked: the call is held (neither waiting nor offered), alice wraps up, her leg ends ``park``."""
    state = talking("c1", "alice")
    state, cmds = acd.step(CFG, state, xfer.BlindTransferStarted("c1", "alice", "park"), 20)
    assert of(cmds, xfer.LegEnded) == [xfer.LegEnded("c1", "alice", 10, 20, "park")]
    state, _ = acd.step(CFG, state, xfer.TransferTarget("c1", "park", "701"), 20)
    assert state.calls["c1"].pending == "park" and state.agents["alice"].state is S.WRAPUP
    state, cmds = acd.step(CFG, state, acd.Tick(), 200)
    assert not of(cmds, acd.Offer) and state.calls["c1"].pending == "park"


def test_the_target_before_the_blind_transfer_event_still_ends_the_leg_as_park():
    """cc-xfer's AGI may come before AMI BlindTransfer: the leg still ends ``park``."""
    state = talking("c1", "alice")
    state, cmds = acd.step(CFG, state, xfer.TransferTarget("c1", "park", ""), 20)
    assert of(cmds, xfer.LegEnded) == [xfer.LegEnded("c1", "alice", 10, 20, "park")]
    state, cmds = acd.step(CFG, state, xfer.BlindTransferStarted("c1", "alice", "park"), 20)
    assert not of(cmds, xfer.LegEnded) and state.calls["c1"].pending == "park"


def test_an_agent_picking_up_a_parked_call_is_busy_on_it_as_a_new_leg():
    """bob dials the slot: Busy on the same call id, a leg of his own; the record goes on."""
    state = parked("c1", "bob")
    state, cmds = acd.step(CFG, state, xfer.ParkPickedUp("c1", "bob", "2002"), 30)
    assert state.agents["bob"].state is S.BUSY and state.agents["bob"].call_id == "c1"
    c = state.calls["c1"]
    assert c.agent == "bob" and not c.pending and c.answered_at == 30
    assert of(cmds, xfer.LegStarted) == [xfer.LegStarted("c1", "bob", 30)]
    state, cmds = acd.step(CFG, state, acd.AgentHungUp("bob", "c1"), 40)
    assert of(cmds, acd.CallEnded)[0].outcome == "completed" and of(cmds, xfer.LegEnded)[0].how == "completed"


def test_a_phone_that_is_no_agents_picking_up_takes_the_call_out_of_the_acd():
    """Picked up from a desk phone no agent uses: the record ends ``transferred`` with alice."""
    state = parked("c1")
    state, cmds = acd.step(CFG, state, xfer.ParkPickedUp("c1", None, "2004"), 30)
    assert "c1" not in state.calls
    assert of(cmds, acd.CallEnded) == [acd.CallEnded("c1", "transferred", 30, agent="alice")]


def test_parked_too_long_rings_the_agent_who_parked_it_when_ready():
    """Back after the timeout: alice (Ready again after her wrap-up) is rung for it at once."""
    state = parked("c1")
    state, _ = acd.step(CFG, state, acd.Tick(), 100)
    assert state.agents["alice"].state is S.READY
    state, cmds = acd.step(CFG, state, xfer.ParkReturned("c1"), 100)
    assert [o.agent for o in of(cmds, acd.Offer)] == ["alice"]
    assert state.agents["alice"].state is S.RESERVED and not state.calls["c1"].pending


def test_parked_too_long_waits_in_its_queue_when_the_agent_is_away_keeping_its_place():
    """alice paused meanwhile: the caller waits in sales again with its first entry time."""
    state = parked("c1")
    state, _ = acd.step(CFG, state, acd.Pause("alice"), 21)
    state, cmds = acd.step(CFG, state, xfer.ParkReturned("c1"), 100)
    c = state.calls["c1"]
    assert c.agent is None and c.queue == "sales" and c.entered_at == 0.0 and not c.pending
    assert of(cmds, xfer.TransferDone) == [xfer.TransferDone("c1", "park", "alice", "queue", "sales", "returned")]


def test_a_parked_caller_who_hangs_up_abandoned():
    """The caller gives up while parked: the call ends ``abandoned``; stale park events change nothing."""
    state = parked("c1")
    state, cmds = acd.step(CFG, state, acd.CallerLeft("c1"), 30)
    assert of(cmds, acd.CallEnded)[0].outcome == "abandoned" and "c1" not in state.calls
    again, cmds = acd.step(CFG, state, xfer.ParkPickedUp("c1", "bob"), 31)
    assert again.calls == state.calls and not of(cmds, xfer.LegStarted)


def _cfg(**parking: object):
    return dataclasses.replace(CFG, parking=ParkingConf(**{"enabled": True, **parking}))


def test_parking_codes_must_not_clash():
    """A slot that is also a phone extension, or a park code inside the slots, is named at start-up."""
    cfg = _cfg(code="2000", first=2001, slots=3)
    out = problems(cfg)
    assert any("2001 is also a phone extension" in p for p in out)
    assert problems(_cfg(code="702", first=701, slots=3)) == ["parking.code: 702 is one of the slots"]
    assert problems(_cfg()) == []


def test_rendered_lot_and_slots():
    """res_parking.conf has the one lot; cc-phones has a pick-up and a BLF hint per slot, nothing for the park code."""
    files = render(_cfg(first=801, slots=2, timeout_s=30))
    lot = files["res_parking.conf"]
    assert "[cc-park]" in lot and "parkpos => 801-802" in lot and "parkingtime => 30" in lot
    ext = files["extensions.conf"]
    assert "exten => 801,hint,park:801@cc-park" in ext and "exten => 802,1,Set(CC_SLOT=802)" in ext
    assert "exten => 700," not in ext and "include => cc-park" not in ext
    assert "res_parking.conf" not in render(dataclasses.replace(CFG, parking=ParkingConf()))


@pytest.mark.parametrize("digits,want", [("700", ("park", "", "")), ("703", ("park", "703", "")),
                                         ("721", ("back", "", ""))])
def test_transfer_targets_include_the_park_code_and_slots(digits, want):
    """What an agent dials resolves to parking (first free slot, or that slot) only within the lot."""
    from callcenter.features.transfer.service import TransferService
    cfg = _cfg()
    svc = TransferService(lambda: cfg, None, None, agent_channel=lambda a: None)  # type: ignore[arg-type]
    assert svc.resolve(digits, None) == want
