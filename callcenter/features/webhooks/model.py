"""Retries and ordering, with no I/O and no clock of its own (every time is given).

**Retries.** A failed attempt (not 2xx, refused, timed out) is tried again after a back-off drawn
with *full jitter*: uniform in ``[0, min(cap, base * 2**(attempts-1))]`` (``rand`` in [0, 1) is
given), at least ``MIN_DELAY_S``. A row is retried until ``since + max_age_s`` (``since``: when it
was made, or when it was last replayed from the dead letters); the last attempt is made at that
deadline at the latest; a failure at or after it makes the row a dead letter.

**Ordering.** Rows share an ordering key (a call id; ``agent:<name>``; ``lead:<campaign>:<id>``).
Per (endpoint, key) only the oldest pending row (the *head*, lowest ``n``) may be attempted, and
only when no attempt of that key is in flight: the next event of a call waits for the previous
one's delivery or dead-lettering; heads of other keys go ahead, at most ``limit`` per endpoint at
once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = ["Head", "MIN_DELAY_S", "backoff", "after_failure", "plan"]

MIN_DELAY_S = 0.1  # full jitter may draw ~0: never hammer a failing receiver in a tight loop


@dataclass(frozen=True)
class Head:
    """The oldest pending row of one (endpoint, key)."""

    n: int
    endpoint: str
    key: str
    next_at: float


def backoff(attempts: int, rand: float, *, base_s: float, cap_s: float) -> float:
    """The wait after the ``attempts``-th failed attempt (1, 2, ...): full jitter, capped."""
    ceiling = min(cap_s, base_s * 2.0 ** min(max(attempts - 1, 0), 62))
    return max(MIN_DELAY_S, rand * ceiling)


def after_failure(attempts: int, since: float, now: float, max_age_s: float, rand: float, *, base_s: float,
                  cap_s: float) -> float | None:
    """When to try again after the ``attempts``-th failure at ``now``; None: a dead letter."""
    deadline = since + max_age_s
    if now >= deadline:
        return None
    return min(now + backoff(attempts, rand, base_s=base_s, cap_s=cap_s), deadline)


def plan(heads: Iterable[Head], in_flight: set[tuple[str, str]], busy: Mapping[str, int],
         limits: Mapping[str, int], now: float) -> tuple[list[Head], float | None]:
    """The heads to attempt now (oldest first), and when the next of the others falls due (None:
    nothing waits on time — only on an attempt in flight, or on new rows).

    ``heads`` may hold more than one row per key (the caller's read): only the lowest ``n`` counts.
    Endpoints missing from ``limits`` (deleted or disabled) are not attempted.
    """
    first: dict[tuple[str, str], Head] = {}
    for h in heads:
        k = (h.endpoint, h.key)
        if k not in first or h.n < first[k].n:
            first[k] = h
    used = dict(busy)
    due: list[Head] = []
    next_due: float | None = None
    for h in sorted(first.values(), key=lambda h: h.n):
        k = (h.endpoint, h.key)
        if k in in_flight or h.endpoint not in limits:
            continue
        if h.next_at > now:
            next_due = h.next_at if next_due is None else min(next_due, h.next_at)
            continue
        if used.get(h.endpoint, 0) >= limits[h.endpoint]:
            continue  # a slot frees when an attempt ends: that wakes the worker
        used[h.endpoint] = used.get(h.endpoint, 0) + 1
        due.append(h)
    return due, next_due
