"""HTTP digest access authentication, server side (RFC 7616, ``qop=auth``): pure, time passed in.

The server keeps no password, only each device's HA1 = H(username:realm:password). Nonces are
stateless: the issue time and an HMAC of it under a key the process draws at start, so a forged or
expired nonce is told apart without a table; a replayed ``nc`` is caught by :class:`NonceCounts`.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import re
import secrets
from collections import OrderedDict
from typing import Literal

__all__ = ["Credentials", "parse_authorization", "ha1", "make_nonce", "nonce_age", "challenge", "response",
           "NonceCounts", "verify"]

_HASH = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}
_PARAM = re.compile(r'\s*([A-Za-z0-9_-]+)\s*=\s*("((?:[^"\\]|\\.)*)"|[^\s,]*)\s*(,|$)')


def _h(algorithm: str, data: str) -> str:
    return _HASH[algorithm](data.encode("utf-8")).hexdigest()


def ha1(username: str, realm: str, password: str, algorithm: str = "MD5") -> str:
    """What the config stores for a device (``phones.<ext>.provisioning_ha1``)."""
    return _h(algorithm, f"{username}:{realm}:{password}")


@dataclasses.dataclass(frozen=True)
class Credentials:
    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: str = "MD5"
    qop: str | None = None
    nc: str | None = None
    cnonce: str | None = None
    opaque: str | None = None


def parse_authorization(header: str) -> Credentials | None:
    """An ``Authorization: Digest ...`` header's fields, or None if it is not one we can check."""
    if len(header) > 4096:
        return None
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "digest":
        return None
    fields: dict[str, str] = {}
    pos = 0
    while pos < len(rest):
        m = _PARAM.match(rest, pos)
        if not m or m.end() == pos:
            return None
        value = re.sub(r"\\(.)", r"\1", m.group(3)) if m.group(3) is not None else m.group(2)
        fields[m.group(1).lower()] = value
        pos = m.end()
    try:
        algorithm = fields.get("algorithm", "MD5").upper()
        algorithm = {"MD5": "MD5", "SHA-256": "SHA-256"}[algorithm]
        return Credentials(username=fields["username"], realm=fields["realm"], nonce=fields["nonce"],
                           uri=fields["uri"], response=fields["response"].lower(), algorithm=algorithm,
                           qop=fields.get("qop"), nc=fields.get("nc"), cnonce=fields.get("cnonce"),
                           opaque=fields.get("opaque"))
    except KeyError:
        return None


def make_nonce(key: bytes, now: float, salt: str | None = None) -> str:
    """``<time>.<salt>.<tag>``: unique per challenge (the salt), its tag an HMAC of time and salt."""
    ts = f"{int(now):x}"
    salt = secrets.token_hex(6) if salt is None else salt
    tag = hmac.new(key, f"{ts}.{salt}".encode(), hashlib.sha256).digest()[:18]
    return f"{ts}.{salt}.{base64.urlsafe_b64encode(tag).decode()}"


def nonce_age(key: bytes, nonce: str, now: float) -> float | None:
    """Seconds since the nonce was issued, or None for one this key did not make."""
    parts = nonce.split(".")
    if len(parts) != 3 or not re.fullmatch(r"[0-9a-f]{1,12}", parts[0]) or not re.fullmatch(r"[0-9a-f]{12}", parts[1]):
        return None
    if not hmac.compare_digest(make_nonce(key, int(parts[0], 16), parts[1]), nonce):
        return None
    return now - int(parts[0], 16)


def challenge(realm: str, nonce: str, opaque: str, algorithm: str, *, stale: bool = False) -> str:
    """The ``WWW-Authenticate`` value."""
    s = f'Digest realm="{realm}", qop="auth", algorithm={algorithm}, nonce="{nonce}", opaque="{opaque}"'
    return s + (", stale=true" if stale else "")


def response(c: Credentials, method: str, ha1_hex: str) -> str:
    """The response a client that knows the password computes for these fields."""
    ha2 = _h(c.algorithm, f"{method}:{c.uri}")
    return _h(c.algorithm, f"{ha1_hex}:{c.nonce}:{c.nc}:{c.cnonce}:{c.qop}:{ha2}")


class NonceCounts:
    """The highest ``nc`` seen per nonce: a request replayed with a used count is refused."""

    def __init__(self, max_nonces: int = 20_000):
        self.max = max_nonces
        self._seen: OrderedDict[str, int] = OrderedDict()

    def fresh(self, nonce: str, nc: str | None) -> bool:
        try:
            n = int(nc or "0", 16)
        except ValueError:
            return False
        last = self._seen.get(nonce, -1)
        if n <= last:
            return False
        self._seen[nonce] = n
        self._seen.move_to_end(nonce)
        while len(self._seen) > self.max:
            self._seen.popitem(last=False)
        return True

    def __len__(self) -> int:
        return len(self._seen)


Verdict = Literal["ok", "stale", "bad"]


def verify(c: Credentials, *, method: str, uri: str, realm: str, algorithm: str, ha1_hex: str, key: bytes,
           now: float, ttl_s: float, counts: NonceCounts) -> Verdict:
    """``ok``; ``stale`` (a good answer to an expired nonce: the client retries with a new one without
    asking anyone for the password); or ``bad``."""
    if c.realm != realm or c.algorithm != algorithm or c.uri != uri:
        return "bad"
    if c.qop != "auth" or not c.nc or not c.cnonce:  # RFC 7616 has no qop-less digest (RFC 2069's)
        return "bad"
    age = nonce_age(key, c.nonce, now)
    if age is None or age < -5:
        return "bad"
    if not hmac.compare_digest(response(c, method, ha1_hex), c.response):
        return "bad"
    if age > ttl_s:
        return "stale"
    if not counts.fresh(c.nonce, c.nc):
        return "stale"
    return "ok"
