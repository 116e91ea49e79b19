"""Flag a repeat caller at queue entry: one indexed journal read on the database thread, bounded
in time (a slow or locked database only leaves the call unflagged), then ``CallRepeat`` on the bus
(the journal writes ``repeat_of``; the screen pop and the statistics read it from there)."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import Callable
from typing import Any

import structlog

from callcenter import events as ev

__all__ = ["RepeatService", "previous_call", "LOOKUP_TIMEOUT_S"]

log = structlog.get_logger("callcenter.repeat")
LOOKUP_TIMEOUT_S = 0.5
# Only a plain number identifies a caller (not "anonymous", "unknown", nor an empty caller ID).
NUMBER = re.compile(r"\+?[0-9]{3,32}")


def previous_call(db: sqlite3.Connection, number: str, queue: str, since: float, exclude: str) -> str | None:
    """The latest earlier call from ``number`` that entered ``queue`` at or after ``since`` (index
    ``calls_caller``), or None. Blocking: run it on the database thread."""
    row = db.execute("SELECT call_id FROM calls WHERE caller_num = ? AND entered_at >= ? AND queue = ?"
                     " AND call_id != ? ORDER BY entered_at DESC LIMIT 1",
                     (number, since, queue, exclude)).fetchone()
    return None if row is None else str(row[0])


class RepeatService:
    """``run(fn, *args)`` runs ``fn`` on the database thread with the journal's connection first."""

    def __init__(self, cfg: Callable[[], Any], run: Callable[..., Any], bus: ev.Bus, *,
                 timeout_s: float = LOOKUP_TIMEOUT_S) -> None:
        self._cfg = cfg
        self._run = run
        self.bus = bus
        self.timeout_s = timeout_s

    async def check(self, call_id: str, queue: str, number: str, now: float) -> str | None:
        """The earlier call this one repeats (published as ``CallRepeat``), or None: not a repeat, the
        queue has no window, the caller ID is no number, or the read did not answer in time."""
        q = self._cfg().queues.get(queue)
        if q is None or not q.repeat_window_s or not NUMBER.fullmatch(number):
            return None
        try:
            async with asyncio.timeout(self.timeout_s):
                prev = await self._run(previous_call, number, queue, now - q.repeat_window_s, call_id)
        except (TimeoutError, sqlite3.Error) as e:
            log.warning("repeat.lookup_failed", call_id=call_id, error=repr(e)[:120])
            return None
        if prev is not None:
            self.bus.publish(ev.CallRepeat(call_id, queue, prev))
            log.info("call.repeat", call_id=call_id, queue=queue, previous=prev)
        return prev
