"""The vectorised router against its per-call Python reference, and the policy's invariants."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callcenter.bench.routing import snapshot
from callcenter.features.acd.routing import (NOT_MEMBER, STRATEGIES, AgentArrays, CallArrays, assign, assign_reference,
                                     max_penalty, strategy_ranks)


@st.composite
def instances(draw, max_agents=9):
    a_n = draw(st.integers(1, max_agents))
    c_n = draw(st.integers(1, 9))
    s_n = draw(st.integers(1, 4))
    q_n = draw(st.integers(1, 3))
    ints = lambda lo, hi, shape: np.array(draw(st.lists(st.integers(lo, hi), min_size=int(np.prod(shape)),  # noqa: E731
                                                         max_size=int(np.prod(shape))))).reshape(shape)
    skills = ints(0, 10, (a_n, s_n)).astype(np.int8)
    member = ints(0, 1, (q_n, a_n)).astype(bool)
    penalty = np.where(member, ints(0, 3, (q_n, a_n)), NOT_MEMBER).astype(np.int32)
    member_pos = np.where(member, np.cumsum(member, axis=1) - 1, -1).astype(np.int32)
    agents = AgentArrays(
        free=ints(0, 1, (a_n,)).astype(bool), skills=skills, penalty=penalty,
        idle_since=ints(0, 5, (a_n,)).astype(np.float64), last_end=ints(0, 5, (q_n, a_n)).astype(np.float64),
        calls=ints(0, 3, (q_n, a_n)).astype(np.int64), member_pos=member_pos)
    k = draw(st.integers(1, 2))
    req_skill = ints(-1, s_n - 1, (c_n, k)).astype(np.int32)
    # Callers may ask for more than anyone has (AGI levels go to 99): 11 and 12 are met by nobody.
    req_level = np.where(req_skill >= 0, ints(0, 12, (c_n, k)), 0).astype(np.int8)
    # Preferred agents (relationship routing): none at all, or per call one agent or -1 (anyone).
    only = ints(-1, a_n - 1, (c_n,)).astype(np.int32) if draw(st.booleans()) else None
    calls = CallArrays(queue=ints(0, q_n - 1, (c_n,)).astype(np.int32), priority=ints(0, 2, (c_n,)).astype(np.int32),
                       entered=ints(0, 4, (c_n,)).astype(np.float64), req_skill=req_skill, req_level=req_level,
                       max_penalty=ints(0, 3, (c_n,)).astype(np.int32), only=only)
    strategies = tuple(draw(st.sampled_from(STRATEGIES)) for _ in range(q_n))
    rr_last = ints(-1, 3, (q_n,)).astype(np.int64)
    exclude = draw(st.lists(st.tuples(st.integers(0, c_n - 1), st.integers(0, a_n - 1)), max_size=3))
    return agents, calls, strategies, rr_last, exclude


def _eligible(agents: AgentArrays, calls: CallArrays, c: int, a: int) -> bool:
    q = calls.queue[c]
    if not agents.free[a] or agents.penalty[q, a] > calls.max_penalty[c]:
        return False
    if calls.only is not None and calls.only[c] >= 0 and calls.only[c] != a:
        return False
    return all(agents.skills[a, s] >= lv for s, lv in zip(calls.req_skill[c], calls.req_level[c]) if s >= 0)


def _run(inst, seed=7):
    agents, calls, strategies, rr_last, exclude = inst
    skills_strategy = np.array([s == "skills" for s in strategies], dtype=np.int64)
    got = assign(agents, calls, strategies, rr_last, seed, skills_strategy, exclude)
    full = strategy_ranks(strategies, agents, rr_last, seed)
    want = assign_reference(agents, calls, full, skills_strategy, exclude)
    return got, want


@settings(max_examples=400, deadline=None)
@given(instances())
def test_vectorised_router_matches_the_reference(inst):
    """The numpy pass makes exactly the assignments of the one-by-one Python reference."""
    got, want = _run(inst)
    assert [(x.call, x.agent, x.candidates) for x in got] == [(x.call, x.agent, x.candidates) for x in want]


@settings(max_examples=150, deadline=None)
@given(instances(max_agents=80))
def test_vectorised_router_matches_the_reference_with_many_free_agents(inst):
    """Sets of more than 8, 16, 32 and 64 free agents (wider words, several words) decide alike."""
    got, want = _run(inst)
    assert [(x.call, x.agent, x.candidates) for x in got] == [(x.call, x.agent, x.candidates) for x in want]


@pytest.mark.parametrize("free", [1, 4, 9, 17, 40, 70, 150])
def test_busy_floor_matches_the_reference(free):
    """A bench-like floor (300 agents, 200 callers, every strategy, tried agents) with 1..150 free
    agents: the same assignments, keys ordered alike, and the candidate counts of the reference."""
    rng = np.random.default_rng(free)
    agents, calls, _, rr_last = snapshot(rng, 300, 200, 16, 9, 0.0)
    agents = replace(agents, free=np.isin(np.arange(300), rng.choice(300, size=free, replace=False)))
    strategies = STRATEGIES
    skills_strategy = np.array([s == "skills" for s in strategies], dtype=np.int64)
    exclude = [(int(c), int(a)) for c, a in zip(rng.integers(0, 200, 40), rng.choice(np.flatnonzero(agents.free), 40))]
    got = assign(agents, calls, strategies, rr_last, 11, skills_strategy, exclude)
    want = assign_reference(agents, calls, strategy_ranks(strategies, agents, rr_last, 11), skills_strategy, exclude)
    assert got and [(x.call, x.agent, x.candidates) for x in got] == [(x.call, x.agent, x.candidates) for x in want]


def test_new_member_lists_are_honoured():
    """Round robin wraps by the queue's current member count: a new configuration's member
    positions take effect at once (per-configuration facts are remembered per array)."""
    agents = _small()
    calls = _calls([[-1]], [[0]])
    assert assign(agents, calls, ("rrmemory",), np.array([2]), 0, np.array([0]))[0].agent == 0
    two = replace(agents, penalty=np.array([[0, 0, NOT_MEMBER]], dtype=np.int32),
                  member_pos=np.array([[0, 1, -1]], dtype=np.int32))
    # After member 1 answered, a 2-member queue starts again from member 0; the last answer at
    # position 2 (left from the 3-member list) wraps to position 0 too: the next one is member 1.
    assert assign(two, calls, ("rrmemory",), np.array([1]), 0, np.array([0]))[0].agent == 0
    assert assign(two, calls, ("rrmemory",), np.array([2]), 0, np.array([0]))[0].agent == 1


@settings(max_examples=400, deadline=None)
@given(instances())
def test_assignments_are_a_fair_maximal_matching(inst):
    """No agent or call twice, only eligible pairs, nobody left waiting beside a free eligible agent,
    and a waiting call only loses its agents to calls ranked above it."""
    agents, calls, *_ = inst
    got, _ = _run(inst)
    pairs = [(x.call, x.agent) for x in got]
    assert len({c for c, _ in pairs}) == len(pairs) and len({a for _, a in pairs}) == len(pairs)
    assert all(_eligible(agents, calls, c, a) for c, a in pairs)
    rank = {c: i for i, c in enumerate(np.lexsort((np.arange(len(calls.queue)), calls.entered, -calls.priority)))}
    served = {c: a for c, a in pairs}
    owner = {a: c for c, a in pairs}
    for c in range(len(calls.queue)):
        if c in served:
            continue
        for a in range(len(agents.free)):
            if _eligible(agents, calls, c, a):
                assert a in owner, f"call {c} waits while eligible agent {a} is free"
                assert rank[owner[a]] < rank[c], f"agent {a} went to a call ranked below waiting call {c}"


def _small(free=(True, True, True)):
    skills = np.array([[5, 0], [3, 5], [9, 1]], dtype=np.int8)  # skills: sales, spanish
    return AgentArrays(free=np.array(free), skills=skills, penalty=np.zeros((1, 3), dtype=np.int32),
                       idle_since=np.array([1.0, 2.0, 3.0]), last_end=np.zeros((1, 3)),
                       calls=np.zeros((1, 3), dtype=np.int64), member_pos=np.arange(3, dtype=np.int32)[None, :])


def _calls(req_skill, req_level, entered=None, priority=None, max_pen=None):
    n = len(req_skill)
    return CallArrays(queue=np.zeros(n, dtype=np.int32),
                      priority=np.array(priority or [0] * n, dtype=np.int32),
                      entered=np.array(entered or list(range(n)), dtype=np.float64),
                      req_skill=np.array(req_skill, dtype=np.int32), req_level=np.array(req_level, dtype=np.int8),
                      max_penalty=np.array(max_pen or [9] * n, dtype=np.int32))


def test_required_skill_picks_the_only_capable_agent():
    """A Spanish-speaking caller goes to the one agent with Spanish, though others idle longer."""
    got = assign(_small(), _calls([[1]], [[3]]), ("longest-idle",), np.array([-1]), 0, np.array([0]))
    assert [(x.call, x.agent) for x in got] == [(0, 1)]


def test_skills_strategy_prefers_the_most_proficient():
    """With the skills strategy the best sales agent wins over the longest idle one."""
    got = assign(_small(), _calls([[0]], [[1]]), ("skills",), np.array([-1]), 0, np.array([1]))
    assert [(x.call, x.agent) for x in got] == [(0, 2)]
    got = assign(_small(), _calls([[0]], [[1]]), ("longest-idle",), np.array([-1]), 0, np.array([0]))
    assert [(x.call, x.agent) for x in got] == [(0, 0)]


def test_priority_beats_waiting_time():
    """A priority caller is served before one who has waited longer."""
    got = assign(_small((True, False, False)), _calls([[-1], [-1]], [[0], [0]], entered=[0.0, 5.0],
                                                       priority=[0, 3]),
                 ("longest-idle",), np.array([-1]), 0, np.array([0]))
    assert [(x.call, x.agent) for x in got] == [(1, 0)]


def test_excluded_agent_is_used_only_as_a_last_resort():
    """An agent who let the call ring out is skipped while another is free, used again when alone."""
    got = assign(_small((True, True, False)), _calls([[-1]], [[0]]), ("longest-idle",), np.array([-1]), 0,
                 np.array([0]), [(0, 0)])
    assert [(x.call, x.agent) for x in got] == [(0, 1)]
    got = assign(_small((True, False, False)), _calls([[-1]], [[0]]), ("longest-idle",), np.array([-1]), 0,
                 np.array([0]), [(0, 0)])
    assert [(x.call, x.agent) for x in got] == [(0, 0)]


def test_round_robin_and_linear_orders():
    """rrmemory starts after the member who answered last; linear always from the top of the list."""
    calls = _calls([[-1]], [[0]])
    got = assign(_small(), calls, ("rrmemory",), np.array([0]), 0, np.array([0]))
    assert got[0].agent == 1
    got = assign(_small(), calls, ("rrmemory",), np.array([2]), 0, np.array([0]))
    assert got[0].agent == 0
    got = assign(_small(), calls, ("linear",), np.array([1]), 0, np.array([0]))
    assert got[0].agent == 0


def test_penalty_rules_relax_with_waiting_time():
    """The maximum penalty follows app_queue-style rules as the caller waits."""
    rules = ((30.0, 1), (60.0, 3))
    assert [max_penalty(rules, 0, w) for w in (0, 29.9, 30, 59, 60, 600)] == [0, 0, 1, 1, 3, 3]


@settings(max_examples=300, deadline=None)
@given(instances(max_agents=80))
def test_a_call_with_a_preferred_agent_goes_to_that_agent_or_nobody(inst):
    """A call with a preferred agent is assigned that agent or none, never another; the reference agrees."""
    agents, calls, strategies, rr_last, exclude = inst
    if calls.only is None:
        calls = replace(calls, only=np.zeros(len(calls.queue), dtype=np.int32))
        inst = (agents, calls, strategies, rr_last, exclude)
    got, want = _run(inst)
    assert [(x.call, x.agent, x.candidates) for x in got] == [(x.call, x.agent, x.candidates) for x in want]
    for x in got:
        assert calls.only[x.call] < 0 or x.agent == calls.only[x.call]


def test_preferred_agent_wins_over_the_longest_idle():
    """The preferred agent takes the call though another idled longer; busy, nobody else does."""
    calls = replace(_calls([[-1]], [[0]]), only=np.array([2], dtype=np.int32))
    got = assign(_small(), calls, ("longest-idle",), np.array([-1]), 0, np.array([0]))
    assert [(x.call, x.agent, x.candidates) for x in got] == [(0, 2, 1)]
    assert assign(_small((True, True, False)), calls, ("longest-idle",), np.array([-1]), 0, np.array([0])) == []
