"""FastAGI codec: bytes in, events out; commands in, bytes out. No I/O.

A FastAGI session starts with ``agi_key: value`` lines and a blank line, then alternates
command (one line) and response (``200 result=...``; ``520-`` starts a multi-line usage
block; a bare ``HANGUP`` line may arrive at any time). A newline in an argument would become
a second command, so the encoder refuses CR/LF/NUL and quotes every argument.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["AgiProtocolError", "UnsafeArgument", "Env", "Response", "Hangup", "AgiParser",
           "encode_command", "script_name"]

MAX_ENV = 16 * 1024
MAX_LINE = 8 * 1024
_VERB = re.compile(r"^[A-Z][A-Z ]{1,40}$")
_UNSAFE = re.compile(r"[\r\n\x00]")
_RESULT = re.compile(r"^(\d{3}) result=(-?[0-9]*)(?: \(([^)]*)\))?(?: (.*))?$")


class AgiProtocolError(Exception):
    """The peer is not speaking AGI; close this session (only this one)."""


class UnsafeArgument(ValueError):
    """An argument would break AGI framing."""


@dataclass(frozen=True)
class Env:
    values: dict[str, str]

    @property
    def request(self) -> str:
        return self.values.get("agi_request", "")

    @property
    def args(self) -> tuple[str, ...]:
        out = []
        i = 1
        while f"agi_arg_{i}" in self.values:
            out.append(self.values[f"agi_arg_{i}"])
            i += 1
        return tuple(out)


@dataclass(frozen=True)
class Response:
    code: int
    result: str = ""
    data: str = ""
    rest: str = ""

    @property
    def ok(self) -> bool:
        return self.code == 200 and self.result != "-1"

    @property
    def value(self) -> int:
        return int(self.result) if self.result.lstrip("-").isdigit() else 0


@dataclass(frozen=True)
class Hangup:
    """Asterisk says the channel hung up (FastAGI sends a bare ``HANGUP`` line)."""


class AgiParser:
    def __init__(self) -> None:
        self._buf = bytearray()
        self._env: dict[str, str] = {}
        self._done_env = False
        self._usage: list[str] | None = None

    def feed(self, data: bytes) -> list[Env | Response | Hangup]:
        self._buf += data
        out: list[Env | Response | Hangup] = []
        while True:
            nl = self._buf.find(b"\n")
            if nl < 0:
                limit = MAX_LINE if self._done_env else MAX_ENV
                if len(self._buf) > limit:
                    raise AgiProtocolError("AGI line too long")
                return out
            line = bytes(self._buf[:nl]).rstrip(b"\r").decode("utf-8", "replace")
            del self._buf[: nl + 1]
            ev = self._line(line)
            if ev is not None:
                out.append(ev)

    def _line(self, line: str) -> Env | Response | Hangup | None:
        if not self._done_env:
            if line == "":
                env, self._env = self._env, {}
                self._done_env = True
                if "agi_request" not in env:
                    raise AgiProtocolError("AGI environment without agi_request")
                return Env(env)
            key, sep, value = line.partition(": ")
            if not sep or not key.startswith("agi_"):
                raise AgiProtocolError(f"malformed AGI environment line: {line[:80]!r}")
            self._env[key] = value
            if sum(len(k) + len(v) for k, v in self._env.items()) > MAX_ENV:
                raise AgiProtocolError("AGI environment too large")
            return None
        if line == "HANGUP":
            return Hangup()
        if self._usage is not None:
            if line.startswith("520 "):
                self._usage = None
                return Response(520, rest=line[4:])
            self._usage.append(line)
            return None
        if line.startswith("520-"):
            self._usage = [line[4:]]
            return None
        m = _RESULT.match(line)
        if m:
            return Response(int(m[1]), m[2], m[3] or "", m[4] or "")
        m2 = re.match(r"^(\d{3}) ?(.*)$", line)
        if m2:
            return Response(int(m2[1]), rest=m2[2])
        if line == "":
            return None
        raise AgiProtocolError(f"malformed AGI response: {line[:80]!r}")


def quote(arg: str) -> str:
    """Quote one argument the way res_agi's parser reads it back (quotes, backslash escapes)."""
    if _UNSAFE.search(arg):
        raise UnsafeArgument("AGI argument contains CR, LF or NUL")
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def encode_command(verb: str, *args: str | int | float) -> bytes:
    """One AGI command line; the verb is a fixed upper-case word, every argument is quoted."""
    if not _VERB.fullmatch(verb):
        raise UnsafeArgument(f"bad AGI verb {verb!r}")
    parts = [verb] + [quote(str(a)) for a in args]
    return (" ".join(parts) + "\n").encode("utf-8")


_SCRIPT = re.compile(r"^agi://[^/]+/([A-Za-z0-9_-]{1,32})(?:\?.*)?$")


def script_name(request: str) -> str | None:
    """``agi://host:port/ivr?x=y`` -> ``ivr``; None when the request is not a plain script name."""
    m = _SCRIPT.match(request)
    return m[1] if m else None
