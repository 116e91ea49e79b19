"""What a desk phone is told, and who may ask: pure (no I/O, time passed in).

- :func:`route` reads a requested file name: which vendor's file, common or per-MAC, and the MAC.
- :func:`site_of` / :func:`device_of` turn the validated config into the views the renderers take.
- :class:`SourceGuard` counts strikes (unknown MACs, bad credentials) per source address and refuses a
  source that reaches ``limit`` strikes within ``window_s`` for ``block_s``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import zoneinfo
from collections import OrderedDict, deque
from typing import Any, Literal

from callcenter.features.provisioning.schema import MODELS

__all__ = ["Route", "Key", "Site", "Device", "route", "site_of", "device_of", "SourceGuard", "CODECS", "DTMF",
           "tz_offsets"]

# What Asterisk's endpoints for desk phones accept (callcenter.asterisk.render: allow=ulaw,alaw and
# dtmf_mode=rfc4733): the phones are told exactly that, in this order of preference.
CODECS = ("pcmu", "pcma")
DTMF = "rfc4733"
Kind = Literal["common", "device"]


@dataclasses.dataclass(frozen=True)
class Route:
    vendor: str
    kind: Kind
    mac: str | None = None


# File names, as each vendor's phones ask for them (lower-case hex MAC; Polycom may send upper-case).
_ROUTES: tuple[tuple[re.Pattern[str], str, Kind], ...] = (
    (re.compile(r"y000000000000\.cfg"), "yealink", "common"),
    (re.compile(r"000000000000\.cfg"), "polycom", "common"),
    (re.compile(r"([0-9a-f]{12})-phone\.cfg"), "polycom", "device"),
    (re.compile(r"cfg([0-9a-f]{12})\.xml"), "grandstream", "device"),
    (re.compile(r"([0-9a-f]{12})\.xml"), "snom", "device"),
    (re.compile(r"([0-9a-f]{12})\.cfg"), "yealink", "device"),  # a Polycom asks for it too: see service
)


def route(name: str) -> Route | None:
    """The file a phone asked for, or None for anything else (no path separators, nothing else)."""
    low = name.lower()
    if len(low) > 40:
        return None
    for pattern, vendor, kind in _ROUTES:
        m = pattern.fullmatch(low)
        if m:
            mac = m.group(1) if m.groups() else None
            return None if mac == "000000000000" else Route(vendor, kind, mac)
    return None


@dataclasses.dataclass(frozen=True)
class Key:
    kind: Literal["speed", "blf"]
    value: str  # a feature code, or the watched extension
    label: str


@dataclasses.dataclass(frozen=True)
class Site:
    """What every phone shares (and may be public): where to register, codecs, DTMF, time."""
    sip_host: str
    sip_port: int
    codecs: tuple[str, ...]
    dtmf: str
    timezone: str  # IANA name
    utc_offset_s: int  # standard time
    dst: bool  # the zone observes daylight saving time
    posix_tz: str  # e.g. CET-1CEST,M3.5.0,M10.5.0/3
    ntp_server: str | None


@dataclasses.dataclass(frozen=True)
class Device:
    """One desk phone: its account (with the SIP secret) and its programmable keys."""
    ext: str
    mac: str
    model: str
    vendor: str
    name: str
    secret: str
    keys: tuple[Key, ...]


def tz_offsets(name: str, year: int = 2026) -> tuple[int, bool]:
    """(standard UTC offset in seconds, observes DST) of an IANA zone: the smaller of mid-January's and
    mid-July's offsets is standard time (southern zones keep summer time in January)."""
    z = zoneinfo.ZoneInfo(name)
    offs = [int(dt.datetime(year, m, 15, 12, tzinfo=z).utcoffset().total_seconds())  # type: ignore[union-attr]
            for m in (1, 7)]
    return min(offs), offs[0] != offs[1]


def _posix_fallback(offset_s: int) -> str:
    sign = "-" if offset_s >= 0 else "+"  # POSIX counts west of Greenwich as positive
    h, m = divmod(abs(offset_s) // 60, 60)
    return f"<{'+' if offset_s >= 0 else '-'}{h:02d}{m:02d}>{sign}{h}" + (f":{m:02d}" if m else "")


def site_of(cfg: Any, posix_tz: str | None = None) -> Site:
    """The site view; ``posix_tz`` is the zone's rule read from its TZif file (the caller reads it:
    :func:`callcenter.features.provisioning.schema.read_posix_tz`), else a fixed-offset one."""
    prov = cfg.provisioning
    offset, dst = tz_offsets(prov.timezone)
    return Site(sip_host=prov.sip_host or cfg.sip.bind, sip_port=cfg.sip.port, codecs=CODECS, dtmf=DTMF,
                timezone=prov.timezone, utc_offset_s=offset, dst=dst,
                posix_tz=posix_tz or _posix_fallback(offset), ntp_server=prov.ntp_server)


def _keys(cfg: Any, ext: str) -> tuple[Key, ...]:
    f = cfg.features
    keys: list[Key] = []
    if cfg.agent_by_phone(ext) is not None:
        keys += [Key("speed", f.login, "Log in"), Key("speed", f.logout, "Log out"),
                 Key("speed", f.pause, "Pause"), Key("speed", f.unpause, "Unpause")]
    if cfg.provisioning.blf:
        others = sorted((ag.phone, ag.name or name) for name, ag in cfg.agents.items() if ag.phone != ext)
        keys += [Key("blf", phone, label) for phone, label in others]
        keys += [Key("blf", slot, f"Park {slot}") for slot in cfg.parking.slot_codes()]  # lit while a call is parked
    return tuple(keys[:MODELS[cfg.phones[ext].model].keys])


def device_of(cfg: Any, ext: str) -> Device:
    ph = cfg.phones[ext]
    agent = cfg.agent_by_phone(ext)
    name = ph.name or (cfg.agents[agent].name if agent else "") or ext
    return Device(ext=ext, mac=ph.mac, model=ph.model, vendor=MODELS[ph.model].vendor, name=name,
                  secret=ph.secret, keys=_keys(cfg, ext))


class SourceGuard:
    """Strikes per source address; ``limit`` distinct strikes within ``window_s`` block the source for
    ``block_s``. At most ``max_sources`` sources are tracked (the oldest forgotten first)."""

    def __init__(self, limit: int, window_s: float, block_s: float, max_sources: int = 10_000):
        self.limit, self.window_s, self.block_s, self.max_sources = limit, window_s, block_s, max_sources
        self._strikes: OrderedDict[str, deque[tuple[float, str]]] = OrderedDict()
        self._blocked: dict[str, float] = {}

    def blocked(self, source: str, now: float) -> bool:
        until = self._blocked.get(source)
        if until is None:
            return False
        if now >= until:
            del self._blocked[source]
            return False
        return True

    def strike(self, source: str, what: str, now: float) -> bool:
        """Count ``what`` (an unknown MAC counts once per window however often it is asked for);
        True when this strike blocks the source."""
        q = self._strikes.pop(source, None) or deque()
        self._strikes[source] = q  # most recent last
        while q and q[0][0] <= now - self.window_s:
            q.popleft()
        if all(w != what for _, w in q):
            q.append((now, what))
        while len(self._strikes) > self.max_sources:
            self._strikes.popitem(last=False)
        if len(self._blocked) > self.max_sources:
            self._blocked = {s: u for s, u in self._blocked.items() if u > now}
        if len(q) >= self.limit and not self.blocked(source, now):
            self._blocked[source] = now + self.block_s
            q.clear()
            return True
        return False

    def sizes(self) -> dict[str, int]:
        return {"provisioning_sources": len(self._strikes), "provisioning_blocked": len(self._blocked)}
