"""What every feature's config schema shares: the strict frozen dataclass config and the name,
prompt and level checks. Imported by :mod:`callcenter.config` and every ``features/*/schema.py``;
it imports nothing of the package, so any schema module can use it without an import cycle."""

from __future__ import annotations

import ipaddress
import re

from pydantic import ConfigDict

__all__ = ["STRICT", "NAME", "PROMPT", "EXTEN", "DIGIT", "Prompt", "check_level", "check_prompt",
           "check_secret", "check_display", "HOST", "check_host"]

STRICT = ConfigDict(extra="forbid", frozen=True)
NAME = r"^[a-z][a-z0-9_-]{0,31}$"  # queue, menu, agent ... names end up in dialplan extensions
PROMPT = r"^(?!.*\.\.)[A-Za-z0-9_][A-Za-z0-9_/-]{0,127}$"  # sound file names, no extension, no ..
EXTEN = r"^[0-9]{2,15}$"
DIGIT = r"^[0-9*#]$"
# Secrets and display names are written into Asterisk .conf files: no whitespace or control
# characters (a newline would add a line, e.g. a second `write=` to manager.conf), no ';'
# (starts a comment), no quotes or backslashes.
SECRET = r"[!#-:<-\[\]-~]{8,128}"
DISPLAY = r"[A-Za-z0-9 .,_'-]{0,48}"
# A DNS name (labels of letters, digits and inner hyphens) — or an IP address, see check_host
HOST = r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,62}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*$"

Prompt = str


def check_level(skill: str, level: int) -> None:
    if not re.fullmatch(NAME, skill):
        raise ValueError(f"bad skill name {skill!r} (lowercase letters, digits, _ or -)")
    if not 0 <= level <= 10:
        raise ValueError(f"skill {skill!r}: level {level} is outside 0..10")


def check_prompt(p: str) -> str:
    if not re.fullmatch(PROMPT, p):
        raise ValueError(f"bad prompt name {p!r} (letters, digits, _ - / only; no extension)")
    return p


def check_prompts(v: tuple[str, ...] | None) -> tuple[str, ...] | None:
    for p in v or ():
        check_prompt(p)
    return v


def check_networks(v: tuple[str, ...]) -> tuple[str, ...]:
    """Each an IP address or network (CIDR)."""
    for m in v:
        try:
            ipaddress.ip_network(m, strict=False)
        except ValueError:
            raise ValueError(f"{m!r} is not an IP address or network") from None
    return v


def check_secret(v: str) -> str:
    if not re.fullmatch(SECRET, v):
        raise ValueError("a secret is 8-128 printable characters without spaces, quotes, ';' or '\\'")
    return v


def check_display(v: str) -> str:
    if not re.fullmatch(DISPLAY, v):
        raise ValueError("a display name is up to 48 letters, digits, spaces and . , _ ' -")
    return v


def check_host(v: str) -> str:
    """A host name or an IPv4/IPv6 address (written into SIP URIs and phones' files)."""
    try:
        ipaddress.ip_address(v)
        return v
    except ValueError:
        pass
    if not re.fullmatch(HOST, v):
        raise ValueError(f"{v[:60]!r} is not a host name or IP address")
    return v
