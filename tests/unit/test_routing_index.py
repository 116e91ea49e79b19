"""The core's incremental routing index gives exactly the decisions of an index rebuilt from the state."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callcenter import config
from callcenter.features.acd import model as acd

AGENTS = ("ann", "ben", "cat", "dan", "eve", "fay")
CALL_IDS = tuple(f"c{i}" for i in range(8))
SKILLS = ("en", "fr", "de")


def _cfg() -> config.Config:
    fb = {"hangup": ["goodbye"]}
    return config.parse({
        "ami": {"host": "127.0.0.1", "port": 5038, "username": "t", "secret": "test-secret-1"},
        "phones": {str(2001 + i): {"secret": f"test-secret-{2001 + i}"} for i in range(len(AGENTS))},
        "agents": {a: {"phone": str(2001 + i), "skills": {SKILLS[i % 3]: 1 + i, SKILLS[(i + 1) % 3]: 3}}
                   for i, a in enumerate(AGENTS)},
        "queues": {
            "sales": {"members": ["ann", "ben", "cat", "dan"], "strategy": "skills", "penalties": {"dan": 2},
                      "max_penalty": 0, "penalty_rules": [{"after_s": 5, "max_penalty": 1},
                                                          {"after_s": 12, "max_penalty": 2}],
                      "skills": {"en": 1}, "wrapup_s": 2, "ring_timeout_s": 4, "max_no_answer": 2, "retry_s": 3,
                      "max_wait_s": 60, "fallback": fb},
            "spill": {"members": ["eve", "fay"], "strategy": "fewestcalls", "wrapup_s": 0, "ring_timeout_s": 3,
                      "overflow": {"after_s": 6, "expected_wait_s": 30, "queue": "sales"}, "max_wait_s": 40,
                      "fallback": fb},
            "rr": {"members": ["cat", "eve", "fay", "ann"], "strategy": "rrmemory", "leave_when_empty": True,
                   "max_length": 3, "wrapup_s": 1, "max_wait_s": 30, "fallback": fb},
            "all": {"members": ["ben", "fay"], "strategy": "ringall", "max_wait_s": 20, "fallback": fb},
        },
        "menus": {}, "trunks": {}}, source="test")


CFG = _cfg()


def _event(data: st.DataObject, state: acd.AcdState, now: float) -> object:
    kind = data.draw(st.sampled_from(["login", "login", "logout", "pause", "unpause", "device", "queue", "queue",
                                      "queue", "left", "answer", "answer", "fail", "hangup", "hangup", "overflow",
                                      "tick"]))
    agent = data.draw(st.sampled_from(AGENTS))
    ring = sorted((c.call_id, a) for c in state.calls.values() if c.answered_at is None
                  for a in ({c.agent} | c.ringing) - {None})
    busy = sorted((a.name, a.call_id) for a in state.agents.values() if a.state is acd.AgentState.BUSY)
    spill = sorted(c.call_id for c in state.calls.values() if c.agent is None and c.queue == "spill")
    match kind:
        case "login":
            return acd.Login(agent)
        case "logout":
            return acd.Logout(agent)
        case "pause":
            return acd.Pause(agent)
        case "unpause":
            return acd.Unpause(agent)
        case "device":
            return acd.DeviceState(agent, data.draw(st.sampled_from(["NOT_INUSE", "INUSE", "UNAVAILABLE"])))
        case "queue":
            skills = tuple(data.draw(st.lists(st.tuples(st.sampled_from(SKILLS + ("zz",)), st.integers(1, 6)),
                                              max_size=2, unique_by=lambda t: t[0])))
            return acd.CallQueued(data.draw(st.sampled_from(CALL_IDS)), data.draw(st.sampled_from(list(CFG.queues))),
                                  "PJSIP/t", entered_at=now - data.draw(st.sampled_from([0, 0, 1, 3, 7])),
                                  priority=data.draw(st.sampled_from([0, 0, 1, 5])), skills=skills,
                                  preferred=data.draw(st.sampled_from((None, None) + AGENTS)),
                                  prefer_until=now + data.draw(st.sampled_from([0, 2, 5, 11])))
        case "left":
            return acd.CallerLeft(data.draw(st.sampled_from(sorted(state.calls) or list(CALL_IDS))))
        case "answer" | "fail" if ring:
            cid, a = data.draw(st.sampled_from(ring))
            return acd.OfferAnswered(cid, a) if kind == "answer" else acd.OfferFailed(cid, a)
        case "hangup" if busy:
            a, cid = data.draw(st.sampled_from(busy))
            return acd.AgentHungUp(a, cid or "")
        case "overflow" if spill:  # the adapter's expected-wait overflow (only queues that have one)
            return acd.Overflow(data.draw(st.sampled_from(spill)))
    return acd.Tick()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), n=st.integers(10, 60))
def test_incremental_index_decides_as_a_rebuilt_one(data, n):
    """Random events (queue, leave, agent free/busy, overflow, priority, skills, preferred agents): same commands, state, timers, figures."""
    now = 1000.0
    kept, _ = acd.step(CFG, acd.initial_state(CFG), acd.Resync(()), now)
    rebuilt = kept
    for _ in range(n):
        now += data.draw(st.sampled_from([0.0, 0.5, 1.0, 2.0, 4.0, 7.0]))
        ev = _event(data, kept, now)
        kept, got = acd.step(CFG, kept, ev, now)
        rebuilt, want = acd.step(CFG, replace(rebuilt, _index=None), ev, now)  # built afresh from the state
        assert [repr(c) for c in got] == [repr(c) for c in want]
        assert dict(kept.agents) == dict(rebuilt.agents)
        assert [(c, c.route) for c in kept.calls.values()] == [(c, c.route) for c in rebuilt.calls.values()]
        assert kept.rr_last == rebuilt.rr_last
        bare = replace(kept, _index=None)
        assert acd.next_deadline(CFG, kept, now) == acd.next_deadline(CFG, bare, now)
        assert acd.figures(CFG, kept) == acd.figures(CFG, bare)


def test_an_older_state_stepped_again_gets_its_own_index():
    """Stepping a state whose index moved on to a newer state decides from that older state's own content."""
    s0, _ = acd.step(CFG, acd.initial_state(CFG), acd.Resync(()), 0.0)
    s1, _ = acd.step(CFG, s0, acd.CallQueued("c1", "sales", "PJSIP/t", skills=(("fr", 1),)), 1.0)
    s2, _ = acd.step(CFG, s1, acd.Login("ann"), 2.0)  # ann (en 1, fr 3) takes c1; s1's index now follows s2
    assert s2.calls["c1"].agent == "ann"
    again, cmds = acd.step(CFG, s1, acd.Login("ben"), 2.0)  # from s1: c1 still waits, ben (fr 2, de 3) lacks en
    assert [type(c).__name__ for c in cmds] == ["AgentChanged"] and again.calls["c1"].agent is None
    again, cmds = acd.step(CFG, again, acd.Login("ann"), 3.0)
    assert again.calls["c1"].agent == "ann"
