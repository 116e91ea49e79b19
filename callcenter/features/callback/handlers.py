"""FastAGI side of callbacks: the key pressed while waiting, the offer's prompt, and the dial-back
once the agent is on the line. Numbers reach a dial string only through ``dial_back`` (the
trunk's allow-list): a spoofed caller ID outside it is never dialled."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from callcenter import events as ev
from callcenter.features.trunks.schema import outbound_caller_id
from callcenter.asterisk import contract as cc
from callcenter.asterisk.agi_server import AgiSession
from callcenter.asterisk.prompts import play
from callcenter.features.acd import model as acd
from callcenter.features.acd.service import AcdService
from callcenter.features.cards.dial import dials_out, trunk_dial
from callcenter.features.ivr.handlers import handing_over_rings

__all__ = ["CallbackHandlers"]

log = structlog.get_logger("callcenter.callback")


class CallbackHandlers:
    """``dial_back(number, trunk)`` returns the digits to dial or None (allow-list refused)."""

    def __init__(self, cfg: Callable[[], Any], acd_service: AcdService, bus: ev.Bus, *,
                 lookup_call: Callable[[str], Awaitable[Any]],
                 dial_back: Callable[[str, str], str | None]) -> None:
        self._cfg = cfg
        self.acd = acd_service
        self.bus = bus
        self.lookup_call = lookup_call
        self.dial_back = dial_back

    def routes(self) -> dict[str, Callable[[AgiSession], object]]:
        return {"queue-digit": self.agi_queue_digit}

    def trunk_of(self, did: str) -> str | None:
        """The trunk a DID came in on, if it can dial out."""
        cfg = self._cfg()
        return next((n for n, t in cfg.trunks.items() if did in t.dids and dials_out(cfg, n)), None)

    async def _trunk_for(self, c: acd.Call) -> str | None:
        cb = self._cfg().queues[c.queue].callback
        if cb is not None and cb.trunk:
            return cb.trunk
        rec = await self.lookup_call(c.call_id)
        return self.trunk_of(rec.did if rec else "")

    async def dial_back_for(self, c: acd.Call) -> tuple[str, str] | None:
        """(number, trunk) to call ``c``'s caller back on, or None: no trunk that dials out, or the
        trunk's allow-list refuses the caller ID (also used by a message left while waiting)."""
        trunk = await self._trunk_for(c)
        number = self.dial_back(c.caller_num, trunk) if trunk else None
        return (number, trunk) if number is not None and trunk is not None else None

    async def agi_queue_digit(self, s: AgiSession) -> None:
        """A digit pressed while waiting (WaitExten in cc-wait): the queue's callback digit takes a callback.
        A ring decided meanwhile is handed over when this AGI returns (never a Redirect in the middle)."""
        call_id = await s.get_var(cc.CALL_ID)
        await handing_over_rings(self.acd, s, call_id, lambda: self._queue_digit(s, call_id))

    async def _queue_digit(self, s: AgiSession, call_id: str) -> None:
        cfg = self._cfg()
        digit = s.env.args[0] if s.env.args else ""
        c = self.acd.state.calls.get(call_id)
        if c is None or c.agent is not None or c.callback:
            return
        structlog.contextvars.bind_contextvars(call_id=call_id, queue=c.queue)
        cb = cfg.queues[c.queue].callback
        if cb is None or digit != cb.digit:
            log.info("queue.digit_ignored", call_id=call_id, digit=digit[:1])
            return
        trunk = await self._trunk_for(c)
        number = self.dial_back(c.caller_num, trunk) if trunk else None
        if number is None or trunk is None or time.time() - c.entered_at < cb.offer_after_s:
            log.warning("callback.refused", call_id=call_id, allowed_number=number is not None, trunk=trunk)
            await play(s, cb.unavailable, escape="")  # "a callback is not possible"; they stay queued
            return
        self.acd.submit(acd.CallbackRequested(call_id, number, trunk))
        if self.acd.state.calls.get(call_id, c).callback != number:
            return  # offered to an agent meanwhile: stay
        self.bus.publish(ev.CallOutcome(call_id, "callback"))
        log.info("callback.requested", call_id=call_id, queue=c.queue, position=self.acd.state.position(call_id))
        await play(s, cb.confirm, escape="")
        await s.cmd("HANGUP")

    async def prompt(self, s: AgiSession, c: acd.Call) -> None:
        """At a queue hook: the callback offer, once it stands and only to a number we would dial."""
        cb = self._cfg().queues[c.queue].callback
        if cb is None or not cb.prompt or time.time() - c.entered_at < cb.offer_after_s:
            return
        trunk = await self._trunk_for(c)
        if trunk is None or self.dial_back(c.caller_num, trunk) is None:
            return
        await play(s, cb.prompt, escape="", stop=lambda: self.acd.offered(c.call_id))

    async def dial(self, s: AgiSession, c: acd.Call) -> None:
        """The agent leg has answered a callback: dial the customer through the trunk."""
        cfg = self._cfg()
        cb = cfg.queues[c.queue].callback
        number = self.dial_back(c.callback, c.trunk) if c.trunk in cfg.trunks else None
        if number is None or cb is None:
            log.error("callback.bad_record", call_id=c.call_id)  # never dial what the allow-list refuses
            self.acd.submit(acd.CallbackDialed(c.call_id, c.agent or "", "CHANUNAVAIL"))
            await s.set_var(cc.CLAIM, "no")
            return
        rec = await self.lookup_call(c.call_id)
        # present the number they called, not their own; else the trunk's caller_id
        cid = outbound_caller_id(cfg.trunks[c.trunk], rec.did if rec is not None else "")
        if cid:
            await s.set_var("CALLERID(num)", cid)
        await s.set_var(cc.DIAL, trunk_dial(cfg, c.trunk, number))
        await s.set_var(cc.RING_S, str(int(cb.ring_s)))
        await s.set_var(cc.CLAIM, "callback")
        log.info("callback.dialling", call_id=c.call_id, agent=c.agent, attempt=c.attempts + 1, trunk=c.trunk)
