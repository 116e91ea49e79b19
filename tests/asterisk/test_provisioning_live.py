"""Desk-phone provisioning end to end: a pjsua2 phone configured only from the file it fetched (with
digest auth, through an HTTP client independent of ours) registers and logs its agent in."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from requests.auth import HTTPDigestAuth

from callcenter.features.provisioning.digest import ha1
from tests.asterisk.conftest import PORT_OFFSET, SIP, DaemonProc, Floor

pytestmark = pytest.mark.asterisk

MAC = "805ec0aa2003"
PASSWORD = "live-prov-password-1"
PORT = 9190 + PORT_OFFSET


def _fetch(name: str, auth: HTTPDigestAuth | None) -> requests.Response:
    return requests.get(f"http://127.0.0.1:{PORT}/{name}", auth=auth, timeout=5)


def _yealink(body: str) -> dict[str, str]:
    return dict(line.split(" = ", 1) for line in body.splitlines() if " = " in line and not line.startswith("#"))


async def test_phone_configured_from_its_fetched_file_registers_and_logs_in(
        daemon_config: Callable[..., Path], floor: Floor) -> None:
    """carol's desk phone (a Yealink) fetches y000000000000.cfg and its <mac>.cfg with digest auth; the
    account (server, user, password) and the log-in key come from that file only; it registers, dials the
    key's code, and the daemon has carol Ready. Without credentials the same file gives no secret."""
    path = daemon_config(
        provisioning={"enabled": True, "bind": "127.0.0.1", "port": PORT, "timezone": "Europe/Paris"},
        phones__2003__mac=MAC, phones__2003__model="yealink-t46u",
        phones__2003__provisioning_ha1=ha1(MAC, "callcenter-provisioning", PASSWORD))
    daemon = DaemonProc(path).start()
    try:
        await daemon.until("ami.resynced", 20)
        await daemon.until("provisioning.started", 10)
        bare = await asyncio.to_thread(_fetch, f"{MAC}.cfg", None)
        assert bare.status_code == 401 and "test-secret-2003" not in bare.text
        common = await asyncio.to_thread(_fetch, "y000000000000.cfg", None)
        assert common.status_code == 200 and _yealink(common.text)["account.1.dtmf.type"] == "1"
        got = await asyncio.to_thread(_fetch, f"{MAC}.cfg", HTTPDigestAuth(MAC, PASSWORD))
        assert got.status_code == 200
        conf = _yealink(got.text)
        server = f"{conf['account.1.sip_server.1.address']}:{conf['account.1.sip_server.1.port']}"
        assert server == SIP  # the lab's phones (one pjsua endpoint per process) register there
        user, secret = conf["account.1.user_name"], conf["account.1.password"]
        login = next(conf[k.replace(".label", ".value")] for k, v in conf.items()
                     if k.startswith("linekey.") and k.endswith(".label") and v == "Log in")
        fetched = daemon.find("provisioning.fetch", outcome="served", mac=MAC)
        assert fetched and fetched[0]["model"] == "yealink-t46u" and fetched[0]["source"] == "127.0.0.1"
        assert all(secret not in json.dumps(e) and PASSWORD not in json.dumps(e) for e in daemon.events)

        desk = floor.phones.__dict__.setdefault("desk", {})
        if user in desk:  # an earlier test's phone for this extension: this one must be the fetched one
            floor.phones.drop(desk.pop(user))
        acc = desk[user] = floor.phones.agent(user, secret)
        floor.accounts.append(acc)
        await floor.wait(lambda: acc.registered, 10, f"{user} registered with the fetched account")
        mark = daemon.mark()
        h = acc.dial(f"sip:{login}@{server}")
        await floor.wait(lambda: h.ended, 10, "the log-in key's call to end")
        assert h.confirmed_at is not None
        await daemon.until("agent.state", 10, after=mark, agent="carol", state="Ready")
        with urllib.request.urlopen(f"http://127.0.0.1:{daemon.cfg.http.port}/status", timeout=5) as r:
            status = json.load(r)
        assert status["agents"]["carol"]["state"].lower() == "ready"
    finally:
        daemon.stop()
