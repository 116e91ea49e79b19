"""Fuzzing the AMI, FastAGI and AudioSocket codecs (bounded: a few seconds in ``make test``).

The properties live in :mod:`callcenter.bench.fuzz` so ``callcenter bench fuzz --seconds N`` runs the
same ones for longer. Here each runs under the ``codec-fuzz`` hypothesis profile (a per-example
deadline: no hang; a fixed number of examples: the file stays well under 30 s), plus the exact
cases the fuzzing found: an oversized AMI message fed a byte at a time took quadratic time (18 s),
and a FastAGI ``520-`` usage block without its end grew without limit.
"""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, settings

from callcenter.bench import fuzz
from callcenter.protocol import agi, ami, audiosocket

settings.register_profile("codec-fuzz", max_examples=250, deadline=1000, database=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
PROFILE = settings.get_profile("codec-fuzz")
PROPS = fuzz.PROPERTIES()


@pytest.mark.parametrize("name", sorted(PROPS))
def test_codec_property(name: str) -> None:
    """Each codec property (arbitrary bytes in arbitrary chunks, round trips, unsafe values) holds."""
    PROFILE(PROPS[name])()


def test_ami_oversized_message_byte_by_byte_is_linear() -> None:
    """A message that never ends, fed one byte at a time, is refused in linear time (each byte searched once)."""
    p = ami.AmiParser()
    p.feed(b"Asterisk Call Manager/6.0.0\r\n")
    start = time.monotonic()
    with pytest.raises(ami.AmiProtocolError, match="too large"):
        for _ in range(ami.MAX_MESSAGE + 1):
            p.feed(b"a")
    assert time.monotonic() - start < 5  # was 18 s: the whole buffer was searched again per byte


@pytest.mark.parametrize("piece", [b"x" * 4096, b"Key: " + b"v" * 4091, b"\r\n" + b"x" * 4094])
def test_ami_endless_input_without_terminator_stays_bounded(piece: bytes) -> None:
    """An endless header line (or message) without its blank line is refused before the buffer passes MAX_MESSAGE."""
    p = ami.AmiParser()
    p.feed(b"Asterisk Call Manager/6.0.0\r\n")
    with pytest.raises(ami.AmiProtocolError):
        for _ in range(10 * ami.MAX_MESSAGE // len(piece)):
            p.feed(piece)
            assert len(p._buf) <= ami.MAX_MESSAGE


def test_agi_endless_usage_block_is_refused() -> None:
    """A ``520-`` usage block that never ends is a protocol error once it passes MAX_USAGE (it grew forever)."""
    p = agi.AgiParser()
    p.feed(b"agi_request: agi://127.0.0.1/ivr\nagi_context: cc\n\n")
    p.feed(b"520-Invalid command syntax.  Proper usage follows:\n")
    with pytest.raises(agi.AgiProtocolError, match="usage"):
        for _ in range(10 * agi.MAX_USAGE // 100):
            p.feed(b"u" * 99 + b"\n")


def test_agi_usage_block_of_normal_size_still_parses() -> None:
    """A real-sized usage block still ends in one 520 response (the limit is far above Asterisk's texts)."""
    p = agi.AgiParser()
    p.feed(b"agi_request: agi://127.0.0.1/ivr\nagi_context: cc\n\n")
    out = p.feed(b"520-Invalid command syntax.  Proper usage follows:\n" + b"usage line\n" * 200
                 + b"520 End of proper usage.\n")
    assert out == [agi.Response(520, rest="End of proper usage.")]


@pytest.mark.parametrize("env_done", [False, True])
def test_agi_endless_line_byte_by_byte_is_refused_quickly(env_done: bool) -> None:
    """A line that never ends (in the environment or after it), fed a byte at a time, is refused at the limit."""
    p = agi.AgiParser()
    if env_done:
        p.feed(b"agi_request: agi://127.0.0.1/ivr\nagi_context: cc\n\n")
    start = time.monotonic()
    with pytest.raises(agi.AgiProtocolError, match="too long"):
        for _ in range(agi.MAX_ENV + 2):
            p.feed(b"a")
    assert time.monotonic() - start < 5


def test_audiosocket_endless_audio_keeps_at_most_one_frame() -> None:
    """Megabytes of audio in odd-sized chunks: the parser never holds more than one partial frame."""
    p = audiosocket.AudioSocketParser()
    frame = audiosocket.encode_audio(b"\x00\x01" * 2048)
    data = frame * 300
    n = 0
    for i in range(0, len(data), 1237):
        n += len(p.feed(data[i:i + 1237]))
        assert len(p._buf) < 3 + audiosocket.MAX_PAYLOAD
    assert n == 300


def test_chunked_covers_the_stream_exactly() -> None:
    """The fuzz helper's chunking gives back the same bytes, in order, for any cut positions."""
    assert b"".join(fuzz.chunked(b"abcdef", [3, 1, 99, 3])) == b"abcdef"
    assert fuzz.chunked(b"", [5]) == [b""]
