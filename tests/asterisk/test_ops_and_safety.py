"""Ops and bad input against the real Asterisk: systemd notify, AMI rights, hostile caller ID, HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
import urllib.request
from pathlib import Path

import pytest

from tests.asterisk.conftest import DaemonProc, Floor, Witness

pytestmark = pytest.mark.asterisk


def _notify_socket(tmp_path: Path) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(str(tmp_path / "notify.sock"))
    s.settimeout(0.2)
    return s


def _datagrams(s: socket.socket, seconds: float) -> list[str]:
    """Everything sd_notify sent within ``seconds`` (recv with a short timeout, bounded)."""
    out: list[str] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            out.append(s.recv(4096).decode())
        except TimeoutError:
            continue
    return out


async def test_ready_only_after_ami_sync_and_watchdog_pings(daemon_config, tmp_path: Path) -> None:
    """READY=1 is sent only once AMI is logged in and resynced; the watchdog is pinged by the loop."""
    sock = _notify_socket(tmp_path)
    env = {"NOTIFY_SOCKET": str(tmp_path / "notify.sock"), "WATCHDOG_USEC": "1000000"}

    # No AMI to be had: not ready, but the watchdog still sees a live loop.
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dead_port = dead.getsockname()[1]
    dead.close()
    d = DaemonProc(daemon_config(ami__port=dead_port), env=env).start()
    try:
        msgs = await asyncio.to_thread(_datagrams, sock, 2.5)
        assert not any("READY=1" in m for m in msgs), msgs
        assert sum("WATCHDOG=1" in m for m in msgs) >= 2, msgs
        with pytest.raises(urllib.request.HTTPError) as err:
            urllib.request.urlopen(f"http://127.0.0.1:{d.cfg.http.port}/healthz", timeout=2)
        assert err.value.code == 503
    finally:
        d.stop()

    d = DaemonProc(daemon_config(), env=env).start()
    try:
        msgs = await asyncio.to_thread(_datagrams, sock, 2.5)
        ready = [m for m in msgs if "READY=1" in m]
        assert len(ready) == 1, msgs
        await d.until("ami.resynced", 2)
        assert urllib.request.urlopen(f"http://127.0.0.1:{d.cfg.http.port}/healthz", timeout=2).status == 200
    finally:
        d.stop()
        sock.close()


async def test_ami_user_cannot_run_commands(witness: Witness) -> None:
    """The daemon's AMI user is refused Command (shell-strength) actions by Asterisk itself."""
    r = await witness.action({"Action": "Command", "Command": "core show version"})
    assert r.get("Response") == "Error" and "Permission denied" in r.get("Message", ""), dict(r)


async def test_hostile_caller_id_is_sanitised_on_the_agent_leg(daemon: DaemonProc, floor: Floor,
                                                               witness: Witness) -> None:
    """A caller name with quotes, ';' and '$(...)' reaches the agent's phone only in its sanitised form."""
    alice = await floor.login(daemon, "alice")
    mark = daemon.mark()
    call = await floor.call_in("5550666", 'Eve "x; $(reboot) <y>')
    await floor.press(daemon, call, "1", "main", mark)
    ev = await daemon.until("call.bridged", 15, after=mark, agent="alice")
    chans = await witness.channels()
    agent_leg = [c for c in chans if c["Channel"].startswith("PJSIP/2001-")]
    assert agent_leg, chans
    assert agent_leg[0]["ConnectedLineName"] == "Eve x reboot y"  # what alice's phone shows
    assert agent_leg[0]["ConnectedLineNum"] == "5550666"
    rec = daemon.call_record(str(ev["call_id"]))
    assert rec["caller_num"] == "5550666"  # stored as given (as data, via SQL parameters)
    await floor.wait(lambda: any(h.state == "CONFIRMED" for h in alice.calls[1:]), 5, "alice talking")


async def test_metrics_and_status_endpoints(daemon: DaemonProc, floor: Floor) -> None:
    """/metrics exposes calls by outcome, callers waiting per queue and agents by state; /status is JSON."""
    await floor.login(daemon, "bob")
    mark = daemon.mark()
    call = await floor.call_in()
    await floor.press(daemon, call, "3", "main", mark)  # queue "empty": nobody logged in there
    await daemon.until("call.queued", 10, after=mark, queue="empty")
    port = daemon.cfg.http.port
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    assert 'callcenter_queue_waiting{queue="empty"} 1.0' in text
    assert 'callcenter_agents{state="Ready"} 1.0' in text
    assert "callcenter_ami_connected 1.0" in text
    assert 'callcenter_queue_longest_wait_seconds{queue="empty"}' in text
    st = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=2))
    assert st["queues"]["empty"]["waiting"] == 1 and st["agents"]["bob"]["state"] == "Ready"
    call.hangup()
    await daemon.until("call.ended", 10, after=mark, outcome="abandoned")
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    assert 'callcenter_calls_total{outcome="abandoned"} 1.0' in text
    assert 'callcenter_queue_waiting{queue="empty"} 0.0' in text
    assert os.path.exists(daemon.cfg.daemon.database)


async def test_pause_reason_codes_and_their_durations(daemon: DaemonProc, floor: Floor) -> None:
    """*63<code> pauses with the configured reason, an unknown code changes nothing, durations are kept."""
    bob = await floor.login(daemon, "bob")
    mark = daemon.mark()
    await floor.feature(bob, "*632")
    await daemon.until("agent.state", 10, after=mark, agent="bob", state="Paused", reason="training")
    mark = daemon.mark()
    await floor.feature(bob, "*639")  # not a configured code
    await daemon.until("agent.unknown_pause_code", 10, after=mark, code="9")
    assert not daemon.find("agent.state", agent="bob", state="Paused", reason="code-9")
    await asyncio.sleep(1.0)
    await floor.feature(bob, "*64")
    await daemon.until("agent.state", 10, after=mark, agent="bob", state="Ready")
    st = json.load(urllib.request.urlopen(f"http://127.0.0.1:{daemon.cfg.http.port}/status", timeout=2))
    assert 1.0 <= st["agents"]["bob"]["paused_s"]["training"] < 10
    with daemon.db() as c:
        rows = c.execute("SELECT reason, ended_at IS NOT NULL FROM pauses WHERE agent='bob'").fetchall()
    assert [tuple(r) for r in rows] == [("training", 1)]
