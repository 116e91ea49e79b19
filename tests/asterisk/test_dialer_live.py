"""The predictive dialer end to end: campaign, leads, the simulated public network, pjsua2 agents."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.asterisk.conftest import SIP, DaemonProc, Floor, Witness

pytestmark = pytest.mark.asterisk


def _zone(local_hour: int) -> str:
    """An Etc/GMT zone where it is now about ``local_hour`` o'clock."""
    off = (local_hour - time.gmtime().tm_hour) % 24
    off = off - 24 if off > 14 else off
    return "Etc/GMT" if off == 0 else f"Etc/GMT{'-' if off > 0 else '+'}{abs(off)}"  # POSIX signs are inverted


def _cli(config: Path, *args: str) -> str:
    r = subprocess.run([sys.executable, "-m", "callcenter", "campaign", "--config", str(config), *args],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout


async def test_campaign_dials_routes_and_complies(daemon: DaemonProc, floor: Floor, witness: Witness,
                                                  tmp_path: Path) -> None:
    """Live answers reach alice within 2 s; the machine hears the message after its beep; busy and
    no-answer lines are recorded (no-answer rang >= 15 s); a person no agent can take hears the
    compliance message within 2 s; DNC and out-of-window leads are never dialled."""
    played: list[tuple[float, str, str]] = []
    seen = asyncio.Event()

    def on_message(_m: object, ev: dict[str, str]) -> None:  # cc-outbound / cc-abandon announce their prompt
        if ev.get("UserEvent") == "CallcenterMessage":
            played.append((time.monotonic(), ev.get("Kind", ""), ev.get("Prompt", "")))
            seen.set()

    witness.m.register_event("UserEvent", on_message)
    day, night = _zone(12), _zone(2)
    leads = tmp_path / "leads.csv"
    leads.write_text("phone,name,tz\n"
                     f"+12125550101,person,{day}\n"
                     f"+12125550102,on the dnc list,{day}\n"
                     f"+12125550103,asleep,{night}\n"
                     f"+12125550201,machine,{day}\n"
                     f"+12125550301,busy,{day}\n"
                     f"+12125550401,no answer,{day}\n"
                     f"+12125550501,slow person,{day}\n")
    cfg = daemon.config_path
    assert "7 leads imported, 0 rejected" in _cli(cfg, "import", "outbound", str(leads))
    _cli(cfg, "dnc", "add", "+12125550102")
    alice = await floor.login(daemon, "alice")
    mark = daemon.mark()
    _cli(cfg, "start", "outbound")

    # 1. a person: HUMAN, queued, alice within 2 s of the verdict
    ans = await daemon.until("outbound.answered", 30, after=mark)
    assert ans["amd"] == "HUMAN"
    got = await daemon.until("call.answered", 5, after=mark, call_id=ans["call_id"], agent="alice")
    gap = _ts(got) - _ts(ans)
    assert gap < 2.0, f"person waited {gap:.2f} s for an agent"
    await daemon.until("call.bridged", 5, after=mark, call_id=ans["call_id"], agent="alice")
    # the campaign's recording policy (none) wins over the queue's default (all)
    await daemon.until("recording.not_started", 5, after=mark, call_id=ans["call_id"], policy="none")
    await asyncio.sleep(1.0)
    for h in alice.calls[1:]:
        h.hangup()
    await daemon.until("call.ended", 10, after=mark, call_id=ans["call_id"])
    # the agent's disposition by feature code
    await floor.feature(alice, "*691")
    await daemon.until("dialer.disposition", 10, after=mark, agent="alice", disposition="sale")

    # 2. the machine: MACHINE after the beep, then the campaign's message; never queued
    m = await daemon.until("dialer.outcome", 40, after=mark, outcome="machine")
    await _until(seen, lambda: any(k == "machine" and a == "vm-goodbye" for _, k, a in played), 15, "the machine message")
    # 3. busy, 4. no answer after >= 15 s of ringing
    await daemon.until("dialer.outcome", 30, after=mark, outcome="busy")
    dial = await daemon.until("dialer.dial", 30, after=mark, lead=_lead(daemon, "+12125550401"))
    na = await daemon.until("dialer.outcome", 40, after=mark, outcome="no_answer")
    assert _ts(na) - _ts(dial) >= 15.0

    # 5. a person answers while alice is on a break: compliance message within 2 s, abandoned
    slow = await daemon.until("dialer.dial", 30, after=mark, lead=_lead(daemon, "+12125550501"))
    assert slow
    await floor.feature(alice, "*63")
    ans2 = await daemon.until("outbound.answered", 30, after=mark, line=slow["line"])
    comp = await daemon.until("dialer.compliance", 5, after=mark, call_id=ans2["call_id"])
    assert _ts(comp) - _ts(ans2) <= 2.05
    await _until(seen, lambda: any(k == "compliance" and a == "please-try-call-later" for _, k, a in played), 5,
                 "the compliance message")
    await daemon.until("dialer.outcome", 5, after=mark, outcome="abandoned", call_id=ans2["call_id"])
    await daemon.until("call.ended", 10, after=mark, call_id=ans2["call_id"], outcome="abandoned")

    # never dialled: the DNC number and the lead whose local time is night
    dialled = {e["lead"] for e in daemon.find("dialer.dial")}
    assert _lead(daemon, "+12125550102") not in dialled and _lead(daemon, "+12125550103") not in dialled
    db = daemon.db()
    states = dict(db.execute("SELECT phone, state FROM leads").fetchall())
    assert states["+12125550102"] == "new" and states["+12125550103"] == "new"
    assert states["+12125550101"] == "done"
    assert m["lead"] == _lead(daemon, "+12125550201")
    outcomes = [r[0] for r in db.execute("SELECT outcome FROM dispositions ORDER BY id")]
    assert outcomes[:2] == ["human", "agent:sale"] and "abandoned" in outcomes
    # the pacing decisions are logged with their inputs and reason
    pace = daemon.find("dialer.pace")
    assert pace and all("reason" in p and "agents_free" in p and "rolling_abandoned" in p for p in pace)


async def test_a_late_line_no_agent_can_take_is_given_up(daemon: DaemonProc, floor: Floor, tmp_path: Path) -> None:
    """A predictive line that has rung the rules' 15 s while its only agent took a caller is hung
    up (not rung to its 40 s timeout) and recorded as unanswered for a retry; the caller alice
    took stays connected."""
    leads = tmp_path / "leads.csv"
    leads.write_text(f"phone,name,tz\n+12125550402,rings on,{_zone(12)}\n")
    cfg = daemon.config_path
    assert "1 leads imported, 0 rejected" in _cli(cfg, "import", "patient", str(leads))
    await floor.login(daemon, "alice")
    mark = daemon.mark()
    _cli(cfg, "start", "patient")
    dial = await daemon.until("dialer.dial", 15, after=mark, campaign="patient")
    inbound = floor.caller("5550123").dial(f"sip:5551001@{SIP}")  # straight to sales: alice takes it
    await daemon.until("call.answered", 15, after=mark, agent="alice")
    rel = await daemon.until("dialer.release", 30, after=mark, line=dial["line"])
    out = await daemon.until("dialer.outcome", 10, after=mark, line=dial["line"])
    assert out["outcome"] == "no_answer" and "released" in str(out["detail"])
    assert 15.0 <= _ts(rel) - _ts(dial) < 22.0, "released at the rules' minimum, long before the 40 s timeout"
    assert _ts(out) - _ts(dial) < 25.0
    assert inbound.state == "CONFIRMED"
    states = dict(daemon.db().execute("SELECT phone, state FROM leads").fetchall())
    assert states["+12125550402"] != "done"  # to be retried


def _ts(ev: dict[str, object]) -> float:
    from datetime import datetime
    return datetime.fromisoformat(str(ev["timestamp"]).replace("Z", "+00:00")).timestamp()


def _lead(daemon: DaemonProc, phone: str) -> int:
    return int(daemon.db().execute("SELECT id FROM leads WHERE phone = ?", (phone,)).fetchone()[0])


async def _until(seen: asyncio.Event, pred, timeout: float, what: str) -> None:
    """Wait (on the witness's events) until ``pred()`` holds."""
    deadline = time.monotonic() + timeout
    while not pred():
        seen.clear()
        left = deadline - time.monotonic()
        assert left > 0, f"timed out waiting for {what}"
        try:
            await asyncio.wait_for(seen.wait(), left)
        except asyncio.TimeoutError:
            pass
