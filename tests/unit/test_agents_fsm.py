"""The agent state table: every listed transition works, everything else raises."""

from __future__ import annotations

import pytest

from callcenter.features.acd.agents import TRANSITIONS, AgentState, IllegalTransition, Trigger, transition

S, T = AgentState, Trigger

LEGAL = [(state, trig, to) for state, row in TRANSITIONS.items() for trig, to in row.items()]
ILLEGAL = [(state, trig) for state in AgentState for trig in Trigger if trig not in TRANSITIONS[state]]


def test_every_state_has_a_row():
    """The table has a row for every agent state."""
    assert set(TRANSITIONS) == set(AgentState)


@pytest.mark.parametrize("state, trig, to", LEGAL, ids=[f"{s}-{t}" for s, t, _ in LEGAL])
def test_legal_transition(state, trig, to):
    """Each (state, trigger) listed in the table leads to the listed target state."""
    assert transition(state, trig) is to


@pytest.mark.parametrize("state, trig", ILLEGAL, ids=[f"{s}-{t}" for s, t in ILLEGAL])
def test_every_unlisted_transition_raises(state, trig):
    """Every (state, trigger) pair absent from the table raises IllegalTransition."""
    with pytest.raises(IllegalTransition) as ei:
        transition(state, trig)
    assert ei.value.state is state and ei.value.trigger is trig


@pytest.mark.parametrize("state, trig, text", [
    (S.BUSY, T.LOGOUT, "agent in state Busy cannot take logout"),
    (S.LOGGED_OUT, T.RESERVE, "agent in state LoggedOut cannot take reserve"),
    (S.BUSY, T.PAUSE, "agent in state Busy cannot take pause"),
    (S.RESERVED, T.LOGOUT, "agent in state Reserved cannot take logout"),
    (S.PAUSED, T.RESERVE, "agent in state Paused cannot take reserve"),
    (S.WRAPUP, T.RESERVE, "agent in state WrapUp cannot take reserve"),
    (S.LOGGED_OUT, T.ANSWER, "agent in state LoggedOut cannot take answer"),
    (S.READY, T.HANGUP, "agent in state Ready cannot take hangup"),
])
def test_named_illegal_transitions_message(state, trig, text):
    """Illegal transitions name both the state and the trigger in their message."""
    with pytest.raises(IllegalTransition) as ei:
        transition(state, trig)
    assert str(ei.value) == text


def test_key_lifecycle():
    """Login, reserve, answer, hang up, wrap done, pause, unpause, logout walk the expected states."""
    st = S.LOGGED_OUT
    seen = []
    for trig in (T.LOGIN, T.RESERVE, T.ANSWER, T.HANGUP, T.WRAP_DONE, T.PAUSE, T.UNPAUSE, T.LOGOUT):
        st = transition(st, trig)
        seen.append(st)
    assert seen == [S.READY, S.RESERVED, S.BUSY, S.WRAPUP, S.READY, S.PAUSED, S.READY, S.LOGGED_OUT]


def test_only_ready_can_be_reserved():
    """RESERVE (a call is offered) is legal from Ready and from nowhere else."""
    assert [s for s in AgentState if T.RESERVE in TRANSITIONS[s]] == [S.READY]


def test_resync_busy_is_legal_everywhere():
    """After a reconnect Asterisk may show any agent talking: RESYNC_BUSY -> Busy from every state."""
    assert all(transition(s, T.RESYNC_BUSY) is S.BUSY for s in AgentState)


def test_busy_agent_can_only_hang_up():
    """A talking agent cannot log out or pause: only hang-up (or resync, taking over another call, or the end
    of a consult taken on a break or logged out) moves them."""
    assert set(TRANSITIONS[S.BUSY]) == {T.HANGUP, T.RESYNC_BUSY, T.TAKE_OVER, T.CONSULT_DONE_PAUSED,
                                        T.CONSULT_DONE_LOGGED_OUT}
    assert transition(S.BUSY, T.TAKE_OVER) is S.BUSY


def test_take_over_never_from_a_ringing_offer():
    """TAKE_OVER (a handed-over call) makes Busy from every state but Reserved (the core withdraws that offer first)."""
    assert {s for s in AgentState if T.TAKE_OVER in TRANSITIONS[s]} == set(AgentState) - {S.RESERVED}
    assert all(transition(s, T.TAKE_OVER) is S.BUSY for s in AgentState if s is not S.RESERVED)


def test_states_and_triggers_string_values():
    """State and trigger values are the strings persisted and reported (StrEnum)."""
    assert [str(s) for s in AgentState] == ["LoggedOut", "Ready", "Reserved", "Busy", "WrapUp", "Paused"]
    assert str(T.AUTO_PAUSE) == "auto_pause"
