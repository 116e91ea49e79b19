"""A short step of offered load (issue 13): SIPp callers and SIPp agent phones, the real daemon,
the lab Asterisk — through ``callcenter bench load``'s own functions.

It runs in a lab of its own beside the suite's (its chroot copied from the suite's on first use,
every port moved by 200 more than the suite's), because it needs 15 more desk phones and agents
than tests/asterisk/lab.yaml has, and the unit tests enumerate that file's agents.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from .conftest import PORT_OFFSET, sipp_lab

OFFSET = PORT_OFFSET + 200
AGENTS = 10
pytestmark = pytest.mark.timeout(400)


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from callcenter.bench.load import LoadBench
    lab = sipp_lab("load")
    with LoadBench(agents=AGENTS, talk_s=3.0, lab=lab, offset=OFFSET,
                   workdir=tmp_path_factory.mktemp("load")) as b:
        yield b
    assert lab.pid() is None, "the load test's lab was left running"


def test_short_load_step(bench: object) -> None:
    """180 callers, at most 40 at once, 4 calls/s, for 10 SIPp agent phones talking 3 s each (about
    2.5 calls/s: callers queue): half through the IVR with an RFC 2833 digit, half on a DID straight to the
    queue, a tenth giving up after 2 s. Every SIPp call succeeds, no caller is lost, Asterisk has
    no channel left and every agent is Ready again after the step."""
    r = bench.step(40, rate=4.0, calls=180, ivr_share=0.5, abandon_share=0.1, abandon_s=2.0)
    summary = {k: v for k, v in r.items() if k not in ("lost_examples",)}
    print(json.dumps(summary))  # the step's figures, with -s
    assert r["failed"] == 0, summary
    assert r["completed"] == r["offered"] == 180, summary
    assert r["lost"] == 0, (summary, r["lost_examples"])
    assert r["not_queued"] == 0, summary  # every IVR caller's digit took it to the queue
    assert r["calls_recorded"] == 180, summary
    assert r["channels_left"] == 0, summary
    assert r["agents_not_ready"] == {}, summary
    assert r["agents_failed"] == 0, summary
    # the queue really was under load: callers waited, agents were offered calls back to back
    assert r["outcomes"].get("completed", 0) >= 162, summary  # all but the ones giving up
    assert r["outcomes"].get("abandoned", 0) >= 1, summary  # some gave up while waiting
    assert r["free_to_bridged_n"] >= 20, summary
    assert r["ami_reconnects"] == 0, summary
    assert r["metrics_calls_ended"] == r["calls_recorded"], summary  # /metrics = call records = SIPp
    assert r["peak_concurrent"] >= 25, summary
