"""AudioSocket codec: bytes in, events out; audio in, bytes out. No I/O.

Asterisk's AudioSocket sends frames of ``type (1 byte) | length (2 bytes, big-endian) |
payload``. Types: ``0x00`` hangup, ``0x01`` the call's UUID (16 bytes), ``0x03`` a DTMF digit
(1 byte), ``0x10`` signed-linear 16-bit little-endian audio at 8 kHz (usually 320 bytes = 20 ms,
but any even length), ``0xff`` an error (payload: Asterisk's error code, possibly empty).

Rules of this module:

- :class:`AudioSocketParser` is incremental: bytes may arrive split anywhere; ``feed`` returns
  the events of every frame completed so far and keeps the rest.
- Anything that is not AudioSocket raises :class:`AudioSocketProtocolError` and poisons the
  parser (every later ``feed`` raises too): unknown types, a length above
  :data:`MAX_PAYLOAD` (4096 bytes — 256 ms of audio, ten times what Asterisk sends; a larger
  length means the stream is out of step), a UUID frame that is not 16 bytes, a DTMF frame that
  is not 1 byte, audio of odd length.
- After a hangup frame nothing more is parsed; bytes after it are ignored.
"""

from __future__ import annotations

import uuid as _uuid
from dataclasses import dataclass

import numpy as np

__all__ = [
    "KIND_AUDIO",
    "KIND_DTMF",
    "KIND_ERROR",
    "KIND_HANGUP",
    "KIND_UUID",
    "MAX_PAYLOAD",
    "Audio",
    "AudioSocketParser",
    "AudioSocketProtocolError",
    "Dtmf",
    "Error",
    "Hangup",
    "Uuid",
    "encode_audio",
    "encode_hangup",
    "encode_uuid",
]

KIND_HANGUP = 0x00
KIND_UUID = 0x01
KIND_DTMF = 0x03
KIND_AUDIO = 0x10
KIND_ERROR = 0xFF

MAX_PAYLOAD = 4096
_HEADER = 3


class AudioSocketProtocolError(Exception):
    """The peer is not speaking AudioSocket; close this connection (only this one)."""


@dataclass(frozen=True)
class Uuid:
    """The first frame of a connection: the call's identifier from the dialplan."""

    value: _uuid.UUID


@dataclass(frozen=True, eq=False)
class Audio:
    """Signed-linear 16-bit 8 kHz mono audio, as raw little-endian bytes."""

    data: bytes

    @property
    def samples(self) -> np.ndarray:
        """The audio as an int16 array (a read-only view of ``data``)."""
        return np.frombuffer(self.data, dtype="<i2")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Audio) and self.data == other.data

    def __hash__(self) -> int:
        return hash(self.data)


@dataclass(frozen=True)
class Dtmf:
    """A DTMF digit pressed by the caller."""

    digit: str


@dataclass(frozen=True)
class Hangup:
    """The call hung up (Asterisk may also just close the socket)."""


@dataclass(frozen=True)
class Error:
    """Asterisk reported an error; ``code`` is its payload (may be empty)."""

    code: bytes


class AudioSocketParser:
    """Incremental AudioSocket frame parser: ``feed(bytes) -> list[event]``."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._error: AudioSocketProtocolError | None = None
        self.closed = False

    def feed(self, data: bytes) -> list[Uuid | Audio | Dtmf | Hangup | Error]:
        """Add received bytes; return the events of every frame completed so far."""
        if self._error is not None:
            raise self._error
        if self.closed:
            return []
        self._buf += data
        events: list[Uuid | Audio | Dtmf | Hangup | Error] = []
        pos = 0
        buf = self._buf
        try:
            while len(buf) - pos >= 1:
                kind = buf[pos]
                if kind not in (KIND_HANGUP, KIND_UUID, KIND_DTMF, KIND_AUDIO, KIND_ERROR):
                    raise AudioSocketProtocolError(f"unknown frame type 0x{kind:02x}")
                if len(buf) - pos < _HEADER:
                    break
                length = (buf[pos + 1] << 8) | buf[pos + 2]
                if length > MAX_PAYLOAD:
                    raise AudioSocketProtocolError(
                        f"frame length {length} exceeds the maximum {MAX_PAYLOAD}")
                _check_length(kind, length)
                if len(buf) - pos < _HEADER + length:
                    break
                payload = bytes(buf[pos + _HEADER:pos + _HEADER + length])
                pos += _HEADER + length
                event = _event(kind, payload)
                events.append(event)
                if isinstance(event, Hangup):
                    self.closed = True
                    pos = len(buf)
                    break
        except AudioSocketProtocolError as e:
            self._error = e
            raise
        del buf[:pos]
        return events


def _check_length(kind: int, length: int) -> None:
    if kind == KIND_UUID and length != 16:
        raise AudioSocketProtocolError(f"UUID frame of {length} bytes (expected 16)")
    if kind == KIND_DTMF and length != 1:
        raise AudioSocketProtocolError(f"DTMF frame of {length} bytes (expected 1)")
    if kind == KIND_AUDIO and length % 2:
        raise AudioSocketProtocolError(f"audio frame of odd length {length}")


def _event(kind: int, payload: bytes) -> Uuid | Audio | Dtmf | Hangup | Error:
    if kind == KIND_AUDIO:
        return Audio(payload)
    if kind == KIND_UUID:
        return Uuid(_uuid.UUID(bytes=payload))
    if kind == KIND_DTMF:
        digit = payload.decode("latin-1")
        if digit not in "0123456789*#ABCD":
            raise AudioSocketProtocolError(f"DTMF frame with digit {payload!r}")
        return Dtmf(digit)
    if kind == KIND_HANGUP:
        return Hangup()
    return Error(payload)


def _frame(kind: int, payload: bytes) -> bytes:
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    return bytes((kind, len(payload) >> 8, len(payload) & 0xFF)) + payload


def encode_audio(pcm: np.ndarray | bytes) -> bytes:
    """Frame signed-linear audio (int16 samples or their little-endian bytes).

    Audio longer than :data:`MAX_PAYLOAD` bytes is split into several frames.
    """
    if isinstance(pcm, np.ndarray):
        if pcm.dtype != np.int16:
            raise ValueError(f"audio must be int16, not {pcm.dtype}")
        data = pcm.astype("<i2", copy=False).tobytes()
    else:
        data = bytes(pcm)
    if len(data) % 2:
        raise ValueError("audio bytes must have an even length")
    return b"".join(_frame(KIND_AUDIO, data[i:i + MAX_PAYLOAD])
                    for i in range(0, len(data), MAX_PAYLOAD)) or _frame(KIND_AUDIO, b"")


def encode_hangup() -> bytes:
    """A hangup frame (asks Asterisk to end the AudioSocket)."""
    return _frame(KIND_HANGUP, b"")


def encode_uuid(value: _uuid.UUID) -> bytes:
    """A UUID frame (what Asterisk sends first; useful for tests and simulators)."""
    return _frame(KIND_UUID, value.bytes)
