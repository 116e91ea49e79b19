"""Queue fallback / overflow cycles are refused when the config loads, naming the key path (issue 12, fault 5)."""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from callcenter.config import Action, ConfigError, parse
from callcenter.features.acd.schema import queue_cycles

ROOT = Path(__file__).resolve().parents[2]
RAW = yaml.safe_load((ROOT / "config" / "callcenter.yaml").read_text())
HOURS_OPEN = {"schedule": "office", "open": {"menu": "main"}, "closed": {"hangup": ["goodbye"]}}


def with_queues(**queues) -> dict:
    data = copy.deepcopy(RAW)
    for name, extra in queues.items():
        data["queues"][name] = {"members": ["alice"], "fallback": {"hangup": ["goodbye"]}, **extra}
    return data


def problems(data: dict) -> list[str]:
    with pytest.raises(ConfigError) as ei:
        parse(data)
    return ei.value.problems


def test_direct_fallback_cycle():
    """a falls back to b, b to a: one problem, at the key of a's move."""
    data = with_queues(a={"fallback": {"queue": "b"}}, b={"fallback": {"queue": "a"}})
    assert problems(data) == ["queues.a.fallback.queue: queue cycle a -> b -> a"]


def test_three_queue_cycle():
    """a -> b -> c -> a through fallbacks is named with the whole loop."""
    data = with_queues(a={"fallback": {"queue": "b"}}, b={"fallback": {"queue": "c"}}, c={"fallback": {"queue": "a"}})
    assert problems(data) == ["queues.a.fallback.queue: queue cycle a -> b -> c -> a"]


def test_cycle_through_business_hours_either_branch():
    """A fallback nested in hours counts, on the open and on the closed branch, at its nested path."""
    closed = with_queues(a={"fallback": {"hours": {"schedule": "office", "open": {"hangup": ["goodbye"]},
                                                   "closed": {"queue": "b"}}}},
                         b={"fallback": {"queue": "a"}})
    assert problems(closed) == ["queues.a.fallback.hours.closed.queue: queue cycle a -> b -> a"]
    nested = with_queues(a={"fallback": {"queue": "b"}},
                         b={"fallback": {"hours": {"schedule": "office", "closed": {"hangup": ["goodbye"]},
                                                   "open": {"hours": {**HOURS_OPEN, "open": {"queue": "a"}}}}}})
    assert problems(nested) == ["queues.a.fallback.queue: queue cycle a -> b -> a"]


def test_self_cycle_through_hours():
    """A queue whose business-hours fallback leads back to itself is a cycle of one."""
    data = with_queues(a={"fallback": {"hours": {**HOURS_OPEN, "open": {"queue": "a"}}}})
    assert problems(data) == ["queues.a.fallback.hours.open.queue: queue cycle a -> a"]


def test_cycle_via_overflow():
    """Overflow moves count: a overflows to b, b falls back to a; and two queues overflowing to each other."""
    mixed = with_queues(a={"overflow": {"queue": "b", "after_s": 30}}, b={"fallback": {"queue": "a"}})
    assert problems(mixed) == ["queues.a.overflow.queue: queue cycle a -> b -> a"]
    both = with_queues(a={"overflow": {"queue": "b", "after_s": 30}},
                       b={"overflow": {"queue": "a", "expected_wait_s": 60}})
    assert problems(both) == ["queues.a.overflow.queue: queue cycle a -> b -> a"]


def test_cycle_joined_from_the_shipped_queues():
    """A loop reached from an acyclic chain is reported once, starting where the loop starts."""
    data = with_queues(a={"fallback": {"queue": "b"}}, b={"fallback": {"queue": "c"}}, c={"fallback": {"queue": "b"}})
    assert problems(data) == ["queues.b.fallback.queue: queue cycle b -> c -> b"]


def test_direct_self_loops_keep_their_own_message():
    """A queue falling back or overflowing straight to itself keeps the existing message, not a second one."""
    data = with_queues(a={"fallback": {"queue": "a"}, "overflow": {"queue": "a", "after_s": 5}})
    assert sorted(problems(data)) == ["queues.a.fallback.queue: a queue cannot fall back to itself",
                                      "queues.a.overflow.queue: a queue cannot overflow to itself"]


def test_valid_chain_accepted():
    """A chain a -> b -> c (fallbacks, hours and overflow) without a loop back loads."""
    data = with_queues(a={"fallback": {"hours": {**HOURS_OPEN, "open": {"queue": "b"}, "closed": {"queue": "c"}}},
                          "overflow": {"queue": "b", "after_s": 30}},
                       b={"fallback": {"queue": "c"}, "overflow": {"queue": "c", "after_s": 30}},
                       c={"fallback": {"hangup": ["goodbye"]}})
    cfg = parse(data)
    assert cfg.queues["b"].fallback.queue == "c"  # and the shipped support -> sales fallback is no cycle


def test_fallback_into_a_menu_is_not_a_cycle():
    """A fallback into a menu that offers the same queue again is the caller's choice, not a loop."""
    data = copy.deepcopy(RAW)
    data["menus"]["retry"] = {"prompt": ["vm-press", "digits/1"], "options": {"1": {"queue": "sales"}},
                              "on_failure": {"queue": "sales"}}
    data["queues"]["sales"]["fallback"] = {"menu": "retry"}
    cfg = parse(data)
    assert cfg.queues["sales"].fallback.menu == "retry"


def test_unknown_queue_is_not_reported_as_a_cycle():
    """A move to an undefined queue is the reference check's problem only."""
    data = with_queues(a={"fallback": {"queue": "ghost"}})
    assert problems(data) == ["queues.a.fallback.queue: unknown queue 'ghost'"]


def test_many_queues_in_one_long_chain_stay_linear():
    """A 5,000-queue chain closing into a loop is found without recursion limits."""
    sales = parse(with_queues()).queues["sales"]
    chain = {f"q{i}": replace(sales, fallback=Action(queue=f"q{i + 1}")) for i in range(5000)}
    chain["q5000"] = replace(sales, fallback=Action(queue="q2500"))
    (p,) = queue_cycles(chain)
    assert p.startswith("queues.q2500.fallback.queue: queue cycle q2500 -> q2501 ->") and p.endswith("q5000 -> q2500")
