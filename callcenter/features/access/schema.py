"""The access config schema: users (browser sign-in), API tokens, lock-out and session settings.

Secrets are never stored here in plain text: users carry an Argon2 hash (``callcenter
hash-password``), tokens the SHA-256 of the token (``callcenter make-token``). Cross references
(agents, supervisors, teams) are checked in :func:`callcenter.config._references`.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator
from pydantic.dataclasses import dataclass

from callcenter.confbase import STRICT, check_display, check_networks

__all__ = ["AccessConf", "TokenConf", "UserConf", "Role", "Scope"]

Role = Literal["admin", "supervisor", "agent"]
Scope = Literal["read", "agent", "supervise", "admin"]
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(config=STRICT)
class UserConf:
    role: Role
    # An Argon2 hash ($argon2id$...) made by `callcenter hash-password`; role agent: the hash of their PIN.
    password_hash: str
    agent: str | None = None  # role agent: the agents.<name> this user is (required)
    # role supervisor: the supervisors.<name> this user is (required; teams and desk phone come from
    # there). An admin may name one too, to spy from the browser.
    supervisor: str | None = None
    name: str = ""  # display name

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_display(v)


@dataclass(config=STRICT)
class TokenConf:
    sha256: str  # hex SHA-256 of the token (`callcenter make-token`)
    scopes: tuple[Scope, ...]
    teams: tuple[str, ...] = ()  # the teams it may act on; ("*",): all
    supervisor: str | None = None  # supervise scope: whose desk phone rings when it starts a spy

    @field_validator("sha256")
    @classmethod
    def _sha(cls, v: str) -> str:
        if not _SHA256.fullmatch(v):
            raise ValueError("a token's sha256 is 64 lowercase hex digits (`callcenter make-token`)")
        return v

    @field_validator("scopes")
    @classmethod
    def _scopes(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError("a token needs at least one scope")
        return v


@dataclass(config=STRICT)
class AccessConf:
    users: dict[str, UserConf] = Field(default_factory=dict)  # login name -> user
    tokens: dict[str, TokenConf] = Field(default_factory=dict)  # token name (audited) -> token
    max_failed_logins: int = Field(default=5, ge=1)  # this many failures within failure_window_s ...
    lockout_s: float = Field(default=900, gt=0)  # ... lock the login this long (the right password too)
    failure_window_s: float = Field(default=900, gt=0)
    session_ttl_s: float = Field(default=43200, gt=0)
    secure_cookies: bool = False  # the Secure cookie flag (serve behind TLS)
    # Who may read /metrics and /healthz without signing in.
    open_from: tuple[str, ...] = ("127.0.0.0/8", "::1/128")

    @field_validator("open_from")
    @classmethod
    def _nets(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return check_networks(v)
