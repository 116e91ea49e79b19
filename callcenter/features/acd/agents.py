"""Agent states as a table.

Rules of this module: no I/O, no clock; a transition that is not in the table raises
:class:`IllegalTransition` naming the state and the trigger.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["AgentState", "Trigger", "TRANSITIONS", "IllegalTransition", "transition"]


class AgentState(StrEnum):
    LOGGED_OUT = "LoggedOut"
    READY = "Ready"
    RESERVED = "Reserved"  # a call is ringing on the agent's phone
    BUSY = "Busy"
    WRAPUP = "WrapUp"
    PAUSED = "Paused"


class Trigger(StrEnum):
    LOGIN = "login"
    LOGOUT = "logout"
    PAUSE = "pause"
    UNPAUSE = "unpause"
    RESERVE = "reserve"  # the ACD offers a call
    ANSWER = "answer"
    NO_ANSWER = "no_answer"
    AUTO_PAUSE = "auto_pause"  # too many unanswered offers in a row
    HANGUP = "hangup"
    WRAP_DONE = "wrap_done"
    RESYNC_BUSY = "resync_busy"  # Asterisk shows the agent talking after a reconnect/restart
    TAKE_OVER = "take_over"  # the agent talks with a caller handed over (consult, attended transfer)
    CONSULT_DONE_PAUSED = "consult_done_paused"  # a consult taken during a break is over: back on the break
    CONSULT_DONE_LOGGED_OUT = "consult_done_logged_out"  # ... taken while logged out: logged out again


S, T = AgentState, Trigger

TRANSITIONS: dict[AgentState, dict[Trigger, AgentState]] = {
    S.LOGGED_OUT: {T.LOGIN: S.READY, T.RESYNC_BUSY: S.BUSY, T.TAKE_OVER: S.BUSY},
    S.READY: {T.RESERVE: S.RESERVED, T.PAUSE: S.PAUSED, T.LOGOUT: S.LOGGED_OUT, T.LOGIN: S.READY,
              T.UNPAUSE: S.READY, T.RESYNC_BUSY: S.BUSY, T.TAKE_OVER: S.BUSY},
    S.RESERVED: {T.ANSWER: S.BUSY, T.NO_ANSWER: S.READY, T.AUTO_PAUSE: S.PAUSED, T.RESYNC_BUSY: S.BUSY},
    S.BUSY: {T.HANGUP: S.WRAPUP, T.RESYNC_BUSY: S.BUSY, T.TAKE_OVER: S.BUSY, T.CONSULT_DONE_PAUSED: S.PAUSED,
             T.CONSULT_DONE_LOGGED_OUT: S.LOGGED_OUT},
    S.WRAPUP: {T.WRAP_DONE: S.READY, T.PAUSE: S.PAUSED, T.LOGOUT: S.LOGGED_OUT, T.RESYNC_BUSY: S.BUSY,
               T.TAKE_OVER: S.BUSY},
    S.PAUSED: {T.UNPAUSE: S.READY, T.PAUSE: S.PAUSED, T.LOGOUT: S.LOGGED_OUT, T.LOGIN: S.PAUSED,
               T.RESYNC_BUSY: S.BUSY, T.TAKE_OVER: S.BUSY},
}


class IllegalTransition(Exception):
    def __init__(self, state: AgentState, trigger: Trigger):
        self.state, self.trigger = state, trigger
        super().__init__(f"agent in state {state} cannot take {trigger!s}")


def transition(state: AgentState, trigger: Trigger) -> AgentState:
    try:
        return TRANSITIONS[state][trigger]
    except KeyError:
        raise IllegalTransition(state, trigger) from None
