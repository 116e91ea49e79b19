"""The live AMD server over real loopback TCP: AudioSocket frames in, a final verdict out."""

from __future__ import annotations

import asyncio
import socket
import uuid

import numpy as np

from callcenter.features.amd.server import AmdServer, Verdict
from callcenter.features.amd.detector import AmdParams
from callcenter.protocol.audiosocket import encode_audio, encode_uuid
from tests.unit.test_amd import _greeting, _hello


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _stream(port: int, call: uuid.UUID, pcm: np.ndarray, closed: list[bool]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(encode_uuid(call))
    # Like Asterisk, keep streaming (silence) after the recording until the server hangs up.
    pcm = np.concatenate([pcm, np.zeros(8000 * 40, dtype=np.int16)])
    for i in range(0, len(pcm), 160):  # 20 ms frames, faster than real time
        if reader.at_eof():
            break
        try:
            writer.write(encode_audio(pcm[i:i + 160]))
            await writer.drain()
        except ConnectionError:  # the server decided and hung up while we were still sending
            break
        await asyncio.sleep(0)
    try:
        closed.append(await reader.read() == b"")  # the server hangs up once it has decided
    except ConnectionError:
        closed.append(True)
    writer.close()


async def test_live_sessions_get_final_verdicts_and_are_released():
    """A hello is HUMAN and a long greeting MACHINE; each socket is closed by the server; garbage
    on a third connection closes only that one."""
    finals: dict[str, Verdict] = {}
    port = _free_port()
    srv = AmdServer("127.0.0.1", port, AmdParams(), lambda u, v: finals.__setitem__(u, v))
    await srv.start()
    human, machine = uuid.uuid4(), uuid.uuid4()
    silence = np.zeros(8000 * 3, dtype=np.int16)
    closed: list[bool] = []
    bad_r, bad_w = await asyncio.open_connection("127.0.0.1", port)
    bad_w.write(b"\x42\x00\x01x")  # unknown frame type
    pcm16 = lambda x: np.clip(x, -32768, 32767).astype(np.int16)  # noqa: E731
    await asyncio.gather(_stream(port, human, pcm16(np.concatenate([_hello(), silence])), closed),
                         _stream(port, machine, pcm16(np.concatenate([_greeting(), silence])), closed))
    assert await asyncio.wait_for(bad_r.read(), 5) == b""
    bad_w.close()
    await srv.close()
    assert finals[str(human)].verdict == "HUMAN"
    assert finals[str(machine)].verdict == "MACHINE"
    # Each verdict carries its decision trace (for the log line and the call record).
    assert finals[str(human)].rule == "short_utterance_then_silence"
    assert dict(finals[str(human)].features)["utt_s"] < 1.5
    assert finals[str(human)].trace().startswith("short_utterance_then_silence/")
    assert finals[str(machine)].rule in ("long_utterance", "beep", "score_after_silence")
    assert closed == [True, True]
    assert not srv.engine.sessions


async def test_garbage_after_a_started_stream_releases_only_that_session():
    """A malformed frame after the UUID and some audio closes that connection and frees its detector
    slot; a well-formed stream on the same server still gets its verdict."""
    finals: dict[str, Verdict] = {}
    port = _free_port()
    srv = AmdServer("127.0.0.1", port, AmdParams(), lambda u, v: finals.__setitem__(u, v))
    await srv.start()
    try:
        bad_call, good_call = uuid.uuid4(), uuid.uuid4()
        bad_r, bad_w = await asyncio.open_connection("127.0.0.1", port)
        bad_w.write(encode_uuid(bad_call) + encode_audio(np.zeros(160, dtype=np.int16)))
        await bad_w.drain()
        bad_w.write(b"\x10\x00\x03abc")  # audio of odd length: not AudioSocket
        await bad_w.drain()
        assert await asyncio.wait_for(bad_r.read(), 5) == b""
        bad_w.close()
        assert not srv.engine.sessions
        closed: list[bool] = []
        silence = np.zeros(8000 * 3, dtype=np.int16)
        pcm = np.clip(np.concatenate([_hello(), silence]), -32768, 32767).astype(np.int16)
        await asyncio.wait_for(_stream(port, good_call, pcm, closed), 30)
        assert finals[str(good_call)].verdict == "HUMAN" and closed == [True]
        assert str(bad_call) not in finals
    finally:
        await srv.close()
