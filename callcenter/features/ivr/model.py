"""IVR engine: menus from the config, driven by digits and time-outs. No I/O, no clock.

``start(cfg, action, now)`` and ``press(cfg, state, digit, now)`` return the next
:class:`IvrState` (None once the caller has left the menus) and one instruction: play a
menu's prompts and wait for a digit (:class:`Play`), or leave the IVR (:class:`Route`).
``digit`` None means the no-input time-out expired.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import holidays as holidays_lib

if TYPE_CHECKING:
    from callcenter.config import Action, Config, Schedule

__all__ = ["IvrState", "Play", "Route", "IvrLoop", "start", "press", "is_open"]

MAX_HOPS = 32  # menu -> menu jumps without a key press (config loops are caught here)
_DIGIT = re.compile(r"^[0-9*#]$")


class IvrLoop(Exception):
    """The configuration sends callers round in circles without asking them anything."""


@dataclass(frozen=True)
class IvrState:
    menu: str
    retries: int = 0
    path: tuple[str, ...] = ()  # menus entered and keys pressed, for the call record


@dataclass(frozen=True)
class Play:
    prompts: tuple[str, ...]
    timeout_s: float


@dataclass(frozen=True)
class Route:
    """Leave the IVR: exactly one of queue / dial / hangup (prompts to play before hanging up)."""

    path: tuple[str, ...]
    queue: str | None = None
    dial: str | None = None
    hangup: tuple[str, ...] | None = None
    skills: tuple[tuple[str, int], ...] = ()  # with queue: what the caller needs
    priority: int = 0


def start(cfg: Config, action: Action, now: float) -> tuple[IvrState | None, Play | Route]:
    return _resolve(cfg, action, now, ())


def press(cfg: Config, state: IvrState, digit: str | None, now: float) -> tuple[IvrState | None, Play | Route]:
    menu = cfg.menus[state.menu]
    if digit is not None and _DIGIT.match(digit) and digit in menu.options:
        return _resolve(cfg, menu.options[digit], now, state.path + (digit,))
    path = state.path + ("timeout" if digit is None else "invalid",)
    if state.retries >= menu.max_retries:
        return _resolve(cfg, menu.on_failure, now, path + ("failure",))
    lead: tuple[str, ...] = ()
    if digit is not None:
        lead = (menu.invalid_prompt,)
    elif menu.timeout_prompt:
        lead = (menu.timeout_prompt,)
    return IvrState(state.menu, state.retries + 1, path), Play(lead + menu.prompt, menu.timeout_s)


def _resolve(cfg: Config, action: Action, now: float, path: tuple[str, ...]) -> tuple[IvrState | None, Play | Route]:
    for _ in range(MAX_HOPS):
        if action.hours is not None:
            open_ = is_open(cfg.schedules[action.hours.schedule], now)
            path = path + ("open" if open_ else "closed",)
            action = action.hours.open if open_ else action.hours.closed
            continue
        if action.menu is not None:
            m = cfg.menus[action.menu]
            return IvrState(action.menu, 0, path + (action.menu,)), Play(m.prompt, m.timeout_s)
        if action.queue is not None:
            return None, Route(path + ("queue:" + action.queue,), queue=action.queue,
                               skills=tuple(sorted((action.skills or {}).items())), priority=action.priority or 0)
        if action.dial is not None:
            return None, Route(path + ("dial:" + action.dial,), dial=action.dial)
        return None, Route(path + ("hangup",), hangup=tuple(action.hangup or ()))
    raise IvrLoop("business-hours actions nest too deeply")


@lru_cache(maxsize=64)
def _holiday_calendar(country: str, subdiv: str | None, year: int) -> holidays_lib.HolidayBase:
    return holidays_lib.country_holidays(country, subdiv=subdiv, years=year)


def is_open(schedule: Schedule, now: float) -> bool:
    """Open at ``now`` (Unix time) in the schedule's own time zone, holidays closed."""
    local = dt.datetime.fromtimestamp(now, ZoneInfo(schedule.timezone))
    day = local.date()
    if day.isoformat() in schedule.holidays.dates:
        return False
    if schedule.holidays.country and day in _holiday_calendar(schedule.holidays.country,
                                                              schedule.holidays.subdiv, day.year):
        return False
    hhmm = local.strftime("%H:%M")
    key = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[local.weekday()]
    return any(r[:5] <= hhmm < r[6:] for r in schedule.weekly.get(key, ()))
