"""Supervision (listen / whisper / barge): who may spy on whom, and the exact ChanSpy to run.

Rules of this module: pure -- no I/O, no clock, no asyncio. :func:`decide` takes the lock-out
state and the time and returns the new state with its :class:`Decision`; the runtime keeps the
state, runs ChanSpy and writes the audit (:mod:`callcenter.features.supervision.service`,
:mod:`callcenter.features.supervision.store`).

Checks, in this order (the first that fails is the reason; nothing about the target is revealed
before the PIN is right):

``bad_mode`` -> ``not_a_supervisor`` (the calling phone) -> ``locked`` (too many bad PINs) ->
``bad_pin`` (constant-time compare) -> ``not_an_agent`` (the extension dialled) -> ``not_in_team``
(the agent's team must be one of the supervisor's ``teams``; no team, no supervision) ->
``agent_not_on_call`` -> ``ok``.

ChanSpy, as the runtime should run it (Asterisk 13+)::

    ChanSpy(<chanspy_target(agent channel)>,<chanspy_options(mode)>)

* ``u``: "The chanprefix parameter is a channel uniqueid or fully specified channel name." With it,
  app_chanspy looks the channel up by exact name (then uniqueid) and iterates that one name with
  length 0, i.e. a whole-name match, so ``PJSIP/2001-0000001`` cannot match
  ``PJSIP/2001-00000011``. Without ``u`` the first argument is a *prefix*. If the channel is gone,
  ChanSpy returns -1 and the supervisor's call is hung up.
* ``q``: no beep or channel name spoken to the supervisor. ``E``: "Exit when the spied-on channel
  hangs up." ``S``: "Stop when no more channels are left to spy on." (so ChanSpy never waits for
  another channel). ``d``: DTMF 4 / 5 / 6 switch to spy / whisper / barge during the session (and
  turns off the digits-then-# channel selection). ``w``: start in whisper mode (the agent hears
  the supervisor); ``B``: start in barge mode (both parties hear the supervisor).
* Whisper/barge audio is mixed in after MixMonitor's spy hook on the agent channel takes its copy,
  so the supervisor's voice is not in the agent-channel recording.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from callcenter.config import Config

__all__ = [
    "DTMF_BARGE",
    "DTMF_LISTEN",
    "DTMF_MODES",
    "DTMF_WHISPER",
    "LOCKOUT_S",
    "MAX_BAD_PINS",
    "MODES",
    "PIN_WINDOW_S",
    "REASONS",
    "Decision",
    "LockoutState",
    "chanspy_options",
    "chanspy_target",
    "decide",
]

Mode = Literal["listen", "whisper", "barge"]
MODES: tuple[Mode, ...] = ("listen", "whisper", "barge")
# ChanSpy option d: "Override the typical numeric DTMF functionality and instead use DTMF to switch
# between spy modes. 4 = spy mode, 5 = whisper mode, 6 = barge mode" (app_chanspy change_spy_mode()).
DTMF_LISTEN, DTMF_WHISPER, DTMF_BARGE = "4", "5", "6"
DTMF_MODES: Mapping[str, Mode] = MappingProxyType({DTMF_LISTEN: "listen", DTMF_WHISPER: "whisper",
                                                   DTMF_BARGE: "barge"})
_BASE_OPTIONS = "qdESu"
_MODE_OPTION: Mapping[str, str] = MappingProxyType({"listen": "", "whisper": "w", "barge": "B"})

REASONS = ("ok", "bad_mode", "not_a_supervisor", "locked", "bad_pin", "not_an_agent", "not_in_team",
           "agent_not_on_call")
MAX_BAD_PINS = 5  # this many wrong PINs within PIN_WINDOW_S ...
PIN_WINDOW_S = 300.0
LOCKOUT_S = 900.0  # ... lock the supervisor out this long (a right PIN is refused too)

# A channel name as Asterisk makes them (tech/resource-suffix, ;1/;2 for Local) or a uniqueid
# ([systemname-]epoch.sequence). Nothing that could end or extend a dialplan argument: no , ( ) | " ' $ { } \ space.
_CHANNEL = re.compile(r"[A-Za-z][A-Za-z0-9]*/[A-Za-z0-9_.@+:-]+(;[12])?")
_UNIQUEID = re.compile(r"([A-Za-z0-9_-]+-)?[0-9]+\.[0-9]+")


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str  # one of REASONS: a stable code, logged and audited
    agent: str | None  # the agent's name, once the target is known
    supervisor: str | None  # the supervisor's name, once the calling phone is known


@dataclass(frozen=True)
class LockoutState:
    """Wrong-PIN bookkeeping, per supervisor name. Immutable: :func:`decide` returns a new one."""

    failures: Mapping[str, tuple[float, ...]] = field(default_factory=lambda: MappingProxyType({}))
    locked_until: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))

    def _with(self, name: str, failures: tuple[float, ...], locked_until: float | None) -> LockoutState:
        f = {k: v for k, v in self.failures.items() if k != name}
        if failures:
            f[name] = failures
        lu = {k: v for k, v in self.locked_until.items() if k != name}
        if locked_until is not None:
            lu[name] = locked_until
        return LockoutState(MappingProxyType(f), MappingProxyType(lu))

    def pruned(self, now: float) -> LockoutState:
        """The same state without what can no longer matter at ``now``: wrong PINs older than
        :data:`PIN_WINDOW_S` and lock-outs that have ended. Keeps the maps as small as the set of
        supervisors with a recent mistake."""
        f = {k: kept for k, v in self.failures.items() if (kept := tuple(t for t in v if now - t < PIN_WINDOW_S))}
        lu = {k: v for k, v in self.locked_until.items() if now < v}
        if len(f) == len(self.failures) and len(lu) == len(self.locked_until) and all(
                len(f[k]) == len(v) for k, v in self.failures.items()):
            return self
        return LockoutState(MappingProxyType(f), MappingProxyType(lu))


def decide(cfg: Config, supervisor_phone: str, mode: str, target_ext: str, pin: str, agent_channel: str | None,
           state: LockoutState, now: float) -> tuple[LockoutState, Decision]:
    """May the supervisor at ``supervisor_phone`` spy on the agent at ``target_ext`` in ``mode``?

    Args:
        supervisor_phone: the calling phone's extension (from the channel, never from DTMF).
        target_ext: the agent's phone extension as dialled (``*71<ext>``).
        pin: the digits the supervisor entered.
        agent_channel: the agent's current call channel from the daemon's live state, or None.
        state: lock-out state from the previous call; ``now``: the time (s).

    Returns:
        The new lock-out state and the decision.
    """
    state = state.pruned(now)
    if mode not in MODES:
        return state, Decision(False, "bad_mode", None, None)
    sv_name = next((n for n, s in cfg.supervisors.items() if s.phone == supervisor_phone), None)
    if sv_name is None:
        return state, Decision(False, "not_a_supervisor", None, None)
    sv = cfg.supervisors[sv_name]
    until = state.locked_until.get(sv_name)
    if until is not None and now < until:
        return state, Decision(False, "locked", None, sv_name)
    recent = tuple(t for t in state.failures.get(sv_name, ()) if now - t < PIN_WINDOW_S)
    if not hmac.compare_digest(pin.encode("utf-8", "surrogatepass"), sv.pin.encode()):
        recent += (now,)
        if len(recent) >= MAX_BAD_PINS:
            return state._with(sv_name, (), now + LOCKOUT_S), Decision(False, "bad_pin", None, sv_name)
        return state._with(sv_name, recent, None), Decision(False, "bad_pin", None, sv_name)
    state = state._with(sv_name, (), None)  # a right PIN clears the count
    agent = cfg.agent_by_phone(target_ext)
    if agent is None:
        return state, Decision(False, "not_an_agent", None, sv_name)
    team = cfg.agents[agent].team
    if team is None or team not in sv.teams:
        return state, Decision(False, "not_in_team", agent, sv_name)
    if agent_channel is None:
        return state, Decision(False, "agent_not_on_call", agent, sv_name)
    return state, Decision(True, "ok", agent, sv_name)


def chanspy_options(mode: str) -> str:
    """ChanSpy's options for ``mode``: ``qdESu`` plus ``w`` (whisper) or ``B`` (barge)."""
    if mode not in _MODE_OPTION:
        raise ValueError(f"unknown supervision mode {mode!r} (expected one of {', '.join(MODES)})")
    return _BASE_OPTIONS + _MODE_OPTION[mode]


def chanspy_target(agent_channel: str) -> str:
    """ChanSpy's first argument for exactly this channel (full name or uniqueid; used with option ``u``).

    Raises ValueError for anything that is not a plain Asterisk channel name or uniqueid.
    """
    if not (_CHANNEL.fullmatch(agent_channel) or _UNIQUEID.fullmatch(agent_channel)):
        raise ValueError(f"not an Asterisk channel name or uniqueid: {agent_channel!r}")
    return agent_channel
