"""Supervision in the running daemon: who is talking on which channel (from AMI), the decision
(:func:`.model.decide`), the audit (:mod:`.store`, on the database thread) and the bus events.

``*71``/``*72``/``*73`` + an agent's extension (rendered literals in ``cc-phones``) go to
``cc-spy``, whose AGI ``spy`` (:mod:`.handlers`) asks for the PIN; :meth:`SupervisionService.authorize`
identifies the supervisor by the calling channel's *endpoint* (never caller ID), decides, audits
every attempt (``spy_audit`` and the log; no audit row, no spying: the write is awaited) and,
only when allowed, returns the agent's current channel (full name, for ChanSpy's ``u`` option)
and the options for the mode. ``ChanSpyStart``/``ChanSpyStop`` from AMI are logged and published.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from callcenter import config as config_mod
from callcenter.asterisk import ami_events
from callcenter.asterisk import contract as C
from callcenter.asterisk.agi_server import AgiSession
from callcenter.asterisk.ami_client import AmiError, NotConnected
from callcenter.events import Bus, SpyEvent
from callcenter.features.supervision import handlers
from callcenter.features.supervision import model as sup
from callcenter.features.supervision.store import SpyAuditStore
from callcenter.persistence import DbThread
from callcenter.protocol.ami import Message

__all__ = ["Authorization", "SupervisionService"]

log = structlog.get_logger("callcenter")


@dataclass(frozen=True)
class Authorization:
    """What :meth:`SupervisionService.authorize` decided; ``target``/``options`` only when allowed."""

    allowed: bool
    reason: str
    target: str = ""
    options: str = ""


class SupervisionService:
    """Listen / whisper / barge for the daemon (see the module doc).

    Args:
        db: the daemon's database thread (the audit is written there).
        bus: where :class:`SpyEvent` s are published.
        store: an open audit store (tests); by default :meth:`start` opens ``daemon.database`` on ``db``.
    """

    def __init__(self, cfg: config_mod.Config, *, db: DbThread, bus: Bus, store: SpyAuditStore | None = None,
                 clock: Callable[[], float] = time.time, ami: Any = None):
        self.cfg = cfg
        self.ami = ami  # rings the supervisor's phone for a spy asked for over HTTP (spy_from_api)
        self.db = db
        self.bus = bus
        self.store = store
        self.clock = clock
        self._own_store = store is None
        self.agent_channels: dict[str, str] = {}  # agent -> their channel bridged to a caller now
        self.lockout = sup.LockoutState()

    async def start(self) -> None:
        if self.store is None:
            self.store = await self.db.run(SpyAuditStore, self.cfg.daemon.database)

    async def close(self) -> None:
        if self.store is not None and self._own_store:
            await self.db.run(self.store.close)
        self.store = None

    def reconfigure(self, cfg: config_mod.Config) -> None:
        """A reloaded config: supervisors, PINs, teams and agents take effect at once; the talking
        channel of an agent no longer configured is forgotten."""
        self.cfg = cfg
        self.agent_channels = {a: ch for a, ch in self.agent_channels.items() if a in cfg.agents}

    def agi_routes(self) -> dict[str, Callable[[AgiSession], Any]]:
        return handlers.routes(self)

    # ------------------------------------------------------------------ AMI events
    def on_event(self, msg: Message) -> None:
        ev = msg.event
        if (b := ami_events.bridge_enter(msg)) is not None:
            agent = b.variables.get(C.AGENT, "")
            if b.variables.get(C.ROLE) == C.ROLE_AGENT and agent in self.cfg.agents:
                self.agent_channels[agent] = b.channel
        elif (h := ami_events.hangup(msg)) is not None:
            agent = h.variables.get(C.AGENT, "")
            if self.agent_channels.get(agent) == h.channel:
                del self.agent_channels[agent]
            self.lockout = self.lockout.pruned(self.clock())
        elif ev in ("ChanSpyStart", "ChanSpyStop"):
            spyer, spyee = msg.get("SpyerChannel"), msg.get("SpyeeChannel")
            sv = self._supervisor_at(ami_events.channel_endpoint(spyer))
            agent = self.cfg.agent_by_phone(ami_events.channel_endpoint(spyee)) or None
            kind = "started" if ev == "ChanSpyStart" else "stopped"
            log.info(f"spy.{kind}", spyer=spyer, spyee=spyee)
            self.bus.publish(SpyEvent(kind, sv, agent))

    def resynced(self, channels: list[Message]) -> None:
        """After an AMI (re)connect: rebuild who is talking from the snapshot."""
        self.agent_channels.clear()
        for m in channels:
            v = ami_events.channel_vars(m)
            agent = v.get(C.AGENT, "")
            if v.get(C.ROLE) == C.ROLE_AGENT and agent in self.cfg.agents and m.get("BridgeId"):
                self.agent_channels[agent] = m.get("Channel")
        self.lockout = self.lockout.pruned(self.clock())

    def _supervisor_at(self, phone: str) -> str | None:
        return next((n for n, s in self.cfg.supervisors.items() if s.phone == phone), None) if phone else None

    # ------------------------------------------------------------------ the decision
    async def spy_from_api(self, supervisor: str, agent: str, mode: str, actor: str) -> Authorization:
        """Listen / whisper / barge asked for over HTTP by ``actor`` (already authorised for the
        agent's team by :mod:`callcenter.features.access.policy`): ring ``supervisor``'s desk phone
        and spy on exactly that agent's channel. Audited in ``spy_audit`` like the phone codes.

        Reasons besides ``ok``: ``bad_mode``, ``not_a_supervisor``, ``not_an_agent``,
        ``agent_not_on_call``, ``bad_channel``, ``ami_error``."""
        if self.store is None:
            raise RuntimeError("supervision service not started")
        sv = self.cfg.supervisors.get(supervisor)
        ag = self.cfg.agents.get(agent)
        channel = self.agent_channels.get(agent) if ag is not None else None
        if ag is not None and channel and not channel.startswith(f"PJSIP/{ag.phone}-"):
            channel = None
        reason, target, options = "ok", "", ""
        if mode not in sup.MODES:
            reason = "bad_mode"
        elif sv is None:
            reason = "not_a_supervisor"
        elif ag is None:
            reason = "not_an_agent"
        elif not channel:
            reason = "agent_not_on_call"
        else:
            try:
                target, options = sup.chanspy_target(channel), sup.chanspy_options(mode)
            except ValueError:
                reason = "bad_channel"
        if reason == "ok" and sv is not None:
            try:
                await self.ami.action("Originate", [
                    ("Channel", f"PJSIP/{sv.phone}"), ("Context", C.CTX_SPY_API), ("Exten", "s"),
                    ("Priority", "1"), ("Timeout", "30000"), ("Async", "true"),
                    ("CallerID", f'"{mode} {agent}" <{ag.phone if ag else ""}>'),
                    ("Variable", f"{C.SPY_TARGET}={target}"), ("Variable", f"{C.SPY_OPTIONS}={options}")])
            except (AmiError, NotConnected, asyncio.TimeoutError) as e:
                log.warning("spy.originate_failed", supervisor=supervisor, agent=agent, error=str(e))
                reason = "ami_error"
        allowed = reason == "ok"
        now = self.clock()
        await self.db.run(self.store.audit, now, supervisor if sv else None, sv.phone if sv else "", agent if ag else None,
                          ag.phone if ag else "", mode[:10], "allowed" if allowed else "denied", reason)
        (log.info if allowed else log.warning)(
            "spy.allowed" if allowed else "spy.denied", supervisor=supervisor, agent=agent, mode=mode[:10],
            reason=reason, via="api", actor=actor, channel=channel if allowed else None)
        self.bus.publish(SpyEvent("allowed" if allowed else "denied", supervisor if sv else None,
                                  agent if ag else None, mode[:10], reason))
        return Authorization(allowed, reason, target, options)

    async def authorize(self, mode: str, ext: str, endpoint: str, pin: str) -> Authorization:
        """May the phone ``endpoint`` spy on the agent at ``ext`` in ``mode`` with ``pin``? Audited,
        logged and published whatever the answer."""
        if self.store is None:
            raise RuntimeError("supervision service not started")
        agent = self.cfg.agent_by_phone(ext) if ext else None
        channel = self.agent_channels.get(agent) if agent else None
        if agent and channel and not channel.startswith(f"PJSIP/{self.cfg.agents[agent].phone}-"):
            channel = None  # only ever that agent's own phone channel
        now = self.clock()
        self.lockout, d = sup.decide(self.cfg, endpoint, mode, ext, pin, channel, self.lockout, now)
        target = options = ""
        reason = d.reason
        if d.allowed:
            assert channel is not None
            try:
                target, options = sup.chanspy_target(channel), sup.chanspy_options(mode)
            except ValueError:
                reason = "bad_channel"
        allowed = bool(target)
        await self.db.run(self.store.audit, now, d.supervisor, endpoint, d.agent, ext, mode[:10],
                          "allowed" if allowed else "denied", reason)
        (log.info if allowed else log.warning)(
            "spy.allowed" if allowed else "spy.denied", supervisor=d.supervisor, phone=endpoint or None,
            agent=d.agent, target_ext=ext or None, mode=mode[:10], reason=reason,
            channel=channel if allowed else None)
        self.bus.publish(SpyEvent("allowed" if allowed else "denied", d.supervisor, d.agent, mode[:10], reason))
        return Authorization(allowed, reason, target, options)
