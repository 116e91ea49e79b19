"""The daemon: wires AMI, FastAGI, HTTP, the SQLite journal and the pure ACD core together.

Data flows one way: socket -> codec -> event -> ``acd.step`` -> commands -> adapter.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import time
import uuid
from dataclasses import dataclass, field

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from callcenter import config as config_mod
from callcenter.features.stats import figures as stats_mod
from callcenter.asterisk.agi_server import AgiServer, AgiSession, ChannelGone
from callcenter.features.amd.server import AmdServer, Verdict
from callcenter.asterisk.ami_client import AmiClient, AmiError, NotConnected
from callcenter.features.acd import model as acd
from callcenter.features.ivr import model as ivr
from callcenter.features.amd.detector import AmdParams
from callcenter.features.acd.agents import AgentState
from callcenter.features.recording.service import Media
from callcenter.features.dialer.live import LiveDialer
from callcenter.features.dialer.store import LeadStore
from callcenter.protocol.ami import Message
from callcenter.journal import Store
from callcenter.telemetry import Metrics, StatsCollector

__all__ = ["Daemon", "sanitize_caller_id", "originate_headers", "sd_notify"]

EMPTY = stats_mod.Figures(0, 0, 0, 0, None, None, None)

log = structlog.get_logger("callcenter")
DTMF_ESCAPES = "0123456789*#"


# --------------------------------------------------------------------------- caller-controlled text

_NUM_KEEP = re.compile(r"[^0-9+*#]")
_NAME_KEEP = re.compile(r"[^\w .,'-]", re.UNICODE)


def sanitize_caller_id(name: str, num: str) -> tuple[str, str]:
    """Caller ID is whatever the far end sent: keep only harmless characters, bounded length."""
    num = _NUM_KEEP.sub("", num)[:32]
    name = _NAME_KEEP.sub("", name.replace("\r", " ").replace("\n", " "))[:48].strip()
    return name, num


def originate_headers(offer: acd.Offer, channel_id: str, caller_context: str = "cc-agent") -> list[tuple[str, str]]:
    """The AMI Originate that rings an agent's phone; the agent leg bridges to the caller when answered."""
    name, num = sanitize_caller_id(offer.caller_name, offer.caller_num)
    return [
        ("Channel", f"PJSIP/{offer.phone}"),
        ("Context", caller_context),
        ("Exten", "s"),
        ("Priority", "1"),
        ("Timeout", str(int(offer.timeout_s * 1000))),
        ("CallerID", f'"{name}" <{num}>'),
        ("ChannelId", channel_id),
        ("Async", "true"),
        ("Variable", "CC_ROLE=agent"),
        ("Variable", f"CC_AGENT={offer.agent}"),
        ("Variable", f"CC_CALL_ID={offer.call_id}"),
        ("Variable", f"CC_CALLER={offer.caller_channel}"),
    ]


CALLBACK_NUMBER = re.compile(r"\+?[0-9]{3,15}")


def _callback_number(caller_num: str) -> str | None:
    """The number to call back: the caller ID if it is a plain number (it reaches a dial string)."""
    return caller_num if CALLBACK_NUMBER.fullmatch(caller_num) else None


def _epoch(text: str) -> float | None:
    """A Unix time kept in a channel variable (CC_ENTERED), or None if it is not one."""
    return float(text) if re.fullmatch(r"\d+(\.\d+)?", text) else None


def encode_skills(skills: tuple[tuple[str, int], ...]) -> str:
    """``(("spanish", 3),)`` -> ``spanish:3`` (config names only: safe in a channel variable)."""
    return ",".join(f"{s}:{lv}" for s, lv in skills)


def decode_skills(text: str) -> tuple[tuple[str, int], ...]:
    out = []
    for part in text.split(","):
        m = re.fullmatch(r"([a-z][a-z0-9_-]{0,31}):(\d{1,2})", part)
        if m:
            out.append((m[1], int(m[2])))
    return tuple(out)


# --------------------------------------------------------------------------- systemd

def sd_notify(message: str) -> bool:
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return False
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        try:
            s.connect(addr)
            s.sendall(message.encode())
        except OSError:
            return False
    return True


@dataclass
class Leg:
    call_id: str
    agent: str
    action_id: str
    channel: str = ""  # learnt from Newchannel


@dataclass
class _Sync:
    running: bool = False
    buffered: list[Message] = field(default_factory=list)


# --------------------------------------------------------------------------- daemon

class Daemon:
    def __init__(self, cfg: config_mod.Config):
        self.cfg = cfg
        self.store = Store(cfg.daemon.database)
        self.metrics = Metrics()
        self.state = acd.initial_state(cfg, self.store.agents())
        self.legs: dict[str, Leg] = {}  # ChannelId of agent legs we originated
        self.by_action: dict[str, str] = {}  # Originate ActionID -> ChannelId
        self._resync_legs: dict[tuple[str, str], str] = {}  # (call_id, agent) -> channel, from the snapshot
        self._pause_reason: dict[str, str | None] = {
            a.name: (a.pause_reason if a.state == AgentState.PAUSED else None) for a in self.state.agents.values()}
        self._sync = _Sync()
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[object]] = set()
        self._ready_sent = False
        self.stopped = asyncio.Event()
        self.synced = asyncio.Event()
        self.ami = AmiClient(cfg.ami.host, cfg.ami.port, cfg.ami.username, cfg.ami.secret,
                             on_event=self._on_ami_event, on_up=self._on_ami_up, on_down=self._on_ami_down,
                             max_backoff_s=cfg.daemon.reconnect_max_s)
        self.agi = AgiServer(cfg.agi.host, cfg.agi.port, {
            "ivr": self.agi_ivr,
            "queue-hook": self.agi_queue_hook,
            "queue-digit": self.agi_queue_digit,
            "fallback": self.agi_fallback,
            "agent": self.agi_agent,
            "amd-result": self.agi_amd_result,
            "agent-claim": self.agi_agent_claim,
            "amd-start": self.agi_amd_start,
            "outbound-answered": self.agi_outbound_answered,
        }, on_session=lambda s, r: self.metrics.agi_sessions.labels(s, r).inc())
        self.media = Media(cfg, self.ami, lambda: self.state.calls)  # recording and supervision
        self.agi.routes.update(self.media.agi_routes())
        self._http: web.AppRunner | None = None
        self._hooks: dict[str, asyncio.Event] = {}  # call id -> set when its running queue hook returns
        self.amd_verdicts: dict[str, Verdict] = {}  # AudioSocket UUID -> final verdict, until the AGI takes it
        self.amd = AmdServer(cfg.audiosocket.host, cfg.audiosocket.port, AmdParams.from_mapping(cfg.amd),
                             self._amd_final, {name: AmdParams.from_mapping({**cfg.amd, **prof})
                                               for name, prof in cfg.amd_profiles.items()})
        self.dialer = LiveDialer(self, cfg, LeadStore(cfg.daemon.database)) if cfg.campaigns else None
        if self.dialer is not None:  # a dialled call follows its campaign's recording policy
            self.media.campaign_of = self.dialer.campaign_of
        self.metrics.registry.register(StatsCollector(self.status))
        self._refresh_gauges()

    # ------------------------------------------------------------------ lifecycle
    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stop)
        await self.agi.start()
        await self.amd.start()
        await self.media.start()
        await self._start_http()
        log.info("daemon.started", agi=f"{self.cfg.agi.host}:{self.cfg.agi.port}",
                 http=f"{self.cfg.http.host}:{self.cfg.http.port}", database=self.cfg.daemon.database)
        self._start_watchdog()
        for cb in self.store.callbacks():  # callers who hung up keeping their place
            self.submit(acd.CallbackRestored(cb))
            log.info("callback.restored", call_id=cb.call_id, queue=cb.queue, attempts=cb.attempts)
        ami_task = asyncio.create_task(self.ami.run())
        if self.dialer is not None:
            self._spawn(self.dialer.run())
        await self.stopped.wait()
        sd_notify("STOPPING=1")
        self.ami.stop()
        await ami_task
        await self.agi.close()
        await self.amd.close()
        if self._http is not None:
            await self._http.cleanup()
        for t in list(self._tasks):
            t.cancel()
        await self.media.close()
        self.store.close()
        log.info("daemon.stopped")

    def stop(self) -> None:
        self.stopped.set()

    def _start_watchdog(self) -> None:
        usec = os.environ.get("WATCHDOG_USEC")
        if not usec or not usec.isdigit():
            return
        interval = int(usec) / 2e6
        loop = asyncio.get_running_loop()

        def ping() -> None:  # runs only if the event loop is alive, which is what the watchdog asks
            sd_notify("WATCHDOG=1")
            loop.call_later(interval, ping)

        ping()

    def _spawn(self, coro: object) -> None:
        t = asyncio.ensure_future(coro)  # type: ignore[arg-type]
        self._tasks.add(t)
        t.add_done_callback(self._task_done)

    def _task_done(self, t: asyncio.Task[object]) -> None:
        self._tasks.discard(t)
        if not t.cancelled() and t.exception() is not None:
            log.error("daemon.task_failed", error=repr(t.exception()))

    # ------------------------------------------------------------------ the core
    def submit(self, event: object) -> list[acd.Command]:
        now = time.time()
        self.state, cmds = acd.step(self.cfg, self.state, event, now)
        for c in cmds:
            self._execute(c, now)
        self._reschedule()
        self._refresh_gauges()
        return cmds

    def _reschedule(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        at = acd.next_deadline(self.cfg, self.state, time.time())
        if at is not None:
            delay = max(0.0, at - time.time()) + 0.005
            self._timer = asyncio.get_running_loop().call_later(delay, self.submit, acd.Tick())

    def _execute(self, c: acd.Command, now: float) -> None:
        match c:
            case acd.Offer():
                self.store.call_route(c.call_id, c.explain)
                self._spawn(self._originate(c))
            case acd.CancelOffer():
                self._spawn(self._cancel(c))
            case acd.Fallback():
                self.store.call_outcome(c.call_id, "fallback")
                log.info("call.fallback", call_id=c.call_id, queue=c.queue, reason=c.reason)
                if not c.immediate:  # refused at entry: the IVR session still holds the caller
                    self._spawn(self._redirect(c.channel, "cc-fallback"))
            case acd.Requeue():
                self.store.call_overflow(c.call_id, c.queue)
                log.info("call.overflow", call_id=c.call_id, queue=c.queue, reason=c.reason)
                self._spawn(self._setvar(c.channel, "CC_QUEUE", c.queue))
            case acd.AgentChanged(agent=a):
                self.store.save_agent(a.name, a.state, a.pause_reason, a.idle_since)
                before = self._pause_reason.get(a.name)
                now_reason = a.pause_reason if a.state == AgentState.PAUSED else None
                if now_reason != before:  # pause intervals per reason, for durations in the statistics
                    self.store.pause_changed(a.name, now_reason, now)
                    self._pause_reason[a.name] = now_reason
                log.info("agent.state", agent=a.name, state=str(a.state), reason=a.pause_reason or None,
                         call_id=a.call_id)
                if self.dialer is not None:
                    self.dialer.wake()
            case acd.CallAnswered():
                if self.dialer is not None:
                    self.dialer.on_call_answered(c.call_id, c.agent)
                self.store.call_answered(c.call_id, c.agent, c.at)
                self.metrics.offers.labels("answered").inc()
                log.info("call.answered", call_id=c.call_id, agent=c.agent)
            case acd.CallEnded():
                self.store.call_ended(c.call_id, c.outcome, c.at)
                self.metrics.calls.labels(c.outcome).inc()
                log.info("call.ended", call_id=c.call_id, outcome=c.outcome, agent=c.agent)
            case acd.CallbackStored(call=cb):
                self.store.save_callback(cb, now)
                log.info("callback.stored", call_id=cb.call_id, queue=cb.queue, attempts=cb.attempts,
                         not_before=cb.not_before or None, connected=cb.connected)
            case acd.CallbackDone():
                self.store.delete_callback(c.call_id)
                self.metrics.calls.labels("callback-" + c.outcome).inc()
                log.info("callback.done", call_id=c.call_id, outcome=c.outcome)
            case acd.Rejected():
                log.warning("core.rejected", event=type(c.event).__name__, reason=c.reason)

    def _refresh_gauges(self) -> None:
        counts = {s: 0 for s in AgentState}
        for a in self.state.agents.values():
            counts[a.state] += 1
        for s, n in counts.items():
            self.metrics.agents.labels(str(s)).set(n)
        for q in self.cfg.queues:
            self.metrics.waiting.labels(q).set(len(self.state.waiting(q)))

    # ------------------------------------------------------------------ AMI side
    async def _originate(self, offer: acd.Offer) -> None:
        cid = f"ccagent-{uuid.uuid4().hex[:20]}"
        aid = self.ami.new_action_id()
        self.legs[cid] = Leg(offer.call_id, offer.agent, aid)
        self.by_action[aid] = cid
        structlog.contextvars.bind_contextvars(call_id=offer.call_id, agent=offer.agent)
        log.info("offer.ring", call_id=offer.call_id, agent=offer.agent, phone=offer.phone, why=offer.explain)
        try:
            await self.ami.action("Originate", originate_headers(offer, cid), action_id=aid)
        except (AmiError, NotConnected, asyncio.TimeoutError) as e:
            log.warning("offer.originate_failed", call_id=offer.call_id, agent=offer.agent, error=str(e))
            self.legs.pop(cid, None)
            self.by_action.pop(aid, None)
            self.metrics.offers.labels("error").inc()
            self.submit(acd.OfferFailed(offer.call_id, offer.agent, "originate-error"))

    async def _cancel(self, c: acd.CancelOffer) -> None:
        leg = next((leg for leg in self.legs.values() if leg.call_id == c.call_id and leg.agent == c.agent), None)
        channel = leg.channel if leg else ""
        if not channel:
            # After a restart we know the leg only from Asterisk's snapshot.
            channel = self._resync_legs.get((c.call_id, c.agent), "")
        if channel:
            with contextlib.suppress(AmiError, NotConnected, asyncio.TimeoutError):
                await self.ami.action("Hangup", {"Channel": channel, "Cause": "16"})

    async def _setvar(self, channel: str, name: str, value: str) -> None:
        """Keep the channel's own record right (a restarted daemon reads it back)."""
        try:
            await self.ami.action("Setvar", {"Channel": channel, "Variable": name, "Value": value})
        except (AmiError, NotConnected, asyncio.TimeoutError) as e:
            log.warning("call.setvar_failed", channel=channel, variable=name, error=str(e))

    async def _redirect(self, channel: str, context: str) -> None:
        try:
            await self.ami.action("Redirect", {"Channel": channel, "Context": context, "Exten": "s",
                                               "Priority": "1"})
        except (AmiError, NotConnected, asyncio.TimeoutError) as e:
            log.warning("call.redirect_failed", channel=channel, error=str(e))

    def _on_ami_event(self, msg: Message) -> None:
        if self._sync.running:
            self._sync.buffered.append(msg)
            return
        self._handle_event(msg)

    def _handle_event(self, msg: Message) -> None:
        ev = msg.event
        self.media.on_event(msg)
        if ev == "Newchannel":
            leg = self.legs.get(msg.get("Uniqueid"))
            if leg is not None:
                leg.channel = msg.get("Channel")
        elif ev == "OriginateResponse":
            if self.dialer is not None and self.dialer.on_originate_response(msg):
                return
            cid = self.by_action.pop(msg.action_id, None)
            leg = self.legs.get(cid) if cid else None
            if leg is None:
                log.info("ami.originate_response_unmatched", action_id=msg.action_id[:40],
                         response=msg.get("Response"), reason=msg.get("Reason"))
                return
            if msg.get("Response").lower() == "success":
                self.metrics.offers.labels("answered-leg").inc()
                self.submit(acd.OfferAnswered(leg.call_id, leg.agent))
            else:
                self.legs.pop(cid, None)  # type: ignore[arg-type]
                self.metrics.offers.labels("noanswer").inc()
                log.info("offer.failed", call_id=leg.call_id, agent=leg.agent, reason=msg.get("Reason"))
                self.submit(acd.OfferFailed(leg.call_id, leg.agent, msg.get("Reason")))
        elif ev == "Hangup":
            v = msg.variables()
            role, call_id = v.get("CC_ROLE", ""), v.get("CC_CALL_ID", "")
            if msg.get("Channel").endswith("<ZOMBIE>"):
                return
            if self.dialer is not None:
                self.dialer.on_hangup(msg.get("Uniqueid"), msg.get("Cause"))
            if role == "caller" and call_id:
                self.submit(acd.CallerLeft(call_id))
            elif role == "agent" and call_id:
                self.legs.pop(msg.get("Uniqueid"), None)
                self.submit(acd.AgentHungUp(v.get("CC_AGENT", ""), call_id))
        elif ev == "DialEnd":  # an agent leg dialling a callback: how it went
            v = msg.variables()
            c = self.state.calls.get(v.get("CC_CALL_ID", ""))
            if v.get("CC_ROLE") == "agent" and c is not None and c.callback:
                log.info("callback.dialled", call_id=c.call_id, agent=v.get("CC_AGENT"), status=msg.get("DialStatus"))
                self.submit(acd.CallbackDialed(c.call_id, v.get("CC_AGENT", ""), msg.get("DialStatus")))
        elif ev == "BridgeEnter":
            v = msg.variables()
            if v.get("CC_ROLE") == "agent" and int(msg.get("BridgeNumChannels") or 0) >= 2:
                log.info("call.bridged", call_id=v.get("CC_CALL_ID"), agent=v.get("CC_AGENT"),
                         bridge=msg.get("BridgeUniqueid"))
        elif ev == "DeviceStateChange":
            agent = self._agent_for_device(msg.get("Device"))
            if agent:
                self.submit(acd.DeviceState(agent, msg.get("State")))

    def _agent_for_device(self, device: str) -> str | None:
        if not device.startswith("PJSIP/"):
            return None
        return self.cfg.agent_by_phone(device[6:])

    async def _on_ami_up(self) -> None:
        """After every (re)connect: snapshot Asterisk, rebuild our view, then start acting again."""
        self.metrics.ami_reconnects.inc()
        self._sync = _Sync(running=True)
        try:
            chans = await self.ami.list_action("CoreShowChannels")
            devs = await self.ami.list_action("DeviceStateList")
        except BaseException:
            self._sync = _Sync()
            raise
        snaps = []
        self._resync_legs = {}
        for m in chans:
            v = m.variables()
            entered = v.get("CC_ENTERED", "")
            snap = acd.ChannelSnapshot(
                uniqueid=m.get("Uniqueid"), channel=m.get("Channel"), role=v.get("CC_ROLE", ""),
                call_id=v.get("CC_CALL_ID", ""), agent=v.get("CC_AGENT", ""), queue=v.get("CC_QUEUE", ""),
                entered_at=_epoch(entered),
                up=m.get("ChannelState") == "6", bridged=bool(m.get("BridgeId")), context=m.get("Context"),
                caller_num=m.get("CallerIDNum"), caller_name=m.get("CallerIDName"),
                priority=int(v["CC_PRIORITY"]) if v.get("CC_PRIORITY", "").isdigit() else 0,
                skills=decode_skills(v.get("CC_SKILLS", "")))
            snaps.append(snap)
            if snap.role == "agent":
                self._resync_legs[(snap.call_id, snap.agent)] = snap.channel
        devices = {}
        for m in devs:
            agent = self._agent_for_device(m.get("Device"))
            if agent:
                devices[agent] = m.get("State")
        buffered = self._sync.buffered
        self._sync = _Sync()
        self.submit(acd.Resync(tuple(snaps), devices))
        self.media.resynced(chans)
        for msg in buffered:  # events that raced the snapshot; the core tolerates stale ones
            self._handle_event(msg)
        self.metrics.ami_connected.set(1)
        self.synced.set()
        log.info("ami.resynced", channels=len(snaps), devices=len(devices),
                 waiting=len(self.state.waiting()))
        if not self._ready_sent:
            self._ready_sent = sd_notify("READY=1\nSTATUS=AMI logged in and synced")
            self._ready_sent = True

    def _on_ami_down(self) -> None:
        self.metrics.ami_connected.set(0)
        self.synced.clear()
        self.submit(acd.AmiDown())
        sd_notify("STATUS=AMI disconnected, reconnecting")

    # ------------------------------------------------------------------ AGI side
    async def _play(self, s: AgiSession, prompts: tuple[str, ...], escape: str = DTMF_ESCAPES,
                    stop_if_offered: str = "") -> str | None:
        for p in prompts:
            if stop_if_offered and self._offered(stop_if_offered):
                return None
            r = await s.cmd("STREAM FILE", p, escape)
            if r.value > 0:
                return chr(r.value)
        return None

    def _offered(self, call_id: str) -> bool:
        c = self.state.calls.get(call_id)
        return c is None or c.agent is not None

    async def _menu_input(self, s: AgiSession, play: ivr.Play) -> str | None:
        digit = await self._play(s, play.prompts)
        if digit is None:
            r = await s.cmd("WAIT FOR DIGIT", int(play.timeout_s * 1000))
            if r.value > 0:
                digit = chr(r.value)
        return digit

    async def _run_action(self, s: AgiSession, call_id: str, action: config_mod.Action,
                          path: tuple[str, ...] = ()) -> None:
        state, step = ivr.start(self.cfg, action, time.time())
        while isinstance(step, ivr.Play):
            assert state is not None
            self.store.call_path(call_id, path + state.path)
            log.info("ivr.menu", call_id=call_id, menu=state.menu, retry=state.retries)
            digit = await self._menu_input(s, step)
            state, step = ivr.press(self.cfg, state, digit, time.time())
        step_path = path + step.path
        self.store.call_path(call_id, step_path)
        if step.queue is not None:
            q = self.cfg.queues[step.queue]
            now = time.time()  # each queue counts its own wait (max wait, position) from entry
            for k, val in (("CC_QUEUE", step.queue), ("CC_ENTERED", f"{now:.3f}"),
                           ("CC_SKILLS", encode_skills(step.skills)), ("CC_PRIORITY", str(step.priority)),
                           ("CC_MOH", q.moh_class), ("CC_HOOK", str(q.hook_interval_s)), ("CC_NEXT", "queue")):
                await s.set_var(k, val)
            self.store.call_queued(call_id, step.queue, now)
            log.info("call.queued", call_id=call_id, queue=step.queue)
            name, num = s.env.values.get("agi_calleridname", ""), s.env.values.get("agi_callerid", "")
            cmds = self.submit(acd.CallQueued(call_id, step.queue, s.channel, num, name, now, step.priority,
                                              step.skills))
            refused = next((c for c in cmds if isinstance(c, acd.Fallback) and c.call_id == call_id), None)
            if refused is not None:  # full, or nobody to answer: the queue's fallback, right here
                await s.set_var("CC_NEXT", "")
                await self._run_action(s, call_id, q.fallback, step_path + (f"{refused.reason}:{step.queue}",))
        elif step.dial is not None:
            await s.set_var("CC_TARGET", step.dial)
            await s.set_var("CC_NEXT", "dial")
            self.store.call_ended(call_id, "dialled", time.time())
            self.metrics.calls.labels("dialled").inc()
        else:
            await s.set_var("CC_NEXT", "hangup")
            fell_back = any(p.startswith(("fallback:", "full:", "empty:")) for p in path)
            outcome = "fallback" if fell_back else "ivr-failure" if "failure" in step_path else "ivr-hangup"
            self.store.call_ended(call_id, outcome, time.time())
            self.metrics.calls.labels(outcome).inc()
            await self._play(s, step.hangup or (), escape="")
            await s.cmd("HANGUP")

    async def agi_ivr(self, s: AgiSession) -> None:
        """Inbound call: answer, run the DID's menu, then queue / dial / hang up."""
        did = s.env.args[0] if s.env.args else ""
        action = next((t.dids[did] for t in self.cfg.trunks.values() if did in t.dids), None)
        if action is None:
            log.warning("ivr.unknown_did", did=did[:32])
            await s.cmd("HANGUP")
            return
        call_id = uuid.uuid4().hex[:16]
        structlog.contextvars.bind_contextvars(call_id=call_id)
        env = s.env.values
        self.store.call_started(call_id, s.uniqueid, s.channel, env.get("agi_callerid", ""),
                                env.get("agi_calleridname", ""), did, time.time())
        await s.set_var("CC_CALL_ID", call_id)
        await s.set_var("CC_ROLE", "caller")
        log.info("call.started", call_id=call_id, did=did)
        try:
            await s.cmd("ANSWER")
            await self._run_action(s, call_id, action)
        except ChannelGone:
            self.store.call_ended(call_id, "abandoned-ivr", time.time())
            self.metrics.calls.labels("abandoned-ivr").inc()
            raise

    async def agi_queue_hook(self, s: AgiSession) -> None:
        """Called by the wait loop every ``hook_interval_s``: announcements; re-adopts a caller we lost.

        While it runs the caller is inside an AGI, where Asterisk must not bridge it (a channel
        pulled into a bridge mid-command can be left half-connected): an agent who answers
        meanwhile waits in ``agent-claim`` until the hook has returned (see :meth:`_hook_done`)."""
        call_id = await s.get_var("CC_CALL_ID")
        done = self._hooks.setdefault(call_id, asyncio.Event())
        done.clear()
        try:
            await self._queue_hook(s, call_id)
        finally:
            done.set()
            self._hooks.pop(call_id, None)

    async def _queue_hook(self, s: AgiSession, call_id: str) -> None:
        structlog.contextvars.bind_contextvars(call_id=call_id)
        c = self.state.calls.get(call_id)
        if c is None:
            if not self.state.synced:
                return  # just (re)started: the resync will adopt this caller; keep the music going
            queue = await s.get_var("CC_QUEUE")
            entered = await s.get_var("CC_ENTERED")
            rec = self.store.call(call_id) if re.match(r"^[0-9a-f]{16}$", call_id) else None
            if queue not in self.cfg.queues or rec is None or rec.answered_at or rec.ended_at:
                # Not ours, or a call we already connected or closed: it must not queue again.
                log.warning("call.unknown_in_queue", call_id=call_id[:32])
                await s.cmd("HANGUP")
                return
            at = _epoch(entered) or time.time()
            log.info("call.readopted", call_id=call_id, queue=queue)
            self.submit(acd.CallQueued(call_id, queue, s.channel, rec.caller_num, rec.caller_name, at))
            c = self.state.calls.get(call_id)
            if c is None:
                return
        q = self.cfg.queues[c.queue]
        if c.agent is not None:
            return  # being connected right now: stay quiet
        await self._play(s, q.announce, escape="", stop_if_offered=call_id)
        if self._offered(call_id):
            return
        pos = self.state.position(call_id)
        wants_ewt = q.announce_holdtime or (q.overflow is not None and q.overflow.expected_wait_s is not None)
        if wants_ewt and pos is not None:
            staffed = sum(1 for m in q.members if self.state.agents[m].state not in
                          (AgentState.LOGGED_OUT, AgentState.PAUSED))
            fig = self.queue_figures(time.time()).get(c.queue)
            ewt = stats_mod.expected_wait(pos, staffed, fig.aht_s if fig else None)
            if q.overflow is not None and q.overflow.expected_wait_s is not None and ewt > q.overflow.expected_wait_s:
                self.submit(acd.Overflow(call_id))
                return
            if q.announce_holdtime:
                minutes = max(1, round(ewt / 60))
                log.info("queue.holdtime", call_id=call_id, queue=c.queue, position=pos, staffed=staffed,
                         expected_wait_s=round(ewt, 1))
                if await self._play(s, ("queue-holdtime",), escape="", stop_if_offered=call_id) is None \
                        and not self._offered(call_id):
                    await s.cmd("SAY NUMBER", minutes, "")
                    await self._play(s, ("queue-minute" if minutes == 1 else "queue-minutes",), escape="",
                                     stop_if_offered=call_id)
        cb = q.callback
        if cb is not None and cb.prompt and not self._offered(call_id) and time.time() - c.entered_at >= cb.offer_after_s \
                and _callback_number(c.caller_num):
            await self._play(s, cb.prompt, escape="", stop_if_offered=call_id)
        if q.announce_position and pos is not None and not self._offered(call_id):
            log.info("queue.position", call_id=call_id, queue=c.queue, position=pos)
            if pos == 1:
                await self._play(s, ("queue-youarenext",), escape="", stop_if_offered=call_id)
            else:
                await self._play(s, ("queue-thereare",), escape="", stop_if_offered=call_id)
                said = await s.cmd("SAY NUMBER", pos - 1, "")
                await self._play(s, ("queue-callswaiting",), escape="", stop_if_offered=call_id)
                log.info("queue.position_announced", call_id=call_id, ahead=pos - 1, ok=said.code == 200)

    async def agi_queue_digit(self, s: AgiSession) -> None:
        """A digit pressed while waiting (WaitExten in cc-wait): the queue's callback digit takes a callback."""
        call_id = await s.get_var("CC_CALL_ID")
        digit = s.env.args[0] if s.env.args else ""
        c = self.state.calls.get(call_id)
        if c is None or c.agent is not None or c.callback:
            return
        structlog.contextvars.bind_contextvars(call_id=call_id, queue=c.queue)
        cb = self.cfg.queues[c.queue].callback
        if cb is None or digit != cb.digit:
            log.info("queue.digit_ignored", call_id=call_id, digit=digit[:1])
            return
        rec = self.store.call(call_id)
        number = _callback_number(c.caller_num)
        trunk = cb.trunk or self._trunk_of(rec.did if rec else "")
        if number is None or trunk is None or time.time() - c.entered_at < cb.offer_after_s:
            log.warning("callback.refused", call_id=call_id, valid_number=number is not None, trunk=trunk)
            await self._play(s, ("beeperr",), escape="")
            return
        self.submit(acd.CallbackRequested(call_id, number, trunk))
        if self.state.calls.get(call_id, c).callback != number:
            return  # offered to an agent meanwhile: stay
        self.store.call_outcome(call_id, "callback")
        log.info("callback.requested", call_id=call_id, queue=c.queue, position=self.state.position(call_id))
        await self._play(s, cb.confirm, escape="")
        await s.cmd("HANGUP")

    def _trunk_of(self, did: str) -> str | None:
        """The trunk a DID came in on, if it can dial out."""
        return next((n for n, t in self.cfg.trunks.items() if did in t.dids and t.host), None)

    async def agi_fallback(self, s: AgiSession) -> None:
        """Max wait reached: the queue's fallback action (menu, another queue, dial, hang-up)."""
        call_id = await s.get_var("CC_CALL_ID")
        queue = await s.get_var("CC_QUEUE")
        if queue not in self.cfg.queues or not re.match(r"^[0-9a-f]{16}$", call_id):
            await s.cmd("HANGUP")
            return
        structlog.contextvars.bind_contextvars(call_id=call_id, queue=queue)
        await self._run_action(s, call_id, self.cfg.queues[queue].fallback, ("fallback:" + queue,))

    async def agi_agent(self, s: AgiSession) -> None:
        """Feature codes from an agent's phone: login, logout, pause [reason], unpause."""
        args = s.env.args
        op = args[0] if args else ""
        endpoint = args[1] if len(args) > 1 else ""
        agent = self.cfg.agent_by_phone(endpoint)
        await s.cmd("ANSWER")
        if agent is not None and op == "dispose":  # *69<code>: disposition of the last dialler call
            code = args[2] if len(args) > 2 else ""
            done = self.dialer.dispose(agent, code, time.time()) if self.dialer is not None else None
            await self._play(s, ("auth-thankyou" if done else "beeperr",), escape="")
            await s.cmd("HANGUP")
            return
        if agent is None or op not in ("login", "logout", "pause", "unpause"):
            log.warning("agent.feature_denied", endpoint=endpoint[:20], op=op[:10])
            await self._play(s, ("agent-incorrect",), escape="")
            await s.cmd("HANGUP")
            return
        structlog.contextvars.bind_contextvars(agent=agent)
        reason = "break"
        if op == "pause" and len(args) > 2:
            code = args[2]
            if code not in self.cfg.pause_reasons:  # an unknown code changes nothing
                log.warning("agent.unknown_pause_code", code=code[:8])
                await self._play(s, ("beeperr",), escape="")
                await s.cmd("HANGUP")
                return
            reason = self.cfg.pause_reasons[code]
        ev = {"login": acd.Login(agent), "logout": acd.Logout(agent), "pause": acd.Pause(agent, reason),
              "unpause": acd.Unpause(agent)}[op]
        cmds = self.submit(ev)
        ok = not any(isinstance(c, acd.Rejected) for c in cmds)
        prompt = {"login": "agent-loginok", "logout": "agent-loggedoff", "pause": "activated",
                  "unpause": "de-activated"}[op] if ok else "beeperr"
        await self._play(s, (prompt,), escape="")
        await s.cmd("HANGUP")

    def _amd_final(self, call_uuid: str, v: Verdict) -> None:
        self.amd_verdicts[call_uuid] = v
        self.metrics.amd.labels(v.verdict).inc()
        log.info("amd.verdict", uuid=call_uuid, verdict=v.verdict, decided_ms=v.decided_ms, beep_ms=v.beep_ms)

    async def agi_agent_claim(self, s: AgiSession) -> None:
        """An agent leg answered: it may bridge only if the call is still this agent's to take
        (decided here, in one step of the core: the first of several ringing phones wins)."""
        call_id = await s.get_var("CC_CALL_ID")
        agent = await s.get_var("CC_AGENT")
        hook = self._hooks.get(call_id)
        if hook is not None:  # the caller is inside its queue hook: bridge only once it has returned
            try:
                await asyncio.wait_for(hook.wait(), 10)
            except asyncio.TimeoutError:
                log.warning("offer.claim_hook_timeout", call_id=call_id[:32])
        c = self.state.calls.get(call_id)
        if c is not None and agent in self.cfg.agents and c.answered_at is None and self.state.synced:
            self.submit(acd.OfferAnswered(call_id, agent))
            c = self.state.calls.get(call_id)
        ok = c is not None and c.agent == agent and c.answered_at is not None
        if ok and c is not None:
            await self.media.connected(s, c)  # the recording policy: MixMonitor before the bridge
        if ok and c is not None and c.callback:  # the agent is on the line: now call the customer back
            await self._dial_callback(s, c)
            return
        await s.set_var("CC_CLAIM", "ok" if ok else "no")
        log.info("offer.claim", call_id=call_id[:32], agent=agent[:32], ok=ok)

    async def _dial_callback(self, s: AgiSession, c: acd.Call) -> None:
        cb = self.cfg.queues[c.queue].callback
        if not CALLBACK_NUMBER.fullmatch(c.callback) or c.trunk not in self.cfg.trunks or cb is None:
            log.error("callback.bad_record", call_id=c.call_id)  # never dial what we did not validate
            self.submit(acd.CallbackDialed(c.call_id, c.agent or "", "CHANUNAVAIL"))
            await s.set_var("CC_CLAIM", "no")
            return
        rec = self.store.call(c.call_id)
        if rec is not None and rec.did:  # present the number they called, not their own
            await s.set_var("CALLERID(num)", rec.did)
        await s.set_var("CC_DIAL", f"PJSIP/{c.callback}@trunk-{c.trunk}")
        await s.set_var("CC_RING_S", str(int(cb.ring_s)))
        await s.set_var("CC_CLAIM", "callback")
        log.info("callback.dialling", call_id=c.call_id, agent=c.agent, attempt=c.attempts + 1, trunk=c.trunk)

    async def agi_amd_start(self, s: AgiSession) -> None:
        """Before the stream: which detector profile (campaign) this call uses, from CC_AMD_PROFILE."""
        key = s.env.args[0] if s.env.args else ""
        profile = await s.get_var("CC_AMD_PROFILE")
        if profile and not self.amd.expect(key, profile):
            log.warning("amd.unknown_profile", profile=profile[:32])
        log.info("amd.start", uuid=key[:40], profile=profile or "default")

    async def agi_amd_result(self, s: AgiSession) -> None:
        """After AudioSocket() returns: hand the verdict to the dialplan (NOTSURE if none)."""
        key = s.env.args[0] if s.env.args else ""
        v = self.amd_verdicts.pop(key, None) or Verdict("NOTSURE", 0)
        if self.dialer is not None:
            self.dialer.on_verdict(await s.get_var("CC_DIAL_ID"), v.verdict)
        await s.set_var("CC_AMD", v.verdict)
        await s.set_var("CC_AMD_MS", str(v.decided_ms))
        await s.set_var("CC_AMD_BEEP_MS", "" if v.beep_ms is None else str(v.beep_ms))
        log.info("amd.result_delivered", uuid=key[:40], verdict=v.verdict)

    async def agi_outbound_answered(self, s: AgiSession) -> None:
        """A person (or NOTSURE) answered an outbound call: straight into its queue for an agent."""
        queue = await s.get_var("CC_QUEUE")
        if queue not in self.cfg.queues:
            log.warning("outbound.unknown_queue", queue=queue[:32])
            await s.cmd("HANGUP")
            return
        call_id = uuid.uuid4().hex[:16]
        structlog.contextvars.bind_contextvars(call_id=call_id, queue=queue)
        env = s.env.values
        self.store.call_started(call_id, s.uniqueid, s.channel, env.get("agi_callerid", ""),
                                env.get("agi_calleridname", ""), "outbound", time.time())
        await s.set_var("CC_CALL_ID", call_id)
        await s.set_var("CC_ROLE", "caller")
        amd_verdict = await s.get_var("CC_AMD") or "OFF"
        dial_id = await s.get_var("CC_DIAL_ID")
        prio = await s.get_var("CC_PRIORITY")
        log.info("outbound.answered", call_id=call_id, queue=queue, amd=amd_verdict, line=dial_id[:40] or None)
        if self.dialer is not None and dial_id:  # from here the 2-second rule runs
            self.dialer.on_queued(dial_id, call_id, asyncio.get_running_loop().call_later)
        # High priority: a dialled person must reach an agent within seconds (the 2-second rule).
        priority = int(prio) if prio.isdigit() and int(prio) <= 100 else 10
        await self._run_action(s, call_id, config_mod.Action(queue=queue, priority=priority), ("amd:" + amd_verdict,))

    def submit_caller_gone(self, call_id: str) -> None:
        """The dialler gives up on a dialled person (no agent within 2 s): out of the queue now."""
        self.submit(acd.CallerLeft(call_id))

    def compliance(self, channel: str, call_id: str) -> None:
        """Play the campaign's compliance message to a dropped call, then hang up (cc-abandon)."""
        log.info("dialer.compliance", call_id=call_id)
        self.store.call_outcome(call_id, "abandoned-dialer")
        self._spawn(self._redirect(channel, "cc-abandon"))

    # ------------------------------------------------------------------ HTTP
    def queue_figures(self, now: float) -> dict[str, stats_mod.Figures]:
        """Per-queue figures over the statistics window, each queue with its own service-level threshold."""
        since = now - self.cfg.daemon.stats_window_s
        out: dict[str, stats_mod.Figures] = {}
        for t in {q.service_level_s for q in self.cfg.queues.values()}:
            figs = stats_mod.queue_figures(self.store.db, since, t)
            out.update({q: f for q, f in figs.items() if q in self.cfg.queues
                        and self.cfg.queues[q].service_level_s == t})
        return out

    def status(self) -> dict[str, object]:
        now = time.time()
        figures = self.queue_figures(now)
        queues = {}
        for q in self.cfg.queues:
            waiting = self.state.waiting(q)
            talking = [c for c in self.state.calls.values() if c.queue == q and c.answered_at is not None]
            queues[q] = {"waiting": len(waiting), "talking": len(talking),
                         "ringing": sum(1 for c in self.state.calls.values()
                                        if c.queue == q and c.agent and c.answered_at is None),
                         "longest_wait_s": round(now - waiting[0].entered_at, 1) if waiting else 0.0,
                         **figures.get(q, EMPTY).as_dict()}
        per_agent = stats_mod.agent_figures(self.store.db, now - self.cfg.daemon.stats_window_s)
        paused = self.store.pause_seconds(now - self.cfg.daemon.stats_window_s, now)
        agents = {a.name: {"state": str(a.state), "device": a.device, "call_id": a.call_id,
                           "answered": per_agent[a.name].answered if a.name in per_agent else 0,
                           "paused_s": paused.get(a.name, {}),
                           "aht_s": (round(per_agent[a.name].aht_s, 1)
                                     if a.name in per_agent and per_agent[a.name].aht_s else None),
                           "reason": a.pause_reason, "calls": a.calls_taken,
                           "idle_s": round(now - a.idle_since, 1) if a.state == AgentState.READY else None}
                  for a in self.state.agents.values()}
        calls = [{"call_id": c.call_id, "queue": c.queue, "agent": c.agent,
                  "state": "talking" if c.answered_at else ("ringing" if c.agent else "waiting"),
                  "wait_s": round((c.answered_at or now) - c.entered_at, 1)}
                 for c in self.state.calls.values()]
        return {"synced": self.state.synced, "queues": queues, "agents": agents, "calls": calls,
                "outcomes": self.store.outcome_counts(),
                "campaigns": self.dialer.status() if self.dialer is not None else {}}

    async def _start_http(self) -> None:
        app = web.Application()

        async def metrics(_: web.Request) -> web.Response:
            return web.Response(body=generate_latest(self.metrics.registry),
                                headers={"Content-Type": CONTENT_TYPE_LATEST})

        async def status(_: web.Request) -> web.Response:
            return web.json_response(self.status())

        async def healthz(_: web.Request) -> web.Response:
            return web.Response(status=200 if self.state.synced else 503,
                                text="ok\n" if self.state.synced else "ami not synced\n")

        async def disposition(req: web.Request) -> web.Response:
            """POST /dialer/disposition {"agent": "alice", "code": "1"}: the agent's last dialler call."""
            try:
                body = await req.json()
                agent, code = str(body["agent"]), str(body["code"])
            except (ValueError, KeyError, TypeError):
                return web.json_response({"error": "body must be JSON with agent and code"}, status=400)
            name = self.dialer.dispose(agent, code, time.time()) if self.dialer is not None else None
            if name is None:
                return web.json_response({"error": "no dialler call of that agent, or unknown code"}, status=404)
            return web.json_response({"agent": agent, "disposition": name})

        app.router.add_post("/dialer/disposition", disposition)
        self.media.add_routes(app)
        app.router.add_get("/metrics", metrics)
        app.router.add_get("/status", status)
        app.router.add_get("/healthz", healthz)
        self._http = web.AppRunner(app, access_log=None)
        await self._http.setup()
        await web.TCPSite(self._http, self.cfg.http.host, self.cfg.http.port, reuse_address=True).start()


async def serve(cfg: config_mod.Config) -> None:
    await Daemon(cfg).run()
