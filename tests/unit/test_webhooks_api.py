"""``/api/v1/webhooks`` on the whole daemon (no Asterisk): endpoints made, changed and removed by an admin
(the config's read-only), refused without the admin scope, audited; an API-made endpoint gets the events of
agent operations, through a short real outage, in order; the CLI lists and replays dead letters."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from callcenter import config
from callcenter.app import Daemon
from callcenter.bench.webhooks import SECRET, Receiver
from callcenter.features.webhooks import cli, store
from tests.unit.test_api import SUP_TOKEN, api_config
from tests.unit.test_daemon import _write

ADMIN = "webhooks-admin-token-0123"
H = {"Authorization": f"Bearer {ADMIN}"}
NEW_SECRET = "whsec_" + base64.b64encode(b"n" * 32).decode()


@pytest.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[tuple[Daemon, str, Receiver, Path]]:
    rx = await Receiver().start()
    data = api_config(tmp_path)
    data["access"]["tokens"]["admin"] = {"sha256": hashlib.sha256(ADMIN.encode()).hexdigest(),
                                         "scopes": ["read", "agent", "supervise", "admin"], "teams": ["*"]}
    data["webhooks"] = {"endpoints": {"fromconf": {"url": rx.url, "events": ["lead.outcome"], "secret": SECRET}},
                        "backoff_base_s": 0.05, "backoff_cap_s": 0.3, "rescan_s": 0.2}
    path = _write(tmp_path, data)
    d = Daemon(config.load(path), path)
    task = asyncio.create_task(d.run())
    for _ in range(300):
        if d._http is not None:
            break
        await asyncio.sleep(0.01)
    yield d, f"http://127.0.0.1:{d.cfg.http.port}", rx, path
    d.stop()
    assert await asyncio.wait_for(task, 10) == 0
    await rx.close()


async def test_admins_manage_endpoints_and_the_configs_are_read_only(daemon) -> None:
    """POST makes one (secret shown once), GET lists both, PUT changes, DELETE removes; the config's endpoint
    answers 409 read_only; a token without admin gets 403; each write is in the audit trail."""
    d, base, rx, _ = daemon
    async with aiohttp.ClientSession() as s:
        body = {"url": rx.url, "events": ["agent.state"]}
        async with s.post(f"{base}/api/v1/webhooks/crm", json=body, headers=H) as r:
            assert r.status == 201
            made = await r.json()
        assert made["secret"].startswith("whsec_") and made["source"] == "api"
        async with s.post(f"{base}/api/v1/webhooks/crm", json=body, headers=H) as r:
            assert r.status == 409
        async with s.get(f"{base}/api/v1/webhooks", headers=H) as r:
            listed = {e["name"]: e for e in (await r.json())["endpoints"]}
        assert listed["fromconf"]["source"] == "config" and listed["crm"]["secret"] is None
        async with s.put(f"{base}/api/v1/webhooks/crm", json={**body, "enabled": False}, headers=H) as r:
            assert r.status == 200 and (await r.json())["enabled"] is False
        assert d.webhooks.targets["crm"].secret == made["secret"]  # kept when not given
        async with s.put(f"{base}/api/v1/webhooks/fromconf", json=body, headers=H) as r:
            assert r.status == 409 and (await r.json())["error"] == "read_only"
        async with s.post(f"{base}/api/v1/webhooks/other", json=body,
                          headers={"Authorization": f"Bearer {SUP_TOKEN}"}) as r:
            assert r.status == 403
        async with s.post(f"{base}/api/v1/webhooks/bad", json={**body, "secret": "whsec_" + "A" * 31 + "="},
                          headers=H) as r:
            assert r.status == 400
        async with s.post(f"{base}/api/v1/webhooks/odd", json={**body, "url": "http://crm/\ud800"}, headers=H) as r:
            assert r.status == 400  # a lone surrogate: refused, not a 500 from the database
        async with s.delete(f"{base}/api/v1/webhooks/crm", headers=H) as r:
            assert r.status == 204
        async with s.delete(f"{base}/api/v1/webhooks/crm", headers=H) as r:
            assert r.status == 404
    audit = [(a.action, a.target, a.outcome) for a in await d.access.audits(limit=50)]
    assert ("admin", "webhooks.create:crm", "done") in audit and ("admin", "webhooks.delete:crm", "done") in audit
    assert await d.db.run(store.endpoints, d.journal.db) == []


async def test_an_api_endpoint_gets_agent_events_through_a_short_outage_in_order(daemon) -> None:
    """An endpoint made through the API with its own secret; the receiver fails while alice logs in, pauses,
    unpauses and logs out; after it recovers the four agent.state messages arrive in that order, signed."""
    d, base, rx, _ = daemon
    rx.secret = NEW_SECRET
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{base}/api/v1/webhooks/crm", headers=H,
                          json={"url": rx.url, "events": ["agent.*"], "secret": NEW_SECRET}) as r:
            assert r.status == 201
        rx.fail(500)
        for op, body in (("login", None), ("pause", {"reason": "lunch"}), ("unpause", None), ("logout", None)):
            async with s.post(f"{base}/api/v1/agents/alice/{op}", json=body, headers=H) as r:
                assert r.status == 200, await r.text()
        assert await rx.wait_for(lambda r: sum(1 for x in r.receipts if x.status == 500) >= 3, 10)
        rx.recover()
        assert await rx.wait_for(lambda r: len(r.delivered_ids()) >= 4, 10)
    got = {x.id: x.json() for x in rx.receipts}
    states = [got[i]["data"]["state"] for i in rx.delivered_ids()]
    assert states == ["Ready", "Paused", "Ready", "LoggedOut"]
    assert got[rx.delivered_ids()[1]]["data"]["reason"] == "lunch"
    assert all(x.verified for x in rx.receipts)


async def test_the_cli_lists_dead_letters_and_the_running_daemon_sends_a_replayed_one(daemon, capsys) -> None:
    """`webhooks list --dead --json` shows the dead letter; `webhooks retry ID` makes it pending, and the
    running daemon delivers it (same id) within its rescan."""
    d, base, rx, path = daemon
    rx.fail(500)
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{base}/api/v1/webhooks/crm", headers=H,
                          json={"url": rx.url, "events": ["agent.state"], "max_age_s": 1}) as r:
            rx.secret = (await r.json())["secret"]
        async with s.post(f"{base}/api/v1/agents/alice/login", headers=H) as r:
            assert r.status == 200
    dead = asyncio.Event()
    d.webhooks.settled.append(lambda row, result: dead.set() if result == "dead" else None)
    await asyncio.wait_for(dead.wait(), 10)
    capsys.readouterr()
    assert cli.main(["--config", str(path), "list", "--dead", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out.splitlines()[-1])  # the daemon logs to stdout too
    assert [e["type"] for e in listed["outbox"]] == ["agent.state"] and listed["counts"]["dead"] == 1
    msg_id = listed["outbox"][0]["id"]
    rx.recover()
    assert cli.main(["--config", str(path), "retry", msg_id]) == 0
    assert await rx.wait_for(lambda r: msg_id in r.delivered_ids(), 10)
    assert cli.main(["--config", str(path), "retry", msg_id]) == 1  # no longer dead
