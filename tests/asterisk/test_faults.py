"""Faults under load (issue 13), at reduced size: the AMI link cut during a step, the daemon
SIGKILLed with callers waiting, Asterisk SIGKILLed mid-call — through ``callcenter bench faults``'s
own functions (SIPp agent phones and callers, the real daemon behind an AMI proxy, the lab Asterisk).

Its own lab beside the suite's (chroot copied from the suite's on first use, every port moved by
500 more than the suite's), as test_load.py does: it needs more desk phones than lab.yaml has.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from callcenter.lab.asterisk import Lab

from .conftest import PORT_OFFSET, sipp_lab

OFFSET = PORT_OFFSET + 500
pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    lab = sipp_lab("faults")
    yield lab
    assert lab.pid() is None, "the fault test's lab was left running"


def bench(lab: Lab, tmp: Path, agents: int, talk_s: float) -> Any:
    from callcenter.bench.faults import FaultBench
    return FaultBench(agents=agents, talk_s=talk_s, lab=lab, offset=OFFSET, workdir=tmp)


def show(r: dict[str, Any]) -> str:
    out = json.dumps({k: v for k, v in r.items() if k != "per_cut"})
    print(out)  # the case's figures, with -s
    return out


def test_ami_cut_during_a_step(lab: Lab, tmp_path: Path) -> None:
    """Three AMI cuts during a 30-caller step: each resynced within 5 s, state equal to Asterisk's, nothing replayed, nobody lost."""
    from callcenter.bench.faults import ami_cuts
    with bench(lab, tmp_path, agents=10, talk_s=3.0) as b:
        r = ami_cuts(b, concurrent=30, calls=90, cuts=3, gap_s=3.0)
    s = show(r)
    assert r["cuts"] == 3 and r["no_resync"] == 0, s
    assert r["resync"]["max_s"] < 5, s
    assert r["mismatches"] == 0, s
    assert r["duplicate_action_ids"] == [] and r["replayed_originates_n"] == 0, s
    assert r["offers"] >= 60, s  # the step's offers (Originate, or CC_OFFER + Redirect) went through the proxy
    assert r["step"]["failed"] == 0 and r["step"]["lost"] == 0, s
    assert r["step"]["completed"] == r["step"]["offered"] == 90, s
    assert r["step"]["ami_reconnects"] == 3, s


def test_daemon_killed_with_callers_waiting(lab: Lab, tmp_path: Path) -> None:
    """SIGKILL the daemon with 10 callers waiting, start another: every caller served, no agent rung twice at once."""
    from callcenter.bench.faults import daemon_kill
    with bench(lab, tmp_path, agents=4, talk_s=6.0) as b:
        r = daemon_kill(b, waiting=10)
    s = show(r)
    assert r["waiting_at_kill"] >= 10, s
    assert r["waiting_adopted"] >= 8, s  # the new daemon found them in Asterisk (a couple may be offered already)
    assert r["step"]["failed"] == 0 and r["step"]["lost"] == 0, s
    assert r["step"]["outcomes"] == {"completed": 14}, s
    assert r["leg_samples"] >= 20 and r["double_offers"] == 0, s
    assert r["step"]["agents_not_ready"] == {}, s


def test_asterisk_killed_mid_call(lab: Lab, tmp_path: Path) -> None:
    """SIGKILL Asterisk with 6 calls talking: flagged within 2 s, ended 'interrupted'; after its restart a step is served."""
    from callcenter.bench.faults import asterisk_kill
    with bench(lab, tmp_path, agents=6, talk_s=10.0) as b:
        r = asterisk_kill(b, connected=6, after_calls=6)
    s = show(r)
    assert r["talking_at_kill"] == 6, s
    assert r["flag_s"] is not None and r["flag_s"] <= 2, s
    assert r["flag_event_s"] is not None and r["flag_event_s"] <= 2, s
    assert r["outcomes_of_killed_calls"] == ["interrupted"] and r["killed_calls_recorded"] == 6, s
    assert r["restart_to_resync_s"] is not None and r["restart_to_resync_s"] < 10, s  # boot + reconnect
    after = r["after_step"]
    assert after["failed"] == 0 and after["lost"] == 0 and after["completed"] == after["offered"] == 12, s
    assert after["channels_left"] == 0 and after["agents_not_ready"] == {}, s
