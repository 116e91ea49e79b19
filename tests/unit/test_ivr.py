"""IVR engine: menus, digits, retries, failure routes and business hours (pure, no clock)."""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callcenter.config import Action, load, parse
from callcenter.features.ivr import model as ivr
from callcenter.features.ivr.model import IvrState, Play, Route

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = load(ROOT / "config" / "callcenter.yaml")
MAIN = SHIPPED.menus["main"]
SUPPORT = SHIPPED.menus["support"]
PARIS = ZoneInfo("Europe/Paris")
NOW = 0.0  # only business-hours actions look at the time


def at(tz: ZoneInfo | str, *args: int) -> float:
    """Unix time of a wall-clock moment in a time zone."""
    z = ZoneInfo(tz) if isinstance(tz, str) else tz
    return dt.datetime(*args, tzinfo=z).timestamp()


BASE = {
    "ami": {"secret": "unit-test-secret"},
    "phones": {"2001": {"secret": "phone-secret-1"}, "2900": {"secret": "phone-secret-9"}},
    "agents": {"alice": {"phone": "2001"}},
    "queues": {"sales": {"members": ["alice"], "fallback": {"hangup": ["goodbye"]}},
               "support": {"members": ["alice"], "fallback": {"queue": "sales"}}},
    "menus": {"main": {"prompt": ["welcome"], "options": {"1": {"queue": "sales"}}}},
    "trunks": {"pstn": {"match": ["127.0.0.2"], "dids": {"5551000": {"menu": "main"}}}},
}


def cfg_with(**overrides):
    data = copy.deepcopy(BASE)
    data.update(overrides)
    return parse(data)


def did(number: str) -> Action:
    return SHIPPED.trunks["pstn"].dids[number]


# --------------------------------------------------------------------------- menus on the shipped config

def test_start_menu_plays_prompts():
    """Starting on a menu returns its state (path = menu name) and plays its prompts with its timeout."""
    state, play = ivr.start(SHIPPED, did("5551000"), NOW)
    assert state == IvrState("main", 0, ("main",))
    assert play == Play(MAIN.prompt, 5.0)
    assert play.prompts == ("dir-welcome", "vm-press", "digits/1", "queue-quantity1", "vm-press", "digits/2")


def test_valid_digit_routes_to_queue():
    """Pressing 1 in the main menu leaves the IVR for the sales queue, recording the path."""
    state, _ = ivr.start(SHIPPED, did("5551000"), NOW)
    assert ivr.press(SHIPPED, state, "1", NOW) == (None, Route(("main", "1", "queue:sales"), queue="sales"))


def test_dial_option():
    """Pressing 0 rings the supervisor's phone extension."""
    state, _ = ivr.start(SHIPPED, did("5551000"), NOW)
    assert ivr.press(SHIPPED, state, "0", NOW) == (None, Route(("main", "0", "dial:1900"), dial="1900"))


def test_nested_menu_path():
    """2 enters the support sub-menu, then 1 queues to support; the path records every step."""
    state, _ = ivr.start(SHIPPED, did("5551000"), NOW)
    state, play = ivr.press(SHIPPED, state, "2", NOW)
    assert state == IvrState("support", 0, ("main", "2", "support"))
    assert play == Play(("vm-press", "digits/1"), 5.0)
    assert ivr.press(SHIPPED, state, "1", NOW) == (
        None, Route(("main", "2", "support", "1", "queue:support"), queue="support"))


def test_star_goes_back_to_main_with_fresh_retries():
    """'*' in support returns to main with retries reset to 0."""
    state, _ = ivr.start(SHIPPED, did("5551000"), NOW)
    state, _ = ivr.press(SHIPPED, state, "2", NOW)
    state, _ = ivr.press(SHIPPED, state, "7", NOW)
    assert state.retries == 1
    state, play = ivr.press(SHIPPED, state, "*", NOW)
    assert state == IvrState("main", 0, ("main", "2", "support", "invalid", "*", "main"))
    assert play == Play(MAIN.prompt, 5.0)


def test_invalid_digit_plays_invalid_prompt_first():
    """An unknown digit replays the menu with invalid_prompt first and retries + 1."""
    state, _ = ivr.start(SHIPPED, did("5551000"), NOW)
    state, play = ivr.press(SHIPPED, state, "9", NOW)
    assert state == IvrState("main", 1, ("main", "invalid"))
    assert play == Play(("pm-invalid-option",) + MAIN.prompt, 5.0)


def test_timeout_replays_without_invalid_prompt():
    """No digit (None) replays the menu prompts only, path 'timeout', retries + 1."""
    state, _ = ivr.start(SHIPPED, did("5551000"), NOW)
    state, play = ivr.press(SHIPPED, state, None, NOW)
    assert state == IvrState("main", 1, ("main", "timeout"))
    assert play == Play(MAIN.prompt, 5.0)


def test_timeout_prompt_when_configured():
    """A menu with timeout_prompt plays it before the menu prompts on a time-out."""
    cfg = cfg_with(menus={"main": {"prompt": ["welcome"], "options": {"1": {"queue": "sales"}},
                                   "timeout_prompt": "are-you-still-there", "timeout_s": 7}})
    state, _ = ivr.start(cfg, Action(menu="main"), NOW)
    state, play = ivr.press(cfg, state, None, NOW)
    assert play == Play(("are-you-still-there", "welcome"), 7.0)
    # an invalid digit still uses the invalid prompt, not the time-out one
    _, play = ivr.press(cfg, state, "5", NOW)
    assert play == Play(("pm-invalid-option", "welcome"), 7.0)


def test_retries_exhausted_goes_to_on_failure():
    """After max_retries misses the next miss takes on_failure, with 'failure' in the path."""
    state, _ = ivr.start(SHIPPED, did("5551000"), NOW)
    for i, d in enumerate(["9", None, "#"], start=1):
        state, play = ivr.press(SHIPPED, state, d, NOW)
        assert isinstance(play, Play) and state.retries == i
    assert state.retries == MAIN.max_retries == 3
    nxt, route = ivr.press(SHIPPED, state, None, NOW)
    assert nxt is None
    assert route == Route(("main", "invalid", "timeout", "invalid", "timeout", "failure", "hangup"),
                          hangup=("goodbye",))
    assert "failure" in route.path


def test_support_failure_goes_to_queue():
    """The support menu's on_failure is a queue: after 2 retries the third miss queues the caller."""
    state, _ = ivr.start(SHIPPED, Action(menu="support"), NOW)
    state, _ = ivr.press(SHIPPED, state, None, NOW)
    state, _ = ivr.press(SHIPPED, state, None, NOW)
    assert ivr.press(SHIPPED, state, None, NOW) == (
        None, Route(("support", "timeout", "timeout", "timeout", "failure", "queue:support"), queue="support"))


def test_zero_retries_fails_at_first_miss():
    """With max_retries 0 the first wrong key goes straight to on_failure."""
    cfg = cfg_with(menus={"main": {"prompt": ["welcome"], "options": {"1": {"queue": "sales"}}, "max_retries": 0,
                                   "on_failure": {"dial": "2900"}}})
    state, _ = ivr.start(cfg, Action(menu="main"), NOW)
    assert ivr.press(cfg, state, "3", NOW) == (None, Route(("main", "invalid", "failure", "dial:2900"), dial="2900"))


def test_default_on_failure_is_hangup_goodbye():
    """A menu without on_failure hangs up with 'goodbye' once retries are exhausted."""
    cfg = cfg_with(menus={"main": {"prompt": ["welcome"], "options": {"1": {"queue": "sales"}}, "max_retries": 0}})
    state, _ = ivr.start(cfg, Action(menu="main"), NOW)
    _, route = ivr.press(cfg, state, None, NOW)
    assert route.hangup == ("goodbye",) and route.queue is None and route.dial is None


@pytest.mark.parametrize("junk", ["x", "12", "", "11", "a", "1 ", " 1", "**", "D"])
def test_non_dtmf_input_is_invalid(junk):
    """Anything that is not exactly one DTMF key counts as an invalid key, even if it starts with a valid one."""
    state, _ = ivr.start(SHIPPED, did("5551000"), NOW)
    state, play = ivr.press(SHIPPED, state, junk, NOW)
    assert state == IvrState("main", 1, ("main", "invalid"))
    assert play.prompts[0] == "pm-invalid-option"


@settings(max_examples=100, deadline=None)
@given(keys=st.lists(st.one_of(st.none(), st.sampled_from(list("0123456789*#")), st.text(max_size=3)),
                     max_size=12))
def test_any_key_sequence_ends_in_a_route_or_a_menu(keys):
    """Any sequence of inputs keeps the IVR in a known menu with bounded retries or leaves with a Route."""
    state, step = ivr.start(SHIPPED, did("5551000"), NOW)
    for k in keys:
        if state is None:
            break
        state, step = ivr.press(SHIPPED, state, k, NOW)
        if state is None:
            assert isinstance(step, Route)
            assert sum(x is not None for x in (step.queue, step.dial, step.hangup)) == 1
        else:
            assert isinstance(step, Play) and state.menu in SHIPPED.menus
            assert 0 <= state.retries <= SHIPPED.menus[state.menu].max_retries


# --------------------------------------------------------------------------- business hours

OFFICE = SHIPPED.schedules["office"]


@pytest.mark.parametrize("when, open_", [
    ((2026, 3, 2, 10, 0), True),     # Monday 10:00
    ((2026, 3, 2, 8, 0), True),      # opening minute
    ((2026, 3, 2, 7, 59), False),
    ((2026, 3, 2, 19, 59), True),
    ((2026, 3, 2, 20, 0), False),    # the end of a range is exclusive
    ((2026, 3, 2, 22, 0), False),    # Monday 22:00
    ((2026, 3, 7, 10, 0), False),    # Saturday 10:00
    ((2026, 3, 8, 10, 0), False),    # Sunday
    ((2026, 12, 25, 10, 0), False),  # Christmas (FR public holiday), a Friday
    ((2026, 7, 14, 10, 0), False),   # Bastille Day, a Tuesday
    ((2026, 12, 24, 10, 0), False),  # explicit holidays.dates entry, a Thursday
    ((2026, 12, 23, 10, 0), True),   # the Wednesday before: open
])
def test_office_schedule(when, open_):
    """The shipped office schedule, evaluated at Paris wall-clock times, opens Mon-Fri 8-20 except holidays."""
    assert ivr.is_open(OFFICE, at(PARIS, *when)) is open_


def test_hours_action_open_and_closed():
    """An hours action follows 'open' during office hours and 'closed' outside, recording which."""
    action = did("5552000")
    state, play = ivr.start(SHIPPED, action, at(PARIS, 2026, 3, 2, 10, 0))
    assert state == IvrState("main", 0, ("open", "main")) and play.prompts == MAIN.prompt
    assert ivr.start(SHIPPED, action, at(PARIS, 2026, 3, 2, 22, 0)) == (
        None, Route(("closed", "hangup"), hangup=("vm-nobodyavail", "goodbye")))
    assert ivr.start(SHIPPED, action, at(PARIS, 2026, 3, 7, 10, 0))[1].path == ("closed", "hangup")
    assert ivr.start(SHIPPED, action, at(PARIS, 2026, 12, 25, 10, 0))[1].path == ("closed", "hangup")
    assert ivr.start(SHIPPED, action, at(PARIS, 2026, 12, 24, 10, 0))[1].path == ("closed", "hangup")


def test_hours_use_the_schedule_time_zone_not_utc():
    """Monday 07:30 UTC is 08:30 in Paris (winter, UTC+1): open; 19:30 UTC is 20:30 Paris: closed."""
    assert ivr.is_open(OFFICE, at("UTC", 2026, 3, 2, 7, 30))
    assert not ivr.is_open(OFFICE, at("UTC", 2026, 3, 2, 19, 30))


def test_holiday_is_decided_on_the_local_date():
    """23:30 UTC on 24 Dec is already 25 Dec in Paris, so a FR-holiday schedule is closed then."""
    cfg = cfg_with(schedules={"allday": {"timezone": "Europe/Paris",
                                         "weekly": {d: ["00:00-24:00"] for d in
                                                    ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
                                         "holidays": {"country": "FR"}}})
    sched = cfg.schedules["allday"]
    assert ivr.is_open(sched, at("UTC", 2026, 12, 24, 22, 30))   # 23:30 Paris, 24 Dec
    assert not ivr.is_open(sched, at("UTC", 2026, 12, 24, 23, 30))  # 00:30 Paris, 25 Dec
    assert ivr.is_open(sched, at(PARIS, 2026, 12, 26, 23, 59))


def test_dst_day_after_spring_change_new_york():
    """Day after the March DST change in New York: 08:30 local (EDT) is open for 08:00-20:00, 07:59 is not."""
    cfg = cfg_with(schedules={"ny": {"timezone": "America/New_York", "weekly": {"mon": ["08:00-20:00"]}}})
    sched = cfg.schedules["ny"]
    ny = ZoneInfo("America/New_York")
    t = at(ny, 2026, 3, 9, 8, 30)
    assert t == at("UTC", 2026, 3, 9, 12, 30)  # EDT is UTC-4 after 8 March 2026
    assert ivr.is_open(sched, t)
    assert not ivr.is_open(sched, at(ny, 2026, 3, 9, 7, 59))
    assert ivr.is_open(sched, at(ny, 2026, 3, 9, 19, 59))
    assert not ivr.is_open(sched, at(ny, 2026, 3, 9, 20, 0))


def test_several_ranges_per_day():
    """A day may have several ranges; the lunch gap between them is closed."""
    cfg = cfg_with(schedules={"split": {"timezone": "UTC", "weekly": {"mon": ["09:00-12:00", "14:00-18:00"]}}})
    sched = cfg.schedules["split"]
    assert ivr.is_open(sched, at("UTC", 2026, 3, 2, 11, 59))
    assert not ivr.is_open(sched, at("UTC", 2026, 3, 2, 13, 0))
    assert ivr.is_open(sched, at("UTC", 2026, 3, 2, 14, 0))
    assert not ivr.is_open(sched, at("UTC", 2026, 3, 3, 10, 0))  # Tuesday has no range


def test_nested_hours_actions():
    """An hours action inside an hours action resolves both and records both decisions."""
    cfg = cfg_with(schedules={"day": {"timezone": "UTC", "weekly": {"mon": ["08:00-20:00"]}},
                              "morning": {"timezone": "UTC", "weekly": {"mon": ["08:00-12:00"]}}},
                   trunks={"pstn": {"match": ["127.0.0.2"], "dids": {"5551000": {"hours": {
                       "schedule": "day",
                       "open": {"hours": {"schedule": "morning", "open": {"queue": "sales"},
                                          "closed": {"queue": "support"}}},
                       "closed": {"hangup": ["goodbye"]}}}}}})
    action = cfg.trunks["pstn"].dids["5551000"]
    assert ivr.start(cfg, action, at("UTC", 2026, 3, 2, 9, 0))[1] == Route(
        ("open", "open", "queue:sales"), queue="sales")
    assert ivr.start(cfg, action, at("UTC", 2026, 3, 2, 15, 0))[1] == Route(
        ("open", "closed", "queue:support"), queue="support")
    assert ivr.start(cfg, action, at("UTC", 2026, 3, 2, 21, 0))[1] == Route(("closed", "hangup"), hangup=("goodbye",))


def test_too_deep_hours_nesting_raises_ivr_loop():
    """More than MAX_HOPS nested hours actions raise IvrLoop instead of spinning."""
    action: dict = {"queue": "sales"}
    for _ in range(ivr.MAX_HOPS + 1):
        action = {"hours": {"schedule": "always", "open": action, "closed": {"queue": "sales"}}}
    cfg = cfg_with(schedules={"always": {"timezone": "UTC", "weekly": {
        d: ["00:00-24:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}}},
        trunks={"pstn": {"match": ["127.0.0.2"], "dids": {"5551000": action}}})
    with pytest.raises(ivr.IvrLoop):
        ivr.start(cfg, cfg.trunks["pstn"].dids["5551000"], at("UTC", 2026, 3, 2, 9, 0))


def test_hours_in_a_menu_option():
    """A menu option may itself be an hours action, resolved at key-press time."""
    cfg = cfg_with(schedules={"day": {"timezone": "UTC", "weekly": {"mon": ["08:00-20:00"]}}},
                   menus={"main": {"prompt": ["welcome"], "options": {"1": {"hours": {
                       "schedule": "day", "open": {"queue": "sales"}, "closed": {"dial": "2900"}}}}}})
    state, _ = ivr.start(cfg, Action(menu="main"), 0)
    assert ivr.press(cfg, state, "1", at("UTC", 2026, 3, 2, 21, 0))[1] == Route(
        ("main", "1", "closed", "dial:2900"), dial="2900")
    assert ivr.press(cfg, state, "1", at("UTC", 2026, 3, 2, 9, 0))[1] == Route(
        ("main", "1", "open", "queue:sales"), queue="sales")


def test_hangup_action_without_prompts():
    """A hangup action with an empty prompt list routes to hangup with no prompts."""
    assert ivr.start(SHIPPED, Action(hangup=()), NOW) == (None, Route(("hangup",), hangup=()))
