"""The CRM feature's I/O: who is calling (the local customer table on the database thread, then the
CRM's HTTP lookup under one strict timeout), the record kept per live call for the screen pop, and
click-to-call (checks, then the core rings the agent and the agent leg dials the customer).

Nothing here blocks the event loop: table reads go to the database thread; the HTTP lookup is
aiohttp under ``asyncio.timeout``. A lookup that fails, times out or answers nonsense routes the
call as usual; it is counted (``callcenter_crm_lookups_total{result}``) and logged."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import aiohttp
import structlog
from prometheus_client import CollectorRegistry, Counter
from pydantic import ValidationError

from callcenter import events as ev
from callcenter.features.trunks.schema import outbound_caller_id
from callcenter.asterisk import contract as cc
from callcenter.asterisk.agi_server import AgiSession
from callcenter.features.acd import model as acd
from callcenter.features.acd.agents import AgentState
from callcenter.features.callback.numbers import dial_back_number
from callcenter.features.cards.dial import trunk_dial
from callcenter.features.crm.model import Customer, CustomerIdentified, Steer, local_time_ok, normalise, \
    parse_record, steer
from callcenter.features.crm.store import CustomerStore

__all__ = ["CrmService", "Refused", "RESULTS"]

log = structlog.get_logger("callcenter.crm")
RESULTS = ("table", "lookup", "unknown", "timeout", "error", "invalid")
MAX_BODY = 64 * 1024
KEEP = 20_000  # records of live calls kept for the screen pop (dropped when the call ends)


class Refused(Exception):
    """A click-to-call refused: ``error`` names the rule (part of the API)."""

    def __init__(self, status: int, error: str, detail: str = "") -> None:
        super().__init__(error)
        self.status, self.error, self.detail = status, error, detail


class CrmService:
    def __init__(self, cfg: Callable[[], Any], *, db: Any, bus: ev.Bus, acd_service: Any, registry: CollectorRegistry,
                 store: CustomerStore | None, dialer: Callable[[], Any], clock: Callable[[], float] = time.time) -> None:
        self._cfg = cfg
        self.db = db
        self.bus = bus
        self.acd = acd_service
        self.store = store
        self._dialer = dialer
        self.clock = clock
        self.records: OrderedDict[str, Customer] = OrderedDict()
        self.lookups = Counter("callcenter_crm_lookups", "Customer lookups at queue entry, by result "
                               "(table, lookup: found; unknown; timeout, error, invalid: routed as usual)",
                               ["result"], registry=registry)
        for r in RESULTS:
            self.lookups.labels(r)
        self._http: aiohttp.ClientSession | None = None
        bus.subscribe(ev.CallEnded, lambda e: self.records.pop(e.call_id, None))

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    # ------------------------------------------------------------------ lookup at queue entry
    async def identify(self, call_id: str, queue: str, number: str, did: str, now: float) -> Steer | None:
        """The record of the caller entering ``queue`` and how it routes the call, or None (no lookup
        configured, unknown caller, or a failed lookup: routed as usual). Never longer than the
        configured timeout, table read included."""
        cfg = self._cfg()
        conf = cfg.crm.lookup
        if conf is None or queue not in cfg.queues:
            return None
        t0 = time.monotonic()
        result = "unknown"
        rec: Customer | None = None
        try:
            async with asyncio.timeout(conf.timeout_ms / 1000):
                rec, result = await self._find(cfg, conf, number, did)
        except TimeoutError:
            result = "timeout"
        except ValidationError as e:
            result = "invalid"
            log.warning("crm.lookup_invalid", call_id=call_id, error=str(e.errors()[0].get("msg", ""))[:120])
        except (aiohttp.ClientError, OSError, ValueError) as e:
            result = "error"
            log.warning("crm.lookup_failed", call_id=call_id, error=repr(e)[:200])
        self.lookups.labels(result).inc()
        ms = round((time.monotonic() - t0) * 1000, 1)
        if rec is None:
            log.info("crm.lookup", call_id=call_id, result=result, ms=ms)
            return None
        self.records[call_id] = rec
        while len(self.records) > KEEP:
            self.records.popitem(last=False)
        s = steer(cfg, rec, queue, now)
        if rec.account_manager and rec.account_manager not in cfg.agents:
            log.warning("crm.unknown_account_manager", call_id=call_id, agent=rec.account_manager[:32])
        log.info("crm.lookup", call_id=call_id, result=result, ms=ms, vip=rec.vip, priority=s.priority,
                 preferred=s.preferred, prefer_until=s.prefer_until or None, skills=dict(s.skills))
        self.bus.publish(CustomerIdentified(call_id, number, rec.public(), self.clock()))
        return s

    async def _find(self, cfg: Any, conf: Any, number: str, did: str) -> tuple[Customer | None, str]:
        e164 = normalise(number, cfg.site.country)
        if e164 is not None and self.store is not None:
            rec = await self.db.run(self.store.get, e164)
            if rec is not None:
                return rec, "table"
        if not conf.url:
            return None, "unknown"
        url = conf.url.format(number=quote(e164 or _digits(number), safe=""), did=quote(_digits(did), safe=""))
        headers = {"Accept": "application/json"}
        if conf.token:
            headers["Authorization"] = f"Bearer {conf.token}"
        if self._http is None:
            self._http = aiohttp.ClientSession()
        async with self._http.get(url, headers=headers, allow_redirects=False) as resp:
            if resp.status == 404:
                return None, "unknown"
            if resp.status != 200:
                raise ValueError(f"HTTP {resp.status}")
            body = await resp.content.read(MAX_BODY + 1)
        if len(body) > MAX_BODY:
            raise ValueError("answer too large")
        rec = parse_record(json.loads(body), "lookup")
        return rec, "lookup" if rec is not None else "unknown"

    def record(self, call_id: str) -> dict[str, Any] | None:
        """The customer record of a live call (the screen pop), or None."""
        rec = self.records.get(call_id)
        return rec.public() if rec is not None else None

    # ------------------------------------------------------------------ the local table
    async def get(self, number: str) -> Customer | None:
        assert self.store is not None
        return await self.db.run(self.store.get, number)

    async def put(self, number: str, rec: Customer) -> bool:
        assert self.store is not None
        return await self.db.run(self.store.put, number, rec, self.clock())

    async def delete(self, number: str) -> bool:
        assert self.store is not None
        return await self.db.run(self.store.delete, number)

    # ------------------------------------------------------------------ click-to-call
    async def click_to_call(self, agent: str, number: str) -> str:
        """Ring ``agent``, then dial ``number``: the call id, or :class:`Refused` naming the rule."""
        cfg = self._cfg()
        c2c = cfg.crm.click_to_call
        if c2c is None or c2c.trunk not in cfg.trunks:
            raise Refused(409, "not_configured", "crm.click_to_call is not configured")
        e164 = normalise(number, cfg.site.country)
        if e164 is None:
            raise Refused(400, "not_allowed_number", "not a valid phone number")
        if dial_back_number(e164, cfg.trunks[c2c.trunk], cfg.site) is None:
            raise Refused(400, "not_allowed_number", f"trunk {c2c.trunk}'s dial_allow does not admit it")
        d = self._dialer()
        if d is not None and await self.db.run(d.store.on_dnc, e164):
            raise Refused(403, "dnc", "the number is on the do-not-call list")
        now = self.clock()
        if not local_time_ok(e164, c2c.window, now):
            raise Refused(403, "outside_calling_window", f"the callee's local time is outside {c2c.window}")
        st = self.acd.state
        a = st.agents.get(agent)
        if a is None or not a.queues:
            raise Refused(409, "agent_busy", "the agent is in no queue")
        if not st.synced or a.state != AgentState.READY or a.device in acd.UNAVAILABLE_DEVICE or a.retry_at > now:
            raise Refused(409, "agent_busy", f"the agent is {a.state}")
        call_id = uuid.uuid4().hex[:16]
        self.bus.publish(ev.CallStarted(call_id, "", "", e164, "", "click-to-call", now))
        cmds = self.acd.submit(acd.DirectCall(call_id, agent, a.queues[0], e164, c2c.trunk))
        if not any(isinstance(c, acd.Offer) and c.call_id == call_id for c in cmds):
            self.bus.publish(ev.CallEnded(call_id, "agent-busy", self.clock()))
            raise Refused(409, "agent_busy", "the agent could not be offered the call")
        log.info("crm.click_to_call", call_id=call_id, agent=agent, trunk=c2c.trunk)
        return call_id

    async def dial(self, s: AgiSession, c: acd.Call) -> None:
        """The agent answered their click-to-call: dial the customer (checked again) through the trunk."""
        cfg = self._cfg()
        c2c = cfg.crm.click_to_call
        ok = c2c is not None and c.trunk in cfg.trunks and \
            dial_back_number(c.callback, cfg.trunks[c.trunk], cfg.site) is not None
        digits = c.callback.lstrip("+")
        if not ok or c2c is None or not (digits.isascii() and digits.isdigit()) or not 3 <= len(digits) <= 15:
            log.error("crm.click_to_call_refused_at_dial", call_id=c.call_id)
            self.acd.submit(acd.CallbackDialed(c.call_id, c.agent or "", "CHANUNAVAIL"))
            await s.set_var(cc.CLAIM, "no")
            return
        cid = outbound_caller_id(cfg.trunks[c.trunk], c2c.caller_id)  # click-to-call's, else the trunk's
        if cid:
            await s.set_var("CALLERID(num)", cid)
        await s.set_var(cc.DIAL, trunk_dial(cfg, c.trunk, digits))
        await s.set_var(cc.RING_S, str(int(c2c.ring_s)))
        await s.set_var(cc.CLAIM, "callback")
        log.info("crm.click_to_call_dialling", call_id=c.call_id, agent=c.agent, trunk=c.trunk)


def _digits(text: str) -> str:
    """A caller ID or DID reduced to what may go into a URL query: ``+`` and digits, bounded."""
    return "".join(ch for ch in text if ch in "0123456789+")[:32]
