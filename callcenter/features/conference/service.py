"""Conferences in the running daemon: the agent's action (the API) and what AMI shows.

:meth:`ConferenceService.conference` (the API, or the agent's conference code on their leg: AGI
``conference``, which reads the number): the call must be a conversation with its agent; the third
party is resolved as a transfer target (:meth:`TransferService.resolve`: an agent's extension, a desk
phone, an outside number the transfer trunk's allow-list admits — no queue, no parking). The daemon
then redirects the caller and the agent together into ``cc-conf`` (a ConfBridge named by the call
id) and originates the third party into ``cc-conf-third``. Only the daemon's own values reach AMI.
AMI ``ConfbridgeJoin`` of a colleague's leg shows that agent Busy on the call (a consult, in the
core); the holder's hang-up then hands the call over (see :mod:`callcenter.features.acd.transfer`).
When the caller leaves the conference, the daemon hangs up whoever is still in it (AMI Hangup of the
channels ``ConfbridgeJoin`` showed); when nobody but the caller is left, confbridge.conf ends it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import structlog

from callcenter.asterisk import contract as cc
from callcenter.asterisk.ami_client import AmiError, NotConnected
from callcenter.features.acd import transfer as xfer
from callcenter.features.acd.service import AcdService
from callcenter.features.ivr.handlers import CALL_ID
from callcenter.asterisk.agi_server import AgiSession
from callcenter.features.transfer.service import DIGITS, TransferService
from callcenter.protocol.ami import Message

__all__ = ["ConferenceService"]

log = structlog.get_logger("callcenter.conference")


class ConferenceService:
    def __init__(self, cfg: Callable[[], Any], acd_service: AcdService, ami: Any, transfers: TransferService) -> None:
        self._cfg = cfg
        self.acd = acd_service
        self.ami = ami
        self.transfers = transfers
        self.rooms: dict[str, set[str]] = {}  # conference (call id) -> its channels, as AMI showed them
        self.tasks: list[asyncio.Future[Any]] = []

    async def _hangup(self, room: str, channel: str) -> None:
        try:  # a channel AMI showed in our conference
            await self.ami.action("Hangup", {"Channel": channel})
            log.info("conference.hung_up", call_id=room, channel=channel[:60])
        except (AmiError, NotConnected, asyncio.TimeoutError) as e:
            log.warning("conference.hangup_failed", call_id=room, error=str(e)[:200])
        finally:
            self.tasks[:] = [t for t in self.tasks if not t.done()]

    def agi_routes(self) -> dict[str, Callable[[AgiSession], Any]]:
        return {"conference": self.agi_conference}

    async def agi_conference(self, s: AgiSession) -> None:
        """The agent pressed the conference code on their leg (features.conf, ``self``): a beep, then
        the third party's number and # (digits only, at most 20, 8 s); then as :meth:`conference`."""
        call_id, agent = await s.get_var(cc.CALL_ID), await s.get_var(cc.AGENT)
        endpoint = await s.get_var("CHANNEL(endpoint)")
        ag = self._cfg().agents.get(agent)
        if ag is None or ag.phone != endpoint or not CALL_ID.match(call_id):
            log.warning("conference.feature_denied", endpoint=endpoint[:20], agent=agent[:32] or None)
            return
        r = await s.cmd("GET DATA", "beep", 8000, 20)
        digits = r.result if DIGITS.fullmatch(r.result or "") else ""
        if not digits:
            await s.cmd("STREAM FILE", "beeperr", "")
            return
        result, kind, target = await self.conference(call_id, digits)
        log.info("conference.feature", call_id=call_id, agent=agent, dialled=digits, result=result, kind=kind,
                 target=target)
        if result != "ok":
            await s.cmd("STREAM FILE", "beeperr", "")

    def on_ami_event(self, msg: Message) -> None:
        if msg.event not in ("ConfbridgeJoin", "ConfbridgeLeave"):
            return
        room = msg.get("Conference")
        if not CALL_ID.match(room):
            return  # not one of ours
        v = msg.variables()
        members = self.rooms.setdefault(room, set())
        if msg.event == "ConfbridgeLeave":
            members.discard(msg.get("Channel"))
            if v.get(cc.ROLE) == cc.ROLE_CALLER:  # the caller is gone: nobody stays on in an empty conference
                for ch in sorted(members):
                    self.tasks.append(asyncio.ensure_future(self._hangup(room, ch)))
            if not members or v.get(cc.ROLE) == cc.ROLE_CALLER:
                self.rooms.pop(room, None)
            return
        members.add(msg.get("Channel"))
        call_id, agent = v.get(cc.CALL_ID, ""), v.get(cc.AGENT, "")
        c = self.acd.state.calls.get(call_id) if CALL_ID.match(call_id) else None
        if v.get(cc.ROLE) != cc.ROLE_AGENT or c is None or not agent or agent == c.agent:
            return
        if c.conference == agent:
            log.info("conference.joined", call_id=call_id, agent=agent)
            self.acd.submit(xfer.ConsultAnswered(call_id, agent))

    async def conference(self, call_id: str, digits: str) -> tuple[str, str, str]:
        """Bring ``digits`` (as the agent would dial it) into the call: (result, kind, target); result
        ``ok`` or why not: ``no_call``, ``not_talking``, ``bad_target``, ``no_channel``, ``ami_error``."""
        cfg = self._cfg()
        c = self.acd.state.calls.get(call_id)
        if c is None:
            return ("no_call", "", "")
        if c.agent is None or c.answered_at is None or c.pending or c.callback or c.conference:
            return ("not_talking", "", "")
        kind, target, dial = self.transfers.resolve(digits, c)
        if kind not in ("agent", "out") or target == c.agent:
            return ("bad_target", kind, target)
        channel = self.transfers.agent_channel(c.agent)
        if not channel or not channel.startswith(f"PJSIP/{cfg.agents[c.agent].phone}-") or not c.channel:
            return ("no_channel", kind, target)
        variables = [("Variable", f"{cc.CONF}={call_id}")]
        if kind == "agent":
            dial = cfg.agents[target].phone
            variables += [("Variable", f"{cc.ROLE}={cc.ROLE_AGENT}"), ("Variable", f"{cc.AGENT}={target}"),
                          ("Variable", f"{cc.CALL_ID}={call_id}"), ("Variable", f"{cc.QUEUE}={c.queue}")]
        try:  # both channels as AMI showed them; the dial string is the daemon's own (resolve)
            await self.ami.action("Redirect", {"Channel": c.channel, "ExtraChannel": channel,
                                               "Context": cc.CTX_CONF, "Exten": "s", "Priority": "1",
                                               "ExtraContext": cc.CTX_CONF, "ExtraExten": "s", "ExtraPriority": "1"})
            self.acd.submit(xfer.ConferenceStarted(call_id, target))  # (only once the two are in it)
            await self.ami.action("Originate", [
                ("Channel", f"PJSIP/{dial}"), ("Context", cc.CTX_CONF_THIRD), ("Exten", "s"), ("Priority", "1"),
                ("Timeout", "30000"), ("Async", "true"), *variables])
        except (AmiError, NotConnected, asyncio.TimeoutError) as e:
            log.warning("conference.api_failed", call_id=call_id, error=str(e)[:200])
            return ("ami_error", kind, target)
        log.info("conference.started", call_id=call_id, agent=c.agent, kind=kind, target=target)
        return ("ok", kind, target)
