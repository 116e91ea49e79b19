"""The carrier settings of a trunk (``trunks.NAME.auth``, ``.register`` and the outbound identity).

:class:`callcenter.config.Trunk` holds them; :func:`trunk_problems` is its cross-check (run with the
rest of the config's references). Everything here is written into pjsip.conf, so every string is
held to a narrow alphabet: no whitespace, ``;``, quotes or newlines can reach the file."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic.dataclasses import dataclass

from callcenter.confbase import HOST, STRICT, check_host, check_secret

__all__ = ["TrunkAuth", "TrunkRegister", "CODECS", "SIP_USER", "HOST", "CALLER_ID", "check_host", "trunk_problems",
           "outbound_caller_id"]

SIP_USER = r"^[A-Za-z0-9._~+-]{1,64}$"  # user part of a SIP URI, unreserved characters only
CALLER_ID = r"^(\+?[0-9]{2,15})?$"
# Asterisk codec names a trunk may offer (``allow=``), the common ones of carriers and lines.
CODECS = frozenset({"ulaw", "alaw", "g722", "g729", "gsm", "ilbc", "opus", "g726", "speex", "slin"})


@dataclass(config=STRICT)
class TrunkAuth:
    """The digest credentials the carrier gave us: answer its challenges to REGISTER and INVITE."""

    username: Annotated[str, Field(pattern=SIP_USER)]
    secret: str
    realm: str = Field(default="", pattern=r"^([A-Za-z0-9._-]{1,128})?$")  # empty: whatever realm it asks for

    @field_validator("secret")
    @classmethod
    def _secret(cls, v: str) -> str:
        return check_secret(v)


@dataclass(config=STRICT)
class TrunkRegister:
    """Outbound registration: the carrier sends our DIDs to the address we register."""

    expiry_s: int = Field(default=300, ge=60, le=86400)  # the Expires we ask for
    retry_s: int = Field(default=60, ge=5, le=3600)  # after a temporary failure (timeout, 5xx)
    forbidden_retry_s: int = Field(default=300, ge=0, le=86400)  # after a 401/403 (wrong credentials); 0: give up
    max_retries: int = Field(default=10000, ge=0, le=1000000)
    random_delay_s: int = Field(default=10, ge=0, le=600)  # spread the first REGISTERs of many trunks
    server: str | None = None  # the registrar's host; default: the trunk's host
    port: int | None = Field(default=None, ge=1, le=65535)  # default: the trunk's port
    user: str | None = Field(default=None, pattern=SIP_USER)  # the account in the To/From; default: auth.username
    contact_user: str | None = Field(default=None, pattern=SIP_USER)  # our Contact's user; default: user

    @field_validator("server")
    @classmethod
    def _server(cls, v: str | None) -> str | None:
        return None if v is None else check_host(v)


def trunk_problems(trunks: Mapping[str, Any], on_cards: frozenset[str] = frozenset()) -> list[str]:
    """The carrier settings' cross-checks, each with its dotted key path. ``on_cards``: trunks that
    telephony cards carry, which need no SIP side at all."""
    problems: list[str] = []
    for name, t in trunks.items():
        path = f"trunks.{name}"
        if t.host is not None:
            try:
                check_host(t.host)
            except ValueError as e:
                problems.append(f"{path}.host: {e}")
        if t.register is not None:
            if t.auth is None:
                problems.append(f"{path}.register: needs {path}.auth (the carrier's credentials)")
            if t.register.server is None and t.host is None:
                problems.append(f"{path}.register.server: required when the trunk has no host")
        if not t.match and t.register is None and not (name in on_cards and t.host is None):
            problems.append(f"{path}.match: required (the carrier's addresses) unless the trunk registers "
                            "or a card carries it")
        if t.from_domain:
            try:
                check_host(t.from_domain)
            except ValueError as e:
                problems.append(f"{path}.from_domain: {e}")
        for i, c in enumerate(t.codecs):
            if c not in CODECS:
                problems.append(f"{path}.codecs.{i}: unknown codec {c!r} (one of {', '.join(sorted(CODECS))})")
        if not t.codecs:
            problems.append(f"{path}.codecs: at least one codec")
        if len(set(t.codecs)) != len(t.codecs):
            problems.append(f"{path}.codecs: a codec is listed twice")
    seen: dict[tuple[str, str], str] = {}
    for name, t in trunks.items():
        if t.register is None or t.auth is None or (t.register.server or t.host) is None:
            continue
        from callcenter.features.trunks.render import registration_uris  # no cycle: render imports no config
        uris = registration_uris(t)
        if uris in seen:
            problems.append(f"trunks.{name}.register: trunk {seen[uris]!r} registers the same account to the "
                            "same server")
        seen.setdefault(uris, name)
    return problems


def outbound_caller_id(trunk: Any, preferred: str = "") -> str:
    """The number presented on a call out through ``trunk``: ``preferred`` (a campaign's, click-to-call's,
    a callback's DID) when set, else the trunk's own ``caller_id`` (may be empty: Asterisk's default)."""
    return preferred or getattr(trunk, "caller_id", "") or ""
