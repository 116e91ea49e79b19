"""The pure ACD core: scenario tests and property tests of acd.step on the lab configuration.

Lab config (tests/asterisk/lab.yaml): queue ``sales`` = alice, bob (ring 4 s, max_no_answer 1,
wrap-up 1 s, max wait 120 s); queue ``empty`` = carol (max wait 4 s).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callcenter.config import load
from callcenter.features.acd import model as acd
from callcenter.features.acd.agents import AgentState

S = AgentState
LAB = Path(__file__).resolve().parents[1] / "asterisk" / "lab.yaml"
CFG = load(LAB)
SALES = CFG.queues["sales"]


# --------------------------------------------------------------------------- helpers

def run(state: acd.AcdState, *events: tuple[float, object]) -> tuple[acd.AcdState, list]:
    """Apply (now, event) pairs in order; return the final state and every command emitted."""
    out: list = []
    for now, ev in events:
        state, cmds = acd.step(CFG, state, ev, now)
        out += cmds
    return state, out


def synced(now: float = 0.0, channels: tuple = (), devices: dict | None = None) -> acd.AcdState:
    state, _ = acd.step(CFG, acd.initial_state(CFG), acd.Resync(channels, devices or {}), now)
    assert state.synced
    return state


def of(cmds: list, kind: type) -> list:
    return [c for c in cmds if isinstance(c, kind)]


def caller(cid: str, queue: str = "sales", entered_at: float | None = 0.0, **kw) -> acd.ChannelSnapshot:
    kw.setdefault("context", "cc-wait")
    return acd.ChannelSnapshot(uniqueid=f"u-{cid}", channel=f"PJSIP/trunk-pstn-{cid}", role="caller",
                               call_id=cid, queue=queue, entered_at=entered_at, **kw)


def agent_leg(cid: str, agent: str, up: bool = True) -> acd.ChannelSnapshot:
    return acd.ChannelSnapshot(uniqueid=f"a-{cid}", channel=f"PJSIP/{agent}-{cid}", role="agent",
                               call_id=cid, agent=agent, up=up, bridged=up, context="cc-agent")


def queued(cid: str, queue: str = "sales", **kw) -> acd.CallQueued:
    return acd.CallQueued(cid, queue, f"PJSIP/trunk-pstn-{cid}", **kw)


def ringing(state: acd.AcdState, cid: str, agent: str) -> None:
    """Assert that call ``cid`` rings ``agent`` and the agent is reserved for it."""
    assert state.calls[cid].agent == agent
    assert state.calls[cid].answered_at is None
    assert state.agents[agent].state is S.RESERVED
    assert state.agents[agent].call_id == cid


# --------------------------------------------------------------------------- lab config sanity

def test_lab_config_matches_the_assumptions():
    """The lab config has the queues, members and timers these tests rely on."""
    assert SALES.members == ("alice", "bob")
    assert (SALES.ring_timeout_s, SALES.max_no_answer, SALES.wrapup_s, SALES.max_wait_s) == (4, 1, 1, 120)
    assert CFG.queues["empty"].members == ("carol",)
    assert CFG.queues["empty"].max_wait_s == 4


def test_initial_state_agents_from_config():
    """initial_state lists every agent logged out, with its phone and queue memberships."""
    st0 = acd.initial_state(CFG)
    assert not st0.synced and dict(st0.calls) == {}
    assert {n: (a.phone, a.queues, a.state) for n, a in st0.agents.items()} == {
        "alice": ("2001", ("sales",), S.LOGGED_OUT),
        "bob": ("2002", ("sales",), S.LOGGED_OUT),
        "carol": ("2003", ("spill", "empty"), S.LOGGED_OUT),
    }


def test_initial_state_restores_login_and_pause_from_journal():
    """Persisted Ready/Busy come back Ready, Paused keeps its reason, LoggedOut stays out."""
    st0 = acd.initial_state(CFG, {"alice": (S.BUSY, "", 5.0), "bob": (S.PAUSED, "lunch", 7.0),
                                  "carol": (S.LOGGED_OUT, "", 1.0)})
    assert (st0.agents["alice"].state, st0.agents["alice"].idle_since) == (S.READY, 5.0)
    assert (st0.agents["bob"].state, st0.agents["bob"].pause_reason) == (S.PAUSED, "lunch")
    assert st0.agents["carol"].state is S.LOGGED_OUT


# --------------------------------------------------------------------------- scenarios

def test_no_offer_before_first_resync():
    """Before the first Resync nothing is offered even with a Ready agent and a waiting call."""
    st0 = acd.initial_state(CFG)
    state, cmds = run(st0, (1, acd.Login("alice")), (2, queued("c1", entered_at=2)))
    assert not state.synced
    assert of(cmds, acd.Offer) == []
    assert state.calls["c1"].agent is None
    assert state.agents["alice"].state is S.READY
    # the Resync that shows the caller still waiting allows the offer
    state, cmds = acd.step(CFG, state, acd.Resync((caller("c1", entered_at=2),)), 3)
    assert state.synced
    assert of(cmds, acd.Offer) == [acd.Offer("c1", "alice", "2001", "PJSIP/trunk-pstn-c1", "", "", 4)]


def test_login_and_queued_call_gives_offer():
    """After Resync, a logged-in agent is offered a newly queued call of their queue."""
    state, cmds = run(synced(), (1, acd.Login("alice")),
                      (2, queued("c1", caller_num="0612345678", caller_name="Zoe")))
    assert of(cmds, acd.Offer) == [
        acd.Offer("c1", "alice", "2001", "PJSIP/trunk-pstn-c1", "0612345678", "Zoe", 4)]
    ringing(state, "c1", "alice")
    assert state.calls["c1"].offer_deadline == 2 + 4 + acd.OFFER_GRACE_S
    assert state.calls["c1"].entered_at == 2
    assert state.waiting() == [] and state.position("c1") is None


def test_call_for_other_queue_is_not_offered():
    """A call in queue 'empty' is never offered to sales members."""
    state, cmds = run(synced(), (1, acd.Login("alice")), (2, queued("c1", queue="empty")))
    assert of(cmds, acd.Offer) == []
    assert [c.call_id for c in state.waiting("empty")] == ["c1"]
    assert state.position("c1") == 1


def test_unknown_queue_is_ignored():
    """A CallQueued for a queue not in the config creates no call."""
    state, cmds = run(synced(), (1, acd.Login("alice")), (2, queued("c1", queue="nope")))
    assert "c1" not in state.calls and of(cmds, acd.Offer) == []


def test_longest_idle_agent_gets_the_call():
    """The agent who became Ready earliest is offered the call, whatever the name order."""
    state, cmds = run(synced(), (1, acd.Login("bob")), (2, acd.Login("alice")), (3, queued("c1")))
    assert [(o.call_id, o.agent) for o in of(cmds, acd.Offer)] == [("c1", "bob")]
    ringing(state, "c1", "bob")
    assert state.agents["alice"].state is S.READY


def test_longest_idle_tie_breaks_by_name():
    """Two agents Ready at the same instant: the name decides, so the choice is deterministic."""
    state, cmds = run(synced(), (1, acd.Login("bob")), (1, acd.Login("alice")), (3, queued("c1")))
    assert [o.agent for o in of(cmds, acd.Offer)] == ["alice"]
    ringing(state, "c1", "alice")


def test_relogin_keeps_idle_since():
    """Logging in again while Ready does not reset idle time (no queue jumping backwards)."""
    state, _ = run(synced(), (1, acd.Login("bob")), (2, acd.Login("alice")), (3, acd.Login("bob")))
    assert state.agents["bob"].idle_since == 1
    state, cmds = acd.step(CFG, state, queued("c1"), 4)
    assert [o.agent for o in of(cmds, acd.Offer)] == ["bob"]


def test_offer_failed_goes_to_next_agent_and_auto_pauses():
    """An unanswered offer puts the call back, offers it to the next agent, and auto-pauses the first."""
    state, _ = run(synced(), (1, acd.Login("alice")), (2, acd.Login("bob")), (3, queued("c1")))
    ringing(state, "c1", "alice")
    state, cmds = acd.step(CFG, state, acd.OfferFailed("c1", "alice", "noanswer"), 7)
    alice = state.agents["alice"]
    assert alice.state is S.PAUSED
    assert alice.pause_reason == "no-answer"
    assert alice.no_answers == 1 and alice.call_id is None
    assert of(cmds, acd.Offer) == [acd.Offer("c1", "bob", "2002", "PJSIP/trunk-pstn-c1", "", "", 4)]
    ringing(state, "c1", "bob")
    assert state.calls["c1"].tried == frozenset({"alice"})
    assert state.calls["c1"].entered_at == 3  # still the original place in the queue
    changed = [c.agent.name for c in of(cmds, acd.AgentChanged)]
    assert changed == ["alice", "bob"]


def test_offer_failed_with_nobody_else_keeps_call_waiting():
    """If no other agent is free, the missed call waits (never dropped) and is not re-offered."""
    state, _ = run(synced(), (1, acd.Login("alice")), (3, queued("c1")))
    state, cmds = acd.step(CFG, state, acd.OfferFailed("c1", "alice"), 7)
    assert of(cmds, acd.Offer) == [] and of(cmds, acd.CallEnded) == []
    assert state.calls["c1"].agent is None
    assert [c.call_id for c in state.waiting("sales")] == ["c1"]


def test_missed_agent_waits_retry_s_before_next_offer():
    """An agent who let a call ring out is not offered again before retry_s, even once unpaused."""
    state, _ = run(synced(), (1, acd.Login("alice")), (3, queued("c1")), (7, acd.OfferFailed("c1", "alice")))
    retry_at = 7 + SALES.retry_s
    assert state.agents["alice"].retry_at == retry_at
    state, cmds = acd.step(CFG, state, acd.Unpause("alice"), 8)
    assert state.agents["alice"].state is S.READY and of(cmds, acd.Offer) == []
    assert acd.next_deadline(CFG, state, 8) == retry_at
    state, cmds = acd.step(CFG, state, acd.Tick(), retry_at - 0.01)
    assert of(cmds, acd.Offer) == []
    state, cmds = acd.step(CFG, state, acd.Tick(), retry_at)
    assert [(o.call_id, o.agent) for o in of(cmds, acd.Offer)] == [("c1", "alice")]


def test_stale_offer_failed_is_ignored():
    """OfferFailed naming an agent the call is not ringing changes nothing."""
    state, _ = run(synced(), (1, acd.Login("alice")), (2, acd.Login("bob")), (3, queued("c1")))
    new, cmds = acd.step(CFG, state, acd.OfferFailed("c1", "bob"), 4)
    assert cmds == []
    assert dict(new.calls) == dict(state.calls) and dict(new.agents) == dict(state.agents)


def test_offer_answered_makes_agent_busy():
    """OfferAnswered turns the reservation into a Busy agent and emits CallAnswered."""
    state, _ = run(synced(), (1, acd.Login("alice")), (3, queued("c1")))
    state, cmds = acd.step(CFG, state, acd.OfferAnswered("c1", "alice"), 5)
    assert of(cmds, acd.CallAnswered) == [acd.CallAnswered("c1", "alice", 5)]
    alice = state.agents["alice"]
    assert (alice.state, alice.call_id, alice.calls_taken, alice.no_answers) == (S.BUSY, "c1", 1, 0)
    c = state.calls["c1"]
    assert (c.agent, c.answered_at, c.offer_deadline) == ("alice", 5, None)
    # answering twice is a no-op
    again, cmds2 = acd.step(CFG, state, acd.OfferAnswered("c1", "alice"), 6)
    assert cmds2 == [] and again.agents["alice"].calls_taken == 1


def test_hangup_wrapup_then_ready():
    """AgentHungUp ends the call (completed) into WrapUp; a Tick after wrapup_s makes the agent Ready."""
    state, _ = run(synced(), (1, acd.Login("alice")), (3, queued("c1")), (5, acd.OfferAnswered("c1", "alice")))
    state, cmds = acd.step(CFG, state, acd.AgentHungUp("alice", "c1"), 50)
    assert of(cmds, acd.CallEnded) == [acd.CallEnded("c1", "completed", 50, agent="alice")]
    assert "c1" not in state.calls
    alice = state.agents["alice"]
    assert (alice.state, alice.wrap_until, alice.call_id) == (S.WRAPUP, 51, None)
    assert acd.next_deadline(CFG, state, 50) == 51
    state, cmds = acd.step(CFG, state, acd.Tick(), 50.9)
    assert cmds == [] and state.agents["alice"].state is S.WRAPUP
    state, cmds = acd.step(CFG, state, acd.Tick(), 51)
    alice = state.agents["alice"]
    assert (alice.state, alice.idle_since, alice.wrap_until) == (S.READY, 51, None)
    assert acd.next_deadline(CFG, state, 51) is None


def test_wrapup_agent_not_offered_until_done():
    """A call queued during wrap-up waits and is offered the moment wrap-up ends."""
    state, _ = run(synced(), (1, acd.Login("alice")), (3, queued("c1")), (5, acd.OfferAnswered("c1", "alice")),
                   (10, acd.AgentHungUp("alice", "c1")), (10.5, queued("c2")))
    assert state.calls["c2"].agent is None
    state, cmds = acd.step(CFG, state, acd.Tick(), 11)
    assert [(o.call_id, o.agent) for o in of(cmds, acd.Offer)] == [("c2", "alice")]


def test_hangup_from_wrong_agent_or_call_is_ignored():
    """AgentHungUp for a call the agent is not talking on changes nothing."""
    state, _ = run(synced(), (1, acd.Login("alice")), (3, queued("c1")), (5, acd.OfferAnswered("c1", "alice")))
    for ev in (acd.AgentHungUp("alice", "other"), acd.AgentHungUp("bob", "c1"), acd.AgentHungUp("zed", "c1")):
        new, cmds = acd.step(CFG, state, ev, 6)
        assert cmds == [] and new.agents["alice"].state is S.BUSY and "c1" in new.calls


def test_caller_left_while_ringing():
    """The caller hanging up during the offer cancels it, ends the call abandoned, frees the agent."""
    state, _ = run(synced(), (1, acd.Login("alice")), (3, queued("c1")))
    state, cmds = acd.step(CFG, state, acd.CallerLeft("c1"), 4)
    assert of(cmds, acd.CancelOffer) == [acd.CancelOffer("c1", "alice")]
    assert of(cmds, acd.CallEnded) == [acd.CallEnded("c1", "abandoned", 4)]
    assert "c1" not in state.calls
    alice = state.agents["alice"]
    assert (alice.state, alice.call_id) == (S.READY, None)


def test_caller_left_while_waiting():
    """A waiting caller hanging up ends the call abandoned without any CancelOffer."""
    state, _ = run(synced(), (3, queued("c1")))
    state, cmds = acd.step(CFG, state, acd.CallerLeft("c1"), 4)
    assert cmds == [acd.CallEnded("c1", "abandoned", 4)]
    assert dict(state.calls) == {}


def test_caller_left_while_talking_waits_for_agent_hangup():
    """CallerLeft on an answered call is ignored: the agent leg's hangup ends it."""
    state, _ = run(synced(), (1, acd.Login("alice")), (3, queued("c1")), (5, acd.OfferAnswered("c1", "alice")))
    state, cmds = acd.step(CFG, state, acd.CallerLeft("c1"), 6)
    assert cmds == [] and state.agents["alice"].state is S.BUSY and "c1" in state.calls


def test_max_wait_falls_back_and_next_deadline():
    """A call waiting max_wait_s is handed to the fallback; next_deadline predicts that instant."""
    state, _ = run(synced(), (10, queued("c1", queue="empty")))
    assert acd.next_deadline(CFG, state, 10) == 14
    state, cmds = acd.step(CFG, state, acd.Tick(), 13.99)
    assert cmds == [] and "c1" in state.calls
    state, cmds = acd.step(CFG, state, acd.Tick(), 14)
    assert cmds == [acd.Fallback("c1", "PJSIP/trunk-pstn-c1", "empty")]
    assert "c1" not in state.calls
    assert acd.next_deadline(CFG, state, 14) is None


def test_next_deadline_for_a_ringing_offer():
    """While an offer rings, the next deadline is the offer's give-up time (ring timeout + grace)."""
    state, _ = run(synced(), (1, acd.Login("alice")), (3, queued("c1")))
    assert acd.next_deadline(CFG, state, 3) == 3 + 4 + acd.OFFER_GRACE_S


def test_lost_offer_is_given_up_at_deadline():
    """An offer with neither answer nor failure is cancelled at its deadline and treated as a miss."""
    state, _ = run(synced(), (1, acd.Login("alice")), (2, acd.Login("bob")), (3, queued("c1")))
    deadline = state.calls["c1"].offer_deadline
    state, cmds = acd.step(CFG, state, acd.Tick(), deadline)
    assert of(cmds, acd.CancelOffer) == [acd.CancelOffer("c1", "alice")]
    assert state.agents["alice"].state is S.PAUSED
    ringing(state, "c1", "bob")


def test_next_deadline_empty_state():
    """With no calls and nobody in wrap-up there is no deadline."""
    assert acd.next_deadline(CFG, synced(), 0) is None


def test_ami_down_stops_offers_until_resync():
    """After AmiDown nothing is offered; the next Resync showing the caller allows offers again."""
    state, _ = run(synced(), (1, acd.AmiDown()), (2, acd.Login("alice")), (3, queued("c1", entered_at=3)))
    assert not state.synced
    assert state.calls["c1"].agent is None and state.agents["alice"].state is S.READY
    state, cmds = acd.step(CFG, state, acd.Tick(), 4)
    assert of(cmds, acd.Offer) == []
    state, cmds = acd.step(CFG, state, acd.Resync((caller("c1", entered_at=3),)), 5)
    assert [(o.call_id, o.agent) for o in of(cmds, acd.Offer)] == [("c1", "alice")]


def test_unavailable_device_is_skipped():
    """A Ready agent whose phone is unavailable or in use is not offered calls."""
    state, cmds = run(synced(devices={"alice": "UNAVAILABLE"}), (1, acd.Login("alice")), (2, acd.Login("bob")),
                      (3, queued("c1")))
    assert [o.agent for o in of(cmds, acd.Offer)] == ["bob"]
    state, cmds = run(synced(), (1, acd.Login("alice")), (2, acd.DeviceState("alice", "INUSE")),
                      (3, queued("c1")))
    assert of(cmds, acd.Offer) == []
    state, cmds = acd.step(CFG, state, acd.DeviceState("alice", "NOT_INUSE"), 4)
    assert [o.agent for o in of(cmds, acd.Offer)] == ["alice"]


def test_paused_agent_not_offered_and_unpause_offers():
    """A paused agent gets nothing; unpausing makes them Ready and the waiting call is offered."""
    state, cmds = run(synced(), (1, acd.Login("alice")), (2, acd.Pause("alice", "lunch")), (3, queued("c1")))
    assert state.agents["alice"].pause_reason == "lunch" and of(cmds, acd.Offer) == []
    state, cmds = acd.step(CFG, state, acd.Unpause("alice"), 9)
    assert state.agents["alice"].pause_reason == ""
    assert [(o.call_id, o.agent) for o in of(cmds, acd.Offer)] == [("c1", "alice")]
    assert state.agents["alice"].idle_since == 9


def test_resync_adopts_waiting_caller():
    """Resync turns a caller channel in cc-wait with a known queue into a waiting call."""
    ch = caller("w1", entered_at=7.5, caller_num="0611", caller_name="Ann")
    state, cmds = acd.step(CFG, acd.initial_state(CFG), acd.Resync((ch,)), 10)
    c = state.calls["w1"]
    assert (c.queue, c.channel, c.entered_at, c.caller_num, c.caller_name, c.agent) == (
        "sales", "PJSIP/trunk-pstn-w1", 7.5, "0611", "Ann", None)
    assert cmds == []
    assert state.synced


@pytest.mark.parametrize("ch", [
    caller("x1", context="cc-ivr"),
    caller("x1", bridged=True),
    caller("x1", queue="nope"),
    caller("x1", queue=""),
    acd.ChannelSnapshot("u", "PJSIP/t-1", role="", call_id="x1", queue="sales", context="cc-wait"),
    acd.ChannelSnapshot("u", "PJSIP/t-1", role="caller", call_id="", queue="sales", context="cc-wait"),
])
def test_resync_does_not_adopt_non_waiting_channels(ch):
    """Channels outside the wait loop, bridged, of unknown queue or without role/call id are not adopted."""
    state, _ = acd.step(CFG, acd.initial_state(CFG), acd.Resync((ch,)), 10)
    assert dict(state.calls) == {}


def test_resync_adopt_without_entry_time_uses_now():
    """A waiting caller without CC_ENTERED is adopted as entering now."""
    state, _ = acd.step(CFG, acd.initial_state(CFG), acd.Resync((caller("w1", entered_at=None),)), 10)
    assert state.calls["w1"].entered_at == 10


def test_resync_marks_agent_busy_from_up_leg():
    """An up agent leg bridged to a known caller makes that agent Busy on the call."""
    chans = (caller("t1", entered_at=3, bridged=True, up=True), agent_leg("t1", "bob"))
    state, cmds = acd.step(CFG, acd.initial_state(CFG), acd.Resync(chans), 10)
    bob = state.agents["bob"]
    assert (bob.state, bob.call_id) == (S.BUSY, "t1")
    c = state.calls["t1"]
    assert (c.agent, c.answered_at, c.queue, c.entered_at) == ("bob", 10, "sales", 3)
    assert of(cmds, acd.CallAnswered) == [acd.CallAnswered("t1", "bob", 10)]
    # and the call ends normally when bob hangs up
    state, cmds = acd.step(CFG, state, acd.AgentHungUp("bob", "t1"), 20)
    assert of(cmds, acd.CallEnded) == [acd.CallEnded("t1", "completed", 20, agent="bob")]
    assert state.agents["bob"].state is S.WRAPUP and state.agents["bob"].wrap_until == 21


def test_resync_keeps_known_talking_call():
    """Resync that shows a call we already know as talking keeps its answer time, no new CallAnswered."""
    state, _ = run(synced(), (1, acd.Login("alice")), (3, queued("c1")), (5, acd.OfferAnswered("c1", "alice")))
    chans = (caller("c1", entered_at=3, bridged=True, up=True), agent_leg("c1", "alice"))
    state, cmds = acd.step(CFG, state, acd.Resync(chans), 30)
    assert of(cmds, acd.CallAnswered) == []
    assert state.calls["c1"].answered_at == 5
    assert state.agents["alice"].state is S.BUSY


def test_resync_drops_vanished_calls():
    """Calls that Asterisk no longer shows are ended: waiting/ringing abandoned, talking completed."""
    state, _ = run(synced(), (1, acd.Login("alice")), (2, acd.Login("bob")),
                   (3, queued("talk")), (4, acd.OfferAnswered("talk", "alice")),
                   (5, queued("ring")), (6, queued("wait")))
    ringing(state, "ring", "bob")
    assert state.calls["wait"].agent is None
    state, cmds = acd.step(CFG, state, acd.Resync(()), 100)
    assert sorted((c.call_id, c.outcome) for c in of(cmds, acd.CallEnded)) == [
        ("ring", "abandoned"), ("talk", "completed"), ("wait", "abandoned")]
    assert dict(state.calls) == {}
    assert state.agents["bob"].state is S.READY and state.agents["bob"].call_id is None
    assert state.agents["alice"].state is S.READY  # WrapUp ending at `now` expires in the same step


def test_resync_cancels_ringing_leg_and_reoffers():
    """A ringing agent leg from before the reconnect is cancelled; the still-waiting caller is re-offered."""
    state, _ = run(synced(), (1, acd.Login("alice")), (3, queued("c1")), (4, acd.AmiDown()))
    ringing(state, "c1", "alice")
    chans = (caller("c1", entered_at=3), agent_leg("c1", "alice", up=False))
    state, cmds = acd.step(CFG, state, acd.Resync(chans), 6)
    assert of(cmds, acd.CancelOffer) == [acd.CancelOffer("c1", "alice")]
    assert [(o.call_id, o.agent) for o in of(cmds, acd.Offer)] == [("c1", "alice")]
    ringing(state, "c1", "alice")


def test_resync_talking_call_of_removed_queue_can_end():
    """A talking call adopted with a queue no longer in the config ends cleanly on hang-up."""
    chans = (caller("t1", queue="oldq", bridged=True, up=True), agent_leg("t1", "alice"))
    state, _ = acd.step(CFG, acd.initial_state(CFG), acd.Resync(chans), 10)
    assert state.calls["t1"].queue == "oldq"
    state, cmds = acd.step(CFG, state, acd.AgentHungUp("alice", "t1"), 20)
    assert of(cmds, acd.CallEnded) == [acd.CallEnded("t1", "completed", 20, agent="alice")]
    assert state.agents["alice"].state is S.READY  # wrap-up 0 for an unknown queue: over at once
    assert dict(state.calls) == {}


def test_illegal_event_is_rejected_and_state_unchanged():
    """Logout while Busy yields exactly one Rejected naming state and trigger; state is untouched."""
    state, _ = run(synced(), (1, acd.Login("alice")), (3, queued("c1")), (5, acd.OfferAnswered("c1", "alice")))
    ev = acd.Logout("alice")
    new, cmds = acd.step(CFG, state, ev, 6)
    assert new is state
    assert cmds == [acd.Rejected(ev, "agent in state Busy cannot take logout")]


def test_pause_while_ringing_is_rejected():
    """Pausing a Reserved agent is refused; the offer keeps ringing."""
    state, _ = run(synced(), (1, acd.Login("alice")), (3, queued("c1")))
    new, cmds = acd.step(CFG, state, acd.Pause("alice"), 4)
    assert new is state and len(cmds) == 1 and isinstance(cmds[0], acd.Rejected)
    assert "Reserved" in cmds[0].reason and "pause" in cmds[0].reason


def test_events_for_unknown_agents_are_ignored():
    """Events naming agents or calls that do not exist change nothing and emit nothing."""
    state = synced()
    for ev in (acd.Login("zed"), acd.Pause("zed"), acd.CallerLeft("nope"), acd.OfferAnswered("nope", "alice"),
               acd.DeviceState("zed", "INUSE"), object()):
        new, cmds = acd.step(CFG, state, ev, 1)
        assert cmds == [] and dict(new.agents) == dict(state.agents) and dict(new.calls) == {}


def test_fifo_offers_in_entry_order():
    """Two waiting calls are offered in entry-time order, not by call id or arrival of events."""
    state, _ = run(synced(), (5, queued("b-first", entered_at=5)), (6, queued("a-second", entered_at=6)))
    assert [c.call_id for c in state.waiting("sales")] == ["b-first", "a-second"]
    assert state.position("b-first") == 1 and state.position("a-second") == 2
    state, cmds = acd.step(CFG, state, acd.Login("alice"), 7)
    assert [o.call_id for o in of(cmds, acd.Offer)] == ["b-first"]
    state, cmds = acd.step(CFG, state, acd.Login("bob"), 8)
    assert [o.call_id for o in of(cmds, acd.Offer)] == ["a-second"]


def test_fifo_with_explicit_entry_time_out_of_order():
    """A call announced later but with an earlier entry time is served first."""
    state, _ = run(synced(), (10, queued("late", entered_at=10)), (11, queued("early", entered_at=2)))
    state, cmds = acd.step(CFG, state, acd.Login("bob"), 12)
    assert [o.call_id for o in of(cmds, acd.Offer)] == ["early"]


def test_duplicate_call_queued_is_ignored():
    """A second CallQueued with a known call id does not reset the call."""
    state, _ = run(synced(), (5, queued("c1", entered_at=5)))
    new, cmds = acd.step(CFG, state, queued("c1", entered_at=50), 6)
    assert cmds == [] and new.calls["c1"].entered_at == 5


def test_logout_and_login_resets_idle_time():
    """Logging out and back in puts the agent at the back of the idle line."""
    state, cmds = run(synced(), (1, acd.Login("alice")), (2, acd.Login("bob")), (3, acd.Logout("alice")),
                      (4, acd.Login("alice")), (5, queued("c1")))
    assert [o.agent for o in of(cmds, acd.Offer)] == ["bob"]
    assert state.agents["alice"].idle_since == 4


# --------------------------------------------------------------------------- properties

AGENTS = ("alice", "bob", "carol")
CALL_IDS = ("c0", "c1", "c2", "c3", "c4", "c5")
DT = st.sampled_from([0, 0, 0.25, 1, 2, 5, 15, 130])
KINDS = st.sampled_from(
    ["login"] * 4 + ["logout", "pause", "unpause", "unpause", "device"]
    + ["queue"] * 4 + ["left", "answer", "answer", "answer", "fail", "fail", "hangup", "hangup", "tick",
                       "stale", "amidown", "resync", "callback", "callback", "dialed", "dialed"])


def _agent(state: acd.AcdState, name: str) -> acd.Agent:
    return state.agents[name]


def _draw_event(data: st.DataObject, state: acd.AcdState, now: float) -> object:
    kind = data.draw(KINDS, label="kind")
    agent = data.draw(st.sampled_from(AGENTS), label="agent")
    if kind == "login":
        return acd.Login(agent)
    if kind == "logout":
        return acd.Logout(agent)
    if kind == "pause":
        return acd.Pause(agent, data.draw(st.sampled_from(["break", "lunch"])))
    if kind == "unpause":
        return acd.Unpause(agent)
    if kind == "device":
        return acd.DeviceState(agent, data.draw(st.sampled_from(["NOT_INUSE", "INUSE", "UNAVAILABLE", "UNKNOWN"])))
    if kind == "queue":
        cid = data.draw(st.sampled_from(CALL_IDS), label="cid")
        q = data.draw(st.sampled_from(["sales", "sales", "empty"]), label="queue")
        back = data.draw(st.sampled_from([None, None, 0, 1, 30]), label="back")
        return queued(cid, queue=q, entered_at=None if back is None else now - back)
    if kind == "left":
        cids = sorted(state.calls) or list(CALL_IDS)
        return acd.CallerLeft(data.draw(st.sampled_from(cids)))
    ring = sorted((c.call_id, c.agent) for c in state.calls.values() if c.agent and c.answered_at is None)
    if kind in ("answer", "fail") and ring:
        cid, ag = data.draw(st.sampled_from(ring))
        return acd.OfferAnswered(cid, ag) if kind == "answer" else acd.OfferFailed(cid, ag)
    waiting = sorted(c.call_id for c in state.calls.values() if c.agent is None and not c.callback)
    if kind == "callback" and waiting:
        return acd.CallbackRequested(data.draw(st.sampled_from(waiting)), "5550123", "pstn")
    dialing = sorted((c.call_id, c.agent) for c in state.calls.values()
                     if c.callback and c.answered_at is not None and not c.connected)
    if kind == "dialed" and dialing:
        cid, ag = data.draw(st.sampled_from(dialing))
        return acd.CallbackDialed(cid, ag, data.draw(st.sampled_from(["ANSWER", "NOANSWER", "BUSY", "CANCEL"])))
    busy = sorted((a.name, a.call_id) for a in state.agents.values() if a.state is S.BUSY and a.call_id)
    if kind == "hangup" and busy:
        ag, cid = data.draw(st.sampled_from(busy))
        return acd.AgentHungUp(ag, cid)
    if kind == "stale":  # an event about the wrong agent or call
        cid = data.draw(st.sampled_from(CALL_IDS))
        return data.draw(st.sampled_from([acd.OfferAnswered(cid, agent), acd.OfferFailed(cid, agent),
                                          acd.AgentHungUp(agent, cid)]))
    if kind == "amidown":
        return acd.AmiDown()
    if kind == "resync":
        return _truthful_resync(data, state)
    return acd.Tick()


def _truthful_resync(data: st.DataObject, state: acd.AcdState) -> acd.Resync:
    """A Resync built from our own view, with some channels randomly gone (calls ended while away)."""
    chans = []
    for c in state.calls.values():
        talking = c.answered_at is not None
        if c.callback:  # no caller channel; its agent leg may be there
            if c.agent is not None and data.draw(st.booleans(), label=f"keep leg {c.call_id}"):
                chans.append(agent_leg(c.call_id, c.agent, up=talking))
            continue
        if data.draw(st.booleans(), label=f"keep caller {c.call_id}") or not data.draw(st.booleans()):
            chans.append(caller(c.call_id, c.queue, c.entered_at, bridged=talking, up=True,
                                context="cc-wait" if not talking else "cc-bridge"))
        if c.agent is not None and data.draw(st.booleans(), label=f"keep leg {c.call_id}"):
            chans.append(agent_leg(c.call_id, c.agent, up=talking))
    return acd.Resync(tuple(chans))


def _check_invariants(before: acd.AcdState, ev: object, state: acd.AcdState, cmds: list, now: float) -> None:
    calls, agents = state.calls, state.agents

    if any(isinstance(c, acd.Rejected) for c in cmds):
        assert cmds == [acd.Rejected(ev, cmds[0].reason)]
        assert state is before
        return

    # an agent is never on two calls
    assigned = [c.agent for c in calls.values() if c.agent is not None]
    assert len(assigned) == len(set(assigned)), f"agent on two calls: {assigned}"

    # a call with an agent points to that agent, Reserved while ringing and Busy once answered
    for c in calls.values():
        if c.agent is None:
            assert c.answered_at is None and c.offer_deadline is None
            continue
        a = agents[c.agent]
        assert a.call_id == c.call_id
        if c.answered_at is None:
            assert a.state is S.RESERVED
            assert c.offer_deadline is not None and c.offer_deadline > now
            assert a.name in CFG.queues[c.queue].members
        else:
            assert a.state is S.BUSY and c.offer_deadline is None

    # every Reserved/Busy agent's call exists and is assigned to them; others have no call
    for a in agents.values():
        if a.state in (S.RESERVED, S.BUSY):
            assert a.call_id in calls, f"{a.name} {a.state} on missing call {a.call_id}"
            assert calls[a.call_id].agent == a.name
        else:
            assert a.call_id is None
        if a.state is S.WRAPUP:
            assert a.wrap_until is not None and a.wrap_until > now
        if a.state is S.PAUSED:
            assert a.pause_reason != ""

    # timers never overdue after a step (a callback has no channel, hence no max wait)
    for c in calls.values():
        if c.agent is None and not c.callback:
            assert c.entered_at + CFG.queues[c.queue].max_wait_s > now
    deadline = acd.next_deadline(CFG, state, now)
    assert deadline is None or deadline > now

    # once synced, no call waits while an eligible member could take it
    if state.synced:
        for c in calls.values():
            if c.agent is None and acd._dialable(CFG, c, now):
                free = [m for m in CFG.queues[c.queue].members
                        if agents[m].state is S.READY and agents[m].device not in acd.UNAVAILABLE_DEVICE
                        and getattr(agents[m], "retry_at", 0.0) <= now]
                assert free == [], f"{c.call_id} waits while {free} are free"
    else:
        assert not any(isinstance(c, acd.Offer) for c in cmds)

    # FIFO within a queue: an offered call never overtakes an earlier call of its queue still waiting
    offers = [c for c in cmds if isinstance(c, acd.Offer)]
    for o in offers:
        oc = calls[o.call_id]
        assert oc.agent == o.agent and agents[o.agent].state is S.RESERVED
        assert o.phone == CFG.agents[o.agent].phone
        assert o.timeout_s == CFG.queues[oc.queue].ring_timeout_s
        key = (oc.entered_at, oc.call_id)
        assert not [w.call_id for w in state.waiting(oc.queue)  # (a callback in its retry delay may be passed)
                    if (w.entered_at, w.call_id) < key and acd._dialable(CFG, w, now)]
    offered_keys = [(calls[o.call_id].queue, calls[o.call_id].entered_at, o.call_id) for o in offers]
    for q in {k[0] for k in offered_keys}:
        same = [k[1:] for k in offered_keys if k[0] == q]
        assert same == sorted(same)

    # callbacks never exceed free agents: each one offered takes an agent who was on no call
    cb_offers = [o for o in offers if calls[o.call_id].callback]
    assert len({o.agent for o in cb_offers}) == len(cb_offers)
    in_flight = [c for c in calls.values() if c.callback and c.agent is not None]
    assert len(in_flight) <= sum(1 for a in agents.values() if a.state in (S.RESERVED, S.BUSY))
    for c in calls.values():
        if c.callback and c.agent is not None:
            assert agents[c.agent].state in (S.RESERVED, S.BUSY) and agents[c.agent].call_id == c.call_id

    # no call disappears silently: every removed call gets exactly one CallEnded or Fallback
    ended = Counter(c.call_id for c in cmds if isinstance(c, (acd.CallEnded, acd.Fallback)))
    known = set(before.calls)
    if isinstance(ev, acd.CallQueued) and ev.queue in CFG.queues:
        known.add(ev.call_id)  # may be queued and fall back in the same step (entry time long ago)
    removed = known - set(calls)
    assert set(ended) == removed and all(n == 1 for n in ended.values()), (ended, removed)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), n=st.integers(5, 40))
def test_random_event_sequences_keep_invariants(data, n):
    """Random event sequences after a Resync keep the call/agent invariants after every step."""
    now = 1000.0
    state, cmds = acd.step(CFG, acd.initial_state(CFG), acd.Resync(()), now)
    _check_invariants(acd.initial_state(CFG), acd.Resync(()), state, cmds, now)
    for _ in range(n):
        now += data.draw(DT, label="dt")
        ev = _draw_event(data, state, now)
        before = state
        state, cmds = acd.step(CFG, state, ev, now)
        _check_invariants(before, ev, state, cmds, now)


@settings(max_examples=100, deadline=None)
@given(entries=st.lists(st.tuples(st.sampled_from(CALL_IDS), st.integers(0, 50)), min_size=1, max_size=6,
                        unique_by=lambda t: t[0]),
       logins=st.permutations(["alice", "bob"]))
def test_offers_follow_entry_order(entries, logins):
    """Whatever order calls are announced in, agents logging in one by one take them in entry order."""
    state = synced(100)
    for cid, t in entries:
        state, _ = acd.step(CFG, state, queued(cid, entered_at=100 - t), 100)
    expected = [cid for cid, t in sorted(entries, key=lambda e: (100 - e[1], e[0]))]
    got = []
    now = 101.0
    for name in logins:
        state, cmds = acd.step(CFG, state, acd.Login(name), now)
        got += [o.call_id for o in of(cmds, acd.Offer)]
    assert got == expected[:2]
    # answering and hanging up frees agents for the next calls, still in order
    while len(got) < len(expected):
        name, cid = next((a.name, a.call_id) for a in state.agents.values() if a.state is S.RESERVED)
        state, _ = run(state, (now, acd.OfferAnswered(cid, name)), (now + 1, acd.AgentHungUp(name, cid)))
        now += 1 + SALES.wrapup_s
        state, cmds = acd.step(CFG, state, acd.Tick(), now)
        got += [o.call_id for o in of(cmds, acd.Offer)]
    assert got == expected


def test_state_is_immutable():
    """step never mutates the state it is given."""
    state = synced()
    snapshot = (dict(state.agents), dict(state.calls), state.synced)
    acd.step(CFG, state, acd.Login("alice"), 1)
    assert (dict(state.agents), dict(state.calls), state.synced) == snapshot
    with pytest.raises(TypeError):
        state.calls["x"] = replace(next(iter(state.agents.values())))  # type: ignore[index]
