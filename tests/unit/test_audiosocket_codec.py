"""The AudioSocket codec, tested by bytes."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from callcenter.protocol.audiosocket import (
    MAX_PAYLOAD,
    Audio,
    AudioSocketParser,
    AudioSocketProtocolError,
    Dtmf,
    Error,
    Hangup,
    Uuid,
    encode_audio,
    encode_hangup,
    encode_uuid,
)

CALL = uuid.UUID("12345678-1234-5678-9abc-def012345678")
PCM = (np.arange(160, dtype=np.int16) * 97 - 7000).astype(np.int16)
STREAM = (
    b"\x01\x00\x10" + CALL.bytes
    + b"\x10\x01\x40" + PCM.astype("<i2").tobytes()
    + b"\x03\x00\x01" + b"5"
    + b"\x10\x00\x9c" + bytes(range(156))
    + b"\xff\x00\x01\x02"
    + b"\x00\x00\x00"
)
EXPECTED = [Uuid(CALL), Audio(PCM.astype("<i2").tobytes()), Dtmf("5"), Audio(bytes(range(156))),
            Error(b"\x02"), Hangup()]


def test_whole_stream_parses_to_events() -> None:
    """A whole stream gives UUID, audio, DTMF, a short audio frame, an error and hangup."""
    assert AudioSocketParser().feed(STREAM) == EXPECTED


def test_split_at_every_byte_gives_same_events() -> None:
    """Splitting the stream at any byte boundary gives the same events."""
    for cut in range(1, len(STREAM)):
        p = AudioSocketParser()
        assert p.feed(STREAM[:cut]) + p.feed(STREAM[cut:]) == EXPECTED, f"split at {cut}"


def test_byte_by_byte_gives_same_events() -> None:
    """Feeding one byte at a time gives the same events."""
    p = AudioSocketParser()
    events = []
    for i in range(len(STREAM)):
        events += p.feed(STREAM[i:i + 1])
    assert events == EXPECTED


def test_audio_samples_are_int16_little_endian() -> None:
    """Audio.samples decodes the payload as little-endian int16."""
    (ev,) = AudioSocketParser().feed(b"\x10\x00\x04" + b"\x01\x00\xff\xff")
    assert ev.samples.dtype == np.int16
    assert ev.samples.tolist() == [1, -1]


def test_truncated_frame_yields_nothing_until_complete() -> None:
    """A header without its whole payload yields no event yet."""
    p = AudioSocketParser()
    assert p.feed(b"\x10\x01\x40" + b"\x00" * 319) == []
    assert p.feed(b"\x00") == [Audio(b"\x00" * 320)]


def test_oversized_length_is_refused_from_the_header() -> None:
    """A length above MAX_PAYLOAD is refused as soon as the header arrives."""
    n = MAX_PAYLOAD + 1
    with pytest.raises(AudioSocketProtocolError, match="exceeds"):
        AudioSocketParser().feed(bytes([0x10, n >> 8, n & 0xFF]))


def test_max_payload_is_accepted() -> None:
    """Exactly MAX_PAYLOAD bytes of audio are accepted."""
    frame = bytes([0x10, MAX_PAYLOAD >> 8, MAX_PAYLOAD & 0xFF]) + b"\x00" * MAX_PAYLOAD
    assert AudioSocketParser().feed(frame) == [Audio(b"\x00" * MAX_PAYLOAD)]


@pytest.mark.parametrize("kind", [0x02, 0x04, 0x11, 0x20, 0xFE])
def test_unknown_type_is_refused(kind: int) -> None:
    """Unknown frame types raise at their first byte."""
    with pytest.raises(AudioSocketProtocolError, match="unknown frame type"):
        AudioSocketParser().feed(bytes([kind]))


@pytest.mark.parametrize("frame, message", [
    (b"\x01\x00\x0f" + b"\x00" * 15, "UUID"),
    (b"\x01\x00\x11" + b"\x00" * 17, "UUID"),
    (b"\x10\x00\x03\x00\x00\x00", "odd"),
    (b"\x03\x00\x02" + b"12", "DTMF"),
    (b"\x03\x00\x01" + b"x", "DTMF"),
])
def test_malformed_frames_are_refused(frame: bytes, message: str) -> None:
    """Wrong UUID size, odd audio length and bad DTMF raise a protocol error."""
    with pytest.raises(AudioSocketProtocolError, match=message):
        AudioSocketParser().feed(frame)


def test_parser_stays_failed_after_an_error() -> None:
    """After a protocol error every later feed raises too."""
    p = AudioSocketParser()
    with pytest.raises(AudioSocketProtocolError):
        p.feed(b"\x42")
    with pytest.raises(AudioSocketProtocolError):
        p.feed(encode_hangup())


def test_events_before_a_bad_frame_are_not_returned_twice() -> None:
    """Complete frames fed earlier are returned once; the bad one then raises."""
    p = AudioSocketParser()
    assert p.feed(encode_uuid(CALL)) == [Uuid(CALL)]
    with pytest.raises(AudioSocketProtocolError):
        p.feed(b"\x07\x00\x00")


def test_bytes_after_hangup_are_ignored() -> None:
    """Nothing is parsed after a hangup frame."""
    p = AudioSocketParser()
    assert p.feed(encode_hangup() + b"\x42garbage") == [Hangup()]
    assert p.closed
    assert p.feed(b"\x10\x00\x02\x00\x00") == []


def test_encode_audio_from_array_and_bytes() -> None:
    """encode_audio frames an int16 array and its bytes identically."""
    raw = PCM.astype("<i2").tobytes()
    assert encode_audio(PCM) == b"\x10\x01\x40" + raw
    assert encode_audio(raw) == encode_audio(PCM)
    assert AudioSocketParser().feed(encode_audio(PCM)) == [Audio(raw)]


def test_encode_audio_splits_long_audio() -> None:
    """Audio longer than MAX_PAYLOAD becomes several frames that parse back to the same bytes."""
    pcm = (np.arange(5000) % 300).astype(np.int16)
    events = AudioSocketParser().feed(encode_audio(pcm))
    assert len(events) == 3
    assert b"".join(e.data for e in events) == pcm.astype("<i2").tobytes()


def test_encode_audio_refuses_wrong_input() -> None:
    """Float arrays and odd byte counts are refused."""
    with pytest.raises(ValueError):
        encode_audio(np.zeros(4, dtype=np.float32))
    with pytest.raises(ValueError):
        encode_audio(b"\x00\x00\x00")


def test_encode_hangup_and_uuid() -> None:
    """Hangup is three zero bytes; a UUID frame carries the 16 raw bytes."""
    assert encode_hangup() == b"\x00\x00\x00"
    assert encode_uuid(CALL) == b"\x01\x00\x10" + CALL.bytes
