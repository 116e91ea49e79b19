"""Access in the running daemon: sign-in (Argon2 off the event loop, lock-out, sessions), who a
request is (session cookie, bearer token or ``access_token`` query parameter), the CSRF check and
the audit (:mod:`.store` on the database thread, plus one log line). No routes: the API layer
(``callcenter.features.api``) calls this and :func:`.policy.may`.

Every sign-in attempt is audited (action ``session.create``), and so is every decision the API
layer passes to :meth:`AccessService.audit`; the write is awaited (no audit row, no action).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import structlog
from aiohttp import web
from yarl import URL

from callcenter import config as config_mod
from callcenter.features.access import passwords
from callcenter.features.access import policy as pol
from callcenter.features.access import sessions as ses
from callcenter.features.access.store import AuditRow, AuditStore
from callcenter.persistence import DbThread

__all__ = ["COOKIE", "CSRF_HEADER", "TOKEN_PARAM", "AccessService", "SignIn", "fold"]

log = structlog.get_logger("callcenter")

COOKIE = "cc_session"
CSRF_HEADER = "X-CSRF-Token"
TOKEN_PARAM = "access_token"  # WebSockets and kiosk screens cannot set headers
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_SECRET = 1024  # longer secrets are refused without hashing them (CPU)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def fold(s: object, limit: int = 200) -> str:
    """A caller-controlled string made safe for the audit and the log: control characters (newlines
    included) become spaces, at most ``limit`` characters."""
    return _CONTROL.sub(" ", str(s))[:limit]


@dataclass(frozen=True)
class SignIn:
    """What :meth:`AccessService.sign_in` decided; ``session``/``csrf`` only when ``ok``."""

    ok: bool
    reason: Literal["ok", "bad_credentials", "locked"]
    principal: pol.Principal | None = None
    session: str = ""
    csrf: str = ""
    retry_after_s: float = 0.0


def _verify(hashed: str | None, secret: str) -> bool:
    """One Argon2 verify, also for an unknown user (against the dummy hash), so both take as long."""
    ok = passwords.verify(hashed if hashed is not None else passwords.dummy_hash(), secret)
    return ok and hashed is not None


class AccessService:
    """Sign-in, request principals, CSRF and the audit for the API (see the module doc).

    Args:
        db: the daemon's database thread (the audit is written there).
        clock: the time (s); injected by tests.
        store: an open audit store (tests); by default :meth:`start` opens ``daemon.database`` on ``db``.
    """

    def __init__(self, cfg: config_mod.Config, *, db: DbThread, clock: Callable[[], float] = time.time,
                 store: AuditStore | None = None, token: Callable[[], str] = ses.new_token):
        self.cfg = cfg
        self.db = db
        self.clock = clock
        self.store = store
        self._own_store = store is None
        self._token = token
        self.lockout = ses.Lockout()
        self.sessions = ses.Sessions()
        self._nets = self._networks(cfg)

    @staticmethod
    def _networks(cfg: config_mod.Config) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return tuple(ipaddress.ip_network(n, strict=False) for n in cfg.access.open_from)

    async def start(self) -> None:
        if self.store is None:
            self.store = await self.db.run(AuditStore, self.cfg.daemon.database)

    async def close(self) -> None:
        if self.store is not None and self._own_store:
            await self.db.run(self.store.close)
        self.store = None

    def reconfigure(self, cfg: config_mod.Config) -> None:
        """A reloaded config: users, roles, teams and tokens take effect at once (principals are made
        per request from the config); the sessions of removed users, and of users whose password
        hash changed, are dropped."""
        old = self.cfg.access.users
        keep = {u for u, user in cfg.access.users.items()
                if u in old and old[u].password_hash == user.password_hash}
        self.cfg = cfg
        self._nets = self._networks(cfg)
        self.sessions = self.sessions.only(keep, self.clock())

    # ------------------------------------------------------------------ sign-in
    async def sign_in(self, login: str, secret: str, remote: str) -> SignIn:
        """Check ``login`` (a user name, or an agent's extension) and ``secret`` (password or PIN).
        Locked logins are refused even with the right secret; every attempt is audited."""
        conf = self.cfg.access
        now = self.clock()
        user_name = ses.resolve_login(self.cfg, login)
        key = user_name or ses.login_key(self.cfg, login)
        actor = user_name or fold(login, 64)
        chk = self.lockout.check(key, now)
        if chk.locked:
            await self._write(now, actor, "session", "session.create", "", "denied", "locked", remote)
            log.warning("api.sign_in", user=actor, outcome="denied", reason="locked", remote=fold(remote, 64))
            return SignIn(False, "locked", retry_after_s=chk.retry_after_s)
        # Count the failure before verifying, so parallel guesses cannot exceed the limit; a right
        # secret clears it again.
        self.lockout = self.lockout.failed(key, now, conf)
        user = conf.users.get(user_name) if user_name else None
        ok = False
        if len(secret) <= MAX_SECRET:
            ok = await asyncio.to_thread(_verify, user.password_hash if user else None, secret)
        now = self.clock()
        if not ok or user_name is None or user is None or self.cfg.access.users.get(user_name) is not user:
            await self._write(now, actor, "session", "session.create", "", "denied", "bad_credentials", remote)
            log.warning("api.sign_in", user=actor, outcome="denied", reason="bad_credentials",
                        remote=fold(remote, 64))
            return SignIn(False, "bad_credentials")
        self.lockout = self.lockout.succeeded(key, now, conf)
        self.sessions, token, sess = self.sessions.create(user_name, now, conf.session_ttl_s, self._token)
        await self._write(now, user_name, "session", "session.create", "", "allowed", "ok", remote)
        log.info("api.sign_in", user=user_name, outcome="allowed", remote=fold(remote, 64))
        return SignIn(True, "ok", pol.principal_for_user(user_name, user, self.cfg), token, sess.csrf)

    def sign_out(self, session: str) -> None:
        """End the session ``session`` (its cookie value); unknown sessions are ignored."""
        self.sessions = self.sessions.removed(session)

    # ------------------------------------------------------------------ requests
    def _session(self, request: web.Request) -> ses.Session | None:
        token = request.cookies.get(COOKIE)
        if not token:
            return None
        s = self.sessions.get(token, self.clock())
        return s if s is not None and s.login in self.cfg.access.users else None

    def _token_principal(self, token: str) -> pol.Principal | None:
        digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
        found = None
        for name, tok in self.cfg.access.tokens.items():  # every one compared, in constant time
            if hmac.compare_digest(digest, tok.sha256):
                found = pol.principal_for_token(name, tok)
        return found

    def principal(self, request: web.Request) -> pol.Principal | None:
        """Who sends ``request``: the session of the ``cc_session`` cookie, else the token of an
        ``Authorization: Bearer`` header, else of the ``access_token`` query parameter. None when
        absent, unknown or expired."""
        s = self._session(request)
        if s is not None:
            return pol.principal_for_user(s.login, self.cfg.access.users[s.login], self.cfg)
        auth = request.headers.get("Authorization", "")
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return self._token_principal(value.strip())
        q = request.query.get(TOKEN_PARAM)
        if q:
            return self._token_principal(q)
        return None

    def csrf_ok(self, request: web.Request, p: pol.Principal) -> bool:
        """May this request act with ``p``'s ambient credentials? Token principals: always (nothing
        ambient). Session principals: not when an ``Origin`` header names another host:port than
        ``Host`` (any method: a WebSocket handshake is a GET); for unsafe methods the
        ``X-CSRF-Token`` header must equal the session's CSRF token."""
        if p.kind != "session":
            return True
        origin = request.headers.get("Origin")
        if origin is not None and not _same_origin(origin, request.host):
            return False
        if request.method in SAFE_METHODS:
            return True
        s = self._session(request)
        sent = request.headers.get(CSRF_HEADER, "")
        return s is not None and s.login == p.name and hmac.compare_digest(
            sent.encode("utf-8", "surrogatepass"), s.csrf.encode())

    def session_info(self, p: pol.Principal, request: web.Request | None = None) -> dict[str, Any]:
        """What the browser may know about ``p``; with ``request`` carrying ``p``'s session cookie,
        also its CSRF token (``csrf``)."""
        user = self.cfg.access.users.get(p.name) if p.kind == "session" else None
        info: dict[str, Any] = {"user": p.name, "role": p.role, "name": user.name if user else "",
                                "agent": p.agent, "supervisor": p.supervisor, "teams": sorted(p.teams),
                                "scopes": sorted(p.scopes)}
        s = self._session(request) if request is not None and p.kind == "session" else None
        if s is not None and s.login == p.name:
            info["csrf"] = s.csrf
        return info

    def cookie_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``response.set_cookie(COOKIE, session, **kwargs)``."""
        conf = self.cfg.access
        return {"httponly": True, "samesite": "Strict", "path": "/", "secure": conf.secure_cookies,
                "max_age": int(conf.session_ttl_s)}

    def open_to(self, remote: str | None) -> bool:
        """May ``remote`` (the client address) read /metrics and /healthz without signing in?"""
        try:
            ip = ipaddress.ip_address((remote or "").split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip.version == n.version and ip in n for n in self._nets)

    # ------------------------------------------------------------------ audit
    async def audit(self, p: pol.Principal | None, action: str, target: str, outcome: str, reason: str = "",
                    remote: str = "") -> None:
        """One audit row (awaited, on the database thread) and one ``api.audit`` log line."""
        actor, via = (p.name, p.kind) if p is not None else ("", "")
        action, target, outcome, reason = fold(action, 64), fold(target), fold(outcome, 32), fold(reason, 64)
        await self._write(self.clock(), actor, via, action, target, outcome, reason, remote)
        (log.info if outcome in ("allowed", "done") else log.warning)(
            "api.audit", who=actor or None, via=via or None, action=action, target=target or None,
            outcome=outcome, reason=reason or None)

    async def _write(self, at: float, actor: str, via: str, action: str, target: str, outcome: str, reason: str,
                     remote: str) -> None:
        if self.store is None:
            raise RuntimeError("access service not started")
        await self.db.run(self.store.audit, at, fold(actor), via, action, target, outcome, reason, fold(remote, 64))

    async def audits(self, since: float | None = None, limit: int = 1000) -> list[AuditRow]:
        """The audit trail, newest first."""
        if self.store is None:
            raise RuntimeError("access service not started")
        return await self.db.run(self.store.audits, since, limit)


def _same_origin(origin: str, host: str) -> bool:
    """Does the ``Origin`` header name the ``Host`` header's host and port? (ports default by the
    origin's scheme, so a TLS proxy's ``Host: example.com`` matches ``https://example.com``)."""
    try:
        o = URL(origin)
        h = URL(f"{o.scheme}://{host}") if o.scheme in ("http", "https") else None
    except ValueError:
        return False
    if h is None or not o.host or not h.host or o.path not in ("", "/"):
        return False
    return o.host.lower() == h.host.lower() and o.port == h.port
