"""Customer lookup and relationship routing (features.crm): the record, how it steers a call, the
lookup against a real local HTTP server (found, unknown, hanging, failing, nonsense), the local
customer table and click-to-call through the daemon's API."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from dataclasses import replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from callcenter import config
from callcenter import events as ev
from callcenter.app import Daemon
from callcenter.features.acd import model as acd
from callcenter.features.crm.model import Customer, CustomerIdentified, local_time_ok, normalise, steer
from callcenter.features.crm.schema import CrmConf, LookupConf
from callcenter.features.crm.service import CrmService
from callcenter.features.crm.store import CustomerStore
from callcenter.persistence import DbThread
from tests.unit.test_acd_core import CFG
from tests.unit.test_api import SUP_TOKEN, _client, _sign_in, ALICE_PIN, api_config
from tests.unit.test_daemon import _write

NY = ZoneInfo("America/New_York")


def _cfg(**crm: Any) -> config.Config:
    return replace(CFG, crm=CrmConf(**crm))


# --------------------------------------------------------------------------- the record and its steer

def test_record_ignores_unknown_fields_and_strips_control_characters():
    """A CRM's extra fields are ignored; control characters in the name become spaces."""
    rec = Customer.model_validate({"name": "Ann\r\nSmith", "vip": True, "crm_id": 42, "tags": ["gold"]})
    assert rec.name == "Ann  Smith" and rec.vip and rec.tags == ("gold",)


def test_record_of_the_wrong_shape_is_refused():
    """A priority out of range or a non-boolean VIP flag is a validation error (routed as usual)."""
    with pytest.raises(ValidationError):
        Customer.model_validate({"priority": 1000})
    with pytest.raises(ValidationError):
        Customer.model_validate({"vip": "very"})


def test_vip_gets_the_configured_priority_and_the_manager_is_preferred():
    """VIP -> lookup.vip_priority; the account manager (a member) preferred for account_manager_wait_s."""
    cfg = _cfg(lookup=LookupConf(vip_priority=7), account_manager_wait_s=20)
    s = steer(cfg, Customer(vip=True, account_manager="alice"), "sales", 100.0)
    assert (s.priority, s.preferred, s.prefer_until, s.skills) == (7, "alice", 120.0, ())
    ev_ = s.apply(acd.CallQueued("c1", "sales", "PJSIP/x", priority=1, skills=(("sales", 2),)))
    assert (ev_.priority, ev_.preferred, ev_.prefer_until, ev_.skills) == (7, "alice", 120.0, (("sales", 2),))


def test_unknown_or_outside_account_manager_is_ignored():
    """An account manager who is no agent, or no member of the queue, steers nothing."""
    cfg = _cfg(lookup=LookupConf())
    assert steer(cfg, Customer(account_manager="zed"), "sales", 0.0).preferred is None
    assert steer(cfg, Customer(account_manager="carol"), "sales", 0.0).preferred is None


def test_queue_override_of_the_account_manager_wait():
    """queues.NAME.account_manager_wait_s wins over crm.account_manager_wait_s."""
    cfg = _cfg(lookup=LookupConf(), account_manager_wait_s=20)
    cfg = replace(cfg, queues={**cfg.queues, "sales": replace(cfg.queues["sales"], account_manager_wait_s=5)})
    assert steer(cfg, Customer(account_manager="bob"), "sales", 10.0).prefer_until == 15.0


def test_language_requires_its_skill_only_when_a_member_has_it():
    """es -> spanish (bob has it) is required; a skill no member has is never required."""
    cfg = _cfg(lookup=LookupConf(), language_skills={"es": "spanish", "fr": "sales"}, language_level=3)
    assert steer(cfg, Customer(language="es"), "sales", 0.0).skills == (("spanish", 3),)
    assert steer(cfg, Customer(language="es"), "empty", 0.0).skills == ()  # carol has no spanish


def test_calling_window_is_the_callee_local_time():
    """A New York number at 10:00 New York time is inside 08:00-21:00; at 22:30 it is not."""
    ten = dt.datetime(2026, 3, 2, 10, 0, tzinfo=NY).timestamp()
    late = dt.datetime(2026, 3, 2, 22, 30, tzinfo=NY).timestamp()
    assert local_time_ok("+12125550123", "08:00-21:00", ten)
    assert not local_time_ok("+12125550123", "08:00-21:00", late)
    assert local_time_ok("+12125550123", "00:00-24:00", late)


def test_numbers_are_normalised_to_e164():
    """National numbers are read in the site's country; nonsense is None."""
    assert normalise("(212) 555-0123", "US") == "+12125550123"
    assert normalise("+44 20 7946 0958", "US") == "+442079460958"
    assert normalise("5550301", "US") is None and normalise("abc", "US") is None


def test_config_checks_the_lookup_template_and_cross_references():
    """Only {number} and {did}; click-to-call needs a known trunk with a host; language skills must exist."""
    with pytest.raises(ValidationError):
        LookupConf(url="http://crm/x?n={number}&s={secret}")
    with pytest.raises(ValidationError):
        LookupConf(url="file:///etc/passwd")
    data = config.load(Path(__file__).resolve().parents[1] / "asterisk" / "lab.yaml")
    assert data.crm.lookup is None
    import yaml
    raw = yaml.safe_load((Path(__file__).resolve().parents[1] / "asterisk" / "lab.yaml").read_text())
    raw["crm"] = {"click_to_call": {"trunk": "nope"}, "language_skills": {"es": "klingon"}}
    with pytest.raises(config.ConfigError) as e:
        config.parse(raw, source="test")
    assert any("crm.click_to_call.trunk" in p for p in e.value.problems)
    assert any("crm.language_skills.es" in p for p in e.value.problems)


# --------------------------------------------------------------------------- the lookup over HTTP

class FakeCrm:
    """A local CRM whose behaviour the test sets: answer, hang, fail or talk nonsense."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.record: dict[str, Any] = {"name": "Ann", "vip": True, "account_manager": "alice", "tags": ["gold"]}
        self.seen: list[web.Request] = []
        self.release = asyncio.Event()

    async def handle(self, req: web.Request) -> web.StreamResponse:
        self.seen.append(req)
        if self.mode == "hang":
            await self.release.wait()
        if self.mode == "fail":
            return web.Response(status=500)
        if self.mode == "nonsense":
            return web.json_response({"vip": "maybe"})
        if self.mode == "unknown":
            return web.Response(status=404)
        return web.json_response(self.record)


@pytest.fixture
async def fake_crm():
    crm = FakeCrm()
    app = web.Application()
    app.router.add_get("/customers", crm.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield crm, f"http://127.0.0.1:{port}/customers?number={{number}}&did={{did}}"
    crm.release.set()
    await runner.cleanup()


@pytest.fixture
def service_for(tmp_path: Path):
    made: list[tuple[CrmService, DbThread, CustomerStore]] = []

    def make(url: str | None, timeout_ms: int = 300) -> tuple[CrmService, ev.Bus, CollectorRegistry]:
        cfg = _cfg(lookup=LookupConf(url=url, token="s3cret", timeout_ms=timeout_ms))
        bus, db, reg = ev.Bus(), DbThread(), CollectorRegistry()
        store = CustomerStore(tmp_path / "c.sqlite3")
        svc = CrmService(lambda: cfg, db=db, bus=bus, acd_service=None, registry=reg, store=store,
                         dialer=lambda: None)
        made.append((svc, db, store))
        return svc, bus, reg

    yield make
    for _, db, store in made:
        db.close()
        store.close()


def _count(reg: CollectorRegistry, result: str) -> float:
    return reg.get_sample_value("callcenter_crm_lookups_total", {"result": result}) or 0.0


async def test_lookup_found_steers_the_call_and_tells_the_bus(fake_crm, service_for):
    """The CRM's record: bearer token sent, number and DID URL-encoded, CustomerIdentified published."""
    crm, url = fake_crm
    svc, bus, reg = service_for(url)
    got: list[CustomerIdentified] = []
    bus.subscribe(CustomerIdentified, got.append)
    s = await svc.identify("c1", "sales", "+1 (212) 555-0123", "5551000&x=1", 50.0)
    await svc.close()
    assert s is not None and (s.priority, s.preferred, s.prefer_until) == (10, "alice", 80.0)
    req = crm.seen[0]
    assert req.headers["Authorization"] == "Bearer s3cret"
    assert req.query["number"] == "+12125550123" and req.query["did"] == "55510001" and "x" not in req.query  # digits only
    assert got[0].call_id == "c1" and got[0].record["name"] == "Ann"
    assert svc.record("c1")["account_manager"] == "alice" and _count(reg, "lookup") == 1
    bus.publish(ev.CallEnded("c1", "completed", 60.0))
    assert svc.record("c1") is None


async def test_hanging_lookup_gives_up_at_the_timeout(fake_crm, service_for):
    """A CRM that never answers costs the configured timeout, no more; counted as timeout."""
    crm, url = fake_crm
    crm.mode = "hang"
    svc, _, reg = service_for(url, timeout_ms=200)
    t0 = time.monotonic()
    assert await svc.identify("c1", "sales", "+12125550123", "5551000", 0.0) is None
    took = time.monotonic() - t0
    await svc.close()
    assert 0.19 <= took < 0.35, took
    assert _count(reg, "timeout") == 1


@pytest.mark.parametrize(("mode", "result"), [("fail", "error"), ("nonsense", "invalid"), ("unknown", "unknown")])
async def test_failed_or_invalid_lookup_routes_as_usual(fake_crm, service_for, mode, result):
    """HTTP 500, an invalid record or an unknown caller: no steer, counted by result."""
    crm, url = fake_crm
    crm.mode = mode
    svc, _, reg = service_for(url)
    assert await svc.identify("c1", "sales", "+12125550123", "", 0.0) is None
    await svc.close()
    assert _count(reg, result) == 1


async def test_unreachable_crm_is_an_error(service_for):
    """Nobody listening at the URL: counted as error, no steer."""
    svc, _, reg = service_for("http://127.0.0.1:9/customers?number={number}")
    assert await svc.identify("c1", "sales", "+12125550123", "", 0.0) is None
    await svc.close()
    assert _count(reg, "error") == 1


async def test_local_table_is_consulted_first(fake_crm, service_for):
    """A number in the local table is found there; the CRM is not asked."""
    crm, url = fake_crm
    svc, _, reg = service_for(url)
    await svc.put("+12125550123", Customer(name="Bo", account_manager="bob", priority=4))
    s = await svc.identify("c1", "sales", "2125550123", "", 0.0)
    await svc.close()
    assert s is not None and (s.priority, s.preferred) == (4, "bob") and not crm.seen
    assert _count(reg, "table") == 1 and svc.record("c1")["source"] == "table"


async def test_table_only_without_a_url(service_for):
    """No URL configured: the table answers, or nobody (unknown)."""
    svc, _, reg = service_for(None)
    assert await svc.identify("c1", "sales", "+12125550123", "", 0.0) is None
    assert _count(reg, "unknown") == 1


# --------------------------------------------------------------------------- the API

def _crm_config(tmp_path: Path, window: str = "00:00-24:00") -> dict:
    d = api_config(tmp_path)
    d["trunks"]["sim"] = {"match": ["127.0.0.9"], "host": "127.0.0.3", "dids": {}}
    d["crm"] = {"lookup": {}, "click_to_call": {"trunk": "sim", "caller_id": "+12125551000", "window": window}}
    return d


@pytest.fixture
async def crm_api(tmp_path: Path, request: pytest.FixtureRequest):
    path = _write(tmp_path, _crm_config(tmp_path, getattr(request, "param", "00:00-24:00")))
    d = Daemon(config.load(path), path)
    task = asyncio.create_task(d.run())
    for _ in range(300):
        if d._http is not None:
            break
        await asyncio.sleep(0.01)
    yield d, f"http://127.0.0.1:{d.cfg.http.port}"
    d.stop()
    await asyncio.wait_for(task, 10)


async def test_customer_table_through_the_api(crm_api):
    """PUT/GET/DELETE /customers/<number> (supervise): numbers normalised; an agent may not."""
    d, base = crm_api
    auth = {"Authorization": f"Bearer {SUP_TOKEN}"}
    async with _client() as s:
        body = {"name": "Ann", "vip": True, "account_manager": "alice", "language": "es", "tags": ["gold"]}
        async with s.put(f"{base}/api/v1/customers/2125550123", json=body, headers=auth) as r:
            assert r.status == 200, await r.text()
            assert (await r.json())["number"] == "+12125550123"
        async with s.get(f"{base}/api/v1/customers/+12125550123", headers=auth) as r:
            got = await r.json()
            assert r.status == 200 and got["customer"]["account_manager"] == "alice"
            assert got["customer"]["source"] == "table"
        async with s.put(f"{base}/api/v1/customers/2125550123", json={"vip": "x"}, headers=auth) as r:
            assert r.status == 400
        async with s.get(f"{base}/api/v1/customers/5550301", headers=auth) as r:
            assert r.status == 400  # no valid number
        async with s.delete(f"{base}/api/v1/customers/2125550123", headers=auth) as r:
            assert r.status == 200
        async with s.get(f"{base}/api/v1/customers/2125550123", headers=auth) as r:
            assert r.status == 404
    async with _client() as s:
        me = await _sign_in(s, base, "2001", ALICE_PIN)
        async with s.get(f"{base}/api/v1/customers/2125550123") as r:
            assert r.status == 403 and (await r.json())["error"] == "missing_scope"
        h = {"X-CSRF-Token": me["csrf"]}
        async with s.post(f"{base}/api/v1/calls", json={"agent": "bob", "number": "+12125550123"}, headers=h) as r:
            assert r.status == 403 and (await r.json())["error"] == "not_self"


async def test_click_to_call_refusals_name_the_rule(crm_api):
    """Not allowed by the trunk, on the DNC list, agent not ready: 400/403/409 with the rule's name."""
    d, base = crm_api
    auth = {"Authorization": f"Bearer {SUP_TOKEN}"}

    async def call(agent: str, number: str) -> tuple[int, str]:
        async with s.post(f"{base}/api/v1/calls", json={"agent": agent, "number": number}, headers=auth) as r:
            return r.status, (await r.json()).get("error", "")

    async with _client() as s:
        assert await call("alice", "+19005550123") == (400, "not_allowed_number")  # premium rate
        assert await call("alice", "+442079460958") == (400, "not_allowed_number")  # abroad: site is national only
        async with s.put(f"{base}/api/v1/dnc/+12125550199", headers=auth) as r:
            assert r.status == 200
        assert await call("alice", "+12125550199") == (403, "dnc")
        assert await call("alice", "+12125550123") == (409, "agent_busy")  # logged out (and no AMI here)
        assert await call("carol", "+12125550123") == (403, "not_in_team")
    audit = [row for row in _audit_rows(d) if row[3].startswith("click-to-call")]
    assert ("failed", "dnc") in [(r[4], r[5]) for r in audit]


def _audit_rows(d: Daemon) -> list[tuple]:
    import sqlite3
    with sqlite3.connect(d.cfg.daemon.database) as db:
        return db.execute("SELECT actor, via, action, target, outcome, reason FROM api_audit ORDER BY id").fetchall()


def _closed_window() -> str:
    """An hour-long window that New York is not in now."""
    h = (dt.datetime.now(NY).hour + 12) % 24
    return f"{h:02d}:00-{h + 1:02d}:00" if h < 23 else "23:00-24:00"


@pytest.mark.parametrize("crm_api", [_closed_window()], indirect=True)
async def test_click_to_call_outside_the_callee_window_is_refused(crm_api):
    """A New York number while it is outside the window there: 403 outside_calling_window."""
    d, base = crm_api
    auth = {"Authorization": f"Bearer {SUP_TOKEN}"}
    async with _client() as s, s.post(f"{base}/api/v1/calls", json={"agent": "alice", "number": "+12125550123"},
                                      headers=auth) as r:
        assert r.status == 403 and (await r.json())["error"] == "outside_calling_window"


async def test_click_to_call_rings_a_ready_agent(crm_api):
    """A synced floor with alice ready: 202 with the call id, the core offers alice her direct call (no
    Asterisk here: the Originate then fails and the call ends as unanswered)."""
    d, base = crm_api
    offered: list[ev.CallOffered] = []
    d.bus.subscribe(ev.CallOffered, offered.append)
    d.acd.submit(acd.Resync((), {"alice": "NOT_INUSE"}))
    d.acd.submit(acd.Login("alice"))
    auth = {"Authorization": f"Bearer {SUP_TOKEN}"}
    async with _client() as s, s.post(f"{base}/api/v1/calls", json={"agent": "alice", "number": "2125550123"},
                                      headers=auth) as r:
        assert r.status == 202, await r.text()
        got = await r.json()
    assert got["number"] == "+12125550123" and got["agent"] == "alice"
    assert [(o.call_id, o.agent) for o in offered] == [(got["call_id"], "alice")]


async def test_screen_pop_carries_the_customer(crm_api):
    """GET /calls/<id>/context has the live call's customer record."""
    d, base = crm_api
    cid = "00000000000000c1"
    d.crm.records[cid] = Customer(name="Ann", vip=True, source="lookup")
    await d.db.run(d.journal.call_started, cid, "u" + cid, "PJSIP/x-1", "2125550123", "Ann", "5551000", 1000.0)
    async with _client() as s:
        await _sign_in(s, base, "sam", "sam-pass")
        async with s.get(f"{base}/api/v1/calls/{cid}/context") as r:
            assert r.status == 200, await r.text()
            ctx = await r.json()
    assert ctx["customer"]["name"] == "Ann" and ctx["customer"]["vip"] is True
