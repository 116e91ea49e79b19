"""The FastAGI server over real loopback TCP: routing, bad peers, and a full command exchange."""

from __future__ import annotations

import asyncio
import socket

import pytest

from callcenter.asterisk.agi_server import AgiServer, AgiSession
from callcenter.protocol.agi import Response

IO_TIMEOUT = 5.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(port: int, script: str, **extra: str) -> bytes:
    lines = [f"agi_request: agi://127.0.0.1:{port}/{script}", "agi_channel: PJSIP/trunk-pstn-00000001",
             "agi_uniqueid: 1700000000.7", "agi_arg_1: 5551000"]
    lines += [f"agi_{k}: {v}" for k, v in extra.items()]
    return ("\n".join(lines) + "\n\n").encode()


class Harness:
    def __init__(self) -> None:
        self.port = _free_port()
        self.sessions: list[tuple[str, str]] = []
        self.responses: list[Response] = []
        self.seen: list[tuple[str, str, tuple[str, ...]]] = []
        self.done = asyncio.Event()
        self.server = AgiServer("127.0.0.1", self.port, {"echo": self.echo, "boom": self.boom},
                                on_session=self.on_session)

    async def echo(self, s: AgiSession) -> None:
        self.seen.append((s.channel, s.uniqueid, s.env.args))
        self.responses.append(await s.cmd("ANSWER"))

    async def boom(self, s: AgiSession) -> None:
        raise RuntimeError("handler bug")

    def on_session(self, script: str, result: str) -> None:
        self.sessions.append((script, result))
        self.done.set()

    async def wait_session(self, n: int) -> None:
        async def _wait() -> None:
            while len(self.sessions) < n:
                self.done.clear()
                await self.done.wait()
        await asyncio.wait_for(_wait(), IO_TIMEOUT)

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.wait_for(asyncio.open_connection("127.0.0.1", self.port), IO_TIMEOUT)


@pytest.fixture
async def h():
    harness = Harness()
    await harness.server.start()
    try:
        yield harness
    finally:
        await harness.server.close()


async def _read_all(reader: asyncio.StreamReader) -> bytes:
    return await asyncio.wait_for(reader.read(), IO_TIMEOUT)


async def _valid_session(h: Harness) -> bytes:
    reader, writer = await h.connect()
    writer.write(_env(h.port, "echo"))
    await writer.drain()
    cmd = await asyncio.wait_for(reader.readline(), IO_TIMEOUT)
    writer.write(b"200 result=0\n")
    await writer.drain()
    rest = await _read_all(reader)
    writer.close()
    return cmd + rest


async def test_unknown_script_gets_exactly_hangup_and_close(h):
    """An unknown script name is answered with exactly b'HANGUP\\n' and the socket is closed."""
    reader, writer = await h.connect()
    writer.write(_env(h.port, "nope"))
    await writer.drain()
    assert await _read_all(reader) == b"HANGUP\n"
    writer.close()
    await h.wait_session(1)
    assert h.sessions == [("nope", "unknown-script")]
    assert h.responses == []


async def test_traversal_script_name_is_unknown(h):
    """A request path that is not a plain script name routes nowhere: HANGUP, script '?'."""
    reader, writer = await h.connect()
    writer.write(_env(h.port, "../echo"))
    await writer.drain()
    assert await _read_all(reader) == b"HANGUP\n"
    writer.close()
    await h.wait_session(1)
    assert h.sessions == [("?", "unknown-script")]


async def test_malformed_env_closes_connection_and_server_survives(h):
    """A malformed environment closes only that connection; the next valid session still works."""
    reader, writer = await h.connect()
    writer.write(b"agi_network: yes\nthis is not agi\n\n")
    await writer.drain()
    assert await _read_all(reader) == b""
    writer.close()
    await h.wait_session(1)
    assert h.sessions == [("?", "protocol-error")]

    assert await _valid_session(h) == b"ANSWER\n"
    await h.wait_session(2)
    assert h.sessions[1] == ("echo", "ok")
    assert h.responses == [Response(200, "0")]


async def test_env_without_request_is_protocol_error(h):
    """An environment lacking agi_request ends the session as a protocol error, nothing written."""
    reader, writer = await h.connect()
    writer.write(b"agi_channel: X\n\n")
    await writer.drain()
    assert await _read_all(reader) == b""
    writer.close()
    await h.wait_session(1)
    assert h.sessions == [("?", "protocol-error")]


async def test_peer_closing_before_env_is_protocol_error(h):
    """A peer that connects and closes without an environment is recorded as a protocol error."""
    _reader, writer = await h.connect()
    writer.write(b"agi_request: agi://127.0.0.1/echo\n")
    await writer.drain()
    writer.close()
    await h.wait_session(1)
    assert h.sessions == [("?", "protocol-error")]
    assert h.responses == []


async def test_valid_session_runs_handler_and_returns_response(h):
    """A valid session: the handler sees the env, sends ANSWER, and gets the parsed Response."""
    assert await _valid_session(h) == b"ANSWER\n"
    await h.wait_session(1)
    assert h.sessions == [("echo", "ok")]
    assert h.seen == [("PJSIP/trunk-pstn-00000001", "1700000000.7", ("5551000",))]
    assert h.responses == [Response(200, "0")]


async def test_env_and_response_in_byte_sized_pieces(h):
    """The server copes with the environment trickling in one byte at a time."""
    reader, writer = await h.connect()
    for b in _env(h.port, "echo"):
        writer.write(bytes([b]))
        await writer.drain()
    assert await asyncio.wait_for(reader.readline(), IO_TIMEOUT) == b"ANSWER\n"
    writer.write(b"200 result=")
    await writer.drain()
    writer.write(b"0\n")
    await writer.drain()
    assert await _read_all(reader) == b""
    writer.close()
    await h.wait_session(1)
    assert h.sessions == [("echo", "ok")]
    assert h.responses == [Response(200, "0")]


async def test_hangup_then_minus_one_is_channel_gone(h):
    """HANGUP followed by result=-1 makes cmd raise ChannelGone; the session ends as 'hangup'."""
    reader, writer = await h.connect()
    writer.write(_env(h.port, "echo"))
    await writer.drain()
    assert await asyncio.wait_for(reader.readline(), IO_TIMEOUT) == b"ANSWER\n"
    writer.write(b"HANGUP\n200 result=-1\n")
    await writer.drain()
    assert await _read_all(reader) == b""
    writer.close()
    await h.wait_session(1)
    assert h.sessions == [("echo", "hangup")]
    assert h.responses == []


async def test_socket_closed_mid_command_is_hangup(h):
    """The peer closing while a command waits for its response ends the session as 'hangup'."""
    reader, writer = await h.connect()
    writer.write(_env(h.port, "echo"))
    await writer.drain()
    assert await asyncio.wait_for(reader.readline(), IO_TIMEOUT) == b"ANSWER\n"
    writer.close()
    await h.wait_session(1)
    assert h.sessions == [("echo", "hangup")]


async def test_handler_exception_is_contained(h):
    """A handler that raises ends only its session ('error'); the server keeps serving."""
    reader, writer = await h.connect()
    writer.write(_env(h.port, "boom"))
    await writer.drain()
    assert await _read_all(reader) == b""
    writer.close()
    await h.wait_session(1)
    assert h.sessions == [("boom", "error")]
    assert await _valid_session(h) == b"ANSWER\n"
    await h.wait_session(2)
    assert h.sessions[1] == ("echo", "ok")


async def test_concurrent_sessions_are_independent(h):
    """Two sessions open at once each get their own command and response."""
    r1, w1 = await h.connect()
    r2, w2 = await h.connect()
    w1.write(_env(h.port, "echo"))
    w2.write(_env(h.port, "echo"))
    await w1.drain()
    await w2.drain()
    assert await asyncio.wait_for(r1.readline(), IO_TIMEOUT) == b"ANSWER\n"
    assert await asyncio.wait_for(r2.readline(), IO_TIMEOUT) == b"ANSWER\n"
    w2.write(b"200 result=2\n")
    w1.write(b"200 result=1\n")
    await w1.drain()
    await w2.drain()
    assert await _read_all(r1) == b"" and await _read_all(r2) == b""
    w1.close()
    w2.close()
    await h.wait_session(2)
    assert h.sessions == [("echo", "ok"), ("echo", "ok")]
    assert sorted(r.result for r in h.responses) == ["1", "2"]



async def test_response_forged_after_the_environment_is_refused(h):
    """A response arriving after the environment but before any command (e.g. forged inside a
    caller ID with a blank line) ends the session as a protocol error; the handler never runs."""
    reader, writer = await h.connect()
    writer.write(_env(h.port, "echo") + b"200 result=1\n")
    await writer.drain()
    assert await _read_all(reader) == b""
    writer.close()
    await h.wait_session(1)
    assert h.sessions == [("?", "protocol-error")]
    assert h.seen == []


@pytest.mark.parametrize("garbage", [b"x" * (64 * 1024), b"520-Usage:\n" + (b"u" * 99 + b"\n") * 800],
                         ids=["endless-line", "endless-usage-block"])
async def test_garbage_mid_session_closes_only_that_session(h, garbage):
    """Garbage instead of a command's response (an endless line, an endless 520- block) closes that
    session as a protocol error while another session open on the same server completes."""
    r1, w1 = await h.connect()
    r2, w2 = await h.connect()
    w1.write(_env(h.port, "echo"))
    w2.write(_env(h.port, "echo"))
    await w1.drain()
    await w2.drain()
    assert await asyncio.wait_for(r1.readline(), IO_TIMEOUT) == b"ANSWER\n"
    assert await asyncio.wait_for(r2.readline(), IO_TIMEOUT) == b"ANSWER\n"
    w1.write(garbage)
    try:
        await w1.drain()
    except ConnectionError:  # the server may close while we still write
        pass
    await h.wait_session(1)
    assert h.sessions == [("echo", "protocol-error")]
    try:
        assert await _read_all(r1) == b""
    except ConnectionError:
        pass
    w1.close()
    w2.write(b"200 result=7\n")
    await w2.drain()
    assert await _read_all(r2) == b""
    w2.close()
    await h.wait_session(2)
    assert h.sessions[1] == ("echo", "ok")
    assert h.responses == [Response(200, "7")]
