"""Transfers in the pure ACD core (features/acd/transfer.py): agent states and call legs at every step.

Lab config (tests/asterisk/lab.yaml): queue ``sales`` = alice, bob (ring 4 s, wrap-up 1 s); ``empty`` =
carol; ``spill`` = carol.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callcenter.features.acd import model as acd
from callcenter.features.acd import transfer as xfer
from callcenter.features.acd.agents import AgentState

from tests.unit.test_acd_core import CFG, DT, of, queued, run, synced

S = AgentState
WRAP = CFG.queues["sales"].wrapup_s


def talking(cid: str = "c1", agent: str = "alice", *ready: str) -> acd.AcdState:
    """``agent`` talks with the caller of ``cid`` (sales, entered at 0, answered at 10); ``ready`` logged in."""
    state = synced(0)
    for name in (agent, *ready):
        state, _ = acd.step(CFG, state, acd.Login(name), 0)
    state, _ = run(state, (0, queued(cid, entered_at=0.0)))
    assert state.calls[cid].agent == agent, "the lab's longest-idle pick"
    state, _ = run(state, (10, acd.OfferAnswered(cid, agent)))
    for name in ready:
        state, _ = acd.step(CFG, state, acd.Tick(), 10)
    return state


def test_blind_transfer_to_a_ready_agent_rings_them_and_wraps_up_the_first():
    """Blind to bob: alice goes to wrap-up at once, the call rings bob, and his answer is a new leg, not a new call."""
    state = talking("c1", "alice")
    state, _ = acd.step(CFG, state, acd.Login("bob"), 11)
    assert state.agents["bob"].state is S.READY
    state, cmds = acd.step(CFG, state, xfer.BlindTransferStarted("c1", "alice"), 20)
    assert state.agents["alice"].state is S.WRAPUP and state.agents["alice"].call_id is None
    assert of(cmds, xfer.LegEnded) == [xfer.LegEnded("c1", "alice", 10, 20, "transfer:blind")]
    assert state.calls["c1"].pending == "blind" and not of(cmds, acd.Offer)  # held: nobody is rung yet
    state, cmds = acd.step(CFG, state, xfer.TransferTarget("c1", "agent", "bob"), 20.1)
    assert [(o.call_id, o.agent) for o in of(cmds, acd.Offer)] == [("c1", "bob")]
    assert of(cmds, xfer.TransferDone)[0].result == "ringing"
    assert state.agents["bob"].state is S.RESERVED
    state, cmds = acd.step(CFG, state, acd.OfferAnswered("c1", "bob"), 23)
    assert state.agents["bob"].state is S.BUSY and state.agents["bob"].call_id == "c1"
    assert of(cmds, xfer.LegStarted) == [xfer.LegStarted("c1", "bob", 23)] and not of(cmds, acd.CallAnswered)
    state, cmds = acd.step(CFG, state, acd.AgentHungUp("alice", "c1"), 23.5)  # alice's leg: long gone
    assert cmds == [] or not of(cmds, acd.CallEnded)
    state, cmds = acd.step(CFG, state, acd.AgentHungUp("bob", "c1"), 40)
    assert of(cmds, xfer.LegEnded) == [xfer.LegEnded("c1", "bob", 23, 40, "completed")]
    assert of(cmds, acd.CallEnded) == [acd.CallEnded("c1", "completed", 40, agent="bob")]
    assert state.agents["bob"].state is S.WRAPUP and "c1" not in state.calls


def test_the_agents_hangup_before_the_target_changes_nothing():
    """The transferring agent's leg hangs up while the call is held: the call is not ended."""
    state = talking("c1", "alice")
    state, _ = run(state, (20, xfer.BlindTransferStarted("c1", "alice")))
    state, cmds = acd.step(CFG, state, acd.AgentHungUp("alice", "c1"), 20.01)
    assert "c1" in state.calls and not of(cmds, acd.CallEnded)


def test_blind_transfer_to_a_busy_agent_goes_back_to_the_queue_with_seniority():
    """Blind to an agent who cannot take it: the caller waits in its queue again, keeping its entry time."""
    state = talking("c1", "alice")  # bob logged out
    state, cmds = run(state, (20, xfer.BlindTransferStarted("c1", "alice")),
                      (20.1, xfer.TransferTarget("c1", "agent", "bob")))
    c = state.calls["c1"]
    assert c.agent is None and c.entered_at == 0.0 and c.queue == "sales" and c.transfers == 1
    assert of(cmds, xfer.TransferDone)[0].result == "agent-unavailable"
    assert state.agents["bob"].state is S.LOGGED_OUT


def test_blind_transfer_to_a_queue_keeps_the_callers_seniority():
    """Blind to another queue: the caller is ahead of callers who entered after it did."""
    state = talking("c1", "alice")
    state, _ = run(state, (19, queued("c0", queue="empty", entered_at=19.0)))
    state, cmds = run(state, (20, xfer.BlindTransferStarted("c1", "alice")),
                      (20.1, xfer.TransferTarget("c1", "queue", "empty")))
    c = state.calls["c1"]
    assert (c.queue, c.agent, c.entered_at, c.queue_entered_at) == ("empty", None, 0.0, 20.1)
    assert state.position("c1") == 1 and state.position("c0") == 2
    state, cmds = acd.step(CFG, state, acd.Login("carol"), 21)
    assert [o.call_id for o in of(cmds, acd.Offer)] == ["c1"]
    state, cmds = acd.step(CFG, state, acd.OfferAnswered("c1", "carol"), 22)
    assert of(cmds, xfer.LegStarted) and not of(cmds, acd.CallAnswered)


def test_blind_transfer_out_of_the_acd_ends_the_record_as_transferred():
    """Blind to a desk phone or an outside number: the call leaves the ACD, ``transferred``."""
    state = talking("c1", "alice")
    state, cmds = run(state, (20, xfer.BlindTransferStarted("c1", "alice")),
                      (20.1, xfer.TransferTarget("c1", "out", "2004")))
    assert "c1" not in state.calls
    assert of(cmds, acd.CallEnded) == [acd.CallEnded("c1", "transferred", 20.1, agent="alice")]


def test_target_without_the_ami_event_starts_the_transfer_itself():
    """The caller reached cc-xfer before AMI BlindTransfer was read: the target starts the transfer."""
    state = talking("c1", "alice")
    state, cmds = acd.step(CFG, state, xfer.TransferTarget("c1", "back"), 20)
    assert state.agents["alice"].state is S.WRAPUP
    assert state.calls["c1"].agent is None and of(cmds, xfer.LegEnded)


def test_caller_hanging_up_while_held_ends_the_call():
    """A caller who hangs up between the blind transfer and its target: the record ends, nobody is busy."""
    state = talking("c1", "alice")
    state, cmds = run(state, (20, xfer.BlindTransferStarted("c1", "alice")), (20.2, acd.CallerLeft("c1")))
    assert "c1" not in state.calls and of(cmds, acd.CallEnded)[0].outcome == "completed"


def test_a_held_call_whose_caller_is_gone_after_a_resync_ends():
    """The link dropped between the blind transfer and its target, and the caller is gone: the call ends."""
    state = talking("c1", "alice")
    state, _ = run(state, (20, xfer.BlindTransferStarted("c1", "alice")), (21, acd.AmiDown()))
    state, cmds = acd.step(CFG, state, acd.Resync(()), 25)
    assert "c1" not in state.calls and of(cmds, acd.CallEnded)[0].call_id == "c1"


def test_attended_transfer_hands_the_call_over():
    """Consult then attended: bob is Busy from his answer, alice wraps up, one call with two legs."""
    state = talking("c1", "alice")
    state, _ = acd.step(CFG, state, acd.Login("bob"), 11)
    state, cmds = acd.step(CFG, state, xfer.ConsultAnswered("c1", "bob"), 15)
    assert state.agents["bob"].state is S.BUSY and state.agents["bob"].call_id == "c1"
    assert state.agents["alice"].state is S.BUSY and state.calls["c1"].consult == "bob"
    state, cmds = acd.step(CFG, state, xfer.AttendedTransferred("c1", "bob"), 30)
    assert state.agents["alice"].state is S.WRAPUP and state.agents["alice"].wrap_until == 30 + WRAP
    assert state.agents["bob"].state is S.BUSY and state.calls["c1"].agent == "bob"
    assert of(cmds, xfer.LegEnded) == [xfer.LegEnded("c1", "alice", 10, 30, "transfer:attended")]
    assert of(cmds, xfer.LegStarted) == [xfer.LegStarted("c1", "bob", 30)]
    # the transferer's two legs hang up: nothing more changes
    state, cmds = run(state, (30.01, acd.AgentHungUp("alice", "c1")))
    assert state.calls["c1"].agent == "bob" and state.agents["bob"].state is S.BUSY
    state, cmds = acd.step(CFG, state, acd.AgentHungUp("bob", "c1"), 50)
    assert of(cmds, acd.CallEnded) == [acd.CallEnded("c1", "completed", 50, agent="bob")]
    assert of(cmds, xfer.LegEnded) == [xfer.LegEnded("c1", "bob", 30, 50, "completed")]


def test_consult_without_transfer_frees_the_colleague():
    """A consult that ends without a transfer: the colleague is Ready again, the call stays alice's."""
    state = talking("c1", "alice")
    state, _ = run(state, (11, acd.Login("bob")), (15, xfer.ConsultAnswered("c1", "bob")))
    state, cmds = acd.step(CFG, state, acd.AgentHungUp("bob", "c1"), 25)
    assert state.agents["bob"].state is S.READY and state.agents["bob"].call_id is None
    assert state.calls["c1"].agent == "alice" and state.calls["c1"].consult is None
    assert not of(cmds, acd.CallEnded)


def test_holder_hanging_up_during_a_consult_ends_the_call_and_the_colleague_frees_later():
    """Alice hangs up on the caller mid-consult: the call ends; bob stays Busy until his leg ends."""
    state = talking("c1", "alice")
    state, _ = run(state, (11, acd.Login("bob")), (15, xfer.ConsultAnswered("c1", "bob")))
    state, cmds = acd.step(CFG, state, acd.AgentHungUp("alice", "c1"), 20)
    assert of(cmds, acd.CallEnded)[0].agent == "alice" and state.agents["bob"].state is S.BUSY
    state, _ = acd.step(CFG, state, acd.AgentHungUp("bob", "c1"), 22)
    assert state.agents["bob"].state is S.READY


def test_an_agent_hanging_up_their_own_call_stays_busy_in_a_consult_they_answered():
    """Alice, on c1, answered carol's consult about c2 on her second line: ending c1 leaves her Busy on c2, not in wrap-up."""
    state = talking("c1", "alice")
    state, _ = run(state, (11, acd.Login("carol")), (12, queued("c2", queue="empty", entered_at=12.0)),
                   (13, acd.OfferAnswered("c2", "carol")), (14, xfer.ConsultAnswered("c2", "alice")))
    assert state.calls["c2"].consult == "alice" and state.agents["alice"].call_id == "c1"
    state, cmds = acd.step(CFG, state, acd.AgentHungUp("alice", "c1"), 20)
    assert of(cmds, acd.CallEnded)[0].call_id == "c1"
    assert (state.agents["alice"].state, state.agents["alice"].call_id) == (S.BUSY, "c2")
    state, _ = acd.step(CFG, state, acd.AgentHungUp("alice", "c2"), 25)  # her consult leg ends
    assert state.agents["alice"].state in (S.WRAPUP, S.READY) and state.agents["alice"].call_id is None
    assert state.calls["c2"].agent == "carol" and state.calls["c2"].consult is None


def test_a_second_consult_leaves_the_first_colleague_busy_until_their_leg_ends():
    """Alice consults bob, then carol: carol is the call's consult, bob stays Busy until his own leg hangs up."""
    state = talking("c1", "alice")
    state, _ = run(state, (11, acd.Login("bob")), (11, acd.Login("carol")),
                   (15, xfer.ConsultAnswered("c1", "bob")), (16, xfer.ConsultAnswered("c1", "carol")))
    assert state.calls["c1"].consult == "carol" and state.agents["bob"].state is S.BUSY
    state, _ = acd.step(CFG, state, acd.AgentHungUp("bob", "c1"), 18)
    assert state.agents["bob"].state is S.READY and state.calls["c1"].consult == "carol"
    state, _ = acd.step(CFG, state, xfer.AttendedTransferred("c1", "carol", "2003"), 20)
    assert state.calls["c1"].agent == "carol" and state.agents["alice"].state is S.WRAPUP


def test_a_paused_colleague_is_busy_in_a_consult_then_back_on_the_break():
    """A paused colleague answering a consult is Busy on it, and on the same break once it ends."""
    state = talking("c1", "alice")
    state, _ = run(state, (11, acd.Login("bob")), (12, acd.Pause("bob", "lunch")),
                   (15, xfer.ConsultAnswered("c1", "bob")))
    assert state.agents["bob"].state is S.BUSY and state.agents["bob"].call_id == "c1"
    state, _ = acd.step(CFG, state, acd.AgentHungUp("bob", "c1"), 20)
    assert state.agents["bob"].state is S.PAUSED and state.agents["bob"].pause_reason == "lunch"


def test_a_paused_colleague_handed_the_call_is_busy_then_wraps_up():
    """A paused colleague who takes the call over is Busy on it; the call's end is their wrap-up."""
    state = talking("c1", "alice")
    state, _ = run(state, (11, acd.Login("bob")), (12, acd.Pause("bob", "lunch")),
                   (15, xfer.ConsultAnswered("c1", "bob")), (20, xfer.AttendedTransferred("c1", "bob")))
    assert state.agents["bob"].state is S.BUSY and state.agents["bob"].call_id == "c1"
    state, _ = acd.step(CFG, state, acd.AgentHungUp("bob", "c1"), 30)
    assert state.agents["bob"].state is S.WRAPUP


def test_attended_transfer_to_a_ringing_agent_withdraws_their_offer():
    """The colleague was being rung for another caller: that offer is withdrawn, the caller waits on."""
    state = talking("c1", "alice")
    state, _ = run(state, (11, queued("c2", entered_at=11.0)), (12, acd.Login("bob")))
    assert state.agents["bob"].state is S.RESERVED
    state, cmds = acd.step(CFG, state, xfer.AttendedTransferred("c1", "bob"), 13)
    assert acd.CancelOffer("c2", "bob") in cmds
    assert state.calls["c2"].agent is None and state.agents["bob"].call_id == "c1"


def test_attended_transfer_to_a_phone_that_is_no_agent_leaves_the_acd():
    """Attended to a desk phone no agent uses: alice wraps up, the record ends ``transferred``."""
    state = talking("c1", "alice")
    state, cmds = acd.step(CFG, state, xfer.AttendedTransferred("c1", None, "2004"), 30)
    assert "c1" not in state.calls and of(cmds, acd.CallEnded)[0].outcome == "transferred"
    assert state.agents["alice"].state is S.WRAPUP


# --------------------------------------------------------------------------- invariants

AGENTS = ("alice", "bob", "carol")


def _draw(data: st.DataObject, state: acd.AcdState, now: float, fresh: str) -> object:
    kind = data.draw(st.sampled_from(["login", "login", "pause", "unpause", "queue", "queue", "answer", "answer",
                                      "hangup", "hangup", "blind", "target", "consult", "attended", "left",
                                      "tick", "stale"]), label="kind")
    agent = data.draw(st.sampled_from(AGENTS), label="agent")
    held = sorted((c.call_id, c.agent) for c in state.calls.values()
                  if c.agent and c.answered_at is not None and not c.pending)
    if kind == "login":
        return acd.Login(agent)
    if kind == "pause":
        return acd.Pause(agent)
    if kind == "unpause":
        return acd.Unpause(agent)
    if kind == "queue":
        return queued(fresh, queue=data.draw(st.sampled_from(["sales", "empty"])), entered_at=now)  # ids never reused
    if kind == "answer":
        ring = sorted((c.call_id, c.agent) for c in state.calls.values() if c.agent and c.answered_at is None)
        if ring:
            cid, ag = data.draw(st.sampled_from(ring))
            return acd.OfferAnswered(cid, ag)
    if kind == "hangup":  # any Busy agent's leg (holder or consult)
        busy = sorted((a.name, a.call_id) for a in state.agents.values() if a.state is S.BUSY and a.call_id)
        legs = busy + [(ag, cid) for cid, ag in held]
        if legs:
            ag, cid = data.draw(st.sampled_from(legs))
            return acd.AgentHungUp(ag, cid)
    if kind == "blind" and held:
        cid, ag = data.draw(st.sampled_from(held))
        return xfer.BlindTransferStarted(cid, ag)
    if kind == "target":
        pend = sorted(c.call_id for c in state.calls.values() if c.pending) + [c for c, _ in held]
        if pend:
            tk = data.draw(st.sampled_from(sorted(xfer.TARGET_KINDS)))
            target = {"agent": agent, "queue": data.draw(st.sampled_from(["sales", "empty", "nope"])),
                      "out": "2004", "back": "", "park": ""}[tk]
            return xfer.TransferTarget(data.draw(st.sampled_from(pend)), tk, target)
    if kind == "consult" and held:
        cid, _ = data.draw(st.sampled_from(held))
        return xfer.ConsultAnswered(cid, agent)
    if kind == "attended" and held:
        cid, _ = data.draw(st.sampled_from(held))
        c = state.calls[cid]
        return xfer.AttendedTransferred(cid, data.draw(st.sampled_from([c.consult, agent, None])), "2004")
    if kind == "left" and state.calls:
        return acd.CallerLeft(data.draw(st.sampled_from(sorted(state.calls))))
    if kind == "stale":
        return data.draw(st.sampled_from([xfer.TransferTarget("zz", "agent", agent),
                                          xfer.ConsultAnswered("zz", agent), acd.AgentHungUp(agent, "zz")]))
    return acd.Tick()


def _on_call(state: acd.AcdState) -> dict[str, set[str]]:
    """agent -> the calls they are talking in (holder of an answered call, or its consulted colleague)."""
    out: dict[str, set[str]] = {}
    for c in state.calls.values():
        if c.agent is not None and c.answered_at is not None and not c.pending:
            out.setdefault(c.agent, set()).add(c.call_id)
        if c.consult is not None:
            out.setdefault(c.consult, set()).add(c.call_id)
    return out


def _check(before: acd.AcdState, ev: object, state: acd.AcdState, cmds: list, now: float,
           legs: frozenset[tuple[str, str]] = frozenset()) -> None:
    """``legs``: (agent, call) consult legs still up (a later consult on the same call replaces the
    call's ``consult``, but the earlier colleague is on the phone until their leg hangs up)."""
    if any(isinstance(c, acd.Rejected) for c in cmds):
        assert state is before
        return
    on_call = _on_call(state)
    for name, a in state.agents.items():
        # never Ready (or ringing, or in wrap-up) while talking in a call
        if name in on_call:
            assert a.state in (S.BUSY, S.PAUSED, S.LOGGED_OUT), (name, a.state, on_call[name], ev)
            if a.state is S.BUSY:
                assert a.call_id in on_call[name] or a.call_id in state.calls or (name, a.call_id) in legs, \
                    (name, a.call_id, ev)
        # never Busy on a call they have left: their call exists and they hold it or consult in it
        if a.state is S.BUSY:
            c = state.calls.get(a.call_id or "")
            if c is None:  # only a consult outlives its call (the holder hung up on the caller): a call still
                if (name, a.call_id) in legs:
                    continue
                was = before.calls.get(a.call_id or "")
                assert (was is not None and was.consult == name) or (
                    before.agents[name].state is S.BUSY and before.agents[name].call_id == a.call_id
                    and a.call_id not in before.calls), (name, a.call_id, ev)
                continue
            if (name, c.call_id) in legs and name not in (c.agent, c.consult):
                continue
            assert name in (c.agent, c.consult) and not (c.pending and c.agent == name), (name, c, ev)
        if a.state is S.RESERVED:
            c = state.calls[a.call_id or ""]
            assert name in ({c.agent} | c.ringing) and c.answered_at is None
    # a held call's transferer has left it
    for c in state.calls.values():
        if c.pending:
            assert c.agent is not None and state.agents[c.agent].call_id != c.call_id
    # every leg that ends started when its agent took the call, and ends now
    for leg in of(cmds, xfer.LegEnded):
        assert leg.at == now and leg.answered_at <= now
    # no call disappears without its end
    ended = {c.call_id for c in cmds if isinstance(c, (acd.CallEnded, acd.Fallback))}
    assert set(before.calls) - set(state.calls) <= ended


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), n=st.integers(5, 40))
def test_agent_states_follow_the_call_through_any_transfers(data, n):
    """Random calls, consults and transfers: never Ready while on a call, never Busy after leaving it."""
    now = 1000.0
    state = synced(now)
    legs: set[tuple[str, str]] = set()
    for i in range(n):
        now += data.draw(DT, label="dt")
        ev = _draw(data, state, now, f"c{i}")
        before = state
        state, cmds = acd.step(CFG, state, ev, now)
        if isinstance(ev, xfer.ConsultAnswered) and getattr(state.calls.get(ev.call_id), "consult", None) == ev.agent:
            legs.add((ev.agent, ev.call_id))
        elif isinstance(ev, acd.AgentHungUp):
            legs.discard((ev.agent, ev.call_id))
        _check(before, ev, state, cmds, now, frozenset(legs))
