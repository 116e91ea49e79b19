"""The ``webhooks`` config section: endpoints by name, each a URL, the event types it wants and its
signing secret (``whsec_`` + base64, as the Standard Webhooks specification writes it)."""

from __future__ import annotations

import base64
import binascii
import re
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic.dataclasses import dataclass

from callcenter.confbase import STRICT

__all__ = ["EVENT_TYPES", "EndpointConf", "WebhooksConf", "check_url", "check_events", "check_whsec", "matches"]

EVENT_TYPES = ("call.entered", "call.offered", "call.answered", "call.transferred", "call.ended", "call.rated",
               "agent.state", "disposition.set",
               "callback.stored", "callback.done", "lead.outcome")
_PATTERN = re.compile(r"^(\*|[a-z]+\.\*|[a-z]+\.[a-z]+)$")


def check_url(v: str) -> str:
    """http(s), a host, printable ASCII (an international name in punycode, other characters %-encoded)."""
    if not (v.isascii() and v.isprintable()):
        raise ValueError("a URL is printable ASCII (punycode host names, %-encoded paths)")
    try:
        parts = urlsplit(v)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ValueError(f"not an http(s) URL: {v[:80]!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or len(v) > 2000 or any(c.isspace() for c in v):
        raise ValueError(f"not an http(s) URL: {v[:80]!r}")
    return v


def check_events(v: tuple[str, ...]) -> tuple[str, ...]:
    """Each an event type, ``group.*`` (``callback.*``) or ``*``; at least one."""
    if not v:
        raise ValueError("at least one event type")
    for t in v:
        if not _PATTERN.fullmatch(t) or not any(matches(t, known) for known in EVENT_TYPES):
            raise ValueError(f"unknown event type {t!r} (expected one of {', '.join(EVENT_TYPES)}, a group.* or *)")
    return v


def check_whsec(v: str) -> str:
    """``whsec_`` + base64 of 24 to 64 random bytes."""
    raw = v.removeprefix("whsec_")
    try:
        key = base64.b64decode(raw, validate=True) if v.startswith("whsec_") else b""
    except (binascii.Error, ValueError):
        key = b""
    if not 24 <= len(key) <= 64:
        raise ValueError("a secret is whsec_ followed by the base64 of 24-64 random bytes "
                         "(`python -c \"import base64,os;print('whsec_'+base64.b64encode(os.urandom(32)).decode())\"`)")
    return v


def matches(pattern: str, event_type: str) -> bool:
    if pattern == "*":
        return True
    if pattern.endswith(".*"):
        return event_type.startswith(pattern[:-1])
    return pattern == event_type


@dataclass(config=STRICT)
class EndpointConf:
    url: str
    events: tuple[str, ...]
    secret: str
    enabled: bool = True
    max_age_s: float = Field(default=86400.0, ge=1, le=30 * 86400)  # retried this long, then a dead letter
    timeout_s: float = Field(default=5.0, gt=0, le=60)  # per attempt: no answer in time is a failure
    concurrency: int = Field(default=8, ge=1, le=64)  # attempts in flight to this endpoint (distinct calls)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        return check_url(v)

    @field_validator("events")
    @classmethod
    def _events(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return check_events(v)

    @field_validator("secret")
    @classmethod
    def _secret(cls, v: str) -> str:
        return check_whsec(v)

    def wants(self, event_type: str) -> bool:
        return self.enabled and any(matches(p, event_type) for p in self.events)


@dataclass(config=STRICT)
class WebhooksConf:
    endpoints: dict[str, EndpointConf] = Field(default_factory=dict)
    backoff_base_s: float = Field(default=1.0, gt=0, le=60)  # the first retry waits up to this (full jitter)
    backoff_cap_s: float = Field(default=600.0, gt=0, le=86400)  # no retry waits longer than this
    rescan_s: float = Field(default=2.0, ge=0.1, le=60)  # due rows re-read at least this often (CLI retries)
