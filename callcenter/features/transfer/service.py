"""Transfers in the running daemon: the adapter between Asterisk and the core's transfer events
(:mod:`callcenter.features.acd.transfer`).

- AMI ``BlindTransfer`` (an agent leg of ours moved its caller into cc-xfer): the agent goes to wrap-up
  and the call is held until the caller's ``transfer`` AGI says where it goes (:meth:`agi_transfer`).
- AGI ``transfer`` (cc-xfer, on the caller): what the agent dialled is read as digits only and
  resolved against the config (:meth:`resolve`): an agent's extension, a queue's transfer code, a
  desk phone, an outside number the transfer trunk's allow-list admits; anything else: back to the
  call's queue. Only the daemon's own values reach the dialplan (``CC_TARGET``, ``CC_OFFER``).
- AGI ``consult`` (cc-consult): an agent talking with a caller dials a colleague: the colleague's leg
  carries the call's id, and once answered the core shows the colleague Busy on it.
- AMI ``AttendedTransfer``: the caller is now with the consulted colleague (hand-over) or with a
  phone that is no agent's (the call leaves the ACD).
- :meth:`transfer` (the API): AMI ``BlindTransfer`` of the agent's own channel into cc-xfer, so an
  API transfer takes exactly the desk phone's path (and its checks) from there.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from callcenter.asterisk import contract as cc
from callcenter.asterisk.agi_server import AgiSession
from callcenter.asterisk.ami_client import AmiError, NotConnected
from callcenter.asterisk.ami_events import channel_endpoint
from callcenter.features.acd import model as acd
from callcenter.features.acd import transfer as xfer
from callcenter.features.acd.agents import AgentState
from callcenter.features.acd.service import AcdService, epoch
from callcenter.features.callback.numbers import dial_back_number
from callcenter.features.ivr.handlers import CALL_ID, handing_over_rings
from callcenter.protocol.ami import Message

__all__ = ["TransferService", "Resolved", "DIGITS"]

log = structlog.get_logger("callcenter.transfer")

DIGITS = re.compile(r"^[0-9*]{1,20}$")
Resolved = tuple[str, str, str]  # (kind, target, what cc-next dials for kind "out")


class TransferService:
    """``agent_channel(agent)``: the agent's channel bridged to a caller now (supervision keeps that map)."""

    def __init__(self, cfg: Callable[[], Any], acd_service: AcdService, ami: Any, *,
                 agent_channel: Callable[[str], str | None], node: str = "local",
                 on_consult: Callable[[AgiSession, str, str], Awaitable[Any]] | None = None) -> None:
        """``on_consult(session, call_id, agent)``: a colleague's consult leg answered (the recording follows)."""
        self._cfg = cfg
        self.on_consult = on_consult
        self.acd = acd_service
        self.ami = ami
        self.agent_channel = agent_channel
        self.node = node
        self.slot_free: Callable[[str], bool] = lambda slot: True  # features.parking knows the slots

    def agi_routes(self) -> dict[str, Callable[[AgiSession], Any]]:
        return {"transfer": self.agi_transfer, "consult": self.agi_consult}

    # ------------------------------------------------------------------ resolving a target
    def resolve(self, digits: str, call: acd.Call | None) -> Resolved:
        """What ``digits`` (dialled by an agent) mean for ``call``: (kind, target, dial string)."""
        cfg = self._cfg()
        t = cfg.transfers
        if not DIGITS.fullmatch(digits):
            return ("back", "", "")
        if digits in t.queues:
            return ("queue", t.queues[digits], "")
        if cfg.parking.enabled and digits == cfg.parking.code:  # parked in the first free slot (features.parking)
            return ("park", "", "")
        if digits in cfg.parking.slot_codes():  # parked in that slot
            return ("park", digits, "")
        agent = cfg.agent_by_phone(digits)
        if agent is not None:
            return ("agent", agent, "")
        if digits in cfg.phones:
            return ("out", digits, digits)
        if t.trunk is not None and t.trunk in cfg.trunks:
            number = dial_back_number(digits, cfg.trunks[t.trunk], cfg.site)
            if number is not None:
                return ("out", number, f"{number}@{cc.TRUNK_ENDPOINT_PREFIX}{t.trunk}")
        return ("back", "", "")

    # ------------------------------------------------------------------ AMI
    def on_ami_event(self, msg: Message) -> None:
        e = msg.event
        if e == "BlindTransfer":
            v = msg.variables("Transferer")
            if msg.get("Result") != "Success" or v.get(cc.ROLE) != cc.ROLE_AGENT or not v.get(cc.CALL_ID):
                return
            exten = msg.get("Extension")[:20]
            log.info("transfer.blind", call_id=v[cc.CALL_ID], agent=v.get(cc.AGENT), exten=exten,
                     context=msg.get("Context")[:20])
            how = "park" if self.resolve(exten, None)[0] == "park" else "transfer:blind"
            self.acd.submit(xfer.BlindTransferStarted(v[cc.CALL_ID], v.get(cc.AGENT, ""), how))
        elif e == "AttendedTransfer":
            self._attended(msg)

    def _attended(self, msg: Message) -> None:
        if msg.get("Result") != "Success":
            return
        legs = {p: msg.variables(p) for p in ("OrigTransferer", "SecondTransferer", "Transferee",
                                                    "TransferTarget")}
        state = self.acd.state
        for p, v in legs.items():  # the holder's leg names the call
            cid = v.get(cc.CALL_ID, "")
            c = state.calls.get(cid)
            if v.get(cc.ROLE) != cc.ROLE_AGENT or c is None or c.agent != v.get(cc.AGENT):
                continue
            others = [q for q in legs if q != p and legs[q].get(cc.ROLE) != cc.ROLE_CALLER
                      and legs[q].get(cc.AGENT) != c.agent]
            to = next((legs[q][cc.AGENT] for q in others if legs[q].get(cc.ROLE) == cc.ROLE_AGENT
                       and legs[q].get(cc.CALL_ID) == cid and legs[q].get(cc.AGENT) in state.agents), None)
            target = ""
            if to is None:  # the far end is no consult of ours: whose phone is it (not the caller's, not the holder's)?
                phone = self._cfg().agents[c.agent].phone if c.agent in self._cfg().agents else ""
                chans = [msg.get(f"{q}Channel") for q in others]
                target = next((channel_endpoint(ch) for ch in chans
                               if ch and ch != c.channel and channel_endpoint(ch) != phone), "")[:40]
            log.info("transfer.attended", call_id=cid, from_agent=c.agent, to_agent=to, target=target or None)
            self.acd.submit(xfer.AttendedTransferred(cid, to, target))
            return

    # ------------------------------------------------------------------ AGI: cc-xfer
    async def agi_transfer(self, s: AgiSession) -> None:
        """The caller arrived in cc-xfer (a blind transfer): send it where the agent said, if allowed."""
        call_id = await s.get_var(cc.CALL_ID)
        digits = s.env.args[0] if s.env.args else ""
        structlog.contextvars.bind_contextvars(call_id=call_id[:32])
        c = self.acd.state.calls.get(call_id) if CALL_ID.match(call_id) else None
        if c is None:
            await self.readopt(s, call_id)
            return
        kind, target, dial = self.resolve(digits, c)
        log.info("transfer.target", call_id=call_id, dialled=digits[:20] if DIGITS.fullmatch(digits) else "?",
                 kind=kind, target=target)

        async def work() -> None:
            self.acd.submit(xfer.TransferTarget(call_id, kind, target))
            now = self.acd.state.calls.get(call_id)
            if kind == "park" and now is not None and now.pending == "park":
                slot = target if target and self.slot_free(target) else ""  # taken: the first free one
                await s.set_var(cc.TARGET, slot)
                await s.set_var(cc.NEXT, "park")
                return
            if now is None:
                if kind == "out":
                    await s.set_var(cc.TARGET, dial)
                    await s.set_var(cc.NEXT, "dial")
                else:
                    await s.set_var(cc.NEXT, "hangup")
                return
            # waiting again (a queue, or back) — or ringing an agent, whose ring is handed over below and
            # wins (CC_NEXT=offer); were it lost, the wait loop's hook takes the caller up again
            await s.set_var(cc.QUEUE, now.queue)
            await s.set_var(cc.NEXT, "queue")
        await handing_over_rings(self.acd, s, call_id, work)

    async def readopt(self, s: AgiSession, call_id: str) -> None:
        """A caller in cc-xfer whose call the daemon does not hold (it ended it when the agent hung up
        before the transfer was seen, or it restarted): back into its queue, keeping its seniority."""
        cfg = self._cfg()
        queue = await s.get_var(cc.QUEUE)
        if not CALL_ID.match(call_id) or queue not in cfg.queues or not self.acd.state.synced:
            log.warning("transfer.unknown_call", call_id=call_id[:32])
            await s.set_var(cc.NEXT, "queue" if queue in cfg.queues else "hangup")
            return
        entered = epoch(await s.get_var(cc.ENTERED)) or time.time()
        log.warning("transfer.readopted", call_id=call_id, queue=queue)

        async def work() -> None:
            self.acd.submit(acd.CallQueued(call_id, queue, s.channel, s.env.values.get("agi_callerid", ""),
                                           s.env.values.get("agi_calleridname", ""), entered, node=self.node))
            await s.set_var(cc.NEXT, "queue")
        await handing_over_rings(self.acd, s, call_id, work)

    # ------------------------------------------------------------------ AGI: cc-consult
    async def agi_consult(self, s: AgiSession) -> None:
        """``consult,dial,<extension>,<endpoint>`` on the calling agent's second line: a consult if that
        agent is talking with a caller; ``consult,answered,<call id>,<endpoint>`` on the colleague's leg."""
        cfg = self._cfg()
        args = s.env.args
        op = args[0] if args else ""
        if op == "dial" and len(args) >= 3:
            me, other = cfg.agent_by_phone(args[2]), cfg.agent_by_phone(args[1])
            a = self.acd.state.agents.get(me or "")
            c = self.acd.state.calls.get(a.call_id or "") if a is not None else None
            if (a is None or other is None or other == me or a.state != AgentState.BUSY or c is None
                    or c.agent != me or c.answered_at is None or c.pending):
                return  # a plain call between phones
            await s.set_var(cc.CONSULT, c.call_id)
            await s.set_var(cc.CONSULT_AGENT, other)
            log.info("consult.dialled", call_id=c.call_id, agent=me, colleague=other)
        elif op == "answered" and len(args) >= 3:
            call_id, agent = args[1], cfg.agent_by_phone(args[2])
            if agent is None or not CALL_ID.match(call_id):
                return
            self.acd.submit(xfer.ConsultAnswered(call_id, agent))
            c = self.acd.state.calls.get(call_id)
            ok = c is not None and c.consult == agent
            log.info("consult.answered", call_id=call_id, colleague=agent, ok=ok)
            if ok and self.on_consult is not None:
                await self.on_consult(s, call_id, agent)

    # ------------------------------------------------------------------ the API
    async def transfer(self, call_id: str, digits: str) -> str:
        """Blind-transfer a call being talked to ``digits`` (as if dialled from the agent's phone):
        ``ok``, or why not: ``no_call``, ``not_talking``, ``bad_target``, ``no_channel``, ``ami_error``."""
        c = self.acd.state.calls.get(call_id)
        if c is None:
            return "no_call"
        if c.agent is None or c.answered_at is None or c.pending or (c.callback and not c.connected):
            return "not_talking"
        kind, target, _ = self.resolve(digits, c)
        if kind == "back" or (kind == "agent" and target == c.agent):
            return "bad_target"
        channel = self.agent_channel(c.agent)
        phone = self._cfg().agents[c.agent].phone
        if not channel or not channel.startswith(f"PJSIP/{phone}-"):
            return "no_channel"
        try:  # digits checked above (DIGITS); the channel is the agent's own, as AMI showed it
            await self.ami.action("BlindTransfer", {"Channel": channel, "Context": cc.CTX_XFER, "Exten": digits})
        except (AmiError, NotConnected, asyncio.TimeoutError) as e:
            log.warning("transfer.api_failed", call_id=call_id, error=str(e)[:200])
            return "ami_error"
        log.info("transfer.api", call_id=call_id, agent=c.agent, kind=kind, target=target)
        return "ok"
