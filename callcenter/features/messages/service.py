"""Leave a message instead of waiting.

A waiting caller presses the queue's message digit (cc-wait -> AGI queue-digit): the core turns the
call into a callback (``CallbackRequested``: its place is kept, its number checked against the
trunk's allow-list exactly as for a callback), and the caller goes to cc-message, where Record()
writes ``<recordings dir>/messages/<msg id>.wav`` (a name the daemon generated; nothing the caller
sent reaches the path). Once the caller's channel has hung up (AMI ``Hangup``) the silence is trimmed
on a worker thread and ``MessageLeft`` is published (the journal links the message to the call).
When the callback's turn comes and the agent answers, the agent hears the message first
(:meth:`MessageService.before_dial`), then the caller is dialled back as for any callback.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
import uuid
import wave
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import structlog

from callcenter import events as ev
from callcenter.asterisk import contract as cc
from callcenter.asterisk.agi_server import AgiSession
from callcenter.asterisk.ami_events import is_zombie
from callcenter.asterisk.prompts import play
from callcenter.features.acd import model as acd
from callcenter.features.acd.service import AcdService
from callcenter.features.ivr.handlers import handing_over_rings
from callcenter.features.messages.audio import trim_silence
from callcenter.features.messages.store import MessageRow, MessageStore
from callcenter.protocol.ami import Message

__all__ = ["MessageService", "SUBDIR"]

log = structlog.get_logger("callcenter.messages")
SUBDIR = "messages"
FILE_WAIT_S = 3.0  # Asterisk closes the file as the channel goes; give it this long to appear
READY_WAIT_S = 10.0
SAFE_DIR = re.compile(r"/[A-Za-z0-9_./-]*")  # the recordings directory as Asterisk sees it, as MixMonitor's  # an agent answering while the message is still being finished waits this long


class MessageService:
    """``dial_back_for(call)`` is the callback's number check; ``queue_digit`` the callback's own digit
    handler (any other key goes there); ``dirs()`` the recordings directory as (the daemon, Asterisk)
    see it; ``db`` the database thread that owns ``store``."""

    def __init__(self, cfg: Callable[[], Any], acd_service: AcdService, bus: ev.Bus, *, db: Any,
                 store: MessageStore, dirs: Callable[[], tuple[Path, str]],
                 dial_back_for: Callable[[acd.Call], Awaitable[tuple[str, str] | None]],
                 queue_digit: Callable[[AgiSession], Awaitable[None]], tasks: Any) -> None:
        self._cfg = cfg
        self.acd = acd_service
        self.bus = bus
        self.db = db
        self.store = store
        self.dirs = dirs
        self.dial_back_for = dial_back_for
        self.queue_digit = queue_digit
        self.tasks = tasks
        self.recording: dict[str, asyncio.Event] = {}  # call id -> set once the caller's channel is gone
        self.finishing: dict[str, asyncio.Future[MessageRow | None]] = {}

    def routes(self) -> dict[str, Callable[[AgiSession], object]]:
        return {"queue-digit": self.agi_queue_digit, "message-done": self.agi_message_done}

    def sizes(self) -> dict[str, int]:
        return {"messages_recording": len(self.recording), "messages_finishing": len(self.finishing)}

    # ------------------------------------------------------------------ the caller
    async def agi_queue_digit(self, s: AgiSession) -> None:
        """A key pressed while waiting: the queue's message digit leaves a message; any other key is
        the callback's (and ignored there unless it is the callback digit)."""
        digit = s.env.args[0] if s.env.args else ""
        call_id = await s.get_var(cc.CALL_ID)
        c = self.acd.state.calls.get(call_id)
        conf = self._cfg().queues[c.queue].message if c is not None and c.queue in self._cfg().queues else None
        if conf is None or digit != conf.digit:
            await self.queue_digit(s)
            return
        await handing_over_rings(self.acd, s, call_id, lambda: self._leave(s, call_id))

    async def _leave(self, s: AgiSession, call_id: str) -> None:
        c = self.acd.state.calls.get(call_id)
        if c is None or c.agent is not None or c.callback:
            return
        conf = self._cfg().queues[c.queue].message
        structlog.contextvars.bind_contextvars(call_id=call_id, queue=c.queue)
        back = await self.dial_back_for(c)
        if back is None:
            log.warning("message.refused", call_id=call_id, reason="number not dialable")
            await play(s, conf.unavailable, escape="")
            return
        here, there = self.dirs()
        if not SAFE_DIR.fullmatch(there) or ".." in there.split("/"):  # it goes into Record()'s argument
            log.error("message.refused", call_id=call_id, reason="recordings dir is not an absolute [A-Za-z0-9_./-] path")
            await play(s, conf.unavailable, escape="")
            return
        number, trunk = back
        self.acd.submit(acd.CallbackRequested(call_id, number, trunk))
        if self.acd.state.calls.get(call_id, c).callback != number:
            return  # offered to an agent meanwhile: the caller stays for the ring
        msg_id = uuid.uuid4().hex[:16]
        await asyncio.to_thread(_ensure_dir, here / SUBDIR)
        rel = f"{SUBDIR}/{msg_id}.wav"
        self.recording[call_id] = asyncio.Event()
        self.db.post(self.store.started, call_id, msg_id, c.queue, rel, time.time())
        self.bus.publish(ev.CallOutcome(call_id, "message"))
        log.info("message.requested", call_id=call_id, queue=c.queue, msg_id=msg_id,
                 position=self.acd.state.position(call_id))
        await play(s, conf.intro, escape="")
        for k, v in ((cc.MSG_FILE, f"{there}/{SUBDIR}/{msg_id}"), (cc.MSG_MAX, str(conf.max_s)),
                     (cc.MSG_SILENCE, str(conf.silence_s)), (cc.NEXT, "message")):
            await s.set_var(k, v)

    async def agi_message_done(self, s: AgiSession) -> None:
        """Record() ended by itself (# , silence, maximum): thank the caller and hang up."""
        call_id = await s.get_var(cc.CALL_ID)
        c = self.acd.state.calls.get(call_id)
        conf = self._cfg().queues[c.queue].message if c is not None and c.queue in self._cfg().queues else None
        if conf is not None:
            await play(s, conf.confirm, escape="")
        await s.cmd("HANGUP")

    def on_event(self, msg: Message) -> None:
        """The caller's channel is gone: the message file is complete; finish it off the loop."""
        if not self.recording or msg.event != "Hangup" or is_zombie(msg):
            return
        v = msg.variables()
        call_id = v.get(cc.CALL_ID, "")
        gone = self.recording.get(call_id) if v.get(cc.ROLE) == cc.ROLE_CALLER else None
        if gone is not None:
            gone.set()
            self.tasks.spawn(self.finish(call_id), "messages.finish")

    def resynced(self, chans: list[Message]) -> None:
        """After an AMI (re)connect: a message whose caller's channel is gone (its Hangup was lost with
        the link) is finished now rather than when its callback comes up."""
        live = {m.variables().get(cc.CALL_ID, "") for m in chans if m.variables().get(cc.ROLE) == cc.ROLE_CALLER}
        for call_id, gone in list(self.recording.items()):
            if call_id not in live and call_id not in self.finishing:
                gone.set()
                self.tasks.spawn(self.finish(call_id), "messages.finish")

    # ------------------------------------------------------------------ finishing the file
    async def finish(self, call_id: str) -> MessageRow | None:
        """Trim the message once (a second caller waits for the first), mark it ready (or empty /
        missing), publish ``MessageLeft``. The row, or None when the call left no message."""
        fut = self.finishing.get(call_id)
        if fut is not None:
            return await asyncio.shield(fut)
        fut = self.finishing[call_id] = asyncio.get_running_loop().create_future()
        try:
            row = await self._finish(call_id)
            fut.set_result(row)
            return row
        except BaseException as e:
            fut.set_exception(e)
            fut.exception()  # retrieved: nobody else may be waiting
            raise
        finally:
            self.finishing.pop(call_id, None)
            self.recording.pop(call_id, None)

    async def _finish(self, call_id: str) -> MessageRow | None:
        row = await self.db.run(self.store.get, call_id)
        if row is None or row.state != "recording":
            return row
        path = self.dirs()[0] / row.path
        deadline = time.monotonic() + FILE_WAIT_S
        while not path.exists() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        state, duration, raw = "missing", None, None
        if path.exists():
            try:
                raw, duration = await asyncio.to_thread(trim_silence, path)
                state = "ready" if duration > 0 else "empty"
            except (OSError, ValueError, wave.Error, EOFError) as e:
                log.error("message.unreadable", call_id=call_id, msg_id=row.msg_id, error=repr(e)[:200])
                state = "missing"
        now = time.time()
        await self.db.run(self.store.finished, call_id, state, duration, now)
        log.info("message.recorded", call_id=call_id, msg_id=row.msg_id, state=state,
                 duration_s=None if duration is None else round(duration, 2),
                 raw_s=None if raw is None else round(raw, 2))
        if state == "ready":
            self.bus.publish(ev.MessageLeft(call_id, row.msg_id, row.queue, round(duration or 0.0, 2)))
        return await self.db.run(self.store.get, call_id)

    # ------------------------------------------------------------------ the agent
    async def before_dial(self, s: AgiSession, c: acd.Call) -> None:
        """The agent answered this callback: if the caller left a message, the agent hears it now
        (the queue's ``announce``, then the message; # skips it), then the dial-back goes on."""
        conf = self._cfg().queues[c.queue].message if c.queue in self._cfg().queues else None
        if c.direct or (conf is None and c.call_id not in self.recording):
            return  # a queue without messages: no database read for its callbacks
        try:
            async with asyncio.timeout(READY_WAIT_S):
                gone = self.recording.get(c.call_id)
                if gone is not None:
                    await gone.wait()  # the caller is still speaking: never trim a file being written
                row = await self.finish(c.call_id)  # done already: the stored row at once
        except TimeoutError:
            log.warning("message.not_ready", call_id=c.call_id)
            return
        if row is None or row.state != "ready":
            return
        there = self.dirs()[1]
        await play(s, conf.announce if conf is not None else (), escape="#")
        r = await s.cmd("STREAM FILE", f"{there}/{SUBDIR}/{row.msg_id}", "#")
        agent = c.agent or ""
        self.db.post(self.store.heard, c.call_id, agent, time.time())
        log.info("message.played", call_id=c.call_id, msg_id=row.msg_id, agent=agent, skipped=r.value > 0,
                 duration_s=row.duration_s)

    async def prompt(self, s: AgiSession, c: acd.Call) -> None:
        """At a queue hook: the option to leave a message, while the caller could be called back."""
        conf = self._cfg().queues[c.queue].message if c.queue in self._cfg().queues else None
        if conf is None or not conf.prompt or await self.dial_back_for(c) is None:
            return
        await play(s, conf.prompt, escape="", stop=lambda: self.acd.offered(c.call_id))


def _ensure_dir(d: Path) -> None:
    """The messages directory, made like its parent (owner, mode): Asterisk writes into it."""
    if d.is_dir():
        return
    d.mkdir(parents=True, exist_ok=True)
    st = d.parent.stat()
    os.chmod(d, st.st_mode & 0o7777)
    with contextlib.suppress(PermissionError):
        os.chown(d, st.st_uid, st.st_gid)
