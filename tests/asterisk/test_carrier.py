"""Carrier trunks on the lab: a simulated carrier (callcenter.lab.asterisk.carrier_sim) that requires
registration and digest auth. Trunk ``carrier`` registers as cc-acct1; ``carrier-bad`` has a wrong
secret for cc-acct2 (tests/asterisk/lab.yaml)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from callcenter.cli.screen import fetch_status
from callcenter.lab.asterisk import Lab
from tests.asterisk.conftest import DaemonProc, Floor, Witness

pytestmark = pytest.mark.asterisk
TOKEN = {"Authorization": "Bearer east-lab-token"}  # lab.yaml: access.tokens.east (team east: alice, bob)


async def _trunk(daemon: DaemonProc, name: str, want: Callable[[dict[str, Any]], bool], timeout: float = 15) -> dict[str, Any]:
    """/status's row for trunk ``name`` once ``want`` holds (the daemon's view, from AMI)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        row = (await asyncio.to_thread(fetch_status, daemon.cfg.http.host, daemon.cfg.http.port))["trunks"][name]
        if want(row) or loop.time() > deadline:
            assert want(row), row
            return row
        await asyncio.sleep(0.2)


async def _carrier_calls(witness: Witness, did: str) -> dict[str, str]:
    """The carrier sends a call to our DID: to the registered contact of account cc-acct1 only."""
    return dict(await witness.action({"Action": "Originate", "Channel": f"PJSIP/{did}@cc-acct1",
                                      "Application": "Wait", "Data": "20", "CallerID": '"Customer" <5550777>',
                                      "Timeout": "8000", "Async": "false"}))


@pytest.fixture
def lab_rx() -> Iterator[Callable[[str], str]]:
    lab = Lab.default()
    yield lab.rx
    lab.rx("channel request hangup all")
    lab.rx("pjsip send register trunk-carrier")  # as the lab had it, whatever the test did


async def test_inbound_reaches_the_ivr_only_once_registered(daemon: DaemonProc, witness: Witness,
                                                           lab_rx: Callable[[str], str]) -> None:
    """Unregistered: the carrier cannot deliver the DID (no contact) and /status says so; registered
    again (Registry event): the call arrives on trunk carrier, DID from the To header, and the IVR answers."""
    await _trunk(daemon, "carrier", lambda t: t["state"] == "registered")
    mark = daemon.mark()
    lab_rx("pjsip send unregister trunk-carrier")
    await daemon.until("trunk.not_registered", 10, after=mark, trunk="carrier", state="unregistered")
    row = await _trunk(daemon, "carrier", lambda t: t["state"] == "unregistered")
    assert row["identify"] == ["registration"] and "no inbound calls" in row["hint"]
    refused = await _carrier_calls(witness, "5551500")
    assert refused.get("Response") == "Error", refused
    assert daemon.find("call.started", did="5551500") == []

    lab_rx("pjsip send register trunk-carrier")
    await daemon.until("trunk.registered", 20, after=mark, trunk="carrier")
    answered = await _carrier_calls(witness, "5551500")
    assert answered.get("Response") == "Success", answered
    started = await daemon.until("call.started", 10, after=mark, did="5551500")
    await daemon.until("ivr.menu", 10, after=mark, call_id=started["call_id"], menu="main")
    chans = await witness.channels()
    assert any(c["Channel"].startswith("PJSIP/trunk-carrier-") for c in chans), [c["Channel"] for c in chans]


async def test_wrong_credentials_are_a_status_and_a_metric(daemon: DaemonProc, lab_rx: Callable[[str], str]) -> None:
    """carrier-bad (wrong secret): /status and `callcenter status` say REJECTED with a hint, the gauge
    is 0 and the failures counter counts again when it tries again."""
    row = await _trunk(daemon, "carrier-bad", lambda t: t["state"] == "rejected")  # from the resync at login
    assert "auth" in row["hint"] and row["failures"] == 1
    mark = daemon.mark()
    lab_rx("pjsip send register trunk-carrier-bad")
    await daemon.until("trunk.not_registered", 10, after=mark, trunk="carrier-bad", state="rejected", failures=2)
    out = subprocess.run([sys.executable, "-m", "callcenter", "status", "--config", str(daemon.config_path)],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    line = next(x for x in out.stdout.splitlines() if x.startswith("carrier-bad "))
    assert "REJECTED" in line and "trunks.carrier-bad.auth" in line, out.stdout
    url = f"http://{daemon.cfg.http.host}:{daemon.cfg.http.port}/metrics"
    metrics = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read().decode())  # noqa: S310
    assert 'callcenter_trunk_registered{trunk="carrier-bad"} 0.0' in metrics
    failures = (await _trunk(daemon, "carrier-bad", lambda t: True))["failures"]
    assert failures >= 2, [e for e in daemon.events if str(e.get("event", "")).startswith("trunk.")]
    assert f'callcenter_trunk_registration_failures_total{{trunk="carrier-bad"}} {failures:.1f}' in metrics
    assert 'callcenter_trunk_registered{trunk="carrier"} 1.0' in metrics


async def test_click_to_call_authenticates_and_presents_the_trunks_caller_id(
        daemon_config: Callable[..., Path], floor: Floor, witness: Witness) -> None:
    """Click-to-call through trunk carrier (no caller ID of its own): the carrier challenges the INVITE,
    takes it as account cc-acct1 and sees the trunk's caller ID (P-Asserted-Identity); the call bridges."""
    seen: list[dict[str, str]] = []

    def on_user_event(_m: object, ev: dict[str, str]) -> None:
        if ev.get("UserEvent") == "CCCarrierCall":
            seen.append(dict(ev))

    witness.m.register_event("UserEvent", on_user_event)
    daemon = DaemonProc(daemon_config(crm={"click_to_call": {"trunk": "carrier", "window": "00:00-24:00"}})).start()
    try:
        daemon.wait_for("ami.resynced", 20)
        alice = await floor.login(daemon, "alice")
        mark = daemon.mark()
        base = f"http://127.0.0.1:{daemon.cfg.http.port}/api/v1"
        async with aiohttp.ClientSession(headers=TOKEN) as s:
            for _ in range(50):  # 409 while her phone's device state or an earlier test's retry still holds her
                async with s.post(f"{base}/calls", json={"agent": "alice", "number": "+12125550101"}) as r:
                    status, body = r.status, await r.json()
                if status != 409:
                    break
                await asyncio.sleep(0.2)
            assert status == 202, body
            call_id = body["call_id"]
        dialled = await daemon.until("callback.dialled", 20, after=mark, call_id=call_id)
        assert dialled["status"] == "ANSWER"
        await daemon.until("call.bridged", 10, after=mark, call_id=call_id, agent="alice")
        await floor.wait(lambda: bool(seen), 5, "the carrier's CCCarrierCall event")
        assert seen[0]["Account"] == "cc-acct1" and seen[0]["Dialled"] == "12125550101"
        assert seen[0]["Presented"] == "+12125551500", seen
        for h in alice.calls:
            h.hangup()
        await daemon.until("call.ended", 10, after=mark, call_id=call_id)
    finally:
        daemon.stop()
