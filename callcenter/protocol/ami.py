"""AMI codec: bytes in, messages out; actions in, bytes out. No I/O.

AMI is ``Key: value`` lines ending in CRLF, a blank line ends a message. A CR or LF inside a
value we send would start a new header or a whole new action (header injection), so the
encoder refuses them outright; callers sanitise caller-controlled text before it gets here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = ["AmiProtocolError", "UnsafeValue", "Message", "AmiParser", "encode_action"]

MAX_MESSAGE = 256 * 1024  # a single AMI message larger than this is a broken peer
_KEY = re.compile(r"^[A-Za-z0-9_()-]{1,64}$")
_UNSAFE = re.compile(r"[\r\n\x00]")


class AmiProtocolError(Exception):
    """The peer sent something that is not AMI; the session must be closed."""


class UnsafeValue(ValueError):
    """A header key or value would change the framing of the action (CR, LF, NUL, bad key)."""


REPEATABLE = frozenset({"chanvariable", "variable", "output"})


@dataclass(frozen=True)
class Message:
    """One AMI message (event, response or banner) with its headers in arrival order.

    Asterisk writes caller-controlled text (caller ID, dialled digits) into events unescaped, so a
    caller ID with CR/LF can add lines to an event. Such a line without a colon is folded into the
    value before it (``folded``); a line that forges a header Asterisk also sends makes that key
    appear twice — then neither value can be trusted: the key reads as absent (``ambiguous``), and
    so does a channel variable set twice. The daemon's own identifiers (call ids, action ids) are
    random, so a forged event can name nothing it does not already own.
    """

    headers: tuple[tuple[str, str], ...]
    folded: int = 0
    _index: dict[str, str] = field(default_factory=dict, compare=False, repr=False)
    ambiguous: frozenset[str] = field(default=frozenset(), compare=False)

    def __post_init__(self) -> None:
        seen: set[str] = set()
        twice: set[str] = set()
        for k, v in self.headers:
            kl = k.lower()
            if kl in seen and kl not in REPEATABLE and "chanvariable" not in kl:  # DestChanVariable, ChanVariable(…)
                twice.add(kl)
            seen.add(kl)
            self._index.setdefault(kl, v)
        for kl in twice:
            del self._index[kl]
        if twice:
            object.__setattr__(self, "ambiguous", frozenset(twice))

    @property
    def suspicious(self) -> bool:
        """Caller-controlled text added lines to this event (folded or forged headers)."""
        return bool(self.folded or self.ambiguous)

    def get(self, key: str, default: str = "") -> str:
        return self._index.get(key.lower(), default)

    def __getitem__(self, key: str) -> str:
        return self._index[key.lower()]

    def __contains__(self, key: str) -> bool:
        return key.lower() in self._index

    def getall(self, key: str) -> list[str]:
        k = key.lower()
        return [v for kk, v in self.headers if kk.lower() == k]

    @property
    def event(self) -> str:
        return self.get("Event")

    @property
    def response(self) -> str:
        return self.get("Response")

    @property
    def action_id(self) -> str:
        return self.get("ActionID")

    def variables(self, prefix: str = "") -> dict[str, str]:
        """``ChanVariable: NAME=value`` headers (and ``Variable:``) as a dict; a name given twice (one
        of them forged) is left out. ``prefix``: one channel's of a multi-channel event (e.g.
        ``Transferee`` for ``TransfereeChanVariable:``)."""
        keys = (f"{prefix}chanvariable".lower(),) if prefix else ("chanvariable", "variable")
        out: dict[str, str] = {}
        twice: set[str] = set()
        for k, v in self.headers:
            if k.lower() in keys and "=" in v:
                name, _, val = v.partition("=")
                if name in out:
                    twice.add(name)
                out[name] = val
        for name in twice:
            del out[name]
        return out


class AmiParser:
    """Incremental parser. ``feed()`` returns every complete message found so far."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._scan = 0  # the terminator cannot start before here: each byte is searched once
        self.banner: str | None = None

    def feed(self, data: bytes) -> list[Message]:
        self._buf += data
        out: list[Message] = []
        if self.banner is None:
            nl = self._buf.find(b"\r\n")
            if nl < 0:
                if len(self._buf) > 256:
                    raise AmiProtocolError("no AMI banner")
                return out
            banner = bytes(self._buf[:nl]).decode("utf-8", "replace")
            if not banner.startswith("Asterisk Call Manager/"):
                raise AmiProtocolError(f"not an AMI banner: {banner[:60]!r}")
            self.banner = banner
            del self._buf[: nl + 2]
        while True:
            end = self._buf.find(b"\r\n\r\n", self._scan)
            if end < 0:
                if len(self._buf) > MAX_MESSAGE:
                    raise AmiProtocolError("AMI message too large")
                self._scan = max(0, len(self._buf) - 3)
                return out
            raw = bytes(self._buf[:end])
            del self._buf[: end + 4]
            self._scan = 0
            if raw.strip():
                out.append(_parse_block(raw))

    def __bool__(self) -> bool:  # pragma: no cover - convenience
        return True


def _parse_block(raw: bytes) -> Message:
    headers: list[tuple[str, str]] = []
    folded = 0
    for line in raw.decode("utf-8", "replace").split("\r\n"):
        if not line:
            continue
        key, sep, value = line.partition(":")
        if not sep or not key or " " in key:
            if not headers:
                raise AmiProtocolError(f"malformed AMI line: {line[:80]!r}")
            # A CR/LF inside a value Asterisk wrote unescaped (a caller ID): part of that value.
            k, v = headers[-1]
            headers[-1] = (k, f"{v}\n{line}")
            folded += 1
            continue
        headers.append((key, value[1:] if value.startswith(" ") else value))
    return Message(tuple(headers), folded)


def encode_action(action: str, headers: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> bytes:
    """Serialise one action. Repeated keys (``Variable``) are given as a list of pairs.

    Raises :class:`UnsafeValue` for anything that could break framing.
    """
    pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
    lines = [("Action", action), *pairs]
    out = []
    for k, v in lines:
        if not isinstance(k, str) or not _KEY.fullmatch(k):
            raise UnsafeValue(f"bad AMI header key {k!r}")
        v = str(v)
        if _UNSAFE.search(v):
            raise UnsafeValue(f"AMI header {k} contains CR, LF or NUL")
        out.append(f"{k}: {v}\r\n")
    out.append("\r\n")
    return "".join(out).encode("utf-8")
