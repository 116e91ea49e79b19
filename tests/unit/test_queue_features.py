"""Queue rules in the pure core: overflow, max length, join/leave when empty."""

from __future__ import annotations

import copy

import yaml

from callcenter import config
from callcenter.features.acd import model as acd
from callcenter.features.acd.agents import AgentState

BASE = yaml.safe_load(open("tests/asterisk/lab.yaml"))


def cfg_with(**queue_changes):
    d = copy.deepcopy(BASE)
    for q, changes in queue_changes.items():
        d["queues"][q].update(changes)
    return config.parse(d)


def synced(cfg, now=0.0):
    state, _ = acd.step(cfg, acd.initial_state(cfg), acd.Resync(()), now)
    return state


def of(cmds, kind):
    return [c for c in cmds if isinstance(c, kind)]


def test_overflow_after_moves_the_waiting_call_and_keeps_seniority():
    """After overflow.after_s the call belongs to the target queue, offered there, entry time kept."""
    cfg = cfg_with()
    state = synced(cfg)
    state, _ = acd.step(cfg, state, acd.CallQueued("c1", "spill", "PJSIP/x-1", entered_at=10.0), 10.0)
    assert acd.next_deadline(cfg, state) == 12.0
    state, cmds = acd.step(cfg, state, acd.Tick(), 12.0)
    assert of(cmds, acd.Requeue) == [acd.Requeue("c1", "PJSIP/x-1", "sales", "after")]
    assert state.calls["c1"].queue == "sales" and state.calls["c1"].entered_at == 10.0
    state, cmds = acd.step(cfg, state, acd.Login("alice"), 13.0)
    assert [o.agent for o in of(cmds, acd.Offer)] == ["alice"]


def test_overflow_by_expected_wait_event():
    """An Overflow event (expected wait too long) moves a waiting call at once."""
    cfg = cfg_with(spill={"overflow": {"expected_wait_s": 60, "queue": "sales"}})
    state = synced(cfg)
    state, _ = acd.step(cfg, state, acd.CallQueued("c1", "spill", "PJSIP/x-1"), 1.0)
    assert acd.next_deadline(cfg, state) == 61.0  # only its max wait: no time-based overflow
    state, cmds = acd.step(cfg, state, acd.Overflow("c1"), 2.0)
    assert of(cmds, acd.Requeue)[0].reason == "expected-wait" and state.calls["c1"].queue == "sales"


def test_max_length_sends_extra_callers_to_fallback_at_entry():
    """With max_length 1 the second caller is refused at entry (immediate fallback, not queued)."""
    cfg = cfg_with(sales={"max_length": 1})
    state = synced(cfg)
    state, _ = acd.step(cfg, state, acd.CallQueued("c1", "sales", "PJSIP/x-1"), 1.0)
    state, cmds = acd.step(cfg, state, acd.CallQueued("c2", "sales", "PJSIP/x-2"), 2.0)
    assert of(cmds, acd.Fallback) == [acd.Fallback("c2", "PJSIP/x-2", "sales", "full", immediate=True)]
    assert "c2" not in state.calls and "c1" in state.calls


def test_join_empty_false_refuses_when_nobody_can_answer():
    """join_empty false: no agent logged in and unpaused means straight to fallback; one Ready agent lets it in."""
    cfg = cfg_with(sales={"join_empty": False})
    state = synced(cfg)
    state, cmds = acd.step(cfg, state, acd.CallQueued("c1", "sales", "PJSIP/x-1"), 1.0)
    assert of(cmds, acd.Fallback)[0].reason == "empty" and "c1" not in state.calls
    state, _ = acd.step(cfg, state, acd.Login("alice"), 2.0)
    state, _ = acd.step(cfg, state, acd.Pause("alice"), 3.0)
    state, cmds = acd.step(cfg, state, acd.CallQueued("c2", "sales", "PJSIP/x-2"), 4.0)
    assert of(cmds, acd.Fallback)  # paused does not count
    state, _ = acd.step(cfg, state, acd.Unpause("alice"), 5.0)
    state, cmds = acd.step(cfg, state, acd.CallQueued("c3", "sales", "PJSIP/x-3"), 6.0)
    assert not of(cmds, acd.Fallback) and state.agents["alice"].state == AgentState.RESERVED


def test_leave_when_empty_releases_waiting_callers_when_the_last_agent_goes():
    """leave_when_empty: when the last staffed member pauses, waiting callers go to fallback."""
    cfg = cfg_with(sales={"leave_when_empty": True})
    state = synced(cfg)
    state, _ = acd.step(cfg, state, acd.Login("alice"), 1.0)
    state, _ = acd.step(cfg, state, acd.Pause("alice"), 2.0)
    state, cmds = acd.step(cfg, state, acd.CallQueued("c1", "sales", "PJSIP/x-1"), 3.0)
    fb = of(cmds, acd.Fallback)
    assert fb == [acd.Fallback("c1", "PJSIP/x-1", "sales", "empty")] and not fb[0].immediate


def test_overflow_config_errors_name_the_key():
    """An overflow needs a threshold and an existing, different queue."""
    d = copy.deepcopy(BASE)
    d["queues"]["spill"]["overflow"] = {"queue": "nope", "after_s": 5}
    try:
        config.parse(d)
    except config.ConfigError as e:
        assert "queues.spill.overflow.queue: unknown queue 'nope'" in e.problems
    else:
        raise AssertionError("accepted an unknown overflow queue")
    d["queues"]["spill"]["overflow"] = {"queue": "sales"}
    try:
        config.parse(d)
    except config.ConfigError as e:
        assert any(p.startswith("queues.spill.overflow: an overflow needs after_s or expected_wait_s") for p in e.problems)
    else:
        raise AssertionError("accepted an overflow without threshold")


def test_ringall_rings_every_free_member_and_the_first_answer_wins():
    """ringall: all free eligible members ring; the first to answer takes the call, the others
    stop ringing and are Ready again without a missed-offer count."""
    cfg = cfg_with(sales={"strategy": "ringall", "max_no_answer": 1})
    state = synced(cfg)
    for i, name in enumerate(("alice", "bob")):
        state, _ = acd.step(cfg, state, acd.Login(name), 1.0 + i)
    state, cmds = acd.step(cfg, state, acd.CallQueued("c1", "sales", "PJSIP/x-1"), 3.0)
    assert sorted(o.agent for o in of(cmds, acd.Offer)) == ["alice", "bob"]
    assert {a.state for a in state.agents.values() if a.name in ("alice", "bob")} == {AgentState.RESERVED}
    state, cmds = acd.step(cfg, state, acd.OfferAnswered("c1", "bob"), 4.0)
    assert of(cmds, acd.CancelOffer) == [acd.CancelOffer("c1", "alice")]
    assert state.agents["bob"].state == AgentState.BUSY and state.calls["c1"].agent == "bob"
    assert state.agents["alice"].state == AgentState.READY and state.agents["alice"].no_answers == 0
    # a late answer from alice changes nothing
    state2, cmds = acd.step(cfg, state, acd.OfferAnswered("c1", "alice"), 4.1)
    assert state2.calls["c1"].agent == "bob" and not of(cmds, acd.CallAnswered)


def test_ringall_keeps_ringing_the_others_when_one_phone_fails():
    """One member's phone failing counts as its miss, the call stays with the phones still ringing."""
    cfg = cfg_with(sales={"strategy": "ringall", "max_no_answer": 1})
    state = synced(cfg)
    for i, name in enumerate(("alice", "bob")):
        state, _ = acd.step(cfg, state, acd.Login(name), 1.0 + i)
    state, _ = acd.step(cfg, state, acd.CallQueued("c1", "sales", "PJSIP/x-1"), 3.0)
    state, _ = acd.step(cfg, state, acd.OfferFailed("c1", "alice"), 5.0)
    c = state.calls["c1"]
    assert c.agent == "bob" and not c.ringing and c.answered_at is None
    assert state.agents["alice"].state == AgentState.PAUSED  # max_no_answer 1
    state, _ = acd.step(cfg, state, acd.OfferFailed("c1", "bob"), 6.0)
    assert state.calls["c1"].agent is None  # nobody left ringing: waiting again, never dropped
    state, cmds = acd.step(cfg, state, acd.CallerLeft("c1"), 7.0)
    assert of(cmds, acd.CallEnded)[0].outcome == "abandoned"


def test_ringall_caller_leaving_stops_every_phone():
    """A caller hanging up while several phones ring cancels all of them."""
    cfg = cfg_with(sales={"strategy": "ringall"})
    state = synced(cfg)
    for i, name in enumerate(("alice", "bob")):
        state, _ = acd.step(cfg, state, acd.Login(name), 1.0 + i)
    state, _ = acd.step(cfg, state, acd.CallQueued("c1", "sales", "PJSIP/x-1"), 3.0)
    state, cmds = acd.step(cfg, state, acd.CallerLeft("c1"), 4.0)
    assert sorted(c.agent for c in of(cmds, acd.CancelOffer)) == ["alice", "bob"]
    assert all(state.agents[n].state == AgentState.READY for n in ("alice", "bob"))


def test_fewestcalls_counts_calls_of_that_queue_only():
    """fewestcalls (as app_queue): bob took many calls of another queue, but none of this one, so he is first."""
    d = copy.deepcopy(BASE)
    d["queues"]["spill"] = {"members": ["alice", "bob"], "strategy": "fewestcalls", "fallback": {"hangup": ["goodbye"]}}
    cfg = config.parse(d)
    state = synced(cfg)
    state, _ = acd.step(cfg, state, acd.Login("alice"), 1.0)
    state, _ = acd.step(cfg, state, acd.Login("bob"), 1.0)
    now = 2.0
    for k in range(3):  # bob answers three sales calls (alice is on a break)
        state, _ = acd.step(cfg, state, acd.Pause("alice"), now)
        state, cmds = acd.step(cfg, state, acd.CallQueued(f"s{k}", "sales", "PJSIP/x"), now)
        assert of(cmds, acd.Offer)[0].agent == "bob"
        state, _ = acd.step(cfg, state, acd.OfferAnswered(f"s{k}", "bob"), now + 1)
        state, _ = acd.step(cfg, state, acd.AgentHungUp("bob", f"s{k}"), now + 2)
        state, _ = acd.step(cfg, state, acd.Unpause("alice"), now + 2)
        now += 10
    # alice takes one spill call: per queue she has 1, bob 0
    state, _ = acd.step(cfg, state, acd.Pause("bob"), now)
    state, cmds = acd.step(cfg, state, acd.CallQueued("p1", "spill", "PJSIP/y"), now)
    assert of(cmds, acd.Offer)[0].agent == "alice"
    state, _ = acd.step(cfg, state, acd.OfferAnswered("p1", "alice"), now + 1)
    state, _ = acd.step(cfg, state, acd.AgentHungUp("alice", "p1"), now + 2)
    state, _ = acd.step(cfg, state, acd.Unpause("bob"), now + 2)
    assert state.agents["bob"].calls_taken == 3 and state.agents["bob"].queue_calls == {"sales": 3}
    state, cmds = acd.step(cfg, state, acd.CallQueued("p2", "spill", "PJSIP/z"), now + 20)
    assert of(cmds, acd.Offer)[0].agent == "bob"  # overall he took more; in spill he took none
    assert state.agents["alice"].queue_last_end == {"spill": now + 2}
