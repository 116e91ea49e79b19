"""Callback end to end: the caller presses the digit and hangs up, keeps their place, is called back."""

from __future__ import annotations

import asyncio

import pytest

from tests.asterisk.conftest import DaemonProc, Floor, Witness

pytestmark = pytest.mark.asterisk


def _ringing(floor: Floor) -> list[object]:
    return [h for acc in floor.callers for h in acc.calls
            if h.state in ("INCOMING", "EARLY")]


async def test_callback_keeps_place_and_calls_the_caller_back(daemon: DaemonProc, floor: Floor,
                                                              witness: Witness) -> None:
    """Two callers wait; the first presses 5 and hangs up; when alice is free she is rung first, then
    the first caller's phone rings through the trunk, they answer and are bridged with alice."""
    mark = daemon.mark()
    first = await floor.call_in("5550301")
    await floor.press(daemon, first, "1", "main", mark)
    c1 = str((await daemon.until("call.queued", 15, after=mark, queue="sales"))["call_id"])
    mark2 = daemon.mark()
    second = await floor.call_in("5550302")
    await floor.press(daemon, second, "1", "main", mark2)
    c2 = str((await daemon.until("call.queued", 15, after=mark2, queue="sales"))["call_id"])

    await asyncio.sleep(0.5)
    first.dtmf("5")  # during the music: WaitExten passes the key to the daemon
    req = await daemon.until("callback.requested", 10, after=mark, call_id=c1)
    assert req["position"] == 1
    await floor.wait(lambda: first.ended, 10, "the daemon to hang up the first caller")
    await asyncio.sleep(0.5)
    assert daemon.find("call.ended", call_id=c1) == []  # hanging up did not abandon the callback
    assert daemon.db().execute("SELECT COUNT(*) FROM callbacks WHERE call_id=?", (c1,)).fetchone()[0] == 1

    alice = await floor.login(daemon, "alice")
    ring = await daemon.until("offer.ring", 10, after=mark, agent="alice")
    assert ring["call_id"] == c1  # the callback keeps its place ahead of the second caller
    await daemon.until("callback.dialling", 10, after=mark, call_id=c1, agent="alice")
    await floor.wait(lambda: bool(_ringing(floor)), 10, "the first caller's phone to ring")
    back = _ringing(floor)[0]
    assert "sip:5550301@" in back.local  # their own number was dialled, through the trunk ...
    assert "sip:5551000@" in back.remote  # ... showing the DID they had called
    back.phone._answer(back)
    ev = await daemon.until("callback.dialled", 10, after=mark, call_id=c1)
    assert ev["status"] == "ANSWER"
    await daemon.until("call.answered", 10, after=mark, call_id=c1, agent="alice")
    chans = await witness.channels()
    agent = [c for c in chans if c["Channel"].startswith("PJSIP/2001-") and c.get("BridgeId")]
    trunk = [c for c in chans if c["Channel"].startswith("PJSIP/trunk-pstn-") and c.get("BridgeId")]
    assert any(a["BridgeId"] == t["BridgeId"] for a in agent for t in trunk), chans
    dialled = next(c for c in trunk if any(a["BridgeId"] == c["BridgeId"] for a in agent))
    assert dialled["ConnectedLineNum"] == "5551000"  # presenting the DID they called, not their number
    assert not second.ended  # the second caller still waits, behind the callback

    back.hangup()
    await daemon.until("callback.done", 10, after=mark, call_id=c1, outcome="answered")
    await daemon.until("call.ended", 10, after=mark, call_id=c1, outcome="completed")
    rec = daemon.call_record(c1)
    assert rec["agent"] == "alice" and rec["answered_at"] is not None
    assert daemon.db().execute("SELECT COUNT(*) FROM callbacks").fetchone()[0] == 0
    await daemon.until("offer.ring", 15, after=mark2, call_id=c2, agent="alice")
