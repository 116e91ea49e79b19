"""Repeat callers, the after-call survey and leaving a message instead of waiting, on the real lab."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.asterisk.conftest import SIP, DaemonProc, Floor, Witness
from tests.asterisk.test_recording_supervision import band_db, media_dirs, read_mono  # noqa: F401 - fixture

pytestmark = pytest.mark.asterisk

EAST_TOKEN = "east-lab-token"  # access.tokens.east in lab.yaml
TONE_HZ = 1000


def _get(daemon: DaemonProc, path: str) -> dict[str, object]:
    req = urllib.request.Request(f"http://127.0.0.1:{daemon.cfg.http.port}{path}",
                                 headers={"Authorization": f"Bearer {EAST_TOKEN}"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())


def _start(daemon_config: Callable[..., Path], **overrides: object) -> DaemonProc:
    d = DaemonProc(daemon_config(**overrides)).start()
    d.wait_for("ami.resynced", 20)
    return d


async def _queued(floor: Floor, daemon: DaemonProc, number: str) -> tuple[object, str]:
    """A caller ``number`` dialling straight into sales (DID 5551001); (its call handle, call id)."""
    mark = daemon.mark()
    h = floor.caller(number).dial(f"sip:5551001@{SIP}")
    ev = await daemon.until("call.queued", 15, after=mark, queue="sales")
    return h, str(ev["call_id"])


async def test_second_call_within_the_window_is_flagged_repeat(daemon_config: Callable[..., Path],
                                                               floor: Floor) -> None:
    """A number that called sales a moment ago calls again: the second call is flagged with the first's id
    (call record, screen pop); another number is not."""
    daemon = _start(daemon_config, queues__sales__repeat_window_s=3600)
    try:
        first, c1 = await _queued(floor, daemon, "5550501")
        first.hangup()
        await daemon.until("call.ended", 10, call_id=c1)
        _, c2 = await _queued(floor, daemon, "5550501")
        rep = await daemon.until("call.repeat", 5, call_id=c2)
        assert rep["previous"] == c1
        _, c3 = await _queued(floor, daemon, "5550502")
        assert daemon.call_record(c2)["repeat_of"] == c1
        assert daemon.call_record(c3)["repeat_of"] is None and not daemon.find("call.repeat", call_id=c3)
        assert daemon.call_record(c1)["repeat_of"] is None
        assert _get(daemon, f"/api/v1/calls/{c2}/context")["repeat_of"] == c1
    finally:
        daemon.stop()


async def test_caller_rates_the_call_after_the_agent_hangs_up(daemon_config: Callable[..., Path],
                                                              floor: Floor) -> None:
    """Alice answers and hangs up; the caller stays on the line, hears the survey and presses 4: the
    rating is in the call record and in alice's and sales' statistics."""
    daemon = _start(daemon_config, queues__sales__survey={"prompt": ["beep"], "timeout_s": 10})
    try:
        alice = await floor.login(daemon, "alice")
        mark = daemon.mark()
        caller, call_id = await _queued(floor, daemon, "5550401")
        await daemon.until("call.answered", 15, after=mark, call_id=call_id, agent="alice")
        await floor.wait(lambda: any(h.state == "CONFIRMED" for h in alice.calls[1:]), 10, "alice's leg up")
        leg = next(h for h in alice.calls[1:] if h.state == "CONFIRMED")
        leg.hangup()
        await daemon.until("survey.asked", 10, after=mark, call_id=call_id, agent="alice")
        assert not caller.ended  # the caller's leg outlived the agent's
        caller.dtmf("4")
        rated = await daemon.until("survey.rated", 10, after=mark, call_id=call_id)
        assert rated["rating"] == 4
        await floor.wait(lambda: caller.ended, 10, "the daemon to hang up after thanking")
        row = daemon.call_record(call_id)
        assert row["csat"] == 4 and row["outcome"] == "completed"
        out = subprocess.run([sys.executable, "-m", "callcenter", "stats", "--json", "--config",
                              str(daemon.config_path)], capture_output=True, text=True, timeout=30, check=True)
        stats = json.loads(out.stdout)
        assert stats["queues"]["sales"]["csat_avg"] == 4.0 and stats["queues"]["sales"]["csat_count"] == 1
        assert stats["agents"]["alice"]["csat_avg"] == 4.0
    finally:
        daemon.stop()


async def _channel(witness: Witness, uniqueid: str, predicate: Callable[[dict[str, str]], bool],
                   timeout: float = 10.0) -> dict[str, str]:
    """The channel ``uniqueid`` once Asterisk shows it in the state ``predicate`` accepts."""
    deadline = time.monotonic() + timeout
    while True:
        ch = next((c for c in await witness.channels() if c.get("Uniqueid") == uniqueid), None)
        if ch is not None and predicate(ch):
            return ch
        assert time.monotonic() < deadline, f"channel {uniqueid}: {ch}"
        await asyncio.sleep(0.1)


async def test_message_left_while_waiting_is_heard_by_the_agent_before_the_callback(
        daemon_config: Callable[..., Path], media_dirs: tuple[Path, str], floor: Floor, witness: Witness) -> None:
    """A waiting caller (a Local channel) presses 6, keeps quiet 1 s, sends a 1 kHz tone for 1.5 s, keeps
    quiet 1 s and hangs up: the message file holds the tone with the silence trimmed; it keeps the
    caller's place as a task; alice gets it, hears it, and the caller is dialled back."""
    here, there = media_dirs
    daemon = _start(daemon_config, recordings={"dir": str(here), "asterisk_dir": there, "retention_days": 30,
                                                "default": {"mode": "none"}},
                    queues__sales__message={"digit": "6", "max_s": 20, "silence_s": 0, "intro": []})
    try:
        mark = daemon.mark()
        uid = f"cctest-m{uuid.uuid4().hex[:10]}"
        r = await witness.action({
            "Action": "Originate", "Channel": "Local/s@cc-test-speaker/n", "Context": "cc-trunk-pstn",
            "Exten": "5551001", "Priority": "1", "CallerID": '"Tone Caller" <5550601>', "ChannelId": uid,
            "OtherChannelId": uid + "-2", "Async": "true",
            "Variable": [f"_CC_TEST_TONE={TONE_HZ}", "_CC_TEST_TALK_S=1.5", "_CC_TEST_QUIET_S=1"]})
        assert dict(r[0] if isinstance(r, list) else r).get("Response") == "Success"
        call_id = str((await daemon.until("call.queued", 15, after=mark, queue="sales"))["call_id"])
        await _channel(witness, uid, lambda c: c.get("Context") == "cc-wait" and c.get("Application") == "WaitExten")
        speaker = (await _channel(witness, uid + "-2", lambda c: True))["Channel"]
        # (Async: panoramisk reads it from any action whose answer ends "successfully queued")
        await witness.action({"Action": "PlayDTMF", "Channel": speaker, "Digit": "6", "Duration": "200",
                              "Async": "false"})
        req = await daemon.until("message.requested", 10, after=mark, call_id=call_id)
        assert req["position"] == 1
        await witness.action({"Action": "Redirect", "Channel": speaker, "Context": "cc-test-speaker",
                              "Exten": "talk", "Priority": "1"})  # the caller speaks, then hangs up
        done = await daemon.until("message.recorded", 15, after=mark, call_id=call_id)
        assert done["state"] == "ready" and float(done["raw_s"]) > 2.5  # silence recorded before and after ...
        assert 1.5 + 0.2 <= float(done["duration_s"]) <= 1.5 + 0.4 + 0.1  # ... is gone: the tone and padding
        assert daemon.find("call.ended", call_id=call_id) == []  # a task waiting, not an abandoned call
        path = here / "messages" / f"{done['msg_id']}.wav"
        x, fs = read_mono(path)
        assert fs == 8000 and abs(len(x) / fs - float(done["duration_s"])) < 0.05
        assert band_db(x, TONE_HZ) > -35.0  # the caller's tone is what was recorded
        assert band_db(x, 2 * TONE_HZ + 300) < band_db(x, TONE_HZ) - 30
        assert daemon.call_record(call_id)["message"] == done["msg_id"]

        floor.caller("5550601")  # the caller's phone, for the dial-back
        await floor.login(daemon, "alice")
        await daemon.until("offer.ring", 10, after=mark, call_id=call_id, agent="alice")
        played = await daemon.until("message.played", 15, after=mark, call_id=call_id, agent="alice")
        assert played["msg_id"] == done["msg_id"] and played["skipped"] is False
        await daemon.until("callback.dialling", 10, after=mark, call_id=call_id, agent="alice")
        ctx = _get(daemon, f"/api/v1/calls/{call_id}/context")
        assert ctx["message"]["id"] == done["msg_id"] and ctx["message"]["heard_by"] == "alice"
    finally:
        daemon.stop()
