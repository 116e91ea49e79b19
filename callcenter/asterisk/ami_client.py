"""AMI connection: connect, log in, wait for FullyBooted, hand events over; reconnect with back-off.

Framing is :mod:`callcenter.protocol.ami`; this module only moves bytes. A malformed stream
closes this connection (and we reconnect); it never takes the daemon down.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping

import structlog

from callcenter.protocol.ami import AmiParser, AmiProtocolError, Message, encode_action

__all__ = ["AmiClient", "AmiError", "NotConnected", "response"]

log = structlog.get_logger("ami")


class AmiError(Exception):
    """An action was answered with ``Response: Error``."""


class NotConnected(Exception):
    """No logged-in AMI session right now."""


async def response(name: str, fut: asyncio.Future[Message], timeout: float = 10.0) -> Message:
    """The ``Response`` of an action sent with :meth:`AmiClient.send` (``AmiError`` if it is an error)."""
    msg = await asyncio.wait_for(fut, timeout)
    if msg.response.lower() == "error":
        raise AmiError(f"{name}: {msg.get('Message')}")
    return msg


class AmiClient:
    def __init__(self, host: str, port: int, username: str, secret: str, *,
                 on_event: Callable[[Message], None],
                 on_up: Callable[[], Awaitable[None]],
                 on_down: Callable[[], None],
                 max_backoff_s: float = 10.0,
                 booted_timeout_s: float = 30.0):
        self.host, self.port, self.username, self.secret = host, port, username, secret
        self.on_event, self.on_up, self.on_down = on_event, on_up, on_down
        self.max_backoff_s = max_backoff_s
        self.booted_timeout_s = booted_timeout_s
        self._writer: asyncio.StreamWriter | None = None
        self._pending: dict[str, asyncio.Future[Message]] = {}
        self._lists: dict[str, tuple[list[Message], asyncio.Future[list[Message]]]] = {}
        self._ids = itertools.count(1)
        self._prefix = f"cc{random.randrange(1 << 30):x}-"
        self._booted: asyncio.Event = asyncio.Event()
        self._stop = asyncio.Event()
        self.logged_in = False
        self.handler_failures = 0

    # ------------------------------------------------------------------ public
    @property
    def in_flight(self) -> int:
        """Actions sent and not yet answered (lists included)."""
        return len(self._pending) + len(self._lists)

    def new_action_id(self) -> str:
        return f"{self._prefix}{next(self._ids)}"

    def send(self, name: str, headers: Mapping[str, str] | Iterable[tuple[str, str]] = (), *,
             action_id: str | None = None) -> asyncio.Future[Message]:
        """Write one action now (raises :class:`NotConnected`); the future gets its ``Response``. For
        the routing path: the action is on the wire before the caller does anything else."""
        aid = action_id or self.new_action_id()
        fut: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._send(name, headers, aid)
        self._pending[aid] = fut
        fut.add_done_callback(lambda _f: self._pending.pop(aid, None))  # answered, timed out or cancelled
        return fut

    async def action(self, name: str, headers: Mapping[str, str] | Iterable[tuple[str, str]] = (), *,
                     action_id: str | None = None, timeout: float = 10.0) -> Message:
        """Send one action and wait for its ``Response``."""
        return await response(name, self.send(name, headers, action_id=action_id), timeout)

    async def list_action(self, name: str, headers: Mapping[str, str] = {}, *,  # noqa: B006
                          timeout: float = 15.0) -> list[Message]:
        """An action answered by a list of events ending with ``EventList: Complete``."""
        aid = self.new_action_id()
        fut: asyncio.Future[list[Message]] = asyncio.get_running_loop().create_future()
        self._lists[aid] = ([], fut)
        try:
            await self.action(name, headers, action_id=aid, timeout=timeout)
            return await asyncio.wait_for(fut, timeout)
        finally:
            self._lists.pop(aid, None)

    def stop(self) -> None:
        self._stop.set()
        if self._writer is not None:
            self._writer.close()

    async def run(self) -> None:
        """Stay connected until :meth:`stop`; back off 0.25 s, 0.5 s, 1 s ... up to ``max_backoff_s``."""
        backoff = 0.25
        while not self._stop.is_set():
            started = asyncio.get_running_loop().time()
            try:
                await self._session()
            except (OSError, AmiProtocolError, AmiError, asyncio.TimeoutError, asyncio.IncompleteReadError) as e:
                if not self._stop.is_set():
                    log.warning("ami.disconnected", error=f"{type(e).__name__}: {e}")
            finally:
                was_up = self.logged_in
                self._teardown()
                if was_up:
                    self.on_down()
            if self._stop.is_set():
                return
            if asyncio.get_running_loop().time() - started > 30:
                backoff = 0.25  # it was a long healthy session: reconnect quickly
            with contextlib.suppress(TimeoutError):  # asyncio.timeout never swallows a cancel (wait_for can)
                async with asyncio.timeout(backoff):
                    await self._stop.wait()
            backoff = min(backoff * 2, self.max_backoff_s)

    # ------------------------------------------------------------------ internals
    def _send(self, name: str, headers: Mapping[str, str] | Iterable[tuple[str, str]], aid: str) -> None:
        if self._writer is None or self._writer.is_closing():
            raise NotConnected(name)
        pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
        self._writer.write(encode_action(name, [*pairs, ("ActionID", aid)]))

    async def _session(self) -> None:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        self._writer = writer
        self._booted = asyncio.Event()
        parser = AmiParser()
        reader_task = asyncio.create_task(self._read(reader, parser))
        try:
            login = asyncio.create_task(self.action("Login", {"Username": self.username, "Secret": self.secret,
                                                               "Events": "on"}))
            done, _ = await asyncio.wait({login, reader_task}, return_when=asyncio.FIRST_COMPLETED)
            if reader_task in done:
                login.cancel()
                with contextlib.suppress(asyncio.CancelledError, NotConnected):
                    await login
                reader_task.result()
                raise OSError("connection closed during login")
            login.result()
            await asyncio.wait_for(self._wait_booted(reader_task), self.booted_timeout_s)
            self.logged_in = True
            log.info("ami.logged_in", host=self.host, port=self.port, banner=parser.banner)
            await self.on_up()
            await reader_task
        finally:
            reader_task.cancel()
            try:
                await reader_task
            except (asyncio.CancelledError, OSError, AmiProtocolError, asyncio.IncompleteReadError):
                pass

    async def _wait_booted(self, reader_task: asyncio.Task[None]) -> None:
        booted = asyncio.create_task(self._booted.wait())
        done, _ = await asyncio.wait({booted, reader_task}, return_when=asyncio.FIRST_COMPLETED)
        if booted not in done:
            booted.cancel()
            reader_task.result()
            raise OSError("connection closed before FullyBooted")

    async def _read(self, reader: asyncio.StreamReader, parser: AmiParser) -> None:
        while True:
            data = await reader.read(65536)
            if not data:
                raise OSError("AMI connection closed by peer")
            for msg in parser.feed(data):
                self._route(msg)

    def _route(self, msg: Message) -> None:
        aid = msg.action_id
        # OriginateResponse is an *event* that carries a Response header and the action's
        # ActionID, and it can beat the action's own response: events are never responses.
        if "Event" not in msg and "Response" in msg and aid in self._pending:
            fut = self._pending[aid]
            if not fut.done():
                fut.set_result(msg)
            return
        if "Event" in msg and aid in self._lists:
            items, fut = self._lists[aid]
            if msg.get("EventList").lower() == "complete":
                if not fut.done():
                    fut.set_result(items)
            else:
                items.append(msg)
            return
        if msg.event == "FullyBooted":
            self._booted.set()
        if "Event" in msg:
            try:
                self.on_event(msg)
            except Exception as e:  # noqa: BLE001 - a handler's bug must not end the reader (or routing)
                self.handler_failures += 1
                log.error("ami.handler_failed", ami_event=msg.event[:40], uniqueid=msg.get("Uniqueid")[:40],
                          error=repr(e), exc_info=e)

    def _teardown(self) -> None:
        self.logged_in = False
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(NotConnected("connection lost"))
        for _, fut in self._lists.values():
            if not fut.done():
                fut.set_exception(NotConnected("connection lost"))
