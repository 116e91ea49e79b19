"""The whole daemon built by its composition root, on free loopback ports, with no Asterisk: faults
in one part stay in that part, a dying task stops the daemon, and reload applies or refuses a config."""

from __future__ import annotations

import asyncio
import copy
import re
import socket
import time
from pathlib import Path

import pytest
import yaml

from callcenter import config
from callcenter.app import Daemon
from callcenter.features.acd import model as acd
from callcenter.features.acd.agents import AgentState
from callcenter.protocol.ami import Message

BASE = yaml.safe_load(open("tests/asterisk/lab.yaml"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "callcenter.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _config(tmp_path: Path) -> dict:
    d = copy.deepcopy(BASE)
    d["ami"]["port"] = _free_port()  # nothing listens: the AMI client keeps retrying, the daemon serves
    d["agi"]["port"] = _free_port()
    d["http"]["port"] = _free_port()
    d["audiosocket"] = {"host": "127.0.0.1", "port": _free_port()}
    d["daemon"]["database"] = str(tmp_path / "cc.sqlite3")
    d.setdefault("recordings", {})["dir"] = str(tmp_path / "rec")
    return d


@pytest.fixture
async def running(tmp_path: Path):
    data = _config(tmp_path)
    path = _write(tmp_path, data)
    d = Daemon(config.load(path), path)
    task = asyncio.create_task(d.run())
    for _ in range(200):  # until the FastAGI listener is up
        if d.agi.serving:
            break
        await asyncio.sleep(0.01)
    yield d, data, path, task
    d.stop()
    await asyncio.wait_for(task, 10)


async def test_a_dying_essential_task_stops_the_daemon_with_a_non_zero_exit(running) -> None:
    """An essential background task that raises ends run() with exit code 1 (systemd restarts it)."""
    d, _, _, task = running

    async def broken() -> None:
        raise KeyError("boom")

    d.tasks.spawn(broken(), "broken-loop", essential=True)
    assert await asyncio.wait_for(task, 10) == 1
    assert d.tasks.failed == ["broken-loop"]


async def test_a_feature_that_raises_on_an_ami_event_does_not_stop_the_others(running, monkeypatch) -> None:
    """Recording's handler raising on an event still lets the ACD see it (the device state changes)."""
    d, _, _, _ = running

    def bad(msg: Message) -> None:
        raise KeyError("CC_REC_ID")

    monkeypatch.setattr(d.recording, "on_event", bad)
    d._dispatch(Message((("Event", "DeviceStateChange"), ("Device", "PJSIP/2001"), ("State", "INUSE"))))
    assert d.acd.state.agents["alice"].device == "INUSE"


async def test_watchdog_is_withheld_once_a_part_is_down(running) -> None:
    """alive() is true while AMI, FastAGI, AudioSocket and the dialler run, false once FastAGI stops."""
    d, _, _, _ = running
    for _ in range(100):
        if d.tasks.alive("ami"):
            break
        await asyncio.sleep(0.01)
    assert d.alive()
    await d.agi.close()
    assert not d.alive()


async def test_reload_adds_an_agent_and_a_queue_without_touching_calls(running, tmp_path) -> None:
    """A reload with a new agent and queue applies both; a waiting caller stays; generation goes up."""
    from callcenter.features.acd import model as acd
    d, data, path, _ = running
    d.acd.submit(acd.Resync(()))
    d.acd.submit(acd.CallQueued("c1", "sales", "PJSIP/trunk-1", "5550100", entered_at=time.time()))
    data = copy.deepcopy(data)
    data["phones"]["2009"] = {"secret": "phone-secret-2009", "name": "Zed"}
    data["agents"]["zed"] = {"phone": "2009", "name": "Zed"}
    data["queues"]["vip"] = {"members": ["zed"], "fallback": {"hangup": ["goodbye"]}}
    path.write_text(yaml.safe_dump(data))
    assert await d.reload()
    assert "zed" in d.acd.state.agents and d.acd.state.agents["zed"].state == AgentState.LOGGED_OUT
    assert "vip" in d.cfg.queues and "c1" in d.acd.state.calls
    assert d.status()["config"]["generation"] == 2


async def test_a_bad_reload_is_refused_with_its_key_path_and_the_old_config_stays(running) -> None:
    """A reload naming an unknown strategy is refused, its key path logged; the running config is unchanged."""
    d, data, path, _ = running
    data = copy.deepcopy(data)
    data["queues"]["sales"]["strategy"] = "fastest"
    path.write_text(yaml.safe_dump(data))
    before = d.cfg
    assert not await d.reload()
    assert d.cfg is before
    problems = d.status()["config"]["last_reload"]["problems"]
    assert any(p.startswith("queues.sales.strategy") for p in problems), problems


async def test_reload_refuses_to_remove_a_queue_with_callers(running) -> None:
    """Removing a queue while a caller waits in it is refused (nobody stranded), naming the queue."""
    from callcenter.features.acd import model as acd
    d, data, path, _ = running
    d.acd.submit(acd.Resync(()))
    d.acd.submit(acd.CallQueued("c9", "empty", "PJSIP/trunk-9", "5550100", entered_at=time.time()))
    data = copy.deepcopy(data)
    del data["queues"]["empty"]
    for m in data["menus"].values():
        m["options"] = {k: v for k, v in m["options"].items() if v != {"queue": "empty"}}
    for t in data["trunks"].values():
        t["dids"] = {k: v for k, v in t["dids"].items() if v != {"queue": "empty"}}
    codes = data.get("transfers", {}).get("queues", {})  # transfer codes to it go too
    data.get("transfers", {})["queues"] = {k: v for k, v in codes.items() if v != "empty"}
    path.write_text(yaml.safe_dump(data))
    if not await d.reload():
        assert any(p.startswith("queues.empty") for p in d.status()["config"]["last_reload"]["problems"])
    else:
        pytest.fail("a queue with a waiting caller was removed")


async def test_metrics_export_the_daemons_own_maps_by_name(running) -> None:
    """/metrics carries callcenter_daemon_entries for every map (fixed names), and a queued call shows
    in acd_calls until it ends — what the leak check reads."""
    from prometheus_client import generate_latest
    d, _, _, _ = running

    def entries() -> dict[str, float]:
        text = generate_latest(d.metrics.registry).decode()
        return {m[1]: float(m[2]) for m in re.finditer(r'^callcenter_daemon_entries\{map="(\w+)"\} (\S+)$', text, re.M)}

    idle = entries()
    assert set(idle) == set(d.sizes()) and idle["acd_calls"] == 0 and "acd_legs" in idle, idle
    d.acd.submit(acd.Resync(()))
    d.acd.submit(acd.CallQueued("c1", "sales", "PJSIP/trunk-1", "5550100", entered_at=time.time()))
    assert entries()["acd_calls"] == 1
    d.acd.submit(acd.CallerLeft("c1"))
    assert entries()["acd_calls"] == 0
