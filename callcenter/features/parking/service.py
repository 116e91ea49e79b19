"""Parking in the running daemon: the adapter between Asterisk's res_parking and the core's park
events (:mod:`callcenter.features.acd.transfer`).

- A blind transfer (desk phone REFER, or the API) to the park code or a slot reaches cc-xfer like any
  transfer; the transfer service resolves it to ``park`` and sends the caller to ``cc-parking``, whose
  ``Park()`` runs on the caller's own channel (``PARKINGEXTEN``: the slot asked for, when free).
- AMI ``ParkedCall`` / ``UnParkedCall`` / ``ParkedCallTimeOut`` / ``ParkedCallGiveUp``: which slot holds
  which call (the BLF keys watch ``park:<slot>@cc-park``), and who picked it up (``ParkPickedUp``).
- AGI ``park-pickup`` (a desk phone dialled a slot, before ``ParkedCall()``): an agent's phone picking
  up a parked call of ours carries the call's variables from then on (its hang-up ends the call, its
  transfers go through cc-xfer).
- AGI ``park-return`` (cc-park-return: parked too long, or ``Park()`` failed): the core rings the
  agent who parked it if available, else queues it again with its seniority.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog

from callcenter.asterisk import contract as cc
from callcenter.asterisk.agi_server import AgiSession
from callcenter.asterisk.ami_events import channel_endpoint
from callcenter.features.acd import transfer as xfer
from callcenter.features.acd.service import AcdService
from callcenter.features.ivr.handlers import CALL_ID, handing_over_rings
from callcenter.features.transfer.service import TransferService
from callcenter.protocol.ami import Message

__all__ = ["ParkingService"]

log = structlog.get_logger("callcenter.parking")


class ParkingService:
    def __init__(self, cfg: Callable[[], Any], acd_service: AcdService, transfers: TransferService) -> None:
        self._cfg = cfg
        self.acd = acd_service
        self.transfers = transfers
        self.parked: dict[str, str] = {}  # slot -> call id (calls of ours, as AMI showed them)
        transfers.slot_free = self.slot_free

    def agi_routes(self) -> dict[str, Callable[[AgiSession], Any]]:
        return {"park-return": self.agi_return, "park-pickup": self.agi_pickup}

    def slot_free(self, slot: str) -> bool:
        return slot not in self.parked

    # ------------------------------------------------------------------ AMI
    def on_ami_event(self, msg: Message) -> None:
        e = msg.event
        if e not in ("ParkedCall", "UnParkedCall", "ParkedCallTimeOut", "ParkedCallGiveUp", "ParkedCallSwap"):
            return
        slot = msg.get("ParkingSpace")[:8]
        call_id = msg.variables("Parkee").get(cc.CALL_ID, "")
        if not CALL_ID.match(call_id):
            return  # not a call of ours
        if e == "ParkedCall":
            self.parked[slot] = call_id
            log.info("park.parked", call_id=call_id, slot=slot, timeout_s=msg.get("ParkingTimeout")[:8])
            return
        if self.parked.get(slot) == call_id:
            del self.parked[slot]
        if e == "UnParkedCall":
            endpoint = channel_endpoint(msg.get("RetrieverChannel"))[:40]
            agent = self._cfg().agent_by_phone(endpoint) if endpoint else None
            log.info("park.picked_up", call_id=call_id, slot=slot, agent=agent, phone=endpoint)
            self.acd.submit(xfer.ParkPickedUp(call_id, agent, endpoint))
        elif e == "ParkedCallTimeOut":
            log.info("park.timed_out", call_id=call_id, slot=slot)  # the caller comes to cc-park-return
        elif e == "ParkedCallGiveUp":
            log.info("park.gave_up", call_id=call_id, slot=slot)  # its Hangup ends the call

    # ------------------------------------------------------------------ AGI
    async def agi_pickup(self, s: AgiSession) -> None:
        """``park-pickup,<slot>,<endpoint>``: an agent's phone picking up a call of ours takes its variables."""
        args = s.env.args
        if len(args) < 2:
            return
        call_id = self.parked.get(args[0], "")
        agent = self._cfg().agent_by_phone(args[1])
        c = self.acd.state.calls.get(call_id)
        if agent is None or c is None or c.pending != "park":
            return
        await s.set_var(cc.ROLE, cc.ROLE_AGENT)
        await s.set_var(cc.CALL_ID, call_id)
        await s.set_var(cc.AGENT, agent)
        await s.set_var(cc.QUEUE, c.queue)

    async def agi_return(self, s: AgiSession) -> None:
        """The caller is back from its slot (parked too long, or it could not be parked)."""
        call_id = await s.get_var(cc.CALL_ID)
        structlog.contextvars.bind_contextvars(call_id=call_id[:32])
        c = self.acd.state.calls.get(call_id) if CALL_ID.match(call_id) else None
        if c is None:
            await self.transfers.readopt(s, call_id)
            return
        log.info("park.returned", call_id=call_id, agent=c.agent)

        async def work() -> None:
            self.acd.submit(xfer.ParkReturned(call_id))
            now = self.acd.state.calls.get(call_id)
            if now is None:
                await s.set_var(cc.NEXT, "hangup")
                return
            await s.set_var(cc.QUEUE, now.queue)
            await s.set_var(cc.NEXT, "queue")  # or the ring handed over below (CC_NEXT=offer)
        await handing_over_rings(self.acd, s, call_id, work)
