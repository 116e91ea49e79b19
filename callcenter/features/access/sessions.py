"""Sign-in bookkeeping: the lock-out after failed sign-ins, and the browser sessions.

Rules of this module: pure -- no I/O, no clock. Every function takes the state and ``now`` and
returns a new state (the service keeps it). Random tokens come from ``secrets.token_urlsafe(32)``
unless a generator is passed in (tests).

* :class:`Lockout`: failed sign-ins per login key (the user the login resolved to, or the raw
  lowercased login when it resolves to nobody, so unknown names lock out too). ``max_failed_logins``
  failures within ``failure_window_s`` lock the key for ``lockout_s``; while locked even the right
  password is refused. A success clears the failures. At most :data:`MAX_LOCKOUT_KEYS` keys are
  kept (the oldest dropped), and entries that can no longer matter are pruned.
* :class:`Sessions`: session token -> :class:`Session` (login, CSRF token, created, expires);
  expired sessions are gone; at most :data:`MAX_SESSIONS_PER_USER` per login (the oldest dropped)
  and :data:`MAX_SESSIONS` in all.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from callcenter.config import Config
    from callcenter.features.access.schema import AccessConf

__all__ = ["MAX_LOCKOUT_KEYS", "MAX_SESSIONS", "MAX_SESSIONS_PER_USER", "Check", "Lockout", "Session",
           "Sessions", "login_key", "new_token", "resolve_login"]

MAX_LOCKOUT_KEYS = 10_000
MAX_SESSIONS_PER_USER = 20
MAX_SESSIONS = 10_000


def new_token() -> str:
    return secrets.token_urlsafe(32)


def _empty() -> Mapping[str, object]:
    return MappingProxyType({})


def resolve_login(cfg: Config, login: str) -> str | None:
    """The user a sign-in name means: a login name in ``access.users``, or an agent's phone
    extension -> the user whose ``agent`` has that phone (agents sign in with extension + PIN).
    Login names are matched case-insensitively."""
    users = cfg.access.users
    if login in users:
        return login
    if login.lower() in users:  # login names are lowercase; "Admin" means admin
        return login.lower()
    agent = cfg.agent_by_phone(login) if login else None
    if agent is None:
        return None
    return next((u for u, user in users.items() if user.agent == agent), None)


def login_key(cfg: Config, login: str) -> str:
    """The lock-out key of a sign-in name: its user, or the raw lowercased name (bounded length)."""
    return resolve_login(cfg, login) or "?" + login.lower()[:64]


@dataclass(frozen=True)
class Check:
    """May a sign-in for a key be tried now? ``retry_after_s`` when locked."""

    locked: bool
    retry_after_s: float = 0.0


@dataclass(frozen=True)
class Lockout:
    """Failed sign-ins and lock-outs per login key. Immutable: every method returns a new one."""

    failures: Mapping[str, tuple[float, ...]] = field(default_factory=_empty)  # type: ignore[arg-type]
    locked_until: Mapping[str, float] = field(default_factory=_empty)  # type: ignore[arg-type]

    def check(self, key: str, now: float) -> Check:
        """Is ``key`` locked at ``now``?"""
        until = self.locked_until.get(key)
        if until is not None and now < until:
            return Check(True, until - now)
        return Check(False)

    def failed(self, key: str, now: float, conf: AccessConf) -> Lockout:
        """One more failure for ``key``; the ``max_failed_logins``-th within the window locks it."""
        st = self.pruned(now, conf)
        recent = tuple(t for t in st.failures.get(key, ()) if now - t < conf.failure_window_s) + (now,)
        f = {k: v for k, v in st.failures.items() if k != key}
        lu = dict(st.locked_until)
        if len(recent) >= conf.max_failed_logins:
            lu[key] = now + conf.lockout_s
        else:
            f[key] = recent
        while len(f) > MAX_LOCKOUT_KEYS:  # the key with the oldest latest failure goes
            del f[min(f, key=lambda k: f[k][-1])]
        while len(lu) > MAX_LOCKOUT_KEYS:
            del lu[min(lu, key=lambda k: lu[k])]
        return Lockout(MappingProxyType(f), MappingProxyType(lu))

    def succeeded(self, key: str, now: float, conf: AccessConf) -> Lockout:
        """A right password for ``key`` (not locked): its failures are forgotten."""
        st = self.pruned(now, conf)
        if key not in st.failures and key not in st.locked_until:
            return st
        return Lockout(MappingProxyType({k: v for k, v in st.failures.items() if k != key}),
                       MappingProxyType({k: v for k, v in st.locked_until.items() if k != key}))

    def pruned(self, now: float, conf: AccessConf) -> Lockout:
        """Without failures older than the window and lock-outs that have ended."""
        f = {k: kept for k, v in self.failures.items()
             if (kept := tuple(t for t in v if now - t < conf.failure_window_s))}
        lu = {k: v for k, v in self.locked_until.items() if now < v}
        if len(lu) == len(self.locked_until) and f == dict(self.failures):
            return self
        return Lockout(MappingProxyType(f), MappingProxyType(lu))


@dataclass(frozen=True)
class Session:
    login: str
    csrf: str
    created: float
    expires: float


@dataclass(frozen=True)
class Sessions:
    """Browser sessions by session token. Immutable: every method returns a new one."""

    by_token: Mapping[str, Session] = field(default_factory=_empty)  # type: ignore[arg-type]

    def get(self, token: str, now: float) -> Session | None:
        """The live session of ``token``, or None (unknown or expired)."""
        s = self.by_token.get(token)
        return s if s is not None and now < s.expires else None

    def create(self, login: str, now: float, ttl_s: float,
               token: Callable[[], str] = new_token) -> tuple[Sessions, str, Session]:
        """A new session for ``login``: the new state, its token and the session (with a fresh CSRF token).
        Expired sessions are dropped; beyond the per-user and total bounds, the oldest go."""
        live = {t: s for t, s in self.by_token.items() if now < s.expires}
        tok = token()
        while tok in live:  # only with an injected generator
            tok = token()
        sess = Session(login, token(), now, now + ttl_s)
        mine = sorted((s.created, t) for t, s in live.items() if s.login == login)
        for _, t in mine[:max(0, len(mine) - MAX_SESSIONS_PER_USER + 1)]:
            del live[t]
        if len(live) >= MAX_SESSIONS:
            for _, t in sorted((s.created, t) for t, s in live.items())[:len(live) - MAX_SESSIONS + 1]:
                del live[t]
        live[tok] = sess
        return Sessions(MappingProxyType(live)), tok, sess

    def removed(self, token: str) -> Sessions:
        """Without the session ``token`` (sign-out)."""
        if token not in self.by_token:
            return self
        return Sessions(MappingProxyType({t: s for t, s in self.by_token.items() if t != token}))

    def only(self, logins: set[str] | frozenset[str], now: float) -> Sessions:
        """Only the live sessions of ``logins`` (a reload removed the others' users)."""
        return Sessions(MappingProxyType({t: s for t, s in self.by_token.items()
                                          if s.login in logins and now < s.expires}))

    def pruned(self, now: float) -> Sessions:
        """Without expired sessions."""
        if all(now < s.expires for s in self.by_token.values()):
            return self
        return Sessions(MappingProxyType({t: s for t, s in self.by_token.items() if now < s.expires}))
