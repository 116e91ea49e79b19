"""FastAGI server: one asyncio task per Asterisk connection, routed by script name.

A malformed session, an unknown script or a handler error ends that one session (unknown
scripts get a clean ``HANGUP``); the server and the daemon go on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from callcenter.protocol.agi import (
    AgiParser,
    AgiProtocolError,
    Env,
    Hangup,
    Response,
    encode_command,
    script_name,
)
from callcenter.asterisk.tcp import TcpService

__all__ = ["AgiServer", "AgiSession", "ChannelGone"]

log = structlog.get_logger("agi")


class ChannelGone(Exception):
    """The caller hung up (HANGUP, 511 dead channel, or the socket closed)."""


class AgiSession:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, parser: AgiParser, env: Env):
        self._reader, self._writer, self._parser = reader, writer, parser
        self.env = env
        self._backlog: list[Response | Hangup] = []
        self.hung_up = False

    @property
    def channel(self) -> str:
        return self.env.values.get("agi_channel", "")

    @property
    def uniqueid(self) -> str:
        return self.env.values.get("agi_uniqueid", "")

    async def cmd(self, verb: str, *args: str | int | float) -> Response:
        """Send one command, return its response; raises :class:`ChannelGone` once the caller has left."""
        if any(isinstance(ev, Response) for ev in self._backlog):  # Asterisk answers commands, never ahead
            raise AgiProtocolError("AGI response before its command")
        self._writer.write(encode_command(verb, *args))
        try:
            await self._writer.drain()
        except (ConnectionError, OSError) as e:
            raise ChannelGone(str(e)) from None
        while True:
            if self._backlog:
                ev = self._backlog.pop(0)
            else:
                data = await self._reader.read(4096)
                if not data:
                    raise ChannelGone("socket closed")
                self._backlog.extend(e for e in self._parser.feed(data) if not isinstance(e, Env))
                continue
            if isinstance(ev, Hangup):
                self.hung_up = True
                continue  # the response to our command still follows
            if ev.code == 511:
                raise ChannelGone("dead channel")
            if ev.result == "-1" and self.hung_up:
                raise ChannelGone("hung up")
            return ev

    async def set_var(self, name: str, value: str) -> None:
        await self.cmd("SET VARIABLE", name, value)

    async def get_var(self, name: str) -> str:
        r = await self.cmd("GET VARIABLE", name)
        return r.data if r.result == "1" else ""


Handler = Callable[[AgiSession], Awaitable[None]]


class AgiServer(TcpService):
    def __init__(self, host: str, port: int, routes: dict[str, Handler],
                 on_session: Callable[[str, str], None] | None = None):
        self.host, self.port, self.routes = host, port, routes
        self.on_session = on_session or (lambda script, result: None)
        self.open_sessions = 0  # FastAGI connections being served now

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open_sessions += 1
        try:
            await self._serve(reader, writer)
        finally:
            self.open_sessions -= 1

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        parser = AgiParser()
        script, result = "?", "ok"
        try:
            env = await asyncio.wait_for(self._read_env(reader, parser), 10)
            script = script_name(env.request) or "?"
            handler = self.routes.get(script)
            if handler is None:
                result = "unknown-script"
                log.warning("agi.unknown_script", request=env.request[:120])
                writer.write(encode_command("HANGUP"))
                await writer.drain()
                return
            session = AgiSession(reader, writer, parser, env)
            await handler(session)
        except ChannelGone:
            result = "hangup"
        except (AgiProtocolError, asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError) as e:
            result = "protocol-error"
            log.warning("agi.session_closed", script=script, error=f"{type(e).__name__}: {e}")
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug in one call's handler must not take other calls down
            result = "error"
            log.exception("agi.handler_failed", script=script)
        finally:
            self.on_session(script, result)
            writer.close()

    async def _read_env(self, reader: asyncio.StreamReader, parser: AgiParser) -> Env:
        while True:
            data = await reader.read(4096)
            if not data:
                raise asyncio.IncompleteReadError(b"", None)
            events = parser.feed(data)
            for i, ev in enumerate(events):
                if not isinstance(ev, Env):
                    raise AgiProtocolError("AGI command response before the environment")
                if any(isinstance(e, Response) for e in events[i + 1:]):  # e.g. forged inside caller ID
                    raise AgiProtocolError("data after the AGI environment before any command")
                return ev
