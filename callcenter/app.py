"""The composition root: builds every service, wires them to AMI, FastAGI, AudioSocket, HTTP and the bus.

Data flows one way: socket -> codec -> event -> feature model -> commands -> adapter -> domain
events on the bus -> subscribers (journal, metrics). No SQLite on the event loop: stores run on
the database thread. Every background task is supervised: one that dies stops the daemon with a
non-zero exit (systemd restarts it), and the watchdog is fed only while AMI, FastAGI,
AudioSocket and the dialler are alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web

from callcenter import config as config_mod
from callcenter import events as ev
from callcenter.asterisk import contract as cc
from callcenter.asterisk.agi_server import AgiServer
from callcenter.asterisk.ami_client import AmiClient, AmiError
from callcenter.asterisk.ami_events import is_zombie
from callcenter.asterisk.render import render, write
from callcenter.features.acd import model as acd
from callcenter.features.acd.handlers import AcdHandlers
from callcenter.features.acd.service import AcdService
from callcenter.features.amd.detector import AmdParams
from callcenter.features.amd.handlers import AmdHandlers
from callcenter.features.amd.server import AmdServer
from callcenter.features.callback.handlers import CallbackHandlers
from callcenter.features.callback.numbers import dial_back_number
from callcenter.features.cards.service import CardsMonitor
from callcenter.features.crm.api import routes as crm_routes
from callcenter.features.crm.service import CrmService
from callcenter.features.crm.store import CustomerStore
from callcenter.features.provisioning.service import ProvisioningServer
from callcenter.features.ivr.handlers import IvrHandlers
from callcenter.features.messages.service import MessageService
from callcenter.features.messages.store import MessageStore
from callcenter.features.repeat.service import RepeatService
from callcenter.features.survey.handlers import SurveyHandlers
from callcenter.features.recording.service import RecordingService
from callcenter.features.stats.cache import StatsCache
from callcenter.features.stats.status import build_status
from callcenter.features.trunks import registrations as trunk_regs
from callcenter.features.access.service import AccessService
from callcenter.features.api.live import LiveFloor
from callcenter.features.api.routes import Api, Ports
from callcenter.features.transfer.api import routes as transfer_routes
from callcenter.features.transfer.service import TransferService
from callcenter.features.parking.service import ParkingService
from callcenter.features.conference.api import routes as conference_routes
from callcenter.features.conference.service import ConferenceService
from callcenter.http import start_http
from callcenter.features.supervision.service import SupervisionService
from callcenter.features.webhooks.routes import routes as webhook_routes
from callcenter.features.webhooks.service import WebhookService
from callcenter.journal import Journal
from callcenter.persistence import DbThread
from callcenter.protocol.ami import Message
from callcenter.systemd import sd_notify, start_watchdog
from callcenter.tasks import Supervisor
from callcenter.telemetry import LoopLagMonitor, Metrics, StatsCollector

__all__ = ["Daemon", "serve"]

log = structlog.get_logger("callcenter")
SWEEP_S = 30.0


class _Sync:
    """Events that race an AMI snapshot are buffered and replayed after it."""

    def __init__(self, running: bool = False) -> None:
        self.running = running
        self.buffered: list[Message] = []


class Daemon:
    def __init__(self, cfg: config_mod.Config, config_path: str | Path | None = None, *, node: str = "local"):
        self.cfg = cfg
        self.config_path = str(config_path) if config_path else None
        self.node = node
        self.exit_code = 0
        self.generation = 1  # bumped by every reload that took effect
        self.last_reload: dict[str, object] = {"ok": True, "at": None, "problems": []}
        self.stopped = asyncio.Event()
        self.bus = ev.Bus()
        self.db = DbThread()
        self.tasks = Supervisor(self._fatal)
        self.metrics = Metrics()
        self.lag = LoopLagMonitor(self.metrics.registry)
        # Start-up reads run before the loop serves anyone; from here on, stores run on self.db.
        self.journal = Journal(cfg.daemon.database)
        self.journal.subscribe(self.bus, self.db)
        self.metrics.subscribe(self.bus)
        self.metrics.watch_db(self.db)
        self.stats = StatsCache.from_config(cfg)
        self.stats_db = DbThread("stats")  # its own reader: figures stay fresh while writes wait on a lock
        self._sync = _Sync()
        self._ready_sent = False
        # When the Asterisk we are logged in to started (from FullyBooted's Uptime), and the one before.
        self._started_at: float | None = None
        self._previous_start: float | None = None
        self.ami = AmiClient(cfg.ami.host, cfg.ami.port, cfg.ami.username, cfg.ami.secret,
                             on_event=self._on_ami_event, on_up=self._on_ami_up, on_down=self._on_ami_down,
                             max_backoff_s=cfg.daemon.reconnect_max_s)
        self.acd = AcdService(cfg, self.bus, self.ami, self.tasks, node=node, persisted=self.journal.agents())
        self.customers = CustomerStore(cfg.daemon.database)  # used on self.db only
        self.crm = CrmService(self._config, db=self.db, bus=self.bus, acd_service=self.acd,
                              registry=self.metrics.registry, store=self.customers, dialer=lambda: self.dialer)
        self.repeat = RepeatService(self._config, lambda fn, *a: self.db.run(fn, self.journal.db, *a), self.bus)
        self.ivr = IvrHandlers(self._config, self.acd, self.bus, node, identify=self.crm.identify,
                               repeat=self.repeat.check)
        self.callback = CallbackHandlers(self._config, self.acd, self.bus, lookup_call=self.lookup_call,
                                         dial_back=self._dial_back)
        self.survey = SurveyHandlers(self._config, self.acd, self.bus, lookup_call=self.lookup_call)
        self.amd_handlers = AmdHandlers(lambda: self.amd, self.bus, lambda: self.dialer)
        self.amd = AmdServer(cfg.audiosocket.host, cfg.audiosocket.port, AmdParams.from_mapping(cfg.amd),
                             self.amd_handlers.on_final, _amd_profiles(cfg))
        self.recording = RecordingService(cfg, self.ami, lambda: self.acd.state.calls, db=self.db, tasks=self.tasks,
                                          bus=self.bus)
        self.supervision = SupervisionService(cfg, db=self.db, bus=self.bus, ami=self.ami)
        self.message_store = MessageStore(cfg.daemon.database)  # used on self.db only
        self.messages = MessageService(self._config, self.acd, self.bus, db=self.db, store=self.message_store,
                                       dirs=lambda: (Path(self.recording.dir), self.recording.asterisk_dir),
                                       dial_back_for=self.callback.dial_back_for,
                                       queue_digit=self.callback.agi_queue_digit, tasks=self.tasks)
        self.transfers = TransferService(self._config, self.acd, self.ami, node=node,
                                         agent_channel=lambda a: self.supervision.agent_channels.get(a),
                                         on_consult=self.recording.follow)
        self.parking = ParkingService(self._config, self.acd, self.transfers)
        self.conference = ConferenceService(self._config, self.acd, self.ami, self.transfers)
        self.access = AccessService(cfg, db=self.db)
        self.cards = CardsMonitor(cfg.cards, self.metrics.registry)  # span alarms (DAHDI cards)
        self.dialer = _build_dialer(self)
        self.acd.listeners.agent_changed.append(lambda a: self.dialer.wake())
        self.acd.listeners.call_answered.append(self.dialer.on_call_answered)
        self.acd_handlers = AcdHandlers(self._config, self.acd, self.bus, self.ivr, lookup_call=self.lookup_call,
                                        aht_of=self._aht_of, on_connected=self.recording.connected,
                                        dial_callback=self._dial_callback, callback_prompt=self._waiting_prompts,
                                        dialer=lambda: self.dialer)
        routes: dict[str, Callable[..., Any]] = {}
        for part in (self.ivr.routes(), self.acd_handlers.routes(), self.callback.routes(), self.messages.routes(),
                     self.survey.routes(), self.amd_handlers.routes(), self.recording.agi_routes(),
                     self.supervision.agi_routes(), self.transfers.agi_routes(),
                     self.parking.agi_routes(), self.conference.agi_routes()):
            routes.update(part)
        self.agi = AgiServer(cfg.agi.host, cfg.agi.port, routes,
                             on_session=lambda s, r: self.metrics.agi_sessions.labels(s, r).inc())
        self.live = LiveFloor(cfg, acd_state=lambda: self.acd.state, stats=lambda: self.stats.snapshot,
                              campaigns=self.dialer.status, campaign_of=self.dialer.campaign_of)
        self.live.subscribe(self.bus)
        self.api = Api(Ports(cfg=self._config, access=self.access, live=self.live, acd=self.acd,
                             supervision=self.supervision, dialer=lambda: self.dialer, recording=self.recording,
                             db=self.db, journal_db=self.journal.db))
        self.webhooks = WebhookService(self._config, self.journal, self.db, self.bus, self.tasks, self.metrics.registry,
                                       live_call=lambda call_id: self.acd.state.calls.get(call_id))
        self.api.p.extra_routes.append(webhook_routes(self.webhooks))
        self.api.p.extra_routes.append(crm_routes(self.crm))
        self.api.p.extra_routes.append(transfer_routes(self.transfers))
        self.api.p.extra_routes.append(conference_routes(self.conference))
        self.api.p.customer_of = self.live.customer_of = self.crm.record
        self.provisioning = (ProvisioningServer(self._config, self.metrics.registry)
                             if cfg.provisioning.enabled else None)
        self._http: web.AppRunner | None = None
        self.metrics.registry.register(StatsCollector(self.status))
        self.trunks = trunk_regs.Registrations(lambda: self.cfg.trunks, time.time)  # carrier registrations
        self.metrics.registry.register(self.trunks)
        self.metrics.watch_sizes(self.sizes)

    def sizes(self) -> dict[str, int]:
        """The daemon's own per-call maps and work in flight: all back to their idle sizes once the
        calls have ended (the leak check of ``bench load --leak``)."""
        d = self.dialer
        return {
            "acd_calls": len(self.acd.state.calls), "acd_legs": len(self.acd.legs),
            "acd_actions": len(self.acd.by_action), "acd_in_agi": len(self.acd.in_agi),
            "ami_in_flight": self.ami.in_flight, "agi_sessions": self.agi.open_sessions,
            "tasks": self.tasks.running, "recordings_active": len(self.recording.active),
            "recordings_following": len(self.recording.following),
            "recordings_finalizing": len(self.recording.finalizing),
            "supervision_channels": len(self.supervision.agent_channels),
            "dialer_lines": len(d.lines), "dialer_actions": len(d.by_action), "dialer_calls": len(d.by_call),
            "amd_streams": self.amd.streams, "amd_verdicts": len(self.amd_handlers.verdicts),
            "db_pending": self.db.pending, **self.live.sizes(), **self.webhooks.sizes(), **self.messages.sizes(),
            **(self.provisioning.sizes() if self.provisioning else {}),
        }

    def _config(self) -> config_mod.Config:
        return self.cfg

    # ------------------------------------------------------------------ lifecycle
    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stop)
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGHUP, lambda: self.tasks.spawn(self.reload(), "reload"))
        await self.agi.start()
        await self.amd.start()
        await self.recording.start()
        await self.supervision.start()
        await self.access.start()
        await self.webhooks.start()
        await self._start_http()
        if self.provisioning is not None:
            await self.provisioning.start()
        log.info("daemon.started", agi=f"{self.cfg.agi.host}:{self.cfg.agi.port}",
                 http=f"{self.cfg.http.host}:{self.cfg.http.port}", database=self.cfg.daemon.database)
        for cb in await self.db.run(self.journal.callbacks):  # callers who hung up keeping their place
            self.acd.submit(acd.CallbackRestored(cb))
            log.info("callback.restored", call_id=cb.call_id, queue=cb.queue, attempts=cb.attempts)
        self.tasks.spawn(self.ami.run(), "ami", essential=True)
        self.tasks.spawn(self.lag.run(), "loop-lag", essential=True)
        self.tasks.spawn(self.stats.run(self.stats_db), "stats", essential=True)
        self.tasks.spawn(self._sweep_loop(), "sweep", essential=True)
        self.tasks.spawn(self.dialer.run(), "dialer", essential=True)
        self.tasks.spawn(self._floor_loop(), "live-floor", essential=True)
        self.tasks.spawn(self.api.flush_loop(), "live-streams", essential=True)
        self.tasks.spawn(self.webhooks.run(), "webhooks", essential=True)
        start_watchdog(self.alive, lambda: {"ami": self.tasks.alive("ami"), "agi": self.agi.serving,
                                            "audiosocket": self.amd.serving,
                                            "dialer": self.tasks.alive("dialer")})
        await self.stopped.wait()
        sd_notify("STOPPING=1")
        self.ami.stop()
        await self.tasks.close()
        await self.agi.close()
        await self.amd.close()
        await self.api.close_streams()  # open event streams end, so the HTTP shutdown does not wait for them
        if self._http is not None:
            await self._http.cleanup()
        if self.provisioning is not None:
            await self.provisioning.close()
        await self.recording.close()
        await self.crm.close()
        await self.supervision.close()
        await self.access.close()
        await self.webhooks.close()
        await self.db.drain()
        self.db.close()
        await self.stats_db.run(self.stats.close)  # its connection belongs to that thread
        self.stats_db.close()
        self.journal.close()
        self.customers.close()
        self.message_store.close()
        log.info("daemon.stopped", exit_code=self.exit_code)
        return self.exit_code

    def stop(self) -> None:
        self.stopped.set()

    def _fatal(self, task: str, exc: BaseException | None) -> None:
        """An essential task died: a half-alive daemon is worse than one systemd restarts."""
        log.error("daemon.fatal", task=task, error=repr(exc) if exc else "exited")
        self.exit_code = 1
        self.stop()

    def alive(self) -> bool:
        """What the watchdog vouches for: AMI reader, FastAGI, AudioSocket and the dialler all running."""
        return (all(self.tasks.alive(n) for n in ("ami", "loop-lag", "dialer")) and self.agi.serving and self.amd.serving
                and not self.stopped.is_set())

    async def _sweep_loop(self) -> None:
        """Bounded maps: forget legs, verdicts and lines whose end was never reported."""
        while True:
            await asyncio.sleep(SWEEP_S)
            self.acd.sweep()
            self.amd_handlers.expire()

    async def _floor_loop(self) -> None:
        """Push the floor's figures (waits, service levels ...) to connected browsers."""
        while True:
            await asyncio.sleep(self.cfg.wallboard.floor_every_s)
            self.live.push_floors()

    # ------------------------------------------------------------------ reload
    async def reload(self) -> bool:
        """Re-read the config (conf.d included); apply it to every service; re-render Asterisk's files
        and reload the affected modules. A bad config is refused with its key paths; the old stays."""
        if self.config_path is None:
            log.warning("config.reload_unavailable", reason="started without a config path")
            return False
        try:
            new = await asyncio.to_thread(config_mod.load, self.config_path)
        except config_mod.ConfigError as e:
            return self._reload_refused(list(e.problems))
        fixed = [k for k in ("ami", "agi", "http", "audiosocket") if getattr(new, k) != getattr(self.cfg, k)]
        if new.daemon.database != self.cfg.daemon.database:
            fixed.append("daemon.database")
        if _listener(new.provisioning) != _listener(self.cfg.provisioning):
            fixed.append("provisioning.enabled/bind/port/tls")
        if fixed:
            return self._reload_refused([f"{k}: changed; takes effect only on restart" for k in fixed])
        try:
            self.acd.reconfigure(new)
        except acd.ReconfigureRefused as e:
            return self._reload_refused(e.problems)
        old, self.cfg = self.cfg, new
        self.stats.reconfigure(new)
        self.recording.reconfigure(new)
        self.supervision.reconfigure(new)
        self.access.reconfigure(new)
        self.live.reconfigure(new)
        self.webhooks.reconfigure(new)
        if self.provisioning is not None:
            self.provisioning.reconfigure(new)
        self.cards.reconfigure(new.cards)
        await self.dialer.apply_config(new)
        asterisk = await self._reload_asterisk(new)
        self.generation += 1
        self.last_reload = {"ok": True, "at": time.time(), "problems": [], "asterisk": asterisk}
        log.info("config.reloaded", generation=self.generation, agents=len(new.agents), queues=len(new.queues),
                 added_agents=sorted(set(new.agents) - set(old.agents)),
                 removed_agents=sorted(set(old.agents) - set(new.agents)),
                 added_queues=sorted(set(new.queues) - set(old.queues)), asterisk=asterisk)
        return True

    def _reload_refused(self, problems: list[str]) -> bool:
        self.last_reload = {"ok": False, "at": time.time(), "problems": problems}
        log.error("config.reload_refused", problems=problems)
        return False

    async def _reload_asterisk(self, cfg: config_mod.Config) -> str:
        """Render Asterisk's files where it reads them and reload the modules that use them."""
        out = cfg.daemon.asterisk_config_dir
        if not out:
            return "not configured"
        await asyncio.to_thread(write, render(cfg), out)
        cmd = list(cfg.daemon.asterisk_reload)
        if not cmd:
            return "rendered"
        for module in ("module reload res_pjsip.so", "dialplan reload", "moh reload", "module reload features"):
            proc = await asyncio.create_subprocess_exec(*cmd, module, stdout=subprocess.DEVNULL,
                                                        stderr=subprocess.PIPE)
            _, err = await proc.communicate()
            if proc.returncode != 0:
                log.error("asterisk.reload_failed", command=module, error=err.decode(errors="replace")[:200])
                return "reload failed"
        return "reloaded"

    # ------------------------------------------------------------------ helpers given to the features
    async def lookup_call(self, call_id: str) -> Any:
        """A journal record, read on the database thread (posted writes before it are in)."""
        return await self.db.run(self.journal.call, call_id)

    async def _dial_callback(self, s: Any, c: acd.Call) -> None:
        """The agent leg of a callback answered: a click-to-call dials as features.crm says, a callback as its
        queue (after the agent heard the message the caller left, if any)."""
        if c.direct:
            await self.crm.dial(s, c)
            return
        await self.messages.before_dial(s, c)
        await self.callback.dial(s, c)

    async def _waiting_prompts(self, s: Any, c: acd.Call) -> None:
        """At a queue hook: the callback offer, then the leave-a-message option."""
        await self.callback.prompt(s, c)
        if not self.acd.offered(c.call_id):
            await self.messages.prompt(s, c)

    def _aht_of(self, queue: str) -> float | None:
        fig = self.stats.queue_figures().get(queue)
        return fig.aht_s if fig else None

    def _dial_back(self, number: str, trunk: str) -> str | None:
        """The trunk's allow-list decides (spoofed caller IDs, premium-rate, abroad unless allowed)."""
        conf = self.cfg.trunks.get(trunk)
        return dial_back_number(number, conf, self.cfg.site) if conf is not None else None

    def caller_gone(self, call_id: str) -> None:
        """The dialler gives up on a dialled person (no agent within 2 s): out of the queue now."""
        self.acd.submit(acd.CallerLeft(call_id))

    def compliance(self, channel: str, call_id: str) -> None:
        """Play the campaign's compliance message to a dropped call, then hang up (cc-abandon)."""
        log.info("dialer.compliance", call_id=call_id)
        self.bus.publish(ev.CallOutcome(call_id, "abandoned-dialer"))
        self.tasks.spawn(self.acd.redirect(channel, cc.CTX_ABANDON), "acd.redirect")

    # ------------------------------------------------------------------ AMI
    def _on_ami_event(self, msg: Message) -> None:
        if msg.event == "FullyBooted":  # sent at each login, before on_up: when this Asterisk started
            self._started_at = asterisk_started_at(msg, time.time())
        if self._sync.running:
            self._sync.buffered.append(msg)
            return
        self._dispatch(msg)

    def _dispatch(self, msg: Message) -> None:
        """Each feature sees the event; one that raises is logged and the others still run."""
        if msg.suspicious and msg.event != "TestEvent":  # CR/LF caller text: folded; forged keys read as absent
            log.warning("ami.hostile_text", ami_event=msg.event[:40], folded=msg.folded,
                        untrusted=sorted(msg.ambiguous)[:8])
        self._guard("recording", self.recording.on_event, msg)
        self._guard("supervision", self.supervision.on_event, msg)
        self._guard("cards", self.cards.on_event, msg)
        self._guard("trunks", self.trunks.on_event, msg)
        self._guard("messages", self.messages.on_event, msg)
        self._guard("transfers", self.transfers.on_ami_event, msg)
        self._guard("parking", self.parking.on_ami_event, msg)
        self._guard("conference", self.conference.on_ami_event, msg)
        owned = self._guard("dialer", self._dialer_event, msg)
        if not owned:  # an OriginateResponse of the dialler's own lines is not the ACD's
            self._guard("acd", lambda m: self.acd.on_ami_event(self.node, m), msg)

    @staticmethod
    def _guard(feature: str, handler: Callable[[Message], object], msg: Message) -> object:
        try:
            return handler(msg)
        except Exception as e:  # noqa: BLE001 - one feature's bug must not stop routing
            log.error("ami.handler_failed", feature=feature, ami_event=msg.event[:40], error=repr(e), exc_info=e)
            return None

    def _dialer_event(self, msg: Message) -> bool:
        if msg.event == "OriginateResponse":
            return bool(self.dialer.on_originate_response(msg))
        if msg.event == "Hangup" and not is_zombie(msg):
            self.dialer.on_hangup(msg.get("Uniqueid"), msg.get("Cause"))
        return False

    async def _on_ami_up(self) -> None:
        """After every (re)connect: snapshot Asterisk, rebuild our view, then start acting again."""
        self.metrics.ami_reconnects.inc()
        self._sync = _Sync(running=True)
        try:
            chans = await self.ami.list_action("CoreShowChannels")
            devs = await self.ami.list_action("DeviceStateList")
            spans = await self._dahdi_status()
            regs = await trunk_regs.snapshot(self.ami)
        except BaseException:
            self._sync = _Sync()
            raise
        buffered = self._sync.buffered
        self._sync = _Sync()
        restarted = asterisk_restarted(self._previous_start, self._started_at)
        self._previous_start, self._started_at = self._started_at or self._previous_start, None
        self.acd.resync(self.node, chans, devs, restarted=restarted)
        self.recording.resynced(chans)
        self.supervision.resynced(chans)
        self.messages.resynced(chans)
        self.dialer.resync(chans, self.node)
        self.cards.resynced(spans)
        self.trunks.resynced(regs)
        for msg in buffered:  # events that raced the snapshot; the core tolerates stale ones
            self._dispatch(msg)
        self.metrics.ami_connected.set(1)
        log.info("ami.resynced", channels=len(chans), waiting=len(self.acd.state.waiting()), asterisk_restarted=restarted)
        if not self._ready_sent:
            sd_notify("READY=1\nSTATUS=AMI logged in and synced")
            self._ready_sent = True

    def _on_ami_down(self) -> None:
        self.metrics.ami_connected.set(0)
        self.acd.ami_down(self.node)
        self.dialer.ami_down(self.node)
        self.cards.ami_down()
        sd_notify("STATUS=AMI disconnected, reconnecting")

    # ------------------------------------------------------------------ HTTP
    def status(self) -> dict[str, object]:
        """The live screen's data: live state from memory, window figures from the stats cache (no SQL)."""
        st = build_status(self.cfg.queues, self.acd.state, self.stats.snapshot, time.time(),
                          campaigns=self.dialer.status(),
                          config={"generation": self.generation, "last_reload": self.last_reload})
        st["trunks"] = self.trunks.status()  # carrier registrations (callcenter.features.trunks)
        if self.cards.enabled:
            st["cards"] = self.cards.status()
        return st

    async def _dahdi_status(self) -> list[Message] | None:
        """The DAHDI spans' alarms (``DAHDIShowStatus``) when cards are configured; None when Asterisk
        cannot tell (no chan_dahdi, no DAHDI): the spans then read as unknown."""
        if not self.cards.enabled:
            return None
        try:
            return await self.ami.list_action("DAHDIShowStatus", timeout=5.0)
        except (AmiError, asyncio.TimeoutError) as e:
            log.warning("card.status_unavailable", error=str(e)[:200])
            return None

    async def _start_http(self) -> None:
        self._http = await start_http(self.cfg.http.host, self.cfg.http.port, registry=self.metrics.registry,
                                      status=self.status, healthy=lambda: self.acd.state.synced,
                                      features=(self.api.add_to,), middlewares=(self.api.middleware(),))


def asterisk_started_at(booted: Message, now: float) -> float | None:
    """When Asterisk started, from a FullyBooted event's ``Uptime`` (seconds; None without one)."""
    up = booted.get("Uptime")
    return now - int(up) if up.isascii() and up.isdigit() else None


def asterisk_restarted(previous: float | None, current: float | None, slack_s: float = 3.0) -> bool:
    """Whether the Asterisk of this session started after the one of the previous session (Uptime
    is whole seconds and read at our login: ``slack_s`` absorbs that). Unknown either way: False."""
    return previous is not None and current is not None and current > previous + slack_s


def _listener(p: Any) -> tuple[object, ...]:
    return (p.enabled, p.bind, p.port, p.tls_cert, p.tls_key)


def _amd_profiles(cfg: config_mod.Config) -> dict[str, AmdParams]:
    return {name: AmdParams.from_mapping({**cfg.amd, **prof}) for name, prof in cfg.amd_profiles.items()}


def _build_dialer(d: Daemon) -> Any:
    """Always built: campaigns live in the database (YAML ones upserted at start and on reload), so a
    campaign made with the CLI is dialled too. It reaches the daemon only through its ports."""
    from callcenter.features.dialer.live import LiveDialer
    from callcenter.features.dialer.ports import Host
    from callcenter.features.dialer.store import LeadStore
    host = Host(ami=d.ami, metrics=d.metrics, acd_state=lambda: d.acd.state,
                queue_aht=lambda queue, now: d._aht_of(queue), caller_gone=d.caller_gone, compliance=d.compliance,
                publish=d.bus.publish)
    dialer = LiveDialer(host, d.cfg, LeadStore(d.cfg.daemon.database), d.db, node=d.node)
    d.recording.campaign_of = dialer.campaign_of  # a dialled call follows its campaign's recording policy
    d.recording.campaign_conf = dialer.campaign_conf  # a CLI campaign's settings live in the store only
    return dialer


async def serve(cfg: config_mod.Config, config_path: str | Path | None = None) -> int:
    daemon = Daemon(cfg, config_path)
    # Everything built so far lives as long as the daemon: keep it out of the collector's scans, so a
    # full collection (they grow with queued writes while the database is locked) stays short.
    gc.collect()
    gc.freeze()
    return await daemon.run()
