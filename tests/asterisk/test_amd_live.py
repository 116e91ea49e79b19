"""Live AMD through Asterisk: AudioSocket streams an answered call to the daemon's detector."""

from __future__ import annotations

import pytest

from .conftest import DaemonProc, Witness

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
