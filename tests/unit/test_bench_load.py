"""``callcenter bench load`` pieces that need no Asterisk: its config, its SIPp scenarios, its figures."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from callcenter import config as config_mod
from callcenter.bench import load
from callcenter.lab.sipp import Sipp, dtmf_block, scenario


@pytest.mark.parametrize("queues", [1, 2])
def test_config_validates_with_n_phones_and_agents(tmp_path: Path, queues: int) -> None:
    d = load.build_config(40, tmp_path / "db.sqlite3", queues=queues, offset=400)
    p = tmp_path / "load.yaml"
    p.write_text(yaml.safe_dump(d))
    cfg = config_mod.load(p)
    assert list(cfg.phones)[:2] == ["3001", "3002"] and len(cfg.phones) == len(cfg.agents) == 40
    assert len(cfg.queues) == queues and all(len(q.members) == 40 for q in cfg.queues.values())
    assert (cfg.sip.port, cfg.ami.port, cfg.http.port) == (5460, 5438, 9584)
    dids = cfg.trunks["pstn"].dids
    assert set(dids) == {load.IVR_DID, load.QUEUE_DID}
    # caller numbers can never be taken for a desk phone (PJSIP identifies by user first)
    assert not any(ext.startswith(p) for ext in cfg.phones for p in load.PREFIX.values())


def test_config_refuses_more_phones_than_the_numbering(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        load.build_config(100, tmp_path / "db")


@pytest.mark.parametrize("name,values", [
    ("agent_login", {"LOGIN": "*61"}),
    ("agent_answer", {"TALK_MS": 3000}),
    ("caller", {"PREFIX": "5557", "HOLD_MS": 2000, "DTMF_BLOCK": ""}),
])
def test_scenarios_are_filled_and_well_formed(tmp_path: Path, name: str, values: dict[str, object]) -> None:
    if name == "caller" and Path("/usr/share/sip-tester/dtmf_2833_1.pcap").exists():
        values = dict(values, DTMF_BLOCK=dtmf_block("1", 1000))
    text = scenario(name, tmp_path, **values).read_text()
    assert not re.search(r"@[A-Z_]+@", text)
    ET.fromstring(text.split("?>", 1)[1])


def test_sipp_statistics_are_read_from_the_last_line(tmp_path: Path) -> None:
    p = Sipp("x", [], tmp_path)
    assert p.stats() == {"created": 0, "successful": 0, "failed": 0, "current": 0}
    p.stat_file.write_text("StartTime;TotalCallCreated;CurrentCall;SuccessfulCall(C);FailedCall(C);\n"
                           "a;3;3;1;0;\nb;10;0;8;2;\n")
    assert p.stats() == {"created": 10, "successful": 8, "failed": 2, "current": 0}


def test_free_to_bridged_counts_only_agents_offered_a_waiting_caller() -> None:
    class D:
        pid = None

        @staticmethod
        def since(at: float) -> list[dict[str, object]]:
            t = "2026-01-01T00:00:0{}Z"
            return [
                {"event": "agent.state", "agent": "a", "state": "Ready", "timestamp": t.format("0.000")},
                {"event": "offer.ring", "agent": "a", "call_id": "c1", "timestamp": t.format("0.010")},
                {"event": "call.answered", "agent": "a", "call_id": "c1", "timestamp": t.format("0.030")},
                {"event": "call.bridged", "agent": "a", "call_id": "c1", "timestamp": t.format("0.040")},
                # b was idle a while before a caller came: not an agent-free → bridged sample
                {"event": "agent.state", "agent": "b", "state": "Ready", "timestamp": t.format("1.000")},
                {"event": "offer.ring", "agent": "b", "call_id": "c2", "timestamp": t.format("3.000")},
                {"event": "call.bridged", "agent": "b", "call_id": "c2", "timestamp": t.format("3.020")},
            ]
    b = load.LoadBench.__new__(load.LoadBench)
    b.daemon = D()
    assert [round(x) for x in b._free_to_bridged(0)] == [40]


def test_percentiles() -> None:
    assert load.pct([], 0.5) is None
    assert load.pct([3.0, 1.0, 2.0], 0.5) == 2.0
    assert load.pct([float(i) for i in range(1, 101)], 0.99) == 99.0
