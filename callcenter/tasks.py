"""Supervised background tasks: one that dies unexpectedly is logged and stops the daemon.

A half-alive daemon (AMI reader gone, dialler stopped, FastAGI still answering) is worse than a
dead one systemd restarts, so :class:`Supervisor` treats every task it runs as essential unless
it is spawned as ``essential=False`` (a one-off action such as an Originate, whose failure is
logged and reported to the caller's own error handling).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import structlog

__all__ = ["Supervisor"]

log = structlog.get_logger("callcenter.tasks")


class Supervisor:
    """Owns background tasks; ``on_fatal`` is called (once) when an essential task dies."""

    def __init__(self, on_fatal: Callable[[str, BaseException | None], None]) -> None:
        self._tasks: dict[asyncio.Task[Any], tuple[str, bool]] = {}
        self._on_fatal = on_fatal
        self._closing = False
        self.failed: list[str] = []

    @property
    def running(self) -> int:
        return len(self._tasks)

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str, *, essential: bool = False) -> asyncio.Task[Any]:
        t = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks[t] = (name, essential)
        t.add_done_callback(self._done)
        return t

    def _done(self, t: asyncio.Task[Any]) -> None:
        name, essential = self._tasks.pop(t, (t.get_name(), False))
        if t.cancelled():
            if essential and not self._closing:
                self.failed.append(name)
                log.error("task.cancelled", task=name)
                self._on_fatal(name, None)
            return
        exc = t.exception()
        if exc is not None:
            log.error("task.failed", task=name, essential=essential, error=repr(exc), exc_info=exc)
            if essential and not self._closing:
                self.failed.append(name)
                self._on_fatal(name, exc)
        elif essential and not self._closing:  # a loop that should run for ever returned
            self.failed.append(name)
            log.error("task.exited", task=name)
            self._on_fatal(name, None)

    def alive(self, name: str) -> bool:
        return any(n == name and not t.done() for t, (n, _) in self._tasks.items())

    def __len__(self) -> int:
        return len(self._tasks)

    async def close(self) -> None:
        """Cancel everything (shutdown): nothing counts as a failure from here on."""
        self._closing = True
        pending = set(self._tasks)
        while pending:
            for t in pending:  # again each round: a task that swallowed a cancel gets another
                t.cancel()
            _, pending = await asyncio.wait(pending, timeout=1.0)
            for t in pending:
                log.warning("task.slow_to_cancel", task=self._tasks.get(t, (t.get_name(),))[0])
