"""The pure ACD core's relationship routing (a preferred agent for a while) and click-to-call.

Lab config (tests/asterisk/lab.yaml): queue ``sales`` = alice, bob (ring 4 s, max_no_answer 1,
wrap-up 1 s, retry 5 s); carol is in ``empty`` and ``spill`` only.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callcenter.features.acd import model as acd
from callcenter.features.acd.agents import AgentState
from tests.unit.test_acd_core import CFG, of, queued, ringing, run, synced

S = AgentState


def both_ready(alice_at: float = 5.0, bob_at: float = 0.0) -> acd.AcdState:
    state, _ = run(synced(), (bob_at, acd.Login("bob")), (alice_at, acd.Login("alice")))
    return state


def test_free_account_manager_gets_the_call_though_another_idled_longer():
    """bob idled longer, but the caller's account manager alice is free: alice rings."""
    state, cmds = run(both_ready(), (10.0, queued("c1", preferred="alice", prefer_until=40.0)))
    ringing(state, "c1", "alice")
    assert [(o.call_id, o.agent) for o in of(cmds, acd.Offer)] == [("c1", "alice")]


def test_without_a_preference_the_longest_idle_agent_gets_it():
    """The same floor without a preference: bob, idle longer, rings (the control case)."""
    state, _ = run(both_ready(), (10.0, queued("c1")))
    ringing(state, "c1", "bob")


def test_busy_account_manager_is_waited_for_until_the_limit_then_anyone():
    """alice is busy: nobody else is offered the call before prefer_until; a tick then rings bob."""
    state, _ = run(both_ready(), (10.0, queued("c0")))  # bob, idle longest, takes c0
    state, _ = run(state, (10.5, acd.OfferAnswered("c0", "bob")))
    state, cmds = run(state, (11.0, queued("c1", preferred="bob", prefer_until=41.0)))
    assert state.calls["c1"].agent is None and not of(cmds, acd.Offer)  # alice is free but not bob
    assert acd.next_deadline(CFG, state, 11.0) == 41.0  # the core wakes itself when the wait ends
    state, cmds = run(state, (40.9, acd.Tick()))
    assert state.calls["c1"].agent is None and not of(cmds, acd.Offer)
    state, cmds = run(state, (41.0, acd.Tick()))
    ringing(state, "c1", "alice")
    assert state.calls["c1"].preferred is None


def test_account_manager_freed_within_the_limit_takes_the_call():
    """alice ends her call before the limit: the waiting customer goes to her, not to idle bob."""
    state, _ = run(synced(), (0.0, acd.Login("alice")), (1.0, queued("c0")), (2.0, acd.OfferAnswered("c0", "alice")),
                   (3.0, acd.Login("bob")), (4.0, queued("c1", preferred="alice", prefer_until=34.0)))
    assert state.calls["c1"].agent is None and state.agents["bob"].state is S.READY
    state, _ = run(state, (10.0, acd.AgentHungUp("alice", "c0")), (11.0, acd.Tick()))  # wrap-up 1 s
    ringing(state, "c1", "alice")


def test_account_manager_who_lets_it_ring_out_releases_the_call():
    """alice does not answer: the preference ends and bob gets the call at once."""
    state, _ = run(both_ready(), (10.0, queued("c1", preferred="alice", prefer_until=100.0)))
    state, cmds = run(state, (12.0, acd.OfferFailed("c1", "alice")))
    ringing(state, "c1", "bob")
    assert state.calls["c1"].preferred is None


def test_preference_for_an_agent_outside_the_queue_is_ignored():
    """carol is no member of sales: the call routes as usual (bob, idle longest)."""
    state, _ = run(both_ready(), (10.0, queued("c1", preferred="carol", prefer_until=100.0)))
    assert state.calls["c1"].preferred is None
    ringing(state, "c1", "bob")


def test_expired_preference_at_entry_is_ignored():
    """A prefer_until already past when the call queues: no preference at all."""
    state, _ = run(both_ready(), (10.0, queued("c1", preferred="alice", prefer_until=10.0)))
    ringing(state, "c1", "bob")


def test_ringall_rings_only_the_preferred_agent():
    """Under ringall, a preferred call rings its agent alone (until the limit)."""
    from dataclasses import replace
    cfg = replace(CFG, queues={**CFG.queues, "sales": replace(CFG.queues["sales"], strategy="ringall")})
    state, _ = acd.step(cfg, acd.initial_state(cfg), acd.Resync(()), 0.0)
    for t, ev in ((0.0, acd.Login("bob")), (1.0, acd.Login("alice")),
                  (2.0, queued("c1", preferred="alice", prefer_until=50.0))):
        state, cmds = acd.step(cfg, state, ev, t)
    assert [o.agent for o in of(cmds, acd.Offer)] == ["alice"] and state.calls["c1"].ringing == frozenset()


# --------------------------------------------------------------------------- the property

def _event(data: st.DataObject, state: acd.AcdState, now: float) -> object:
    kind = data.draw(st.sampled_from(["login", "logout", "pause", "unpause", "queue", "queue", "left", "answer",
                                      "answer", "fail", "hangup", "tick", "tick"]))
    agent = data.draw(st.sampled_from(["alice", "bob"]))
    ring = sorted((c.call_id, a) for c in state.calls.values() if c.answered_at is None
                  for a in ({c.agent} | c.ringing) - {None})
    busy = sorted((a.name, a.call_id) for a in state.agents.values() if a.state is S.BUSY)
    match kind:
        case "login":
            return acd.Login(agent)
        case "logout":
            return acd.Logout(agent)
        case "pause":
            return acd.Pause(agent)
        case "unpause":
            return acd.Unpause(agent)
        case "queue":
            return queued(data.draw(st.sampled_from([f"c{i}" for i in range(6)])),
                          priority=data.draw(st.sampled_from([0, 0, 3])),
                          preferred=data.draw(st.sampled_from([None, "alice", "bob", "carol"])),
                          prefer_until=now + data.draw(st.sampled_from([0.0, 3.0, 8.0, 30.0])))
        case "left":
            return acd.CallerLeft(data.draw(st.sampled_from(sorted(state.calls) or ["c0"])))
        case "answer" | "fail" if ring:
            cid, a = data.draw(st.sampled_from(ring))
            return acd.OfferAnswered(cid, a) if kind == "answer" else acd.OfferFailed(cid, a)
        case "hangup" if busy:
            a, cid = data.draw(st.sampled_from(busy))
            return acd.AgentHungUp(a, cid or "")
    return acd.Tick()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), n=st.integers(5, 50))
def test_never_offered_to_another_agent_before_the_preference_ends(data, n):
    """Random floors: a call is offered to someone other than its account manager only after
    prefer_until, or after the account manager let it ring out."""
    now = 0.0
    state = synced(now)
    prefs: dict[str, tuple[str, float]] = {}  # call -> (account manager, until) while it stands
    for _ in range(n):
        now += data.draw(st.sampled_from([0.0, 0.5, 1.0, 2.5, 4.0, 9.0]))
        ev = _event(data, state, now)
        before = state
        state, cmds = acd.step(CFG, state, ev, now)
        if isinstance(ev, acd.CallQueued) and ev.call_id not in before.calls and ev.call_id in state.calls:
            if ev.preferred in ("alice", "bob") and ev.prefer_until > now:
                prefs[ev.call_id] = (ev.preferred, ev.prefer_until)
            else:
                prefs.pop(ev.call_id, None)
        if isinstance(ev, acd.OfferFailed) and prefs.get(ev.call_id, ("",))[0] == ev.agent:
            prefs.pop(ev.call_id)  # rang out on the account manager: released
        for c in cmds:
            if isinstance(c, acd.CancelOffer) and prefs.get(c.call_id, ("",))[0] == c.agent:
                prefs.pop(c.call_id)  # its ring timed out: released
            if isinstance(c, acd.Offer) and c.call_id in prefs:
                manager, until = prefs[c.call_id]
                assert c.agent == manager or now >= until, (c, manager, until, now)
        for cid in list(prefs):
            if cid not in state.calls:
                del prefs[cid]


# --------------------------------------------------------------------------- click-to-call

def direct(cid: str = "d1", agent: str = "alice") -> acd.DirectCall:
    return acd.DirectCall(cid, agent, "sales", "+12125550123", "sim")


def test_click_to_call_rings_the_agent_first():
    """A ready agent is offered their click-to-call at once, even though bob idled longer."""
    state, cmds = run(both_ready(), (10.0, direct()))
    ringing(state, "d1", "alice")
    c = state.calls["d1"]
    assert c.direct and c.callback == "+12125550123" and c.trunk == "sim" and c.channel == ""
    assert not of(cmds, acd.CallbackStored)


def test_click_to_call_for_a_busy_agent_is_refused_and_leaves_nothing():
    """The agent cannot be offered it now: Rejected(agent_busy), no call left behind."""
    state, _ = run(synced(), (0.0, acd.Login("bob")))
    state, cmds = run(state, (1.0, direct()))  # alice logged out
    assert [r.reason for r in of(cmds, acd.Rejected)] == ["agent_busy"]
    assert "d1" not in state.calls and not of(cmds, acd.Offer)


def test_click_to_call_dialled_once_and_never_stored():
    """Answered by the agent, the customer does not answer: the call ends, nothing is retried or stored."""
    state, _ = run(both_ready(), (10.0, direct()), (12.0, acd.OfferAnswered("d1", "alice")))
    state, cmds = run(state, (20.0, acd.CallbackDialed("d1", "alice", "NOANSWER")))
    assert "d1" not in state.calls
    assert [(e.call_id, e.outcome) for e in of(cmds, acd.CallEnded)] == [("d1", "click-to-call-failed")]
    assert not of(cmds, acd.CallbackStored)


def test_click_to_call_answered_then_hung_up_completes():
    """The customer answers (CallAnswered), the agent hangs up: completed, no callback bookkeeping."""
    state, _ = run(both_ready(), (10.0, direct()), (12.0, acd.OfferAnswered("d1", "alice")))
    state, cmds = run(state, (15.0, acd.CallbackDialed("d1", "alice", "ANSWER")))
    assert of(cmds, acd.CallAnswered) and not of(cmds, acd.CallbackStored)
    state, cmds = run(state, (60.0, acd.AgentHungUp("alice", "d1")))
    assert [(e.outcome, e.agent) for e in of(cmds, acd.CallEnded)] == [("completed", "alice")]
    assert not of(cmds, acd.CallbackDone) and "d1" not in state.calls


def test_click_to_call_the_agent_misses_ends_it_and_nobody_else_rings():
    """alice lets her own click-to-call ring out: it ends; bob is never offered it."""
    state, _ = run(both_ready(), (10.0, direct()))
    state, cmds = run(state, (30.0, acd.Tick()))  # past ring timeout + grace
    assert "d1" not in state.calls and not of(cmds, acd.Offer)
    assert [e.outcome for e in of(cmds, acd.CallEnded)] == ["click-to-call-unanswered"]
