"""Recording in the running daemon: the adapter between Asterisk (AMI, FastAGI) and the pure and
blocking parts (:mod:`.policy`, :mod:`.files`, :mod:`.store`).

One recording per call, on the AGENT channel, two mono legs joined into a stereo WAV:

* **start** -- MixMonitor with ``r()``/``t()`` legs from :func:`files.mixmonitor_options`, run by
  FastAGI ``EXEC`` on the agent channel: in ``agent-claim`` (:meth:`RecordingService.connected`),
  right before the agent leg bridges to its caller, when the call's policy says so; or mid-call
  when the agent presses ``*67`` (:mod:`.handlers`). Not the AMI action ``MixMonitor``: Asterisk
  files it under the ``system`` write class, which would also let the AMI user ``Originate`` the
  ``System()`` application -- a shell.
* **pause/resume** -- AMI ``MixMonitorMute`` (class ``call``) on the agent channel, both
  directions, plus a pause marker in the metadata (from the phone, :mod:`.handlers`, or over the API,
  :mod:`callcenter.features.api`). The marker is opened once Asterisk has confirmed the mute, and closed
  :data:`RESUME_GUARD_S` before the unmute is sent: the legs run about 0.1 s behind the wall clock
  (MixMonitor's first frame comes after the row's start), so a marked span never holds audio.
* the recording id rides on the agent channel as ``CC_REC_ID`` (a manager ``channelvars`` entry),
  so the ``Hangup`` event that ends the recording names it, and a restarted daemon finds the
  recordings still running in its snapshot.
* **finalize** when the agent channel hangs up (once MixMonitor has closed the legs); **recover**
  after every AMI resync (a leg on no live channel and idle for :data:`RESYNC_IDLE_S` is
  repaired or quarantined -- e.g. after Asterisk died mid-call); **purge** at start-up and
  every :data:`PURGE_EVERY_S`, logging each recording it deleted.

Every store call and every file operation (numpy join, fsync, unlink) runs on the daemon's one
database thread (:class:`~callcenter.persistence.DbThread`): :func:`files.finalize` interleaves
file steps with metadata writes in a fixed order (tmp fsynced -> renamed -> row -> legs deleted)
and the store's connection belongs to that thread, so the whole operation runs there, never on
the event loop. What happened is published on the bus as :class:`~callcenter.events.RecordingEvent`.
Background work is spawned on the daemon's :class:`~callcenter.tasks.Supervisor`: the purge loop
as essential, finalize/recover/resync jobs as one-offs.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from callcenter import config as config_mod
from callcenter.asterisk import ami_events
from callcenter.asterisk import contract as C
from callcenter.asterisk.agi_server import AgiSession, ChannelGone
from callcenter.asterisk.ami_client import AmiClient, AmiError, NotConnected
from callcenter.events import Bus, RecordingEvent
from callcenter.features.recording import files as rec
from callcenter.features.recording import handlers
from callcenter.features.recording.policy import policy_for, should_record
from callcenter.features.recording.store import RecordingRow, RecordingStore
from callcenter.persistence import DbThread
from callcenter.protocol.ami import Message
from callcenter.tasks import Supervisor

__all__ = ["PURGE_EVERY_S", "RESYNC_IDLE_S", "Active", "RecordingService"]

log = structlog.get_logger("callcenter")

FINALIZE_WAIT_S = 20.0  # how long to wait for MixMonitor to close the legs after the hang-up
LEGS_APPEAR_S = 1.0  # legs are created at the first audio frame: a call this short may have none
RESYNC_IDLE_S = 5.0  # after a resync, legs on no live channel idle this long are recovered
PURGE_EVERY_S = 86400.0
RESUME_GUARD_S = 0.3  # the pause marker closes this long before the unmute (see the module doc)
# what a finished recording's status (finalize or recover) is published as
_FINISHED_KIND = {"done": "finished", "repaired": "repaired", "quarantined": "quarantined"}


@dataclass
class Active:
    """A recording MixMonitor is writing now."""

    rec_id: str
    call_id: str
    agent: str
    channel: str  # the agent channel it records
    paused: bool = False


class RecordingService:
    """Call recording for the daemon (see the module doc).

    Args:
        calls: the core's live calls (call id -> ``acd.Call``), read when a request names a call.
        db: the daemon's database thread; every store call and file operation runs on it.
        tasks: the daemon's task supervisor.
        bus: where :class:`RecordingEvent` s are published.
        store: an open store (tests); by default :meth:`start` opens ``daemon.database`` on ``db``.
    """

    def __init__(self, cfg: config_mod.Config, ami: AmiClient, calls: Callable[[], Mapping[str, Any]], *,
                 db: DbThread, tasks: Supervisor, bus: Bus, store: RecordingStore | None = None,
                 clock: Callable[[], float] = time.time):
        self.cfg = cfg
        self.ami = ami
        self.calls = calls
        self.db = db
        self.tasks = tasks
        self.bus = bus
        self.store = store
        self.clock = clock
        self.campaign_of: Callable[[str], str | None] = lambda call_id: None  # the dialler sets it
        self.campaign_conf: Callable[[str], Any] = lambda name: None  # its stored settings (CLI campaigns)
        self.dir = rec.recordings_dir(cfg)
        self.asterisk_dir = cfg.recordings.asterisk_dir or str(self.dir)
        self.enabled = True
        self.legs_appear_s = LEGS_APPEAR_S
        self.finalize_wait_s = FINALIZE_WAIT_S
        try:
            rec.mixmonitor_options(self.asterisk_dir, rec.new_rec_id(0))
        except ValueError as e:  # a recordings.dir Asterisk could not be handed safely
            self.enabled = False
            log.error("recording.disabled", reason=str(e))
        self.active: dict[str, Active] = {}  # call id -> its running recording; emptied by Hangup
        # call id -> the recording of a colleague's consult leg about it (features.transfer): it becomes
        # the call's recording when the holder's leg hangs up (an attended transfer), or ends with its leg
        self.following: dict[str, Active] = {}
        self.finalizing: set[str] = set()  # rec ids being finalized now
        self._own_store = store is None
        self._recovering: asyncio.Task[None] | None = None
        self._recover_again = False
        self._lock = asyncio.Lock()

    # ------------------------------------------------------------------ life cycle
    async def start(self) -> None:
        """Open the store (on the database thread) and start the daily purge (an essential task)."""
        if self.store is None:
            self.store = await self.db.run(RecordingStore, self.cfg.daemon.database)
        self.tasks.spawn(self._purge_loop(), "recording.purge", essential=True)

    async def close(self) -> None:
        """Close the store (after the daemon has closed its task supervisor)."""
        if self.store is not None and self._own_store:
            await self.db.run(self.store.close)
        self.store = None

    def reconfigure(self, cfg: config_mod.Config) -> None:
        """A reloaded config: policies, agents and retention take effect at once; the recordings
        directory only on restart (recordings in progress finish where they started)."""
        if rec.recordings_dir(cfg) != self.dir or (cfg.recordings.asterisk_dir or str(self.dir)) != self.asterisk_dir:
            log.warning("recording.dir_unchanged", reason="recordings.dir/asterisk_dir take effect on restart",
                        dir=str(self.dir))
        self.cfg = cfg

    def agi_routes(self) -> dict[str, Callable[[AgiSession], Any]]:
        return handlers.routes(self)

    def _store(self) -> RecordingStore:
        if self.store is None:
            raise RuntimeError("recording service not started")
        return self.store

    def _publish(self, kind: str, rec_id: str, call_id: str = "", agent: str | None = None) -> None:
        self.bus.publish(RecordingEvent(kind, rec_id, call_id, agent))

    # ------------------------------------------------------------------ AMI events
    def on_event(self, msg: Message) -> None:
        h = ami_events.hangup(msg)
        if h is None:
            return
        rec_id = h.variables.get(C.REC_ID, "")
        ours = bool(rec_id) and rec.REC_ID.fullmatch(rec_id) is not None
        call_id = next((c for c, a in self.active.items()
                        if (ours and a.rec_id == rec_id) or a.channel == h.channel), None)
        if call_id is not None:
            a = self.active.pop(call_id)
            if call_id in self.following:  # the holder left: the colleague's leg records the call from here
                self.active[call_id] = self.following.pop(call_id)
            if not ours:  # the variable did not ride on this event: the channel names the recording
                rec_id, ours = a.rec_id, True
        elif (cid := next((c for c, a in self.following.items()
                           if (ours and a.rec_id == rec_id) or a.channel == h.channel), None)) is not None:
            a = self.following.pop(cid)  # a consult that ended without a transfer
            rec_id, ours = a.rec_id, True
        if ours:
            self.tasks.spawn(self._finalize(rec_id, self.clock()), f"recording.finalize:{rec_id}")

    def resynced(self, channels: list[Message]) -> None:
        """After an AMI (re)connect: rebuild what is being recorded, then recover recordings no live
        channel writes any more."""
        live: dict[str, Active] = {}
        for m in channels:
            v = ami_events.channel_vars(m)
            if v.get(C.ROLE) != C.ROLE_AGENT:
                continue
            agent, call_id, rec_id = v.get(C.AGENT, ""), v.get(C.CALL_ID, ""), v.get(C.REC_ID, "")
            if rec_id and rec.REC_ID.fullmatch(rec_id):
                old = self.active.get(call_id)
                live[call_id] = Active(rec_id, call_id, agent, m.get("Channel"),
                                       paused=old.paused if old is not None and old.rec_id == rec_id else False)
        self.active = live
        if self.store is not None:
            self.tasks.spawn(self._sync_paused(list(live.values())), "recording.sync_paused")
        self.recover_soon()

    async def _sync_paused(self, actives: list[Active]) -> None:
        """A restarted daemon learns from the metadata which running recordings are paused."""
        store = self._store()
        for a in actives:
            row = await self.db.run(store.get, a.rec_id)
            if row is not None and row.pauses and row.pauses[-1][1] is None:
                a.paused = True

    # ------------------------------------------------------------------ recording
    def _policy(self, call: Any) -> Any:
        name = self.campaign_of(call.call_id)
        conf = self.campaign_conf(name) if name is not None else None
        return policy_for(self.cfg, queue=call.queue, campaign=name, campaign_conf=conf)

    async def connected(self, s: AgiSession, call: Any) -> None:
        """``agent-claim`` succeeded: the agent leg (``s``) bridges to its caller next. Record it if
        the call's policy says so."""
        if not self.enabled or call.agent is None:
            return
        policy = self._policy(call)
        if should_record(policy, call.call_id) is True:
            await self.start_recording(s, call.call_id, call.agent, call.queue, f"policy:{policy.mode}")
        else:
            log.info("recording.not_started", call_id=call.call_id, agent=call.agent, policy=policy.mode)

    async def follow(self, s: AgiSession, call_id: str, agent: str) -> Active | None:
        """A colleague answered a consult about ``call_id`` (features.transfer; ``s`` runs on their leg):
        if the call is being recorded, record that leg too — a second file pair of the same call id,
        linked by it, which carries the recording on after an attended transfer."""
        a = self.active.get(call_id)
        if not self.enabled or a is None or a.paused or call_id in self.following:
            return None
        call = self.calls().get(call_id)
        return await self.start_recording(s, call_id, agent, call.queue if call is not None else None,
                                          f"consult:{a.rec_id}", into=self.following)

    async def start_recording(self, s: AgiSession, call_id: str, agent: str, queue: str | None,
                              why: str, *, into: dict[str, Active] | None = None) -> Active | None:
        """MixMonitor on the agent channel the AGI session ``s`` runs on; its metadata row first
        (``into``: where it is kept while running, by call id; the call's recordings by default)."""
        store = self._store()
        reg = self.active if into is None else into
        if call_id in reg:
            return reg[call_id]
        now = self.clock()
        rec_id = rec.new_rec_id(now)
        opts = rec.mixmonitor_options(self.asterisk_dir, rec_id)  # only the rec_id reaches the path
        await self.db.run(store.start, rec_id, call_id, agent, queue, now)
        r = await s.cmd("EXEC", "MixMonitor", "," + opts)
        if r.code != 200 or r.result != "0":
            note = f"MixMonitor did not start (AGI {r.code} result={r.result})"
            await self.db.run(lambda: store.finish(rec_id, status="quarantined", path=None, sha256=None,
                                                   duration_s=None, ended_at=self.clock(), note=note))
            log.error("recording.start_failed", call_id=call_id, rec_id=rec_id, code=r.code, result=r.result)
            self._publish("quarantined", rec_id, call_id, agent)
            return None
        # Registered before the variable is set: the Hangup that carries CC_REC_ID can only come
        # after SET VARIABLE, so it always finds (and removes) this entry.
        a = reg[call_id] = Active(rec_id, call_id, agent, s.channel)
        try:
            await s.set_var(C.REC_ID, rec_id)
        except ChannelGone:  # hung up right after MixMonitor started: finalize what it wrote
            if reg.get(call_id) is a:
                del reg[call_id]
                self.tasks.spawn(self._finalize(rec_id, self.clock()), f"recording.finalize:{rec_id}")
            raise
        log.info("recording.started", call_id=call_id, rec_id=rec_id, agent=agent, queue=queue, why=why,
                 channel=s.channel, legs=str(self.dir / rec.PARTIAL))
        self._publish("started", rec_id, call_id, agent)
        return a

    async def start_on_demand(self, s: AgiSession, call_id: str, agent: str, in_call: bool) -> str:
        """The agent asked to record (``*67``): ``ok``, ``already`` or why not."""
        if not self.enabled or not in_call:
            return "unavailable"  # MixMonitor can only be started on the agent leg itself
        call = self.calls().get(call_id)
        if call is None or call.agent != agent or call.answered_at is None:
            return "not_on_call"
        if call_id in self.active:
            return "already"
        policy = self._policy(call)
        if policy.mode == "none":
            return "policy_none"
        return "ok" if await self.start_recording(s, call_id, agent, call.queue, "on_demand") is not None else "failed"

    def call_of_agent(self, agent: str) -> str:
        """The call whose recording ``agent`` is on now ("" if none)."""
        return next((c for c, a in self.active.items() if a.agent == agent), "")

    async def set_paused(self, call_id: str, paused: bool, source: str) -> tuple[str, Active | None]:
        """Pause (mute both legs) or resume a call's recording. Returns ``(result, recording)``;
        result is ``ok``, ``not_recording``, ``already`` or ``ami_error``."""
        store = self._store()
        async with self._lock:
            a = self.active.get(call_id)
            if a is None:
                return "not_recording", None
            if a.paused == paused:
                return "already", a
            try:
                if paused:
                    await self.ami.action("MixMonitorMute", {"Channel": a.channel, "Direction": "both", "State": "1"})
                    await self.db.run(store.pause, a.rec_id, self.clock())
                else:
                    await self.db.run(store.resume, a.rec_id, self.clock())
                    await asyncio.sleep(RESUME_GUARD_S)
                    await self.ami.action("MixMonitorMute", {"Channel": a.channel, "Direction": "both", "State": "0"})
            except (AmiError, NotConnected, TimeoutError) as e:
                log.warning("recording.mute_failed", call_id=call_id, rec_id=a.rec_id, paused=paused, error=str(e))
                return "ami_error", a
            a.paused = paused
        log.info("recording.paused" if paused else "recording.resumed", call_id=call_id, rec_id=a.rec_id,
                 agent=a.agent, source=source)
        self._publish("paused" if paused else "resumed", a.rec_id, call_id, a.agent)
        return "ok", a

    async def _finalize(self, rec_id: str, ended_at: float) -> None:
        """The agent channel hung up: wait for MixMonitor to close the legs, then join them."""
        store = self._store()
        if rec_id in self.finalizing:
            return
        self.finalizing.add(rec_id)
        try:
            legs = rec.leg_paths(self.dir, rec_id)
            start = time.monotonic()
            while (time.monotonic() - start < self.legs_appear_s
                   and not all(await self.db.run(lambda: [p.exists() for p in legs]))):
                await asyncio.sleep(0.1)  # polling the disk: MixMonitor tells nobody when it creates a leg
            while True:
                try:
                    row = await self.db.run(lambda: rec.finalize(store, self.dir, rec_id, ended_at=ended_at))
                    break
                except rec.LegsNotClosed:
                    if time.monotonic() - start > self.finalize_wait_s:
                        log.warning("recording.not_closed", rec_id=rec_id, waited_s=self.finalize_wait_s)
                        return  # recover() takes it up after the next resync
                    await asyncio.sleep(0.2)
            log.info("recording.finalized", rec_id=rec_id, call_id=row.call_id, agent=row.agent, status=row.status,
                     duration_s=row.duration_s, path=str(self.dir / row.path) if row.path else None,
                     sha256=row.sha256, truncated=row.truncated, pauses=[list(p) for p in row.pauses],
                     note=row.note or None)
            self._publish_row(row)
        except OSError as e:  # e.g. disk full: the legs stay for recover()
            log.error("recording.finalize_failed", rec_id=rec_id, error=str(e))
        finally:
            self.finalizing.discard(rec_id)

    def _publish_row(self, row: RecordingRow) -> None:
        kind = _FINISHED_KIND.get(row.status)
        if kind is not None:
            self._publish(kind, row.rec_id, row.call_id, row.agent)

    # ------------------------------------------------------------------ recovery and retention
    def recover_soon(self) -> None:
        if self.store is None or not self.enabled:
            return
        if self._recovering is not None and not self._recovering.done():
            self._recover_again = True
            return
        self._recovering = self.tasks.spawn(self._recover(), "recording.recover")

    async def _recover(self) -> None:
        """Finish what a crash (ours or Asterisk's) left behind; retry until nothing is left that no
        live channel writes."""
        store = self._store()
        while True:
            self._recover_again = False
            live = {a.rec_id for a in (*self.active.values(), *self.following.values())} | set(self.finalizing)
            now = self.clock()
            try:
                results = await self.db.run(lambda: rec.recover(store, self.dir, now, active=live,
                                                                min_idle_s=RESYNC_IDLE_S))
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
                if row is not None and r.action != "cleaned":  # cleaned: it had been reported already
                    self._publish_row(row)
            if not waiting and not self._recover_again:
                return
            await asyncio.sleep(RESYNC_IDLE_S + 0.5)

    async def purge_now(self) -> list[RecordingRow]:
        """Delete recordings older than ``recordings.retention_days``; log and publish each one."""
        store = self._store()
        days = self.cfg.recordings.retention_days
        now = self.clock()
        rows = await self.db.run(lambda: rec.purge(store, self.dir, now, days))
        for r in rows:
            log.info("recording.purged", rec_id=r.rec_id, call_id=r.call_id, agent=r.agent,
                     started_at=r.started_at, path=str(self.dir / r.path) if r.path else None)
            self._publish("purged", r.rec_id, r.call_id, r.agent)
        log.info("recordings.purge", deleted=len(rows), retention_days=days)
        return rows

    async def _purge_loop(self) -> None:
        while True:
            try:
                await self.purge_now()
            except (OSError, sqlite3.OperationalError) as e:  # disk or a locked database: try again tomorrow
                log.error("recordings.purge_failed", error=str(e))
            await asyncio.sleep(PURGE_EVERY_S)
