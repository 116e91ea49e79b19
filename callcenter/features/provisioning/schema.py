"""The ``provisioning`` config section and the desk-phone fields (``phones.<ext>.mac/model/provisioning_ha1``).

A phone's per-MAC file holds its SIP secret, so it is served only to a client that proves the device's
own provisioning credentials with HTTP digest (RFC 7616). The config keeps no provisioning password in
plain text: ``provisioning_ha1`` is the digest HA1, ``H(mac:realm:password)`` (``callcenter provisioning
credentials <ext>`` makes a password and prints it); the password itself is typed into the phone (or into
its DHCP option 66 URL). Cross references are checked by :func:`references`.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import zoneinfo
from dataclasses import dataclass as plain_dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic.dataclasses import dataclass

from callcenter.confbase import STRICT, check_host

__all__ = ["MODELS", "Model", "ProvisioningConf", "check_mac", "check_model", "check_ha1", "check_host",
           "references", "VENDORS", "read_posix_tz"]

VENDORS = ("yealink", "polycom", "grandstream", "snom")


@plain_dataclass(frozen=True)
class Model:
    vendor: str
    label: str
    keys: int  # programmable keys this model gets (feature codes first, then BLF)


# Models we render for; ``keys`` is what we fill, kept within what the vendor's scheme addresses
# (Grandstream's classic MPK P-values number seven keys).
MODELS: dict[str, Model] = {
    "yealink-t46u": Model("yealink", "Yealink T46U", 15),
    "yealink-t54w": Model("yealink", "Yealink T54W", 26),
    "polycom-vvx411": Model("polycom", "Polycom VVX 411", 11),
    "polycom-vvx450": Model("polycom", "Polycom VVX 450", 11),
    "grandstream-gxp2170": Model("grandstream", "Grandstream GXP2170", 7),
    "grandstream-gxp2140": Model("grandstream", "Grandstream GXP2140", 4),
    "snom-d385": Model("snom", "Snom D385", 12),
    "snom-d785": Model("snom", "Snom D785", 24),
}

_MAC = re.compile(r"[0-9a-f]{12}")
_HA1 = {"MD5": re.compile(r"[0-9a-f]{32}"), "SHA-256": re.compile(r"[0-9a-f]{64}")}


def check_mac(v: str | None) -> str | None:
    """Twelve hex digits, written with or without ``:``/``-``; kept lower-case without separators."""
    if v is None:
        return v
    norm = re.sub(r"[:-]", "", v).lower()
    if not _MAC.fullmatch(norm) or norm == "000000000000":
        raise ValueError(f"a MAC address is 12 hex digits (e.g. 80:5e:c0:12:34:56), not {v[:40]!r}")
    return norm


def check_model(v: str | None) -> str | None:
    if v is not None and v not in MODELS:
        raise ValueError(f"unknown model {v[:40]!r} (expected one of {', '.join(MODELS)})")
    return v


def check_ha1(v: str | None) -> str | None:
    if v is not None and not any(p.fullmatch(v) for p in _HA1.values()):
        raise ValueError("a digest HA1 is 32 (MD5) or 64 (SHA-256) lower-case hex digits "
                         "(`callcenter provisioning credentials <extension>`)")
    return v


@functools.lru_cache(maxsize=64)
def read_posix_tz(name: str) -> str | None:
    """The zone's POSIX TZ rule: the footer line of its TZif (version 2+) file, or None. Cached: the
    config check reads it while loading (off the event loop), the listener then only looks it up."""
    for base in zoneinfo.TZPATH:
        try:
            raw = (Path(base) / name).read_bytes()
        except OSError:
            continue
        text = raw.rstrip(b"\n").rsplit(b"\n", 1)[-1].decode("ascii", "replace")
        return text if text and text.isprintable() and len(text) < 80 else None
    return None


@dataclass(config=STRICT)
class ProvisioningConf:
    enabled: bool = False
    bind: str = "127.0.0.1"  # the phones' LAN address in production; the API stays on loopback
    port: int = Field(default=9190, ge=1, le=65535)
    tls_cert: str | None = None  # PEM paths: serve HTTPS (phones that check certificates need a CA they trust)
    tls_key: str | None = None
    realm: str = Field(default="callcenter-provisioning", pattern=r"^[A-Za-z0-9 ._-]{1,64}$")
    algorithm: Literal["MD5", "SHA-256"] = "MD5"  # the digest most desk phones speak; HA1s are per algorithm
    sip_host: str | None = None  # where phones register (default: sip.bind)
    ntp_server: str | None = None
    timezone: str = "UTC"  # IANA name (Europe/Paris); each vendor gets its own notation of it
    nonce_ttl_s: float = Field(default=300, ge=10, le=3600)
    unknown_limit: int = Field(default=5, ge=1, le=1000)  # unknown MACs / bad credentials per source ...
    unknown_window_s: float = Field(default=60, gt=0, le=3600)  # ... within this window ...
    block_s: float = Field(default=600, gt=0, le=86400)  # ... refuse that source this long
    blf: bool = True  # BLF keys for the other agents' extensions, then the parking slots (features.parking)

    @field_validator("bind")
    @classmethod
    def _bind(cls, v: str) -> str:
        ipaddress.ip_address(v)
        return v

    @field_validator("sip_host", "ntp_server")
    @classmethod
    def _host(cls, v: str | None) -> str | None:
        return None if v is None else check_host(v)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_+/-]{1,64}", v) or ".." in v:
            raise ValueError(f"unknown time zone {v[:64]!r}")
        try:
            zoneinfo.ZoneInfo(v)  # cached by zoneinfo, as read_posix_tz caches its rule
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r} (an IANA name such as Europe/Paris)") from None
        read_posix_tz(v)
        return v


def references(cfg: Any) -> list[str]:
    """Desk phones against the provisioning section: one MAC per phone, a model with every MAC, an HA1
    of the configured algorithm, and TLS given as a pair."""
    problems: list[str] = []
    prov: ProvisioningConf = cfg.provisioning
    seen: dict[str, str] = {}
    for ext, ph in cfg.phones.items():
        path = f"phones.{ext}"
        if ph.mac is None:
            for k in ("model", "provisioning_ha1"):
                if getattr(ph, k) is not None:
                    problems.append(f"{path}.{k}: only with a mac")
            continue
        if ph.mac in seen:
            problems.append(f"{path}.mac: {ph.mac} already belongs to phone {seen[ph.mac]!r}")
        seen[ph.mac] = ext
        if ph.model is None:
            problems.append(f"{path}.model: required with a mac ({', '.join(MODELS)})")
        if ph.provisioning_ha1 is not None and not _HA1[prov.algorithm].fullmatch(ph.provisioning_ha1):
            problems.append(f"{path}.provisioning_ha1: not a {prov.algorithm} HA1 (provisioning.algorithm)")
    if (prov.tls_cert is None) != (prov.tls_key is None):
        problems.append("provisioning.tls_key: tls_cert and tls_key go together")
    return problems
