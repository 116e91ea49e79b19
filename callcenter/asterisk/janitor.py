"""Ends the stand-in channels Asterisk sometimes leaves behind.

When ``Bridge()`` pulls a channel into a bridge, Asterisk moves it through a ``Surrogate/`` copy
(``ast_channel_yank``); under load (measured: from ~150 concurrent callers, 1–5 per 1,000 calls)
a copy can stay in the dialplan for ever, Down, holding the moved channel's variables. Such a
channel is never a party to any call, so every sweep lists the channels and hangs up each
``Surrogate/…`` or ``…<ZOMBIE>`` one that was already there at the previous sweep (a move in
progress lasts milliseconds).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import structlog

from callcenter.asterisk.ami_client import AmiError, NotConnected
from callcenter.asterisk.ami_events import is_stand_in

__all__ = ["StandInJanitor"]

log = structlog.get_logger("callcenter.asterisk")


class StandInJanitor:
    def __init__(self, ami: Any, on_removed: Callable[[int], None] = lambda n: None) -> None:
        self.ami = ami
        self.on_removed = on_removed
        self.seen: set[str] = set()  # stand-ins present at the last sweep (bounded by what Asterisk has)

    async def sweep(self) -> int:
        """One pass; returns how many stand-ins were hung up."""
        try:
            chans = await self.ami.list_action("CoreShowChannels")
        except (AmiError, NotConnected, asyncio.TimeoutError):
            return 0
        now = {m.get("Channel") for m in chans if is_stand_in(m.get("Channel"))}
        stale, self.seen = now & self.seen, now - self.seen
        removed = 0
        for name in sorted(stale):
            try:
                await self.ami.action("Hangup", {"Channel": name, "Cause": "16"})
            except (AmiError, NotConnected, asyncio.TimeoutError) as e:
                log.warning("asterisk.stand_in_hangup_failed", channel=name[:80], error=str(e))
                continue
            removed += 1
            log.warning("asterisk.stand_in_removed", channel=name[:80])
        if removed:
            self.on_removed(removed)
        return removed
