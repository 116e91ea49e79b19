"""The task supervisor: essential deaths are fatal, shutdown is not, and a swallowed cancel cannot hang it."""

from __future__ import annotations

import asyncio

from callcenter.tasks import Supervisor


async def test_an_essential_task_that_raises_is_fatal_once() -> None:
    """A raising essential task calls on_fatal with its name and error; a one-off task's error does not."""
    fatal: list[tuple[str, str]] = []
    sup = Supervisor(lambda name, exc: fatal.append((name, repr(exc))))

    async def boom() -> None:
        raise RuntimeError("x")

    one_off = sup.spawn(boom(), "one-off")
    essential = sup.spawn(boom(), "loop", essential=True)
    await asyncio.wait({one_off, essential})
    await asyncio.sleep(0)
    assert fatal == [("loop", "RuntimeError('x')")] and sup.failed == ["loop"]


async def test_an_essential_loop_that_returns_is_fatal_too() -> None:
    """A loop meant to run for ever that returns is reported (a half-alive daemon is worse than none)."""
    fatal: list[str] = []
    sup = Supervisor(lambda name, exc: fatal.append(name))

    async def quits() -> None:
        return None

    await sup.spawn(quits(), "ami", essential=True)
    await asyncio.sleep(0)
    assert fatal == ["ami"]


async def test_close_cancels_even_a_task_that_swallows_one_cancel() -> None:
    """close() ends a task that ignored its first cancellation (as wait_for can), and nothing counts as failed."""
    fatal: list[str] = []
    sup = Supervisor(lambda name, exc: fatal.append(name))
    swallowed = []

    async def stubborn() -> None:
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if swallowed:
                    raise
                swallowed.append(1)  # the first cancel is lost

    t = sup.spawn(stubborn(), "dialer", essential=True)
    await asyncio.sleep(0)
    await asyncio.wait_for(sup.close(), 5)
    assert t.cancelled() and swallowed == [1] and fatal == [] and len(sup) == 0
