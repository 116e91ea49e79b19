"""The API of the whole daemon (composition root, real access service, real SQLite, no Asterisk):
sign-in, scopes, team rules, CSRF, audit, the live event stream with resume, the OpenAPI document."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import sqlite3
from pathlib import Path

import aiohttp
import pytest
from openapi_spec_validator import validate

from callcenter import config
from callcenter.app import Daemon
from callcenter.features.access.passwords import hash_secret
from tests.unit.test_daemon import BASE, _config, _write

SAM, TINA, ALICE_PIN = "sam-pass", "tina-pass", "1234"
READ_TOKEN, SUP_TOKEN = "read-only-token-xyz", "supervise-token-xyz"
_HASHES: dict[str, str] = {}


def _hash(secret: str) -> str:
    if secret not in _HASHES:
        _HASHES[secret] = hash_secret(secret)
    return _HASHES[secret]


def api_config(tmp_path: Path) -> dict:
    """The lab config with users: sam (east), tina (west), alice (agent, PIN), two tokens."""
    d = _config(tmp_path)
    d["phones"]["2009"] = copy.deepcopy(next(iter(BASE["phones"].values())))
    d["supervisors"]["tina"] = {"phone": "2009", "pin": "5151", "teams": ["west"]}
    d["access"] = {
        "users": {"sam": {"role": "supervisor", "supervisor": "sam", "password_hash": _hash(SAM)},
                  "tina": {"role": "supervisor", "supervisor": "tina", "password_hash": _hash(TINA)},
                  "alice": {"role": "agent", "agent": "alice", "password_hash": _hash(ALICE_PIN)}},
        "tokens": {"wall": {"sha256": hashlib.sha256(READ_TOKEN.encode()).hexdigest(), "scopes": ["read"],
                            "teams": ["*"]},
                   "crm": {"sha256": hashlib.sha256(SUP_TOKEN.encode()).hexdigest(),
                           "scopes": ["read", "agent", "supervise"], "teams": ["east"]}},
        "max_failed_logins": 5, "lockout_s": 60}
    return d


@pytest.fixture
async def api(tmp_path: Path):
    path = _write(tmp_path, api_config(tmp_path))
    d = Daemon(config.load(path), path)
    task = asyncio.create_task(d.run())
    for _ in range(300):
        if d._http is not None:
            break
        await asyncio.sleep(0.01)
    base = f"http://127.0.0.1:{d.cfg.http.port}"
    yield d, base
    d.stop()
    await asyncio.wait_for(task, 10)


_BACKLOG: dict[int, list[dict]] = {}


async def _next(ws: aiohttp.ClientWebSocketResponse) -> dict:
    """The next stream message (a frame carries one or more, a JSON document per line)."""
    queue = _BACKLOG.setdefault(id(ws), [])
    while not queue:
        queue.extend(json.loads(line) for line in (await ws.receive(timeout=5)).data.split("\n"))
    return queue.pop(0)


def _client() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))  # keep cookies of 127.0.0.1


async def _sign_in(s: aiohttp.ClientSession, base: str, login: str, password: str) -> dict:
    async with s.post(f"{base}/api/v1/session", json={"login": login, "password": password}) as r:
        assert r.status == 200, await r.text()
        return await r.json()


def _audit(d: Daemon) -> list[tuple]:
    with sqlite3.connect(d.cfg.daemon.database) as db:
        return db.execute("SELECT actor, via, action, target, outcome, reason FROM api_audit ORDER BY id").fetchall()


async def test_openapi_document_is_valid_openapi_3_1(api):
    """/api/v1/openapi.json validates as OpenAPI 3.1 and lists the resources."""
    d, base = api
    async with _client() as s, s.get(f"{base}/api/v1/openapi.json") as r:
        doc = await r.json()
    validate(doc)
    assert doc["openapi"] == "3.1.0"
    for path in ("/api/v1/floor", "/api/v1/supervision", "/api/v1/agents/{agent}/pause", "/api/v1/events",
                 "/api/v1/recordings/{rec_id}/audio", "/api/v1/stats/intervals", "/api/v1/campaigns/{campaign}/start"):
        assert path in doc["paths"], path


async def test_reads_need_a_principal_and_writes_a_csrf_token(api):
    """No credentials: 401. A browser session writes only with its CSRF token; the refusal is audited."""
    d, base = api
    async with _client() as s:
        async with s.get(f"{base}/api/v1/floor") as r:
            assert r.status == 401
        me = await _sign_in(s, base, "sam", SAM)
        assert me["scopes"] == ["agent", "read", "supervise"] and me["csrf"]
        async with s.get(f"{base}/api/v1/floor") as r:
            assert r.status == 200
            assert set((await r.json())["agents"]) == {"alice", "bob"}  # sam's team only
        async with s.post(f"{base}/api/v1/agents/alice/login") as r:
            assert r.status == 403 and (await r.json())["error"] == "csrf"
        async with s.post(f"{base}/api/v1/agents/alice/login", headers={"X-CSRF-Token": me["csrf"]}) as r:
            assert r.status == 200, await r.text()
            assert (await r.json())["state"] == "Ready"
    assert d.acd.state.agents["alice"].state == "Ready"
    rows = _audit(d)
    assert ("sam", "session", "POST /agents/{agent}/login", "/api/v1/agents/alice/login", "denied", "csrf") in rows
    assert ("sam", "session", "agent.state", "login:alice", "done", "") in rows


async def test_a_supervisor_acts_on_their_team_only(api):
    """tina (west) may not pause alice (east): 403 not_in_team, audited, alice unchanged."""
    d, base = api
    async with _client() as s:
        me = await _sign_in(s, base, "tina", TINA)
        h = {"X-CSRF-Token": me["csrf"]}
        async with s.post(f"{base}/api/v1/agents/alice/pause", json={"reason": "break"}, headers=h) as r:
            assert r.status == 403 and (await r.json())["error"] == "not_in_team"
        async with s.post(f"{base}/api/v1/supervision", json={"agent": "alice", "mode": "listen"}, headers=h) as r:
            assert r.status == 403 and (await r.json())["error"] == "not_in_team"
    assert d.acd.state.agents["alice"].state == "LoggedOut"
    assert ("tina", "session", "supervise", "listen:alice", "denied", "not_in_team") in _audit(d)


async def test_an_agent_signs_in_with_extension_and_pin_and_acts_on_themself(api):
    """alice signs in as 2001 + PIN, logs herself in and pauses; bob is not hers to pause."""
    d, base = api
    async with _client() as s:
        me = await _sign_in(s, base, "2001", ALICE_PIN)
        assert me["agent"] == "alice" and me["role"] == "agent"
        h = {"X-CSRF-Token": me["csrf"]}
        async with s.post(f"{base}/api/v1/agents/alice/login", headers=h) as r:
            assert r.status == 200
        async with s.post(f"{base}/api/v1/agents/alice/pause", json={"reason": "lunch"}, headers=h) as r:
            assert r.status == 200 and (await r.json())["state"] == "Paused"
        async with s.post(f"{base}/api/v1/agents/bob/pause", json={}, headers=h) as r:
            assert r.status == 403 and (await r.json())["error"] == "not_self"
        async with s.post(f"{base}/api/v1/agents/alice/pause", json={"reason": "nap"}, headers=h) as r:
            assert r.status == 400


async def test_tokens_have_scopes(api):
    """The kiosk token reads but cannot write; a token without supervise cannot spy."""
    d, base = api
    auth = {"Authorization": f"Bearer {READ_TOKEN}"}
    async with _client() as s:
        async with s.get(f"{base}/api/v1/floor", headers=auth) as r:
            assert r.status == 200 and set((await r.json())["agents"]) == {"alice", "bob", "carol"}
        async with s.post(f"{base}/api/v1/supervision", json={"agent": "alice", "mode": "listen"}, headers=auth) as r:
            assert r.status == 403 and (await r.json())["error"] == "missing_scope"
        async with s.post(f"{base}/api/v1/agents/alice/login", headers=auth) as r:
            assert r.status == 403
        auth2 = {"Authorization": f"Bearer {SUP_TOKEN}"}
        async with s.post(f"{base}/api/v1/supervision", json={"agent": "alice", "mode": "listen"}, headers=auth2) as r:
            assert r.status == 403 and (await r.json())["error"] == "no_phone"  # a token rings no desk phone
        async with s.post(f"{base}/api/v1/agents/carol/login", headers=auth2) as r:
            assert r.status == 403 and (await r.json())["error"] == "not_in_team"
    assert d.acd.state.agents["carol"].state == "LoggedOut"


async def test_five_wrong_passwords_lock_the_account(api):
    """Five wrong passwords: the sixth attempt, even right, gets 423 with a retry time."""
    d, base = api
    async with _client() as s:
        for _ in range(5):
            async with s.post(f"{base}/api/v1/session", json={"login": "sam", "password": "nope"}) as r:
                assert r.status == 401
        async with s.post(f"{base}/api/v1/session", json={"login": "sam", "password": SAM}) as r:
            assert r.status == 423
            assert (await r.json())["retry_after_s"] > 0


async def test_cross_origin_writes_are_refused(api):
    """A session's write with a foreign Origin is refused even with the right CSRF token."""
    d, base = api
    async with _client() as s:
        me = await _sign_in(s, base, "sam", SAM)
        h = {"X-CSRF-Token": me["csrf"], "Origin": "http://evil.example:8080"}
        async with s.post(f"{base}/api/v1/agents/alice/login", headers=h) as r:
            assert r.status == 403
    assert d.acd.state.agents["alice"].state == "LoggedOut"


async def test_event_stream_snapshot_events_and_resume(api):
    """A viewer gets a snapshot, then each event in order; reconnecting with after=<seq> replays only what it missed."""
    d, base = api
    async with _client() as s:
        me = await _sign_in(s, base, "sam", SAM)
        h = {"X-CSRF-Token": me["csrf"]}
        async with s.ws_connect(f"{base}/api/v1/events") as ws:
            snap = await _next(ws)
            assert snap["type"] == "snapshot" and "alice" in snap["floor"]["agents"]
            stream = snap["stream"]
            async with s.post(f"{base}/api/v1/agents/alice/login", headers=h) as r:
                assert r.status == 200
            while True:
                msg = await _next(ws)
                if msg["type"] == "event":
                    break
            assert msg["kind"] == "agent.state" and msg["data"]["agent"] == "alice"
            last = msg["seq"]
        # missed while away: bob logs in, carol (another team) too
        async with aiohttp.ClientSession() as other:
            for agent, status in (("bob", 200), ("carol", 403)):
                async with other.post(f"{base}/api/v1/agents/{agent}/login",
                                      headers={"Authorization": f"Bearer {SUP_TOKEN}"}) as r:
                    assert r.status == status
        async with s.ws_connect(f"{base}/api/v1/events?after={last}&stream={stream}") as ws:
            msg = await _next(ws)
            assert msg["type"] == "event" and msg["seq"] > last and msg["data"]["agent"] == "bob"
        async with s.ws_connect(f"{base}/api/v1/events?after={last}&stream=000000000000") as ws:
            assert (await _next(ws))["type"] == "snapshot"  # another stream


async def test_metrics_stay_open_on_loopback(api):
    """/metrics and /healthz need no sign-in from loopback (access.open_from)."""
    d, base = api
    async with _client() as s:
        async with s.get(f"{base}/metrics") as r:
            assert r.status == 200
        async with s.get(f"{base}/api/v1/audit") as r:
            assert r.status == 401


async def test_screen_pop_context_lists_earlier_calls_from_the_number(api):
    """GET /calls/<id>/context: caller, IVR path, queue and the earlier calls from the same number."""
    d, base = api
    j = d.journal
    for cid, at in (("00000000000000a1", 1000.0), ("00000000000000a2", 2000.0)):
        await d.db.run(j.call_started, cid, "u" + cid, "PJSIP/x-1", "5550123", "Ann", "5551000", at)
        await d.db.run(j.call_path, cid, ("main", "1"))
        await d.db.run(j.call_queued, cid, "sales", at + 5)
    await d.db.run(j.call_ended, "00000000000000a1", "abandoned", 1100.0)
    async with _client() as s:
        await _sign_in(s, base, "sam", SAM)
        async with s.get(f"{base}/api/v1/calls/00000000000000a2/context") as r:
            assert r.status == 200, await r.text()
            ctx = await r.json()
        async with s.get(f"{base}/api/v1/calls/00000000000000ff/context") as r:
            assert r.status == 404
    assert (ctx["caller_num"], ctx["caller_name"], ctx["queue"], ctx["path"]) == ("5550123", "Ann", "sales",
                                                                                   ["main", "1"])
    assert [(h["call_id"], h["outcome"]) for h in ctx["history"]] == [("00000000000000a1", "abandoned")]


async def test_recordings_are_team_scoped_and_every_read_is_audited(api):
    """sam (east) lists and reads alice's recording; tina (west) sees none and is refused its metadata."""
    d, base = api
    rec = "20261202T120000-0123456789ab"
    await d.db.run(d.recording.store.start, rec, "00000000000000b1", "alice", "sales", 1000.0)
    async with _client() as s:
        await _sign_in(s, base, "sam", SAM)
        async with s.get(f"{base}/api/v1/recordings") as r:
            assert r.status == 200 and [x["rec_id"] for x in (await r.json())["recordings"]] == [rec]
        async with s.get(f"{base}/api/v1/recordings/{rec}") as r:
            assert r.status == 200 and (await r.json())["agent"] == "alice"
        async with s.get(f"{base}/api/v1/recordings/{rec}/audio") as r:
            assert r.status == 404  # not finished: no audio yet
    async with _client() as s:
        await _sign_in(s, base, "tina", TINA)
        async with s.get(f"{base}/api/v1/recordings") as r:
            assert r.status == 200 and (await r.json())["recordings"] == []
        async with s.get(f"{base}/api/v1/recordings/{rec}") as r:
            assert r.status == 403
    rows = [(a, act, t, o) for a, _v, act, t, o, _r in _audit(d) if act == "recordings.read"]
    assert ("sam", "recordings.read", "list:*", "done") in rows
    assert ("sam", "recordings.read", rec, "done") in rows
    assert ("tina", "recordings.read", rec, "denied") in rows


async def test_campaigns_are_started_by_supervisors_not_agents(api):
    """A supervisor starts a campaign (audited); an agent may not; an unknown campaign is a 404."""
    d, base = api
    name = next(iter(d.cfg.campaigns))
    async with _client() as s:
        me = await _sign_in(s, base, "2001", ALICE_PIN)
        async with s.post(f"{base}/api/v1/campaigns/{name}/start", headers={"X-CSRF-Token": me["csrf"]}) as r:
            assert r.status == 403 and (await r.json())["error"] == "missing_scope"
    async with _client() as s:
        me = await _sign_in(s, base, "sam", SAM)
        h = {"X-CSRF-Token": me["csrf"]}
        async with s.post(f"{base}/api/v1/campaigns/{name}/start", headers=h) as r:
            assert r.status == 200 and (await r.json())["state"] == "running"
        async with s.post(f"{base}/api/v1/campaigns/{name}/start", headers=h) as r:
            assert r.status == 409
        async with s.post(f"{base}/api/v1/campaigns/nope/start", headers=h) as r:
            assert r.status == 404
    assert ("sam", "session", "campaigns", f"start:{name}", "done", "") in _audit(d)


async def test_interval_statistics_per_queue(api):
    """Calls in the journal come back per 15-minute interval and queue with answered and abandoned."""
    import time as _time
    d, base = api
    j = d.journal
    t0 = (_time.time() // 900) * 900 - 900  # the start of the previous quarter hour
    for i, outcome in enumerate(("completed", "abandoned", "completed")):
        cid = f"00000000000000c{i}"
        await d.db.run(j.call_started, cid, "u" + cid, "PJSIP/x-1", "555", "", "5551000", t0 + i)
        await d.db.run(j.call_queued, cid, "sales", t0 + 10 + i)
        if outcome == "completed":
            await d.db.run(j.call_answered, cid, "alice", t0 + 15 + i)
        await d.db.run(j.call_ended, cid, outcome, t0 + 60 + i)
    async with _client() as s:
        await _sign_in(s, base, "sam", SAM)
        async with s.get(f"{base}/api/v1/stats/intervals?size=15&hours=2&by=queue") as r:
            assert r.status == 200, await r.text()
            body = await r.json()
    [row] = [x for x in body["intervals"] if x["key"] == "sales"]
    assert (row["start"], row["offered"], row["answered"], row["abandoned"]) == (t0, 3, 2, 1)
    assert row["asa_s"] == 5.0 and row["aht_s"] == 45.0
