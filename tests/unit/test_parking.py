"""Parking: the core's park events (held, picked up, back), the config checks and the rendered
res_parking.conf and slot extensions."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callcenter.asterisk.render import render
from callcenter.features.acd import model as acd
from callcenter.features.acd import transfer as xfer
from callcenter.features.acd.agents import AgentState
from callcenter.features.parking.schema import ParkingConf, problems

from tests.unit.test_acd_core import CFG, DT, of, synced
from tests.unit.test_transfer_core import AGENTS, _check, _draw, talking

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


# --------------------------------------------------------------------------- conference (same core module)

def test_conference_with_a_colleague_hands_the_call_over_when_the_agent_leaves():
    """bob joins alice's conference (Busy on the call); alice hangs up: bob holds it, a new leg; alice wraps up."""
    state = talking("c1", "alice", "bob")
    state, _ = acd.step(CFG, state, xfer.ConferenceStarted("c1", "bob"), 20)
    state, _ = acd.step(CFG, state, xfer.ConsultAnswered("c1", "bob"), 21)
    assert state.agents["bob"].state is S.BUSY and state.agents["bob"].call_id == "c1"
    state, cmds = acd.step(CFG, state, acd.AgentHungUp("alice", "c1"), 30)
    assert state.agents["alice"].state is S.WRAPUP and state.calls["c1"].agent == "bob"
    assert of(cmds, xfer.LegEnded) == [xfer.LegEnded("c1", "alice", 10, 30, "conference")]
    assert of(cmds, xfer.TransferDone) == [xfer.TransferDone("c1", "conference", "alice", "agent", "bob", "taken")]
    state, cmds = acd.step(CFG, state, acd.AgentHungUp("bob", "c1"), 40)
    assert of(cmds, acd.CallEnded)[0].outcome == "completed" and "c1" not in state.calls


def test_conference_with_an_outside_number_leaves_the_acd_when_the_agent_leaves():
    """Third party 5550302: alice hangs up, the caller stays with them; the record ends ``transferred``."""
    state = talking("c1", "alice")
    state, _ = acd.step(CFG, state, xfer.ConferenceStarted("c1", "5550302"), 20)
    state, cmds = acd.step(CFG, state, acd.AgentHungUp("alice", "c1"), 30)
    assert "c1" not in state.calls and state.agents["alice"].state is S.WRAPUP
    assert of(cmds, acd.CallEnded) == [acd.CallEnded("c1", "transferred", 30, agent="alice")]


def test_conference_the_caller_leaving_ends_the_call_and_the_agents_are_freed():
    """The caller hangs up in a conference: the call ends completed; alice and bob are freed by their hang-ups."""
    state = talking("c1", "alice", "bob")
    state, _ = acd.step(CFG, state, xfer.ConferenceStarted("c1", "bob"), 20)
    state, _ = acd.step(CFG, state, xfer.ConsultAnswered("c1", "bob"), 21)
    state, cmds = acd.step(CFG, state, acd.CallerLeft("c1"), 30)
    assert of(cmds, acd.CallEnded)[0].outcome == "completed" and "c1" not in state.calls
    for name in ("alice", "bob"):
        state, _ = acd.step(CFG, state, acd.AgentHungUp(name, "c1"), 31)
        assert state.agents[name].state is not S.BUSY


def test_conference_an_agent_rung_who_never_joined_the_agent_leaving_ends_it():
    """bob was rung but never joined: alice hanging up ends the call as usual (completed)."""
    state = talking("c1", "alice", "bob")
    state, _ = acd.step(CFG, state, xfer.ConferenceStarted("c1", "bob"), 20)
    state, cmds = acd.step(CFG, state, acd.AgentHungUp("alice", "c1"), 30)
    assert of(cmds, acd.CallEnded)[0].outcome == "completed"


# --------------------------------------------------------------------------- invariants

@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), n=st.integers(5, 40))
def test_agent_states_follow_the_call_through_parking_and_conferences(data, n):
    """Random calls, parking, pick-ups, returns and conferences: never Ready while on a call, never Busy after leaving it."""
    now = 1000.0
    state = synced(now)
    for i in range(n):
        now += data.draw(DT, label="dt")
        kind = data.draw(st.sampled_from(["base", "base", "park", "pickup", "back", "conf", "join"]), label="k")
        agent = data.draw(st.sampled_from(AGENTS), label="agent")
        held = sorted(c.call_id for c in state.calls.values() if c.agent and c.answered_at is not None
                      and not c.pending) + ["zz"]
        parked_ = sorted(c.call_id for c in state.calls.values() if c.pending == "park") + ["zz"]
        if kind == "park":
            ev: object = xfer.TransferTarget(data.draw(st.sampled_from(held)), "park", "")
        elif kind == "pickup":
            ev = xfer.ParkPickedUp(data.draw(st.sampled_from(parked_)), data.draw(st.sampled_from([agent, None])))
        elif kind == "back":
            ev = xfer.ParkReturned(data.draw(st.sampled_from(parked_)))
        elif kind == "conf":
            ev = xfer.ConferenceStarted(data.draw(st.sampled_from(held)), data.draw(st.sampled_from([agent, "5550302"])))
        elif kind == "join":  # only the conference's own colleague joins (what the service submits)
            confs = sorted((c.call_id, c.conference) for c in state.calls.values()
                           if c.conference in AGENTS and c.consult is None)
            ev = xfer.ConsultAnswered(*data.draw(st.sampled_from(confs))) if confs else acd.Tick()
        else:
            ev = _draw(data, state, now, f"c{i}")
            if isinstance(ev, (xfer.ConsultAnswered, xfer.AttendedTransferred)):
                ev = acd.Tick()  # consults are the transfer tests' own
        before = state
        state, cmds = acd.step(CFG, state, ev, now)
        _check(before, ev, state, cmds, now)
