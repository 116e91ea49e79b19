"""The pure model of webhook retries and ordering: back-off with full jitter, dead letters, one attempt per
(endpoint, key) at a time and in order; a 10-minute outage simulated on an injected clock."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from callcenter.features.webhooks.model import MIN_DELAY_S, Head, after_failure, backoff, plan

BASE, CAP = 1.0, 600.0


@given(attempts=st.integers(1, 200), rand=st.floats(0, 1, exclude_max=True))
def test_backoff_stays_between_the_floor_and_the_capped_exponential(attempts: int, rand: float) -> None:
    """Every wait is at least MIN_DELAY_S and at most min(cap, base * 2**(attempts-1))."""
    d = backoff(attempts, rand, base_s=BASE, cap_s=CAP)
    assert MIN_DELAY_S <= d <= max(MIN_DELAY_S, min(CAP, BASE * 2 ** (attempts - 1)))


def test_backoff_jitter_spreads_over_the_whole_window() -> None:
    """Full jitter: with rand near 1 the 5th wait is near 16 s, with rand 0.5 half of it."""
    assert backoff(5, 0.999, base_s=BASE, cap_s=CAP) > 15.9
    assert backoff(5, 0.5, base_s=BASE, cap_s=CAP) == 8.0
    assert backoff(30, 0.999, base_s=BASE, cap_s=CAP) < CAP


@given(attempts=st.integers(1, 50), since=st.floats(0, 1e6), age=st.floats(1, 86400), elapsed=st.floats(0, 2e5),
       rand=st.floats(0, 1, exclude_max=True))
def test_a_retry_never_falls_after_the_deadline_and_dead_means_past_it(attempts: int, since: float, age: float,
                                                                        elapsed: float, rand: float) -> None:
    """after_failure: None exactly when now >= since + max_age; else a time in (now, deadline]."""
    now = since + elapsed
    nxt = after_failure(attempts, since, now, age, rand, base_s=BASE, cap_s=CAP)
    if now >= since + age:
        assert nxt is None
    else:
        assert nxt is not None and now < nxt <= since + age


def test_a_ten_minute_outage_is_ridden_out_on_an_injected_clock() -> None:
    """A receiver down for 600 s: the row is tried ~10-20 times, never dead, delivered within one capped wait
    of the recovery."""
    rng = random.Random(7)
    since = now = 1000.0
    attempts = 0
    while True:
        attempts += 1
        if now - since >= 600:  # the receiver is back
            break
        nxt = after_failure(attempts, since, now, 86400, rng.random(), base_s=BASE, cap_s=CAP)
        assert nxt is not None, "dead during a 10-minute outage"
        now = nxt
    assert now - since < 600 + CAP
    assert 5 <= attempts <= 40


def test_a_row_past_its_max_age_becomes_a_dead_letter() -> None:
    """With max_age 60 s, failures go on until 60 s and the one at the deadline is final."""
    rng = random.Random(1)
    since = now = 0.0
    attempts = 0
    while (nxt := after_failure(attempts + 1, since, now, 60, rng.random(), base_s=BASE, cap_s=CAP)) is not None:
        attempts += 1
        now = nxt
    assert now == 60.0 and attempts >= 5


heads_st = st.lists(st.tuples(st.integers(0, 300), st.sampled_from("ab"), st.sampled_from("wxyz"),
                              st.floats(0, 20)), max_size=40, unique_by=lambda t: t[0])


@settings(max_examples=300)
@given(rows=heads_st, in_flight=st.sets(st.tuples(st.sampled_from("ab"), st.sampled_from("wxyz"))),
       limit=st.integers(1, 3), now=st.floats(0, 20))
def test_plan_sends_only_heads_one_per_key_within_limits(rows, in_flight, limit, now) -> None:
    """Due rows: the lowest n of their key, due, key not in flight, at most `limit` per endpoint; the next due
    time is the earliest not-yet-due head."""
    heads = [Head(n, ep, key, at) for n, ep, key, at in rows]
    due, next_due = plan(heads, in_flight, {}, {"a": limit, "b": limit}, now)
    lowest = {}
    for h in heads:
        k = (h.endpoint, h.key)
        if k not in lowest or h.n < lowest[k].n:
            lowest[k] = h
    assert len({(h.endpoint, h.key) for h in due}) == len(due)
    for h in due:
        assert lowest[(h.endpoint, h.key)] == h and h.next_at <= now and (h.endpoint, h.key) not in in_flight
    for ep in "ab":
        assert sum(1 for h in due if h.endpoint == ep) <= limit
    waiting = [h.next_at for k, h in lowest.items() if k not in in_flight and h.next_at > now]
    assert next_due == (min(waiting) if waiting else None)
    assert [h.n for h in due] == sorted(h.n for h in due)


def test_plan_skips_endpoints_without_a_limit() -> None:
    """A deleted or disabled endpoint (no limit) is not attempted."""
    due, nxt = plan([Head(1, "gone", "k", 0.0)], set(), {}, {"a": 4}, 10.0)
    assert due == [] and nxt is None


@settings(max_examples=100, deadline=None)
@given(keys=st.lists(st.sampled_from(["c1", "c2", "c3", "agent:x"]), min_size=1, max_size=30),
       seed=st.integers(0, 10_000), limit=st.integers(1, 3))
def test_simulated_delivery_keeps_each_keys_order_under_random_failures(keys, seed, limit) -> None:
    """A simulated worker (plan + attempts that fail at random, finishing in random order) delivers every row,
    and each key's rows reach the receiver in the order they were written."""
    rng = random.Random(seed)
    pending = {n: Head(n, "a", k, 0.0) for n, k in enumerate(keys)}
    attempts = dict.fromkeys(pending, 0)
    in_flight: dict[tuple[str, str], Head] = {}
    delivered: list[Head] = []
    now = 0.0
    for _ in range(10_000):
        if not pending:
            break
        due, nxt = plan(list(pending.values()), set(in_flight), {"a": len(in_flight)}, {"a": limit}, now)
        for h in due:
            in_flight[(h.endpoint, h.key)] = h
        if in_flight and (rng.random() < 0.7 or nxt is None):
            k = rng.choice(sorted(in_flight))  # attempts end in any order
            h = in_flight.pop(k)
            attempts[h.n] += 1
            if rng.random() < 0.6:
                delivered.append(h)
                del pending[h.n]
            else:
                when = after_failure(attempts[h.n], 0.0, now, 1e9, rng.random(), base_s=0.1, cap_s=2)
                assert when is not None
                pending[h.n] = Head(h.n, h.endpoint, h.key, when)
        elif nxt is not None:
            now = nxt
    assert not pending
    for key in set(keys):
        ns = [h.n for h in delivered if h.key == key]
        assert ns == sorted(ns)
