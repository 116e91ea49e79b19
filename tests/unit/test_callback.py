"""Callback in the pure core: the caller keeps their place, an agent is reserved first, then dialled."""

from __future__ import annotations

import copy

import yaml

from callcenter import config
from callcenter.features.acd import model as acd
from callcenter.features.acd.agents import AgentState

BASE = yaml.safe_load(open("tests/asterisk/lab.yaml"))


def cfg_with(**sales):
    d = copy.deepcopy(BASE)
    d["queues"]["sales"]["callback"].update(sales.pop("callback", {}))
    d["queues"]["sales"].update(sales)
    d.setdefault("schedules", {})["office"] = {"timezone": "UTC", "weekly": {"mon": ["09:00-17:00"]}}
    return config.parse(d)


def of(cmds, kind):
    return [c for c in cmds if isinstance(c, kind)]


def start(cfg, now=0.0):
    state, _ = acd.step(cfg, acd.initial_state(cfg), acd.Resync(()), now)
    for i, cid in enumerate(("c1", "c2", "c3")):
        state, _ = acd.step(cfg, state, acd.CallQueued(cid, "sales", f"PJSIP/t-{i}", "5550100", entered_at=now + i),
                            now + i)
    return state


def test_callback_keeps_place_and_survives_the_caller_hanging_up():
    """A caller who asks for a callback keeps their position; their hang-up does not abandon the call."""
    cfg = cfg_with()
    state = start(cfg, 10.0)
    state, cmds = acd.step(cfg, state, acd.CallbackRequested("c2", "5550100", "pstn"), 20.0)
    assert of(cmds, acd.CallbackStored)[0].call.callback == "5550100"
    state, cmds = acd.step(cfg, state, acd.CallerLeft("c2"), 20.5)
    assert not of(cmds, acd.CallEnded) and state.position("c2") == 2 and state.position("c3") == 3
    # one agent: c1 first; then c2 (the callback) before c3
    state, cmds = acd.step(cfg, state, acd.Login("alice"), 21.0)
    assert [o.call_id for o in of(cmds, acd.Offer)] == ["c1"]
    state, _ = acd.step(cfg, state, acd.OfferAnswered("c1", "alice"), 22.0)
    state, _ = acd.step(cfg, state, acd.AgentHungUp("alice", "c1"), 30.0)
    state, cmds = acd.step(cfg, state, acd.Tick(), 31.5)
    offer = of(cmds, acd.Offer)[0]
    assert offer.call_id == "c2" and offer.caller_channel == ""


def test_callback_answered_then_completed():
    """The agent answers, the callee answers (DIALSTATUS ANSWER): answered then completed, journal cleared."""
    cfg = cfg_with()
    state = start(cfg)
    state, _ = acd.step(cfg, state, acd.CallbackRequested("c1", "5550100", "pstn"), 5.0)
    state, cmds = acd.step(cfg, state, acd.Login("bob"), 6.0)
    state, cmds = acd.step(cfg, state, acd.OfferAnswered("c1", "bob"), 7.0)
    assert not of(cmds, acd.CallAnswered)  # the agent answering is not the caller answering
    assert state.agents["bob"].state == AgentState.BUSY
    state, cmds = acd.step(cfg, state, acd.CallbackDialed("c1", "bob", "ANSWER"), 12.0)
    assert of(cmds, acd.CallAnswered) == [acd.CallAnswered("c1", "bob", 12.0)]
    state, cmds = acd.step(cfg, state, acd.AgentHungUp("bob", "c1"), 60.0)
    assert of(cmds, acd.CallbackDone) == [acd.CallbackDone("c1", "answered")]
    assert of(cmds, acd.CallEnded)[0].outcome == "completed" and "c1" not in state.calls


def test_unanswered_callback_retries_after_delay_then_gives_up():
    """No answer: the agent is freed, the callback waits retry_s in its place; after max_attempts it ends."""
    cfg = cfg_with(callback={"retry_s": 30, "max_attempts": 2})
    state = start(cfg)
    state, _ = acd.step(cfg, state, acd.CallbackRequested("c1", "5550100", "pstn"), 5.0)
    state, _ = acd.step(cfg, state, acd.Login("bob"), 6.0)
    state, _ = acd.step(cfg, state, acd.OfferAnswered("c1", "bob"), 7.0)
    state, cmds = acd.step(cfg, state, acd.CallbackDialed("c1", "bob", "NOANSWER"), 25.0)
    assert of(cmds, acd.CallbackStored)[0].call.attempts == 1
    assert [o.call_id for o in of(cmds, acd.Offer)] == ["c2"]  # bob free again: the next caller
    assert state.calls["c1"].not_before == 55.0 and acd.next_deadline(cfg, state, 25.0) <= 55.0
    state, _ = acd.step(cfg, state, acd.OfferAnswered("c2", "bob"), 26.0)
    state, _ = acd.step(cfg, state, acd.AgentHungUp("bob", "c2"), 40.0)
    state, cmds = acd.step(cfg, state, acd.Tick(), 42.0)
    assert [o.call_id for o in of(cmds, acd.Offer)] == ["c3"]  # c1 not before 55 s
    state, _ = acd.step(cfg, state, acd.OfferFailed("c3", "bob"), 43.0)  # bob misses: auto-paused
    state, _ = acd.step(cfg, state, acd.Unpause("bob"), 56.0)
    c1 = state.calls["c1"]
    assert c1.agent == "bob"  # its place kept: ahead of c3
    state, _ = acd.step(cfg, state, acd.OfferAnswered("c1", "bob"), 57.0)
    state, cmds = acd.step(cfg, state, acd.CallbackDialed("c1", "bob", "BUSY"), 60.0)
    assert of(cmds, acd.CallbackDone) == [acd.CallbackDone("c1", "failed")]
    assert of(cmds, acd.CallEnded)[0].outcome == "callback-failed" and "c1" not in state.calls


def test_callbacks_wait_for_business_hours():
    """A callback is never dialled while its schedule is closed; it is once it opens."""
    cfg = cfg_with(callback={"schedule": "office"})
    sunday = 1700000000.0 - (1700000000 % 86400) - 86400 * 2  # 2023-11-12 00:00 UTC, a Sunday
    monday_9 = sunday + 86400 + 9 * 3600
    state = start(cfg, sunday)
    state, _ = acd.step(cfg, state, acd.CallbackRequested("c1", "5550100", "pstn"), sunday + 5)
    state, _ = acd.step(cfg, state, acd.CallerLeft("c2"), sunday + 5)
    state, _ = acd.step(cfg, state, acd.CallerLeft("c3"), sunday + 5)
    state, cmds = acd.step(cfg, state, acd.Login("alice"), sunday + 6)
    assert not of(cmds, acd.Offer) and state.calls["c1"].agent is None
    assert acd.next_deadline(cfg, state, sunday + 6) == sunday + 66  # re-checked every minute
    state, cmds = acd.step(cfg, state, acd.Tick(), monday_9 + 1)
    assert [o.call_id for o in of(cmds, acd.Offer)] == ["c1"]


def test_callback_never_offered_for_a_queue_without_it_and_has_no_max_wait():
    """CallbackRequested is ignored where the queue offers none; a callback outlives the queue's max wait."""
    cfg = cfg_with()
    state = start(cfg)
    state, _ = acd.step(cfg, state, acd.CallQueued("e1", "empty", "PJSIP/e"), 3.0)
    state, cmds = acd.step(cfg, state, acd.CallbackRequested("e1", "5550100", "pstn"), 3.0)
    assert not cmds and state.calls["e1"].callback == ""
    state, _ = acd.step(cfg, state, acd.CallbackRequested("c1", "5550100", "pstn"), 4.0)
    state, cmds = acd.step(cfg, state, acd.Tick(), 1000.0)
    assert "c1" in state.calls and not [f for f in of(cmds, acd.Fallback) if f.call_id == "c1"]


def test_restart_restores_callbacks_and_resync_keeps_them():
    """A journaled callback comes back after a restart and a Resync without its channel keeps it."""
    cfg = cfg_with()
    state = start(cfg)
    state, cmds = acd.step(cfg, state, acd.CallbackRequested("c1", "5550100", "pstn"), 5.0)
    saved = of(cmds, acd.CallbackStored)[0].call
    fresh = acd.initial_state(cfg)
    fresh, _ = acd.step(cfg, fresh, acd.CallbackRestored(saved), 100.0)
    fresh, cmds = acd.step(cfg, fresh, acd.Resync(()), 101.0)
    assert "c1" in fresh.calls and not of(cmds, acd.CallEnded)
    fresh, cmds = acd.step(cfg, fresh, acd.Login("alice"), 102.0)
    assert [o.call_id for o in of(cmds, acd.Offer)] == ["c1"] and fresh.calls["c1"].entered_at == 0.0
