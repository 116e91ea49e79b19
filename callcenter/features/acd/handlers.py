"""FastAGI handlers of queues and agents: the wait loop's hook, agent feature codes, the agent leg's
claim, and a dialled person joining its queue."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from callcenter import events as ev
from callcenter.asterisk import contract as cc
from callcenter.asterisk.agi_server import AgiSession
from callcenter.asterisk.prompts import play
from callcenter.config import Action
from callcenter.features.acd import model as acd
from callcenter.features.acd.service import AcdService, epoch
from callcenter.features.ivr.handlers import CALL_ID, IvrHandlers, handing_over_rings
from callcenter.features.stats.figures import expected_wait

__all__ = ["AcdHandlers"]

log = structlog.get_logger("callcenter.acd")


class AcdHandlers:
    """``lookup_call`` reads a journal record off the event loop; ``aht_of`` gives a queue's live AHT;
    ``on_connected`` runs right before an agent leg is bridged (recording); ``callback`` dials back."""

    def __init__(self, cfg: Callable[[], Any], acd_service: AcdService, bus: ev.Bus, ivr: IvrHandlers, *,
                 lookup_call: Callable[[str], Awaitable[Any]],
                 aht_of: Callable[[str], float | None],
                 on_connected: Callable[[AgiSession, acd.Call], Awaitable[None]],
                 dial_callback: Callable[[AgiSession, acd.Call], Awaitable[None]],
                 callback_prompt: Callable[[AgiSession, acd.Call], Awaitable[None]],
                 dialer: Callable[[], Any], node: str = "local") -> None:
        self._cfg = cfg
        self.acd = acd_service
        self.bus = bus
        self.ivr = ivr
        self.lookup_call = lookup_call
        self.aht_of = aht_of
        self.on_connected = on_connected
        self.dial_callback = dial_callback
        self.callback_prompt = callback_prompt
        self._dialer = dialer
        self.node = node

    def routes(self) -> dict[str, Callable[[AgiSession], object]]:
        return {"queue-hook": self.agi_queue_hook, "agent": self.agi_agent, "agent-claim": self.agi_agent_claim,
                "outbound-answered": self.agi_outbound_answered}

    # ------------------------------------------------------------------ the wait loop
    async def agi_queue_hook(self, s: AgiSession) -> None:
        """Called by the wait loop every ``hook_interval_s``: announcements; re-adopts a caller we lost.

        While it runs the caller is inside an AGI, where the daemon must not redirect it: a ring
        decided meanwhile stops the announcements and is handed over when the hook returns."""
        call_id = await s.get_var(cc.CALL_ID)
        await handing_over_rings(self.acd, s, call_id, lambda: self._queue_hook(s, call_id))

    async def _queue_hook(self, s: AgiSession, call_id: str) -> None:
        cfg = self._cfg()
        structlog.contextvars.bind_contextvars(call_id=call_id)
        st = self.acd.state
        c = st.calls.get(call_id)
        if c is None:
            if not st.synced:
                return  # just (re)started: the resync will adopt this caller; keep the music going
            queue = await s.get_var(cc.QUEUE)
            entered = await s.get_var(cc.ENTERED)
            rec = await self.lookup_call(call_id) if CALL_ID.match(call_id) else None
            if queue not in cfg.queues or rec is None or rec.answered_at or rec.ended_at:
                # Not ours, or a call we already connected or closed: it must not queue again.
                log.warning("call.unknown_in_queue", call_id=call_id[:32])
                await s.cmd("HANGUP")
                return
            at = epoch(entered) or time.time()
            log.info("call.readopted", call_id=call_id, queue=queue)
            self.acd.submit(acd.CallQueued(call_id, queue, s.channel, rec.caller_num, rec.caller_name, at,
                                           node=self.node))
            c = self.acd.state.calls.get(call_id)
            if c is None:
                return
        q = cfg.queues[c.queue]
        if c.agent is not None:
            return  # being connected right now: stay quiet
        offered = lambda: self.acd.offered(call_id)  # noqa: E731
        await play(s, q.announce, escape="", stop=offered)
        if offered():
            return
        pos = self.acd.state.position(call_id)
        wants_ewt = q.announce_holdtime or (q.overflow is not None and q.overflow.expected_wait_s is not None)
        if wants_ewt and pos is not None:
            staffed = self.acd.staffed(c.queue)
            ewt = expected_wait(pos, staffed, self.aht_of(c.queue))
            if q.overflow is not None and q.overflow.expected_wait_s is not None and ewt > q.overflow.expected_wait_s:
                self.acd.submit(acd.Overflow(call_id))
                return
            if q.announce_holdtime:
                minutes = max(1, round(ewt / 60))
                log.info("queue.holdtime", call_id=call_id, queue=c.queue, position=pos, staffed=staffed,
                         expected_wait_s=round(ewt, 1))
                if await play(s, ("queue-holdtime",), escape="", stop=offered) is None and not offered():
                    await s.cmd("SAY NUMBER", minutes, "")
                    await play(s, ("queue-minute" if minutes == 1 else "queue-minutes",), escape="", stop=offered)
        if not offered():
            await self.callback_prompt(s, c)
        if q.announce_position and pos is not None and not offered():
            log.info("queue.position", call_id=call_id, queue=c.queue, position=pos)
            if pos == 1:
                await play(s, ("queue-youarenext",), escape="", stop=offered)
            else:
                await play(s, ("queue-thereare",), escape="", stop=offered)
                said = await s.cmd("SAY NUMBER", pos - 1, "")
                await play(s, ("queue-callswaiting",), escape="", stop=offered)
                log.info("queue.position_announced", call_id=call_id, ahead=pos - 1, ok=said.code == 200)

    # ------------------------------------------------------------------ agents
    async def agi_agent(self, s: AgiSession) -> None:
        """Feature codes from an agent's phone: login, logout, pause [reason], unpause, dispose."""
        cfg = self._cfg()
        args = s.env.args
        op = args[0] if args else ""
        endpoint = args[1] if len(args) > 1 else ""
        agent = cfg.agent_by_phone(endpoint)
        await s.cmd("ANSWER")
        dialer = self._dialer()
        if agent is not None and op == "dispose":  # *69<code>: disposition of the last dialler call
            code = args[2] if len(args) > 2 else ""
            done = await dialer.dispose(agent, code, time.time()) if dialer is not None else None
            await play(s, ("auth-thankyou" if done else "beeperr",), escape="")
            await s.cmd("HANGUP")
            return
        if agent is None or op not in ("login", "logout", "pause", "unpause"):
            log.warning("agent.feature_denied", endpoint=endpoint[:20], op=op[:10])
            await play(s, ("agent-incorrect",), escape="")
            await s.cmd("HANGUP")
            return
        structlog.contextvars.bind_contextvars(agent=agent)
        reason = "break"
        if op == "pause" and len(args) > 2:
            code = args[2]
            if code not in cfg.pause_reasons:  # an unknown code changes nothing
                log.warning("agent.unknown_pause_code", code=code[:8])
                await play(s, ("beeperr",), escape="")
                await s.cmd("HANGUP")
                return
            reason = cfg.pause_reasons[code]
        event = {"login": acd.Login(agent), "logout": acd.Logout(agent), "pause": acd.Pause(agent, reason),
                 "unpause": acd.Unpause(agent)}[op]
        cmds = self.acd.submit(event)
        ok = not any(isinstance(c, acd.Rejected) for c in cmds)
        prompt = {"login": "agent-loginok", "logout": "agent-loggedoff", "pause": "activated",
                  "unpause": "de-activated"}[op] if ok else "beeperr"
        await play(s, (prompt,), escape="")
        await s.cmd("HANGUP")

    async def agi_agent_claim(self, s: AgiSession) -> None:
        """An agent leg answered: it may bridge only if the call is still this agent's to take
        (decided here, in one step of the core: the first of several ringing phones wins).

        From a caller's Dial() (cc-claim) the call id and the answering endpoint come as arguments and
        the leg learns its role here; a callback's leg (cc-agent) was originated with them set."""
        cfg = self._cfg()
        args = s.env.args
        if len(args) >= 2:
            call_id, agent = args[0], cfg.agent_by_phone(args[1]) or ""
        else:
            call_id, agent = await s.get_var(cc.CALL_ID), await s.get_var(cc.AGENT)
        c = self.acd.state.calls.get(call_id)
        if c is not None and agent in cfg.agents and c.answered_at is None and self.acd.state.synced:
            self.acd.submit(acd.OfferAnswered(call_id, agent))
            c = self.acd.state.calls.get(call_id)
        ok = c is not None and c.agent == agent and c.answered_at is not None
        if ok and c is not None and len(args) >= 2:  # what the leg's AMI events and a restarted daemon read
            for name, value in ((cc.ROLE, cc.ROLE_AGENT), (cc.CALL_ID, call_id), (cc.AGENT, agent)):
                await s.set_var(name, value)
        if ok and c is not None:
            await self.on_connected(s, c)  # the recording policy: MixMonitor before the bridge
        if ok and c is not None and c.callback:  # the agent is on the line: now call the customer back
            await self.dial_callback(s, c)
            return
        await s.set_var(cc.CLAIM, "ok" if ok else "no")
        log.info("offer.claim", call_id=call_id[:32], agent=agent[:32], ok=ok)

    # ------------------------------------------------------------------ dialled people
    async def agi_outbound_answered(self, s: AgiSession) -> None:
        """A person (or NOTSURE) answered an outbound call: straight into its queue for an agent."""
        cfg = self._cfg()
        queue = await s.get_var(cc.QUEUE)
        if queue not in cfg.queues:
            log.warning("outbound.unknown_queue", queue=queue[:32])
            await s.cmd("HANGUP")
            return
        call_id = uuid.uuid4().hex[:16]
        structlog.contextvars.bind_contextvars(call_id=call_id, queue=queue)
        env = s.env.values
        self.bus.publish(ev.CallStarted(call_id, s.uniqueid, s.channel, env.get("agi_callerid", ""),
                                        env.get("agi_calleridname", ""), "outbound", time.time(), self.node))
        await s.set_var(cc.CALL_ID, call_id)
        await s.set_var(cc.ROLE, cc.ROLE_CALLER)
        amd_verdict = await s.get_var(cc.AMD) or "OFF"
        amd_trace = await s.get_var(cc.AMD_TRACE) if amd_verdict != "OFF" else ""
        dial_id = await s.get_var(cc.DIAL_ID)
        prio = await s.get_var(cc.PRIORITY)
        log.info("outbound.answered", call_id=call_id, queue=queue, amd=amd_verdict, line=dial_id[:40] or None)
        dialer = self._dialer()
        if dialer is not None and dial_id:  # from here the 2-second rule runs
            dialer.on_queued(dial_id, call_id, asyncio.get_running_loop().call_later)
        # High priority: a dialled person must reach an agent within seconds (the 2-second rule).
        priority = int(prio) if prio.isascii() and prio.isdigit() and int(prio) <= 100 else 10
        path = ("amd:" + amd_verdict,) + (("amd_trace:" + amd_trace[:80],) if amd_trace else ())
        await self.ivr.run_action(s, call_id, Action(queue=queue, priority=priority), path)
