"""The ``crm`` config section: the customer lookup at queue entry, relationship routing, click-to-call.

Cross-references (trunk, skills) are checked by :mod:`callcenter.config` with the rest."""

from __future__ import annotations

import re
import string
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic.dataclasses import dataclass

from callcenter.confbase import NAME, STRICT

__all__ = ["CrmConf", "LookupConf", "ClickToCallConf", "parse_window", "TEMPLATE_FIELDS"]

TEMPLATE_FIELDS = frozenset({"number", "did"})
_WINDOW = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])-([01][0-9]|2[0-4]):([0-5][0-9])$")
_NUMBER = r"^\+?[0-9]{3,15}$"


def parse_window(text: str) -> tuple[int, int]:
    """``"08:00-21:00"`` -> minutes of the day (480, 1260); ``24:00`` is the end of the day."""
    m = _WINDOW.fullmatch(text)
    if m is None:
        raise ValueError(f"bad window {text!r} (HH:MM-HH:MM, e.g. 08:00-21:00)")
    start, end = int(m[1]) * 60 + int(m[2]), int(m[3]) * 60 + int(m[4])
    if end > 24 * 60 or start >= end:
        raise ValueError(f"bad window {text!r}: the start must come before the end, within one day")
    return start, end


@dataclass(config=STRICT)
class LookupConf:
    """Who the caller is, asked when they enter a queue: the local customer table first, then
    ``url`` (if set): ``{number}`` and ``{did}`` are replaced by the URL-encoded caller number and DID."""

    url: str | None = None
    token: str = ""  # sent as "Authorization: Bearer <token>"
    timeout_ms: int = Field(default=300, ge=10, le=5000)
    vip_priority: int = Field(default=10, ge=0, le=100)  # a VIP caller's call priority

    @field_validator("url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is None:
            return v
        parts = urlsplit(v.replace("{", "").replace("}", ""))
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("an http:// or https:// URL")
        try:
            fields = {f for _, f, spec, conv in string.Formatter().parse(v) if f is not None}
            bad = [f for _, f, spec, conv in string.Formatter().parse(v) if f is not None and (spec or conv)]
        except ValueError as e:
            raise ValueError(f"bad template: {e}") from None
        if fields - TEMPLATE_FIELDS or bad:
            raise ValueError("placeholders: {number} and {did} only")
        return v

    @field_validator("token")
    @classmethod
    def _token(cls, v: str) -> str:
        if any(c in v for c in "\r\n\0 "):
            raise ValueError("a token has no spaces or line breaks")
        return v


@dataclass(config=STRICT)
class ClickToCallConf:
    """``POST /api/v1/calls``: the agent's phone rings, then the customer is dialled through ``trunk``."""

    trunk: str = Field(pattern=NAME)
    caller_id: str = Field(default="", pattern=r"^(\+?[0-9]{3,15})?$")  # presented to the customer
    window: str = "08:00-21:00"  # the callee's local time (from the number's region) must be inside it
    ring_s: float = Field(default=30, ge=15, le=120)  # how long the customer's phone rings

    @field_validator("window")
    @classmethod
    def _window(cls, v: str) -> str:
        parse_window(v)
        return v


@dataclass(config=STRICT)
class CrmConf:
    lookup: LookupConf | None = None  # None: no lookup at all (no table read, no HTTP) at queue entry
    # A caller with an account manager waits this long for that agent before anyone else is offered
    # the call (per queue: queues.NAME.account_manager_wait_s).
    account_manager_wait_s: float = Field(default=30, ge=0, le=3600)
    # The record's language -> a skill the call then requires (at language_level): es -> spanish
    language_skills: dict[str, str] = Field(default_factory=dict)
    language_level: int = Field(default=1, ge=1, le=10)
    click_to_call: ClickToCallConf | None = None
