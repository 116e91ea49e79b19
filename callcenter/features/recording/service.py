"""Recording and supervision in the running daemon: the adapter between Asterisk (AMI, FastAGI)
and the pure parts, :mod:`callcenter.features.recording.files` and :mod:`callcenter.features.supervision.model`.

Recording (one per call, on the AGENT channel, two mono legs joined into a stereo WAV):

* **start** -- MixMonitor with ``r()``/``t()`` legs from :func:`recordings.mixmonitor_options`,
  run by FastAGI ``EXEC`` on the agent channel: in ``agent-claim``, right before the agent leg
  bridges to its caller, when the call's policy says so; or mid-call when the agent presses
  ``*67`` (a features.conf ``applicationmap`` entry runs AGI ``record,start`` on the agent
  channel). Not the AMI action ``MixMonitor``: Asterisk files it under the ``system`` write
  class, which would also let the AMI user ``Originate`` the ``System()`` application -- a shell.
* **pause/resume** -- AMI ``MixMonitorMute`` (class ``call``) on the agent channel, both
  directions, plus a pause marker in the metadata: from the agent's phone mid-call (``*65`` /
  ``*66``), from a second line while the caller is on hold (the same codes dialled), or over
  HTTP (``POST /recordings/<call_id>/pause|resume``, used by ``callcenter recordings pause``).
  The marker is opened once Asterisk has confirmed the mute, and closed :data:`RESUME_GUARD_S`
  before the unmute is sent: the legs run about 0.1 s behind the wall clock (MixMonitor's
  first frame comes after the row's start), so a marked span never holds audio.
* the recording id rides on the agent channel as ``CC_REC_ID`` (a manager ``channelvars`` entry),
  so the ``Hangup`` event that ends the recording names it, and a restarted daemon finds the
  recordings still running in its snapshot.
* **finalize** when the agent channel hangs up (once MixMonitor has closed the legs); **recover**
  after every AMI resync (a leg on no live channel and idle for :data:`RESYNC_IDLE_S` is
  repaired or quarantined -- e.g. after Asterisk died mid-call); **purge** at start-up and
  every :data:`PURGE_EVERY_S`, logging each recording it deleted.

File work (numpy join, fsync, SQLite) runs on one worker thread that owns the
:class:`~callcenter.features.recording.files.MediaStore` connection, so the event loop never waits on disk.

Supervision: ``*71``/``*72``/``*73`` + an agent's extension (rendered literals in ``cc-phones``) go
to ``cc-spy``, whose AGI ``spy`` asks for the PIN, identifies the supervisor by the calling
channel's *endpoint* (never caller ID), calls :func:`supervision.decide`, audits every attempt
(SQLite ``spy_audit`` and the log) and, only when allowed, hands the dialplan the agent's
current channel (full name, for ChanSpy's ``u`` option) and the options for the mode.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog
from aiohttp import web

from callcenter import config as config_mod
from callcenter.features.recording import files as rec
from callcenter.asterisk.agi_server import AgiSession
from callcenter.asterisk.ami_client import AmiClient, AmiError, NotConnected
from callcenter.features.supervision import model as sup
from callcenter.protocol.ami import Message

__all__ = ["FEATURES", "PURGE_EVERY_S", "RESYNC_IDLE_S", "Media", "features_conf", "phone_extensions"]

log = structlog.get_logger("callcenter")
T = TypeVar("T")

CALL_ID = re.compile(r"[0-9a-f]{16}")
EXTEN = re.compile(r"[0-9]{2,15}")
# features.conf applicationmap names, set in DYNAMIC_FEATURES on the agent leg (cc-agent)
FEATURES = {"pause": "cc-rec-pause", "resume": "cc-rec-resume", "start": "cc-rec-start"}
FINALIZE_WAIT_S = 20.0  # how long to wait for MixMonitor to close the legs after the hang-up
LEGS_APPEAR_S = 1.0  # legs are created at the first audio frame: a call this short may have none
RESYNC_IDLE_S = 5.0  # after a resync, legs on no live channel idle this long are recovered
PURGE_EVERY_S = 86400.0
RESUME_GUARD_S = 0.3  # the pause marker closes this long before the unmute (see the module doc)
SPY_PIN_TIMEOUT_MS = 8000
SPY_PIN_MAX_DIGITS = 12


@dataclass
class Active:
    """A recording MixMonitor is writing now."""

    rec_id: str
    call_id: str
    agent: str
    channel: str  # the agent channel it records
    paused: bool = False


class Media:
    """Recordings and supervision for :class:`callcenter.app.Daemon` (see the module doc).

    Args:
        calls: the core's live calls (call id -> ``acd.Call``), read when a request names a call.
    """

    def __init__(self, cfg: config_mod.Config, ami: AmiClient, calls: Callable[[], Mapping[str, Any]]):
        self.cfg = cfg
        self.ami = ami
        self._calls = calls
        self.campaign_of: Callable[[str], str | None] = lambda call_id: None  # the dialler sets it
        self.dir = rec.recordings_dir(cfg)
        self.asterisk_dir = cfg.recordings.asterisk_dir or str(self.dir)
        self.enabled = True
        try:
            rec.mixmonitor_options(self.asterisk_dir, rec.new_rec_id(0))
        except ValueError as e:  # a recordings.dir Asterisk could not be handed safely
            self.enabled = False
            log.error("recording.disabled", reason=str(e))
        self.active: dict[str, Active] = {}  # call id -> its running recording
        self.agent_channels: dict[str, str] = {}  # agent -> their channel bridged to a caller now
        self.finalizing: set[str] = set()
        self.lockout = sup.LockoutState()
        self.store: rec.MediaStore | None = None
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="media")
        self._tasks: set[asyncio.Task[None]] = set()
        self._recovering: asyncio.Task[None] | None = None
        self._recover_again = False
        self._lock = asyncio.Lock()

    # ------------------------------------------------------------------ life cycle
    async def _io(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn`` on the media thread (the only thread that touches the store and the files)."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))

    async def start(self) -> None:
        self.store = await self._io(rec.MediaStore, self.cfg.daemon.database)
        self._spawn(self._purge_loop())

    async def close(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        for t in list(self._tasks):
            try:
                await t
            except (asyncio.CancelledError, Exception):  # noqa: BLE001, S110 - shutting down; each already logged
                pass
        if self.store is not None:
            await self._io(self.store.close)
        self._pool.shutdown(wait=True)

    def _spawn(self, coro: Any) -> asyncio.Task[None]:
        t: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(t)
        t.add_done_callback(self._done)
        return t

    def _done(self, t: asyncio.Task[None]) -> None:
        self._tasks.discard(t)
        if not t.cancelled() and t.exception() is not None:
            log.error("media.task_failed", error=repr(t.exception()))

    def agi_routes(self) -> dict[str, Callable[[AgiSession], Any]]:
        return {"record": self.agi_record, "spy": self.agi_spy}

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/recordings/{call_id}/{op}", self._http_pause)

    # ------------------------------------------------------------------ AMI events
    def on_event(self, msg: Message) -> None:
        ev = msg.event
        if ev == "BridgeEnter":
            v = msg.variables()
            agent = v.get("CC_AGENT", "")
            if v.get("CC_ROLE") == "agent" and agent in self.cfg.agents:
                self.agent_channels[agent] = msg.get("Channel")
        elif ev == "Hangup":
            channel = msg.get("Channel")
            if channel.endswith("<ZOMBIE>"):
                return
            v = msg.variables()
            agent = v.get("CC_AGENT", "")
            if v.get("CC_ROLE") == "agent" and self.agent_channels.get(agent) == channel:
                del self.agent_channels[agent]
            rec_id = v.get("CC_REC_ID", "")
            if rec_id and rec.REC_ID.fullmatch(rec_id):
                call_id = next((c for c, a in self.active.items() if a.rec_id == rec_id), None)
                if call_id is not None:
                    del self.active[call_id]
                self._spawn(self._finalize(rec_id, time.time()))
        elif ev in ("ChanSpyStart", "ChanSpyStop"):
            log.info("spy.started" if ev == "ChanSpyStart" else "spy.stopped",
                     spyer=msg.get("SpyerChannel"), spyee=msg.get("SpyeeChannel"))

    def resynced(self, channels: list[Message]) -> None:
        """After an AMI (re)connect: rebuild who is talking and what is being recorded, then recover
        recordings no live channel writes any more."""
        self.agent_channels.clear()
        live: dict[str, Active] = {}
        for m in channels:
            v = m.variables()
            if v.get("CC_ROLE") != "agent":
                continue
            agent, call_id, rec_id = v.get("CC_AGENT", ""), v.get("CC_CALL_ID", ""), v.get("CC_REC_ID", "")
            if agent in self.cfg.agents and m.get("BridgeId"):
                self.agent_channels[agent] = m.get("Channel")
            if rec_id and rec.REC_ID.fullmatch(rec_id):
                old = self.active.get(call_id)
                live[call_id] = Active(rec_id, call_id, agent, m.get("Channel"),
                                       paused=old.paused if old is not None and old.rec_id == rec_id else False)
        self.active = live
        if self.store is not None:
            self._spawn(self._sync_paused(list(live.values())))
        self.recover_soon()

    async def _sync_paused(self, actives: list[Active]) -> None:
        """A restarted daemon learns from the metadata which running recordings are paused."""
        assert self.store is not None
        for a in actives:
            row = await self._io(self.store.get, a.rec_id)
            if row is not None and row.pauses and row.pauses[-1][1] is None:
                a.paused = True

    # ------------------------------------------------------------------ recording
    async def connected(self, s: AgiSession, call: Any) -> None:
        """``agent-claim`` succeeded: the agent leg (``s``) bridges to its caller next. Record it if
        the call's policy says so."""
        if not self.enabled or call.agent is None:
            return
        policy = rec.policy_for(self.cfg, queue=call.queue, campaign=self.campaign_of(call.call_id))
        if rec.should_record(policy, call.call_id) is True:
            await self._start(s, call.call_id, call.agent, call.queue, f"policy:{policy.mode}")
        else:
            log.info("recording.not_started", call_id=call.call_id, agent=call.agent, policy=policy.mode)

    async def _start(self, s: AgiSession, call_id: str, agent: str, queue: str | None, why: str) -> Active | None:
        """MixMonitor on the agent channel the AGI session ``s`` runs on; its metadata row first."""
        assert self.store is not None
        if call_id in self.active:
            return self.active[call_id]
        now = time.time()
        rec_id = rec.new_rec_id(now)
        opts = rec.mixmonitor_options(self.asterisk_dir, rec_id)  # only the rec_id reaches the path
        await self._io(self.store.start, rec_id, call_id, agent, queue, now)
        r = await s.cmd("EXEC", "MixMonitor", "," + opts)
        if r.code != 200 or r.result != "0":
            await self._io(self.store.finish, rec_id, status="quarantined", path=None, sha256=None, duration_s=None,
                           ended_at=time.time(), note=f"MixMonitor did not start (AGI {r.code} result={r.result})")
            log.error("recording.start_failed", call_id=call_id, rec_id=rec_id, code=r.code, result=r.result)
            return None
        await s.set_var("CC_REC_ID", rec_id)
        a = self.active[call_id] = Active(rec_id, call_id, agent, s.channel)
        log.info("recording.started", call_id=call_id, rec_id=rec_id, agent=agent, queue=queue, why=why,
                 channel=s.channel, legs=str(self.dir / rec.PARTIAL))
        return a

    async def set_paused(self, call_id: str, paused: bool, source: str) -> tuple[str, Active | None]:
        """Pause (mute both legs) or resume a call's recording. Returns ``(result, recording)``;
        result is ``ok``, ``not_recording``, ``already`` or ``ami_error``."""
        assert self.store is not None
        async with self._lock:
            a = self.active.get(call_id)
            if a is None:
                return "not_recording", None
            if a.paused == paused:
                return "already", a
            try:
                if paused:
                    await self.ami.action("MixMonitorMute", {"Channel": a.channel, "Direction": "both", "State": "1"})
                    await self._io(self.store.pause, a.rec_id, time.time())
                else:
                    await self._io(self.store.resume, a.rec_id, time.time())
                    await asyncio.sleep(RESUME_GUARD_S)
                    await self.ami.action("MixMonitorMute", {"Channel": a.channel, "Direction": "both", "State": "0"})
            except (AmiError, NotConnected, TimeoutError) as e:
                log.warning("recording.mute_failed", call_id=call_id, rec_id=a.rec_id, paused=paused, error=str(e))
                return "ami_error", a
            a.paused = paused
        log.info("recording.paused" if paused else "recording.resumed", call_id=call_id, rec_id=a.rec_id,
                 agent=a.agent, source=source)
        return "ok", a

    async def agi_record(self, s: AgiSession) -> None:
        """The agent's recording codes: ``record,<op>`` mid-call on the agent leg (features.conf), or
        ``record,<op>,<endpoint>`` dialled from the desk phone (a second line, the caller on hold)."""
        args = s.env.args
        op = args[0] if args else ""
        in_call = len(args) < 2
        if in_call:  # on the agent leg the daemon originated: its variables are the daemon's own
            call_id, agent = await s.get_var("CC_CALL_ID"), await s.get_var("CC_AGENT")
        else:
            call_id, agent = "", self.cfg.agent_by_phone(args[1]) or ""
            call_id = next((c for c, a in self.active.items() if a.agent == agent), "")
            await s.cmd("ANSWER")
        endpoint = await s.get_var("CHANNEL(endpoint)")
        ag = self.cfg.agents.get(agent)
        call = self._calls().get(call_id)
        result = "denied"
        if ag is None or ag.phone != endpoint or op not in FEATURES:
            log.warning("recording.feature_denied", op=op[:10], endpoint=endpoint[:20], agent=agent[:32] or None)
        elif op == "start":
            result = await self._start_on_demand(s, call_id, agent, call, in_call)
        elif call_id:
            result, _ = await self.set_paused(call_id, op == "pause", "phone")
        else:
            result = "not_recording"
        ok = result in ("ok", "already")
        if not ok:
            log.info("recording.feature_refused", op=op, agent=agent or None, call_id=call_id or None, result=result)
        await s.cmd("STREAM FILE", "beep" if ok else "beeperr", "")
        if not in_call:
            await s.cmd("HANGUP")

    async def _start_on_demand(self, s: AgiSession, call_id: str, agent: str, call: Any, in_call: bool) -> str:
        if not self.enabled or not in_call:
            return "unavailable"  # MixMonitor can only be started on the agent leg itself
        if call is None or call.agent != agent or call.answered_at is None:
            return "not_on_call"
        if call_id in self.active:
            return "already"
        policy = rec.policy_for(self.cfg, queue=call.queue, campaign=self.campaign_of(call.call_id))
        if policy.mode == "none":
            return "policy_none"
        return "ok" if await self._start(s, call_id, agent, call.queue, "on_demand") is not None else "failed"

    async def _http_pause(self, req: web.Request) -> web.Response:
        """``POST /recordings/<call_id>/pause|resume``: e.g. while the caller reads a card number."""
        call_id, op = req.match_info["call_id"], req.match_info["op"]
        if op not in ("pause", "resume") or not CALL_ID.fullmatch(call_id):
            return web.json_response({"error": "bad_request", "detail": "POST /recordings/<call id>/pause|resume"},
                                     status=400)
        result, a = await self.set_paused(call_id, op == "pause", "api")
        status = {"ok": 200, "already": 409, "not_recording": 404, "ami_error": 502}[result]
        body: dict[str, object] = {"call_id": call_id, "result": result}
        if a is not None:
            body.update(rec_id=a.rec_id, paused=a.paused)
        return web.json_response(body, status=status)

    async def _finalize(self, rec_id: str, ended_at: float) -> None:
        """The agent channel hung up: wait for MixMonitor to close the legs, then join them."""
        assert self.store is not None
        if rec_id in self.finalizing:
            return
        self.finalizing.add(rec_id)
        try:
            legs = rec.leg_paths(self.dir, rec_id)
            start = time.monotonic()
            while not all(p.exists() for p in legs) and time.monotonic() - start < LEGS_APPEAR_S:
                await asyncio.sleep(0.1)
            while True:
                try:
                    row = await self._io(rec.finalize, self.store, self.dir, rec_id, ended_at=ended_at)
                    break
                except rec.LegsNotClosed:
                    if time.monotonic() - start > FINALIZE_WAIT_S:
                        log.warning("recording.not_closed", rec_id=rec_id, waited_s=FINALIZE_WAIT_S)
                        return  # recover() takes it up after the next resync
                    await asyncio.sleep(0.2)
            log.info("recording.finalized", rec_id=rec_id, call_id=row.call_id, agent=row.agent, status=row.status,
                     duration_s=row.duration_s, path=str(self.dir / row.path) if row.path else None,
                     sha256=row.sha256, truncated=row.truncated, pauses=[list(p) for p in row.pauses],
                     note=row.note or None)
        except OSError as e:  # e.g. disk full: the legs stay for recover()
            log.error("recording.finalize_failed", rec_id=rec_id, error=str(e))
        finally:
            self.finalizing.discard(rec_id)

    # ------------------------------------------------------------------ recovery and retention
    def recover_soon(self) -> None:
        if self.store is None or not self.enabled:
            return
        if self._recovering is not None and not self._recovering.done():
            self._recover_again = True
            return
        self._recovering = self._spawn(self._recover())

    async def _recover(self) -> None:
        """Finish what a crash (ours or Asterisk's) left behind; retry until nothing is left that no
        live channel writes."""
        assert self.store is not None
        while True:
            self._recover_again = False
            live = {a.rec_id for a in self.active.values()} | set(self.finalizing)
            try:
                results = await self._io(rec.recover, self.store, self.dir, time.time(), active=live,
                                         min_idle_s=RESYNC_IDLE_S)
            except OSError as e:
                log.error("recording.recover_failed", error=str(e))
                return
            waiting = False
            for r in results:
                if r.action == "busy":
                    waiting = waiting or r.rec_id not in live
                    continue
                row = r.row
                log.warning("recording.recovered", rec_id=r.rec_id, action=r.action,
                            call_id=row.call_id if row else None, status=row.status if row else None,
                            truncated=row.truncated if row else None, path=row.path if row else None,
                            note=row.note if row else None)
            if not waiting and not self._recover_again:
                return
            await asyncio.sleep(RESYNC_IDLE_S + 0.5)

    async def purge_now(self) -> list[rec.RecordingRow]:
        """Delete recordings older than ``recordings.retention_days``; log each one."""
        assert self.store is not None
        days = self.cfg.recordings.retention_days
        rows = await self._io(rec.purge, self.store, self.dir, time.time(), days)
        for r in rows:
            log.info("recording.purged", rec_id=r.rec_id, call_id=r.call_id, agent=r.agent,
                     started_at=r.started_at, path=str(self.dir / r.path) if r.path else None)
        log.info("recordings.purge", deleted=len(rows), retention_days=days)
        return rows

    async def _purge_loop(self) -> None:
        while True:
            try:
                await self.purge_now()
            except OSError as e:
                log.error("recordings.purge_failed", error=str(e))
            await asyncio.sleep(PURGE_EVERY_S)

    # ------------------------------------------------------------------ supervision
    async def agi_spy(self, s: AgiSession) -> None:
        """``spy,<mode>,<agent extension>,<calling endpoint>`` from ``cc-spy``: PIN, decide, audit, and
        (only if allowed) ``CC_SPY=ok`` with ``CC_SPY_TARGET``/``CC_SPY_OPTIONS`` for ChanSpy."""
        assert self.store is not None
        args = s.env.args
        mode = args[0] if args else ""
        ext = args[1] if len(args) > 1 and EXTEN.fullmatch(args[1]) else ""
        endpoint = args[2] if len(args) > 2 and EXTEN.fullmatch(args[2]) else ""
        await s.cmd("ANSWER")
        r = await s.cmd("GET DATA", "agent-pass", SPY_PIN_TIMEOUT_MS, SPY_PIN_MAX_DIGITS)
        pin = r.result if r.result.isdigit() else ""
        agent = self.cfg.agent_by_phone(ext) if ext else None
        channel = self.agent_channels.get(agent) if agent else None
        if agent and channel and not channel.startswith(f"PJSIP/{self.cfg.agents[agent].phone}-"):
            channel = None  # only ever that agent's own phone channel
        now = time.time()
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
        await self._io(self.store.audit, now, d.supervisor, endpoint, d.agent, ext, mode[:10],
                       "allowed" if allowed else "denied", reason)
        (log.info if allowed else log.warning)(
            "spy.allowed" if allowed else "spy.denied", supervisor=d.supervisor, phone=endpoint or None,
            agent=d.agent, target_ext=ext or None, mode=mode[:10], reason=reason,
            channel=channel if allowed else None)
        if not allowed:
            await s.cmd("STREAM FILE", "auth-incorrect" if reason in ("bad_pin", "locked") else "beeperr", "")
            await s.cmd("HANGUP")
            return
        await s.set_var("CC_SPY_TARGET", target)
        await s.set_var("CC_SPY_OPTIONS", options)
        await s.set_var("CC_SPY", "ok")


# --------------------------------------------------------------------------- Asterisk configuration

def phone_extensions(cfg: config_mod.Config) -> list[str]:
    """``cc-phones`` lines for recording and supervision codes (literal extensions, no patterns).

    The recording codes dialled from a desk phone act on the agent's running recording (e.g. from a
    second line while the caller is on hold); mid-call they come from :func:`features_conf`.
    """
    f = cfg.features
    lines = ["; recording pause/resume dialled from a desk phone (mid-call: features.conf applicationmap)"]
    lines += [f"exten => {code},1,AGI(${{CC_AGI}}/record,{op},${{CHANNEL(endpoint)}})"
              for op, code in (("pause", f.record_pause), ("resume", f.record_resume))]
    lines.append("; supervision: code + the agent's extension -> cc-spy (PIN, team check, audit, ChanSpy)")
    for ag in cfg.agents.values():
        for mode, code in (("listen", f.listen), ("whisper", f.whisper), ("barge", f.barge)):
            lines += [f"exten => {code}{ag.phone},1,Set(CC_SPY_MODE={mode})", f" same => n,Set(CC_SPY_EXT={ag.phone})",
                      " same => n,Goto(cc-spy,s,1)"]
    return lines


def features_conf(cfg: config_mod.Config, agi_host: str) -> str:
    """features.conf: the agent's mid-call recording codes as an ``applicationmap`` that runs the
    daemon's ``record`` AGI on the agent leg (enabled there by ``DYNAMIC_FEATURES`` in cc-agent)."""
    f = cfg.features
    agi = f"agi://{agi_host}:{cfg.agi.port}/record"
    lines = ["; generated by `callcenter asterisk-config`", "[general]", "", "[featuremap]", "", "[applicationmap]",
             "; pressed by the agent during a call; runs on the agent's own leg (self)"]
    lines += [f"{FEATURES[op]} => {code},self,AGI({agi},{op})"
              for op, code in (("pause", f.record_pause), ("resume", f.record_resume), ("start", f.record_start))]
    return "\n".join(lines) + "\n"
