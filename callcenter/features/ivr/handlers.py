"""FastAGI handlers of the IVR: a call comes in on a DID, runs its menus, then queue / dial / hang up."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import structlog

from callcenter import events as ev
from callcenter.asterisk import contract as cc
from callcenter.asterisk.agi_server import AgiSession, ChannelGone
from callcenter.asterisk.prompts import play
from callcenter.features.acd import model as acd
from callcenter.features.acd.service import AcdService, encode_skills
from callcenter.features.ivr import model as ivr

__all__ = ["IvrHandlers", "handing_over_rings"]

log = structlog.get_logger("callcenter.ivr")
CALL_ID = re.compile(r"^[0-9a-f]{16}$")
T = TypeVar("T")


async def handing_over_rings(acd_service: AcdService, s: AgiSession, call_id: str,
                             work: Callable[[], Awaitable[T]]) -> T:
    """Run ``work`` with the caller inside this AGI session (``AcdService.agi_begin``/``agi_end``): a
    ring decided meanwhile is not redirected but handed to the dialplan here (``CC_OFFER``,
    ``CC_NEXT=offer``), which then goes to cc-offer by itself (no Redirect in the middle of an AGI)."""
    acd_service.agi_begin(call_id)
    try:
        result = await work()
    finally:
        ring = acd_service.agi_end(call_id)
    if ring is not None:
        await s.set_var(cc.OFFER, ring)
        await s.set_var(cc.NEXT, "offer")
    return result


class IvrHandlers:
    def __init__(self, cfg: Callable[[], object], acd_service: AcdService, bus: ev.Bus, node: str = "local", *,
                 identify: Callable[[str, str, str, str, float], Awaitable[Any]] | None = None,
                 repeat: Callable[[str, str, str, float], Awaitable[object]] | None = None) -> None:
        """``identify(call_id, queue, number, did, entered)``: the customer lookup (features.crm) at queue
        entry, giving what steers the call (``.apply(CallQueued)``) or None. ``repeat(call_id, queue,
        number, entered)``: the repeat-caller check (features.repeat), bounded in time."""
        self._cfg = cfg
        self.acd = acd_service
        self.bus = bus
        self.node = node
        self.identify = identify
        self.repeat = repeat

    def routes(self) -> dict[str, Callable[[AgiSession], object]]:
        return {"ivr": self.agi_ivr, "fallback": self.agi_fallback}

    async def agi_ivr(self, s: AgiSession) -> None:
        """Inbound call: answer, run the DID's menu, then queue / dial / hang up."""
        cfg = self._cfg()
        did = s.env.args[0] if s.env.args else ""
        action = next((t.dids[did] for t in cfg.trunks.values() if did in t.dids), None)
        if action is None:
            log.warning("ivr.unknown_did", did=did[:32])
            await s.cmd("HANGUP")
            return
        call_id = uuid.uuid4().hex[:16]
        structlog.contextvars.bind_contextvars(call_id=call_id)
        env = s.env.values
        self.bus.publish(ev.CallStarted(call_id, s.uniqueid, s.channel, env.get("agi_callerid", ""),
                                        env.get("agi_calleridname", ""), did, time.time(), self.node))
        await s.set_var(cc.CALL_ID, call_id)
        await s.set_var(cc.ROLE, cc.ROLE_CALLER)
        log.info("call.started", call_id=call_id, did=did)
        try:
            await s.cmd("ANSWER")
            await self.run_action(s, call_id, action)
        except ChannelGone:
            self.bus.publish(ev.CallEnded(call_id, "abandoned-ivr", time.time()))
            raise

    async def agi_fallback(self, s: AgiSession) -> None:
        """Max wait reached: the queue's fallback action (menu, another queue, dial, hang-up)."""
        cfg = self._cfg()
        call_id = await s.get_var(cc.CALL_ID)
        queue = await s.get_var(cc.QUEUE)
        if queue not in cfg.queues or not CALL_ID.match(call_id):
            await s.cmd("HANGUP")
            return
        structlog.contextvars.bind_contextvars(call_id=call_id, queue=queue)
        await self.run_action(s, call_id, cfg.queues[queue].fallback, ("fallback:" + queue,))

    async def _menu_input(self, s: AgiSession, step: ivr.Play) -> str | None:
        digit = await play(s, step.prompts)
        if digit is None:
            r = await s.cmd("WAIT FOR DIGIT", int(step.timeout_s * 1000))
            if r.value > 0:
                digit = chr(r.value)
        return digit

    async def run_action(self, s: AgiSession, call_id: str, action: object, path: tuple[str, ...] = ()) -> None:
        """Run an action to its end. A queue that refuses the caller (full, nobody staffed) hands it its
        fallback here; fallback cycles are refused when the config loads, so this ends."""
        while True:
            cfg = self._cfg()
            state, step = ivr.start(cfg, action, time.time())
            while isinstance(step, ivr.Play):
                assert state is not None
                self.bus.publish(ev.CallPath(call_id, path + state.path))
                log.info("ivr.menu", call_id=call_id, menu=state.menu, retry=state.retries)
                digit = await self._menu_input(s, step)
                state, step = ivr.press(cfg, state, digit, time.time())
            step_path = path + step.path
            self.bus.publish(ev.CallPath(call_id, step_path))
            if step.queue is not None:
                refused = await self._queue(s, call_id, step)
                if refused is None:
                    return
                await s.set_var(cc.NEXT, "")  # full, or nobody to answer: the queue's fallback, right here
                action, path = cfg.queues[step.queue].fallback, step_path + (f"{refused.reason}:{step.queue}",)
                continue
            if step.dial is not None:
                await s.set_var(cc.TARGET, step.dial)
                await s.set_var(cc.NEXT, "dial")
                self.bus.publish(ev.CallEnded(call_id, "dialled", time.time()))
                return
            await s.set_var(cc.NEXT, "hangup")
            fell_back = any(p.startswith(("fallback:", "full:", "empty:")) for p in path)
            outcome = "fallback" if fell_back else "ivr-failure" if "failure" in step_path else "ivr-hangup"
            self.bus.publish(ev.CallEnded(call_id, outcome, time.time()))
            await play(s, step.hangup or (), escape="")
            await s.cmd("HANGUP")
            return

    async def _queue(self, s: AgiSession, call_id: str, step: ivr.Route) -> acd.Fallback | None:
        q = self._cfg().queues[step.queue]
        now = time.time()  # each queue counts its own wait (max wait, position) from entry
        name, num = s.env.values.get("agi_calleridname", ""), s.env.values.get("agi_callerid", "")
        event = acd.CallQueued(call_id, step.queue, s.channel, num, name, now, step.priority, step.skills,
                               node=self.node)
        if self.identify is not None and self._cfg().crm.lookup is not None:  # type: ignore[attr-defined]
            # who is calling (bounded by the lookup's timeout): VIP, language, account manager
            found = await self.identify(call_id, step.queue, num, await s.get_var(cc.DID), now)
            if found is not None:
                event = found.apply(event)
        if self.repeat is not None and q.repeat_window_s:  # flagged before the screen pop can be read
            await self.repeat(call_id, step.queue, num, now)
        for k, val in ((cc.QUEUE, step.queue), (cc.ENTERED, f"{now:.3f}"), (cc.SKILLS, encode_skills(event.skills)),
                       (cc.PRIORITY, str(event.priority)), (cc.MOH, q.moh_class), (cc.HOOK, str(q.hook_interval_s)),
                       *(((cc.SURVEY, "1"),) if q.survey is not None else ()), (cc.NEXT, "queue")):
            await s.set_var(k, val)
        self.bus.publish(ev.CallQueued(call_id, step.queue, now))
        log.info("call.queued", call_id=call_id, queue=step.queue, priority=event.priority,
                 preferred=event.preferred)

        async def enqueue() -> list[acd.Command]:
            return self.acd.submit(event)

        cmds = await handing_over_rings(self.acd, s, call_id, enqueue)  # an agent free now: rung from here
        return next((c for c in cmds if isinstance(c, acd.Fallback) and c.call_id == call_id), None)
