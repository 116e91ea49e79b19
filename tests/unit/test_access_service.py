"""AccessService: sign-in with lock-out and audit, who a request is, CSRF, open addresses, the audit trail."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
from pathlib import Path

import pytest
import yaml
from aiohttp.test_utils import make_mocked_request
from argon2 import PasswordHasher
from structlog.testing import capture_logs

from callcenter import config as config_mod
from callcenter.features.access import service as service_mod
from callcenter.features.access.service import COOKIE, AccessService, fold
from callcenter.persistence import DbThread

ROOT = Path(__file__).resolve().parents[2]
FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)  # verify() reads the cost from the hash
CREW = {"secret": "crew-token-plaintext", "sha": hashlib.sha256(b"crew-token-plaintext").hexdigest()}


def make_cfg(tmp_path: Path, **access) -> config_mod.Config:
    """The shipped config with cheap hashes (admin: admin-pass, sam: sam-pass, agents: PIN 1234), the demo
    wall token, a supervising token "crew" for team red, three failures lock for 60 s, sessions last 100 s."""
    data = copy.deepcopy(yaml.safe_load((ROOT / "config" / "callcenter.yaml").read_text()))
    data["daemon"]["database"] = str(tmp_path / "cc.sqlite3")
    users = data["access"]["users"]
    for name, u in users.items():
        u["password_hash"] = FAST.hash({"admin": "admin-pass", "sam": "sam-pass", "tina": "tina-pass"}.get(name, "1234"))
    data["access"]["tokens"]["crew"] = {"sha256": CREW["sha"], "scopes": ["read", "supervise"], "teams": ["red"],
                                        "supervisor": "sam"}
    data["access"].update({"max_failed_logins": 3, "lockout_s": 60, "failure_window_s": 30, "session_ttl_s": 100,
                           **access})
    return config_mod.parse(data)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
async def svc(tmp_path: Path):
    db = DbThread("test-db")
    s = AccessService(make_cfg(tmp_path), db=db, clock=Clock())
    await s.start()
    yield s
    await s.close()
    db.close()


def req(method: str = "GET", path: str = "/api/x", *, cookie: str | None = None, **headers: str):
    h = {"Host": "cc.example:9180", **{k.replace("_", "-"): v for k, v in headers.items()}}
    if cookie is not None:
        h["Cookie"] = f"{COOKIE}={cookie}"
    return make_mocked_request(method, path, headers=h)


async def rows(svc: AccessService):
    return [(r.actor, r.via, r.action, r.outcome, r.reason) for r in reversed(await svc.audits())]


# --------------------------------------------------------------------------- sign-in

async def test_sign_in_ok(svc):
    """The right password signs in: a session and CSRF token, the user's principal, one audit row."""
    r = await svc.sign_in("sam", "sam-pass", "10.0.0.5")
    assert r.ok and r.reason == "ok" and r.session and r.csrf and r.session != r.csrf
    assert r.principal is not None and r.principal.name == "sam" and r.principal.teams == {"red", "blue"}
    assert await rows(svc) == [("sam", "session", "session.create", "allowed", "ok")]
    assert (await svc.audits())[0].remote == "10.0.0.5"
    assert svc.principal(req(cookie=r.session)) == r.principal


async def test_agent_signs_in_with_extension_and_pin(svc):
    """An agent signs in with their phone extension and PIN and becomes their agent's principal."""
    r = await svc.sign_in("1003", "1234", "10.0.0.5")
    assert r.ok and r.principal is not None and (r.principal.name, r.principal.agent) == ("carol", "carol")


@pytest.mark.parametrize(("login", "secret"), [("sam", "wrong"), ("sam", ""), ("nobody", "sam-pass"),
                                               ("1900", "4242"), ("", ""), ("sam", "x" * 5000)])
async def test_sign_in_refused(svc, login: str, secret: str):
    """A wrong secret, an unknown login or an absurdly long secret: bad_credentials, no session, audited."""
    r = await svc.sign_in(login, secret, "10.0.0.5")
    assert (r.ok, r.reason, r.principal, r.session, r.csrf) == (False, "bad_credentials", None, "", "")
    assert [x[2:] for x in await rows(svc)] == [("session.create", "denied", "bad_credentials")]
    assert svc.sessions.by_token == {}


async def test_lockout_refuses_right_password_until_it_expires(svc):
    """max_failed_logins wrong passwords lock the login: the right one is refused until lockout_s has passed."""
    for _ in range(3):
        assert (await svc.sign_in("sam", "nope", "1.2.3.4")).reason == "bad_credentials"
    svc.clock.t += 10
    r = await svc.sign_in("sam", "sam-pass", "1.2.3.4")
    assert (r.ok, r.reason, r.retry_after_s) == (False, "locked", 50.0)
    assert (await svc.sign_in("Sam", "sam-pass", "1.2.3.4")).reason == "locked"  # the same login, spelt otherwise
    assert (await svc.sign_in("tina", "tina-pass", "1.2.3.4")).ok  # others are not affected
    svc.clock.t += 50
    assert (await svc.sign_in("sam", "sam-pass", "1.2.3.4")).ok
    reasons = [x[4] for x in await rows(svc) if x[0] == "sam"]
    assert reasons == ["bad_credentials"] * 3 + ["locked", "locked", "ok"]


async def test_extension_and_name_share_a_lockout(svc):
    """Failures by extension and by user name count together for the same agent."""
    await svc.sign_in("1001", "0000", "r")
    await svc.sign_in("alice", "0000", "r")
    await svc.sign_in("1001", "0000", "r")
    assert (await svc.sign_in("alice", "1234", "r")).reason == "locked"


async def test_success_resets_failures(svc):
    """A successful sign-in forgets earlier failures."""
    await svc.sign_in("sam", "nope", "r")
    await svc.sign_in("sam", "nope", "r")
    assert (await svc.sign_in("sam", "sam-pass", "r")).ok
    await svc.sign_in("sam", "nope", "r")
    await svc.sign_in("sam", "nope", "r")
    assert (await svc.sign_in("sam", "sam-pass", "r")).ok


async def test_unknown_logins_lock_too_and_are_folded(svc):
    """Unknown logins count failures too; what they typed is audited without control characters."""
    for _ in range(3):
        await svc.sign_in("ghost\nfake line", "x", "r")
    assert (await svc.sign_in("ghost\nfake line", "x", "r")).reason == "locked"
    assert {x[0] for x in await rows(svc)} == {"ghost fake line"}


async def test_session_expires_and_sign_out(svc):
    """A session works until session_ttl_s has passed; sign_out ends it at once."""
    a = await svc.sign_in("admin", "admin-pass", "r")
    b = await svc.sign_in("admin", "admin-pass", "r")
    svc.sign_out(a.session)
    assert svc.principal(req(cookie=a.session)) is None
    assert svc.principal(req(cookie=b.session)) is not None
    svc.clock.t += 100
    assert svc.principal(req(cookie=b.session)) is None


async def test_reconfigure_drops_removed_users_and_changed_passwords(svc):
    """A reload drops the sessions of removed users and of users whose password changed; roles apply at once."""
    s = {u: (await svc.sign_in(u, p, "r")).session for u, p in
         (("sam", "sam-pass"), ("tina", "tina-pass"), ("admin", "admin-pass"))}
    cfg = svc.cfg
    users = dict(cfg.access.users)
    del users["tina"]
    users["admin"] = dataclasses.replace(users["admin"], password_hash=FAST.hash("new"))
    svc.reconfigure(dataclasses.replace(cfg, access=dataclasses.replace(cfg.access, users=users),
                                        supervisors={**cfg.supervisors, "sam": dataclasses.replace(
                                            cfg.supervisors["sam"], teams=("blue",))}))
    assert svc.principal(req(cookie=s["tina"])) is None
    assert svc.principal(req(cookie=s["admin"])) is None
    p = svc.principal(req(cookie=s["sam"]))
    assert p is not None and p.teams == {"blue"}


# --------------------------------------------------------------------------- request principals

async def test_bearer_and_query_tokens(svc):
    """A configured token, as bearer header or access_token parameter, is that token's principal."""
    p = svc.principal(req(Authorization=f"Bearer {CREW['secret']}"))
    assert p is not None and (p.name, p.kind, p.role, p.supervisor) == ("crew", "token", "token", "sam")
    assert p.scopes == {"read", "supervise"} and p.teams == {"red"}
    assert svc.principal(req(Authorization=f"bearer  {CREW['secret']} ")) == p
    w = svc.principal(req(path="/api/events?access_token=wall-demo-kiosk-token"))
    assert w is not None and w.name == "wall" and w.scopes == {"read"}


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic d2FsbDp4"},
    {"Authorization": "Bearer " + hashlib.sha256(b"wall-demo-kiosk-token").hexdigest()},  # the hash is no token
    {"Authorization": "Bearer"}, {"Cookie": f"{COOKIE}=forged"},
])
async def test_unknown_credentials_are_nobody(svc, headers):
    """No credentials, an unknown token, the stored hash itself or a forged cookie: no principal."""
    assert svc.principal(req(**headers)) is None
    assert svc.principal(req(path="/x?access_token=nope")) is None


async def test_stale_cookie_falls_back_to_bearer(svc):
    """An expired session cookie does not hide a valid bearer token on the same request."""
    p = svc.principal(req(cookie="stale", Authorization=f"Bearer {CREW['secret']}"))
    assert p is not None and p.name == "crew"


# --------------------------------------------------------------------------- CSRF

async def test_csrf(svc):
    """Unsafe session requests need the session's CSRF header; safe ones do not; tokens are exempt."""
    r = await svc.sign_in("sam", "sam-pass", "r")
    p = r.principal
    assert svc.csrf_ok(req("GET", cookie=r.session), p)
    assert not svc.csrf_ok(req("POST", cookie=r.session), p)
    assert not svc.csrf_ok(req("POST", cookie=r.session, X_CSRF_Token="nope"), p)
    assert not svc.csrf_ok(req("POST", cookie=r.session, X_CSRF_Token=r.session), p)
    assert svc.csrf_ok(req("POST", cookie=r.session, X_CSRF_Token=r.csrf), p)
    assert svc.csrf_ok(req("DELETE", cookie=r.session, X_CSRF_Token=r.csrf), p)
    other = await svc.sign_in("tina", "tina-pass", "r")  # another session's CSRF token does not do
    assert not svc.csrf_ok(req("POST", cookie=r.session, X_CSRF_Token=other.csrf), p)
    tok = svc.principal(req(Authorization=f"Bearer {CREW['secret']}"))
    assert svc.csrf_ok(req("POST", Authorization=f"Bearer {CREW['secret']}"), tok)


@pytest.mark.parametrize(("origin", "ok"), [
    ("http://cc.example:9180", True), ("https://CC.example:9180", True), ("http://evil.example:9180", False),
    ("http://cc.example:9181", False), ("http://cc.example", False), ("null", False), ("garbage", False),
])
async def test_csrf_origin(svc, origin: str, ok: bool):
    """A session request whose Origin names another host:port than Host is refused, even a GET (WebSocket)."""
    r = await svc.sign_in("sam", "sam-pass", "r")
    assert svc.csrf_ok(req("POST", cookie=r.session, X_CSRF_Token=r.csrf, Origin=origin), r.principal) is ok
    assert svc.csrf_ok(req("GET", cookie=r.session, Origin=origin), r.principal) is ok


async def test_origin_default_port_behind_proxy(svc):
    """Host without a port matches an Origin on the scheme's default port (a TLS proxy in front)."""
    r = await svc.sign_in("sam", "sam-pass", "r")
    h = {"Host": "cc.example", "Cookie": f"{COOKIE}={r.session}", "X-CSRF-Token": r.csrf}
    assert svc.csrf_ok(make_mocked_request("POST", "/", headers={**h, "Origin": "https://cc.example"}), r.principal)
    assert not svc.csrf_ok(make_mocked_request("POST", "/", headers={**h, "Origin": "https://cc.example:8443"}),
                           r.principal)


# --------------------------------------------------------------------------- the rest

async def test_session_info(svc):
    """session_info names the user, role, teams and scopes (sorted), and the CSRF token given the request."""
    r = await svc.sign_in("sam", "sam-pass", "r")
    info = svc.session_info(r.principal)
    assert info == {"user": "sam", "role": "supervisor", "name": "Sam", "agent": None, "supervisor": "sam",
                    "teams": ["blue", "red"], "scopes": ["agent", "read", "supervise"]}
    assert svc.session_info(r.principal, req(cookie=r.session))["csrf"] == r.csrf
    wall = svc.principal(req(Authorization="Bearer wall-demo-kiosk-token"))
    assert "csrf" not in svc.session_info(wall, req(cookie=r.session))


async def test_cookie_kwargs(tmp_path):
    """Session cookies are HttpOnly, SameSite=Strict, for the whole site, Secure as configured."""
    db = DbThread("test-db")
    try:
        s = AccessService(make_cfg(tmp_path, secure_cookies=True), db=db)
        assert s.cookie_kwargs() == {"httponly": True, "samesite": "Strict", "path": "/", "secure": True,
                                     "max_age": 100}
    finally:
        db.close()


@pytest.mark.parametrize(("remote", "ok"), [("127.0.0.1", True), ("127.9.9.9", True), ("::1", True),
                                            ("::ffff:127.0.0.1", True), ("10.0.0.1", False), ("::2", False),
                                            ("", False), (None, False), ("localhost", False)])
async def test_open_to(svc, remote, ok: bool):
    """Only addresses in access.open_from may read /metrics and /healthz unsigned."""
    assert svc.open_to(remote) is ok


async def test_audit_row_and_log_line(svc):
    """audit() writes one row and one api.audit log line, with caller-controlled strings folded."""
    p = svc.principal(req(Authorization=f"Bearer {CREW['secret']}"))
    svc.clock.t = 2000.0
    with capture_logs() as logs:
        await svc.audit(p, "supervise", "alice\r\nforged=1" + "x" * 500, "denied", "not_in_team", "10.1.1.1")
    [row] = await svc.audits(since=1500.0)
    assert (row.at, row.actor, row.via, row.action, row.outcome, row.reason, row.remote) == (
        2000.0, "crew", "token", "supervise", "denied", "not_in_team", "10.1.1.1")
    assert row.target.startswith("alice  forged=1") and len(row.target) == 200
    assert row.as_dict()["target"] == row.target
    [line] = [x for x in logs if x["event"] == "api.audit"]
    assert (line["who"], line["via"], line["action"], line["outcome"], line["reason"]) == (
        "crew", "token", "supervise", "denied", "not_in_team")
    await svc.audit(None, "read", "", "denied", "unauthenticated")
    assert (await svc.audits(limit=1))[0].actor == ""
    assert await svc.audits(since=2001.0) == []


async def test_audit_survives_restart(tmp_path):
    """Audit rows are in the daemon's database: a new service on the same file reads them."""
    db = DbThread("test-db")
    try:
        a = AccessService(make_cfg(tmp_path), db=db, clock=lambda: 5.0)
        await a.start()
        await a.sign_in("sam", "bad", "r")
        await a.close()
        b = AccessService(make_cfg(tmp_path), db=db)
        await b.start()
        assert [r.reason for r in await b.audits()] == ["bad_credentials"]
        await b.close()
    finally:
        db.close()


async def test_not_started_refuses():
    """Signing in or auditing before start() raises instead of acting unaudited."""
    db = DbThread("test-db")
    try:
        s = AccessService(make_cfg(Path("/nonexistent")), db=db)
        with pytest.raises(RuntimeError):
            await s.sign_in("sam", "sam-pass", "r")
        with pytest.raises(RuntimeError):
            await s.audit(None, "read", "", "denied")
    finally:
        db.close()


async def test_verify_runs_off_the_loop(svc, monkeypatch):
    """The Argon2 verify runs in a worker thread, never on the event loop's thread."""
    import threading
    seen = []
    real = service_mod._verify
    monkeypatch.setattr(service_mod, "_verify", lambda *a: seen.append(threading.current_thread()) or real(*a))
    await svc.sign_in("sam", "sam-pass", "r")
    assert seen and seen[0] is not threading.main_thread()


def test_fold():
    """fold() turns control characters into spaces and cuts at the limit."""
    assert fold("a\nb\x00c\u2028d", 5) == "a b c"
