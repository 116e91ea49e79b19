"""Live AMD through Asterisk: AudioSocket streams an answered call to the daemon's detector."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.asterisk.conftest import DaemonProc, Witness

pytestmark = pytest.mark.asterisk


@pytest.mark.parametrize(("recording", "expected"), [
    ("hello", "HUMAN"),
    ("vm-intro&vm-nobodyavail", "MACHINE"),
])
async def test_recorded_greeting_is_classified_through_the_live_path(daemon: DaemonProc, witness: Witness,
                                                                     recording: str, expected: str) -> None:
    """A call answered by a recorded greeting is streamed over AudioSocket and classified; the
    verdict comes back to the dialplan through AGI."""
    mark = daemon.mark()
    resp = await witness.action({"Action": "Originate", "Channel": "Local/play@cc-amd-test/n",
                                 "Context": "cc-amd-test", "Exten": "detect", "Priority": "1",
                                 "Variable": f"_FILE={recording}", "Async": "true"})
    first = resp[0] if isinstance(resp, list) else resp  # panoramisk lists an Originate's response events
    assert first.get("Response") == "Success", resp
    ev = await daemon.until("amd.verdict", 40, after=mark)
    assert ev["verdict"] == expected, ev
    delivered = await daemon.until("amd.result_delivered", 10, after=mark)
    assert delivered["verdict"] == expected and delivered["uuid"] == ev["uuid"]
    if expected == "HUMAN":
        assert ev["decided_ms"] < 2500  # "hello" is short: decided soon after it ends


async def test_answered_outbound_call_is_steered_by_the_verdict(daemon: DaemonProc, floor, witness: Witness) -> None:
    """A person who answers goes to an agent; a machine gets the message after its beep, no agent."""
    alice = await floor.login(daemon, "alice")
    mark = daemon.mark()
    await witness.action({"Action": "Originate", "Channel": "Local/play@cc-amd-test/n", "Context": "cc-outbound",
                          "Exten": "s", "Priority": "1", "Async": "true",
                          "Variable": "_FILE=hello,CC_QUEUE=sales,CC_VM_MESSAGE=vm-goodbye"})
    ev = await daemon.until("outbound.answered", 20, after=mark)
    assert ev["amd"] == "HUMAN" and ev["queue"] == "sales"
    await daemon.until("call.bridged", 10, after=mark, call_id=ev["call_id"], agent="alice")
    await floor.wait(lambda: any(h.state == "CONFIRMED" for h in alice.calls[1:]), 5, "alice talking")
    path = json.loads(daemon.call_record(ev["call_id"])["ivr_path"])
    # The call record keeps the verdict and its decision trace (rule/score) before the queue.
    assert path[0] == "amd:HUMAN" and path[2] == "queue:sales", path
    assert path[1].startswith("amd_trace:short_utterance_then_silence/"), path
    for h in alice.calls:
        h.hangup()
    await daemon.until("call.ended", 10, after=mark, call_id=ev["call_id"])

    mark = daemon.mark()
    await witness.action({"Action": "Originate", "Channel": "Local/play@cc-amd-test/n", "Context": "cc-outbound",
                          "Exten": "s", "Priority": "1", "Async": "true",
                          "Variable": "_FILE=vm-intro&vm-nobodyavail&beep,CC_QUEUE=sales,CC_VM_MESSAGE=vm-goodbye"})
    v = await daemon.until("amd.verdict", 30, after=mark)
    assert v["verdict"] == "MACHINE" and v["beep_ms"] is not None
    await asyncio.sleep(1.0)
    assert len(daemon.find("outbound.answered")) == 1, "a machine reached the queue"


async def test_campaign_profile_selects_its_own_detector(daemon: DaemonProc, witness: Witness) -> None:
    """CC_AMD_PROFILE picks the campaign's detector parameters: the same hello is MACHINE for a
    profile that allows only 0.2 s of greeting."""
    mark = daemon.mark()
    await witness.action({"Action": "Originate", "Channel": "Local/play@cc-amd-test/n", "Context": "cc-amd-test",
                          "Exten": "detect", "Priority": "1", "Async": "true",
                          "Variable": "_FILE=hello,CC_AMD_PROFILE=impatient"})
    start = await daemon.until("amd.start", 20, after=mark)
    assert start["profile"] == "impatient"
    ev = await daemon.until("amd.verdict", 20, after=mark)
    assert ev["verdict"] == "MACHINE" and ev["uuid"] == start["uuid"]
