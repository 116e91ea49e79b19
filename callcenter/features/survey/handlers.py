"""FastAGI side of the after-call survey (cc-survey): the agent has hung up and the caller's leg
stayed up (Dial's g, only for queues with a survey). One key from the queue's range is the rating;
it is published as ``CsatRated`` (the journal stores it with the call, the metrics count it)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from callcenter import events as ev
from callcenter.asterisk import contract as cc
from callcenter.asterisk.agi_server import AgiSession
from callcenter.asterisk.prompts import play
from callcenter.features.acd.service import AcdService
from callcenter.features.ivr.handlers import CALL_ID, handing_over_rings

__all__ = ["SurveyHandlers", "rating"]

log = structlog.get_logger("callcenter.survey")


def rating(key: str | None, lowest: int, highest: int) -> int | None:
    """The rating a key gives, or None (no key, or one outside ``lowest``..``highest``)."""
    if key is None or len(key) != 1 or key not in "0123456789":  # isdigit() also takes '¹', '٣' ...
        return None
    n = int(key)
    return n if lowest <= n <= highest else None


class SurveyHandlers:
    """``lookup_call`` reads the call's journal record off the event loop (queue and agent of the call)."""

    def __init__(self, cfg: Callable[[], Any], acd_service: AcdService, bus: ev.Bus, *,
                 lookup_call: Callable[[str], Awaitable[Any]]) -> None:
        self._cfg = cfg
        self.acd = acd_service
        self.bus = bus
        self.lookup_call = lookup_call

    def routes(self) -> dict[str, Callable[[AgiSession], object]]:
        return {"survey": self.agi_survey}

    async def agi_survey(self, s: AgiSession) -> None:
        """An answered Dial() of a survey queue ended. A claim the core refused (the caller is still
        waiting, unanswered) goes back to the queue; a conversation that took place gets the survey."""
        call_id = await s.get_var(cc.CALL_ID)
        c = self.acd.state.calls.get(call_id)
        if c is not None and c.answered_at is None:  # never connected: back to waiting, place kept
            await handing_over_rings(self.acd, s, call_id, self._stay)
            return
        await s.set_var(cc.NEXT, "hangup")
        rec = await self.lookup_call(call_id) if CALL_ID.match(call_id) else None
        cfg = self._cfg()
        q = cfg.queues.get(rec.queue) if rec is not None and rec.queue else None
        conf = q.survey if q is not None else None
        if rec is None or rec.answered_at is None or conf is None:
            log.info("survey.skipped", call_id=call_id[:32], known=rec is not None)
            return
        structlog.contextvars.bind_contextvars(call_id=call_id, queue=rec.queue)
        log.info("survey.asked", call_id=call_id, queue=rec.queue, agent=rec.agent)
        for attempt in range(conf.retries + 1):
            key = await play(s, conf.prompt, escape="0123456789*#")
            if key is None:
                r = await s.cmd("WAIT FOR DIGIT", int(conf.timeout_s * 1000))
                key = chr(r.value) if r.value > 0 else None
            n = rating(key, conf.lowest, conf.highest)
            if n is not None:
                self.bus.publish(ev.CsatRated(call_id, rec.queue, rec.agent, n, time.time()))
                log.info("survey.rated", call_id=call_id, queue=rec.queue, agent=rec.agent, rating=n)
                await play(s, conf.thanks, escape="")
                return
            log.info("survey.no_rating", call_id=call_id, attempt=attempt + 1, pressed=key is not None)
            if key is not None and attempt < conf.retries:
                await play(s, conf.invalid, escape="")

    @staticmethod
    async def _stay() -> None:
        """Nothing to do: the dialplan goes back to waiting (CC_NEXT=queue, set in cc-offer)."""
