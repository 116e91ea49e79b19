"""FastAGI codec: bytes in, events out; commands in, bytes out. No I/O.

A FastAGI session starts with ``agi_key: value`` lines and a blank line, then alternates
command (one line) and response (``200 result=...``; ``520-`` starts a multi-line usage
block; a bare ``HANGUP`` line may arrive at any time). A newline in an argument would become
a second command, so the encoder refuses CR/LF/NUL and quotes every argument.

Asterisk writes caller ID (and DNID/RDNIS) into the environment as it is, newlines included.
Asterisk sends the keys in a fixed order (:data:`ENV_ORDER`), so a line that is not a key
*later* in that order, directly after a caller-controlled key, is that value continued (blank
lines too); anywhere else it is a protocol error. A caller who forges a later key ends their
own session with a protocol error as soon as the real keys follow (they are then "earlier"),
never with a forged value accepted silently; data after the blank line that ends the
environment, before any command was sent, is refused by the server the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["AgiProtocolError", "UnsafeArgument", "Env", "Response", "Hangup", "AgiParser",
           "encode_command", "script_name"]

MAX_ENV = 16 * 1024
# res_agi's setup_env order (FastAGI puts agi_network* first); agi_arg_N follow, then a blank line.
ENV_ORDER = ("agi_network", "agi_network_script", "agi_request", "agi_channel", "agi_language", "agi_type",
             "agi_uniqueid", "agi_version", "agi_callerid", "agi_calleridname", "agi_callingpres",
             "agi_callingani2", "agi_callington", "agi_callingtns", "agi_dnid", "agi_rdnis", "agi_context",
             "agi_extension", "agi_priority", "agi_enhanced", "agi_accountcode", "agi_threadid")
CALLER_KEYS = frozenset({"agi_callerid", "agi_calleridname", "agi_dnid", "agi_rdnis"})  # may hold newlines
_POS = {k: i for i, k in enumerate(ENV_ORDER)}
_ARG = re.compile(r"agi_arg_([0-9]{1,3})")
MAX_LINE = 8 * 1024
MAX_USAGE = 64 * 1024  # a ``520-`` usage block longer than this never ends: a broken peer
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
        return int(self.result) if self.result.lstrip("-").isascii() and self.result.lstrip("-").isdigit() else 0


@dataclass(frozen=True)
class Hangup:
    """Asterisk says the channel hung up (FastAGI sends a bare ``HANGUP`` line)."""


class AgiParser:
    def __init__(self) -> None:
        self._buf = bytearray()
        self._env: dict[str, str] = {}
        self._last = ""  # the last environment key read
        self._pos = -1  # its place in ENV_ORDER (args after it; unknown keys keep the place)
        self._done_env = False
        self._usage: list[str] | None = None
        self._usage_size = 0
        self._scan = 0  # no newline before here: each byte is searched once

    def feed(self, data: bytes) -> list[Env | Response | Hangup]:
        self._buf += data
        out: list[Env | Response | Hangup] = []
        while True:
            nl = self._buf.find(b"\n", self._scan)
            if nl < 0:
                limit = MAX_LINE if self._done_env else MAX_ENV
                if len(self._buf) > limit:
                    raise AgiProtocolError("AGI line too long")
                self._scan = len(self._buf)
                return out
            line = bytes(self._buf[:nl]).rstrip(b"\r").decode("utf-8", "replace")
            del self._buf[: nl + 1]
            self._scan = 0
            ev = self._line(line)
            if ev is not None:
                out.append(ev)

    def _line(self, line: str) -> Env | Response | Hangup | None:
        if not self._done_env:
            self._env_line(line)
            if not self._done_env:
                return None
            env, self._env = self._env, {}
            if "agi_request" not in env:
                raise AgiProtocolError("AGI environment without agi_request")
            return Env(env)
        if line == "HANGUP":
            return Hangup()
        if self._usage is not None:
            if line.startswith("520 "):
                self._usage = None
                return Response(520, rest=line[4:])
            self._usage.append(line)
            self._usage_size += len(line) + 1
            if self._usage_size > MAX_USAGE:
                raise AgiProtocolError("AGI usage block too long")
            return None
        if line.startswith("520-"):
            self._usage = [line[4:]]
            self._usage_size = len(line)
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


    def _env_line(self, line: str) -> None:
        continues = self._last in CALLER_KEYS
        key, sep, value = line.partition(": ")
        arg = _ARG.fullmatch(key)
        pos = len(ENV_ORDER) + int(arg[1]) if arg else _POS.get(key)
        if line == "" and not continues:
            self._done_env = True
            return
        if sep and key.startswith("agi_") and key not in self._env and (
                (pos is not None and pos > self._pos) or (pos is None and not continues)):
            self._env[key] = value
            self._last = key
            self._pos = pos if pos is not None else self._pos
        elif continues:  # a newline inside caller ID: the value goes on
            self._env[self._last] += "\n" + line
        else:
            raise AgiProtocolError(f"malformed AGI environment line: {line[:80]!r}")
        if sum(len(k) + len(v) for k, v in self._env.items()) > MAX_ENV:
            raise AgiProtocolError("AGI environment too large")


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
