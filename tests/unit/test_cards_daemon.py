"""The daemon with cards configured, against a scripted AMI server on loopback (real TCP): the
DAHDIShowStatus snapshot after login, SpanAlarm bytes to /metrics and /status, and an Asterisk
without chan_dahdi (the action refused) leaving the spans unknown while everything else syncs."""

from __future__ import annotations

import asyncio
import copy
import json
import re
import socket
import urllib.request
from pathlib import Path

import pytest
import yaml

from callcenter import config
from callcenter.app import Daemon
from callcenter.protocol.ami import AmiParser

BASE = yaml.safe_load(open("tests/asterisk/lab.yaml"))
BANNER = b"Asterisk Call Manager/9.0.0\r\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ScriptedAmi:
    """Login, FullyBooted, empty channel/device lists, and DAHDIShowStatus from ``spans`` (None: the
    action is unknown, as on an Asterisk without chan_dahdi)."""

    def __init__(self, spans: dict[int, str] | None) -> None:
        self.spans = spans
        self.writers: list[asyncio.StreamWriter] = []
        self.asked: list[str] = []

    async def start(self) -> int:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    def push(self, text: str) -> None:
        for w in self.writers:
            w.write(text.replace("\n", "\r\n").encode())

    async def handle(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        self.writers.append(w)
        w.write(BANNER)
        parser = AmiParser()
        parser.feed(BANNER)
        try:
            while data := await r.read(4096):
                for m in parser.feed(data):
                    action, aid = m.get("Action"), m.action_id
                    self.asked.append(action)
                    if action == "Login":
                        w.write(f"Response: Success\r\nActionID: {aid}\r\n\r\n".encode())
                        w.write(b"Event: FullyBooted\r\nPrivilege: system,all\r\nUptime: 100\r\n"
                                b"LastReload: 100\r\nStatus: Fully Booted\r\n\r\n")
                    elif action in ("CoreShowChannels", "DeviceStateList") or (
                            action == "DAHDIShowStatus" and self.spans is not None):
                        items = ""
                        if action == "DAHDIShowStatus":
                            items = "".join(f"Event: DAHDIShowStatus\r\nSpan: {n}\r\nDescription: T4XXP (PCI) "
                                            f"Card 0 Span {n}\r\nAlarms: {a}\r\nIRQ: 0\r\nbpviol: 0\r\nCRC: 0\r\n"
                                            f"Framing: CCS\r\nCoding: HDB3\r\nOptions: CRC4\r\nLBO: 0 db (CSU)/0-133 "
                                            f"feet (DSX-1)\r\nActionID: {aid}\r\n\r\n"
                                            for n, a in (self.spans or {}).items())
                        w.write(f"Response: Success\r\nActionID: {aid}\r\nEventList: start\r\n\r\n{items}"
                                f"Event: {action}Complete\r\nActionID: {aid}\r\nEventList: Complete\r\n"
                                f"ListItems: 0\r\n\r\n".encode())
                    else:
                        w.write(f"Response: Error\r\nActionID: {aid}\r\nMessage: Invalid/unknown command\r\n\r\n"
                                .encode())
                await w.drain()
        except ConnectionError:
            pass


def _get(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:  # noqa: S310 - loopback
        return r.read().decode()


async def _until(pred, what: str, timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if await asyncio.to_thread(pred):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def cards_config(tmp_path: Path):
    def make(ami_port: int) -> tuple[Path, int]:
        d = copy.deepcopy(BASE)
        d["ami"]["port"] = ami_port
        d["agi"]["port"] = _free_port()
        d["http"]["port"] = port = _free_port()
        d["audiosocket"] = {"host": "127.0.0.1", "port": _free_port()}
        d["daemon"]["database"] = str(tmp_path / "cc.sqlite3")
        d.setdefault("recordings", {})["dir"] = str(tmp_path / "rec")
        d["trunks"]["telco"] = {"match": [], "dids": {"5551000": {"menu": "main"}}}
        d["cards"] = {"spans": {1: {"type": "e1", "trunk": "telco"}, 2: {"type": "e1", "trunk": "telco"}}}
        path = tmp_path / "callcenter.yaml"
        path.write_text(yaml.safe_dump(d))
        return path, port
    return make


@pytest.mark.parametrize("with_dahdi", [True, False])
async def test_span_alarms_reach_metrics_and_status(cards_config, with_dahdi: bool) -> None:
    """After login the daemon asks DAHDIShowStatus; a SpanAlarm on the wire turns the span's gauge to 0 and
    /status says why; without chan_dahdi the spans stay unknown and the daemon still syncs."""
    fake = ScriptedAmi({1: "OK", 2: "RED"} if with_dahdi else None)
    path, http = cards_config(await fake.start())
    d = Daemon(config.load(path), path)
    task = asyncio.create_task(d.run())
    try:
        await _until(lambda: d.acd.state.synced, "the AMI resync")
        assert "DAHDIShowStatus" in fake.asked
        full = json.loads(await asyncio.to_thread(_get, http, "/status"))
        assert "trunks" in full and set(full["cards"]) == {"1", "2"}  # both site parts on the one screen
        metrics = lambda: _get(http, "/metrics")  # noqa: E731
        status = lambda: json.loads(_get(http, "/status"))["cards"]  # noqa: E731
        if not with_dahdi:
            assert {s["state"] for s in (await asyncio.to_thread(status)).values()} == {"unknown"}
            assert 'callcenter_card_span_up{span="1"} -1.0' in await asyncio.to_thread(metrics)
            return
        assert re.search(r'callcenter_card_span_up\{span="1"\} 1\.0', await asyncio.to_thread(metrics))
        assert (await asyncio.to_thread(status))["2"]["alarm"] == "RED"
        fake.push("Event: SpanAlarm\nPrivilege: system,all\nSpan: 1\nAlarm: Red Alarm\n\n")
        await _until(lambda: 'callcenter_card_span_up{span="1"} 0.0' in metrics(), "span 1 in alarm")
        st = await asyncio.to_thread(status)
        assert (st["1"]["state"], st["1"]["alarm"], st["1"]["trunks"]) == ("alarm", "Red Alarm", ["telco"])
        fake.push("Event: SpanAlarmClear\nPrivilege: system,all\nSpan: 1\n\n")
        await _until(lambda: 'callcenter_card_span_up{span="1"} 1.0' in metrics(), "span 1 up again")
        assert 'callcenter_card_span_alarms_total{span="1"} 1.0' in await asyncio.to_thread(metrics)
    finally:
        d.stop()
        await asyncio.wait_for(task, 10)
        fake.server.close()
