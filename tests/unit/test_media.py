"""The daemon's recording and supervision adapter (callcenter.features.recording.service) against fake AGI and AMI peers."""

from __future__ import annotations

import asyncio
import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from callcenter import config as config_mod
from callcenter.features.recording import files as rec
from callcenter.features.recording.service import Media
from callcenter.protocol.agi import Env, Response
from callcenter.protocol.ami import Message

ROOT = Path(__file__).resolve().parents[2]
ALICE_CHAN = "PJSIP/2001-0000002a"


@pytest.fixture
def cfg(tmp_path: Path) -> config_mod.Config:
    data = copy.deepcopy(yaml.safe_load((ROOT / "tests" / "asterisk" / "lab.yaml").read_text()))
    data["daemon"]["database"] = str(tmp_path / "cc.sqlite3")
    data["recordings"] = {"dir": str(tmp_path / "rec")}
    return config_mod.parse(data)


class FakeSession:
    """An AGI session: scripted answers, every command kept."""

    def __init__(self, args: tuple[str, ...], variables: dict[str, str] | None = None, channel: str = ALICE_CHAN,
                 pin: str = ""):
        values = {"agi_request": "agi://127.0.0.1/x", "agi_channel": channel}
        values.update({f"agi_arg_{i}": a for i, a in enumerate(args, 1)})
        self.env = Env(values)
        self.channel = channel
        self.vars = dict(variables or {})
        self.pin = pin
        self.sent: list[tuple[str, ...]] = []

    async def cmd(self, verb: str, *args: object) -> Response:
        self.sent.append((verb, *map(str, args)))
        if verb == "GET DATA":
            return Response(200, self.pin)
        return Response(200, "0")

    async def get_var(self, name: str) -> str:
        return self.vars.get(name, "")

    async def set_var(self, name: str, value: str) -> None:
        self.sent.append(("SET VARIABLE", name, value))
        self.vars[name] = value


class FakeAmi:
    def __init__(self) -> None:
        self.actions: list[tuple[str, dict[str, str]]] = []

    async def action(self, name: str, headers: dict[str, str]) -> Message:
        self.actions.append((name, dict(headers)))
        return Message((("Response", "Success"),))


@dataclass
class Call:
    call_id: str
    queue: str
    agent: str | None
    answered_at: float | None = 1.0


def _event(name: str, channel: str, **variables: str) -> Message:
    return Message((("Event", name), ("Channel", channel), ("Uniqueid", "1.1"),
                    *(("ChanVariable", f"{k}={v}") for k, v in variables.items())))


@pytest.fixture
async def media(cfg: config_mod.Config):
    calls = {"00000000000000aa": Call("00000000000000aa", "sales", "alice")}
    m = Media(cfg, FakeAmi(), lambda: calls)  # type: ignore[arg-type]
    await m.start()
    yield m
    await m.close()


async def test_denied_spy_is_audited_and_never_reaches_chanspy(media: Media):
    """A wrong PIN: the attempt is audited, the caller hears an error and CC_SPY is never set."""
    media.on_event(_event("BridgeEnter", ALICE_CHAN, CC_ROLE="agent", CC_AGENT="alice"))
    s = FakeSession(("listen", "2001", "2004"), pin="1111")
    await media.agi_spy(s)  # type: ignore[arg-type]
    assert not any(c[0] == "SET VARIABLE" for c in s.sent)
    assert s.sent[-1] == ("HANGUP",) and ("STREAM FILE", "auth-incorrect", "") in s.sent
    audits = await media._io(media.store.audits)  # type: ignore[union-attr]
    assert [(a.supervisor, a.supervisor_phone, a.agent, a.mode, a.outcome, a.reason) for a in audits] == [
        ("sam", "2004", None, "listen", "denied", "bad_pin")]


async def test_allowed_spy_targets_exactly_the_agents_bridged_channel(media: Media):
    """The right PIN for an agent of sam's team: ChanSpy gets that channel's full name and option u."""
    media.on_event(_event("BridgeEnter", ALICE_CHAN, CC_ROLE="agent", CC_AGENT="alice"))
    s = FakeSession(("whisper", "2001", "2004"), pin="4321")
    await media.agi_spy(s)  # type: ignore[arg-type]
    assert s.vars["CC_SPY"] == "ok" and s.vars["CC_SPY_TARGET"] == ALICE_CHAN
    assert "u" in s.vars["CC_SPY_OPTIONS"] and "w" in s.vars["CC_SPY_OPTIONS"]
    audits = await media._io(media.store.audits)  # type: ignore[union-attr]
    assert [(a.agent, a.outcome, a.reason) for a in audits] == [("alice", "allowed", "ok")]


@pytest.mark.parametrize("endpoint,channel,reason", [
    ("2001", ALICE_CHAN, "not_a_supervisor"),  # an agent's phone dialling *71: not a supervisor
    ("2004", "PJSIP/2002-00000001", "agent_not_on_call"),  # a channel that is not alice's phone
    ("2004", None, "agent_not_on_call"),  # alice not talking
])
async def test_spy_refusals(media: Media, endpoint: str, channel: str | None, reason: str):
    """Only a supervisor's phone, and only alice's own bridged phone channel, can be spied on."""
    if channel is not None:
        media.on_event(_event("BridgeEnter", channel, CC_ROLE="agent", CC_AGENT="alice"))
    s = FakeSession(("listen", "2001", endpoint), pin="4321")
    await media.agi_spy(s)  # type: ignore[arg-type]
    assert "CC_SPY" not in s.vars
    audits = await media._io(media.store.audits)  # type: ignore[union-attr]
    assert [a.reason for a in audits] == [reason]


async def test_hangup_forgets_the_agents_channel(media: Media):
    media.on_event(_event("BridgeEnter", ALICE_CHAN, CC_ROLE="agent", CC_AGENT="alice"))
    media.on_event(_event("Hangup", ALICE_CHAN, CC_ROLE="agent", CC_AGENT="alice"))
    assert media.agent_channels == {}


async def test_recording_start_pause_resume_and_finalize(media: Media, cfg: config_mod.Config):
    """Policy all: MixMonitor on the agent leg with daemon-made paths; pause = mute + marker, resume =
    marker closed before the unmute; the Hangup event carrying CC_REC_ID finalizes the stereo file."""
    call = media._calls()["00000000000000aa"]
    s = FakeSession(())
    await media.connected(s, call)  # type: ignore[arg-type]
    rec_id = s.vars["CC_REC_ID"]
    assert rec.REC_ID.fullmatch(rec_id)
    exec_ = next(c for c in s.sent if c[0] == "EXEC")
    assert exec_ == ("EXEC", "MixMonitor", "," + rec.mixmonitor_options(media.dir, rec_id))

    assert (await media.set_paused("00000000000000aa", True, "api"))[0] == "ok"
    assert (await media.set_paused("00000000000000aa", True, "api"))[0] == "already"
    assert (await media.set_paused("00000000000000aa", False, "phone"))[0] == "ok"
    assert (await media.set_paused("0000000000000bbb", True, "api"))[0] == "not_recording"
    mutes = [(n, h["Channel"], h["State"]) for n, h in media.ami.actions]  # type: ignore[attr-defined]
    assert mutes == [("MixMonitorMute", ALICE_CHAN, "1"), ("MixMonitorMute", ALICE_CHAN, "0")]
    row = await media._io(media.store.get, rec_id)  # type: ignore[union-attr]
    assert row is not None and len(row.pauses) == 1 and row.pauses[0][1] is not None

    for leg, hz in zip(rec.leg_paths(media.dir, rec_id), (500, 1400), strict=True):  # what Asterisk wrote
        leg.parent.mkdir(parents=True, exist_ok=True)
        t = np.arange(8000) / 8000
        sf.write(str(leg), (8000 * np.sin(2 * np.pi * hz * t)).astype(np.int16), 8000, subtype="PCM_16")
    media.on_event(_event("Hangup", ALICE_CHAN, CC_ROLE="agent", CC_AGENT="alice", CC_REC_ID=rec_id))
    assert media.active == {}
    for _ in range(100):
        row = await media._io(media.store.get, rec_id)  # type: ignore[union-attr]
        if row is not None and row.status == "done":
            break
        await asyncio.sleep(0.05)
    assert row is not None and row.status == "done"
    assert sf.info(str(media.dir / row.path)).channels == 2


async def test_feature_code_from_another_phone_is_refused(media: Media):
    """The record AGI acts only for the agent whose own phone the leg is on."""
    s = FakeSession(("pause",), {"CC_CALL_ID": "00000000000000aa", "CC_AGENT": "alice",
                                 "CHANNEL(endpoint)": "2002"})
    await media.agi_record(s)  # type: ignore[arg-type]
    assert ("STREAM FILE", "beeperr", "") in s.sent
    assert media.ami.actions == []  # type: ignore[attr-defined]


async def test_http_pause_validates_the_call_id(media: Media):
    from aiohttp.test_utils import make_mocked_request
    req = make_mocked_request("POST", "/recordings/x/pause", match_info={"call_id": "../etc", "op": "pause"})
    assert (await media._http_pause(req)).status == 400
    req = make_mocked_request("POST", "/", match_info={"call_id": "00000000000000aa", "op": "pause"})
    assert (await media._http_pause(req)).status == 404


async def test_resync_rebuilds_recordings_and_talking_agents(media: Media):
    """After a reconnect the snapshot's CC_REC_ID and bridge membership are the truth."""
    snap = Message((("Event", "CoreShowChannel"), ("Channel", ALICE_CHAN), ("BridgeId", "b1"),
                    ("ChanVariable", "CC_ROLE=agent"), ("ChanVariable", "CC_AGENT=alice"),
                    ("ChanVariable", "CC_CALL_ID=00000000000000aa"),
                    ("ChanVariable", "CC_REC_ID=20260101T000000-0123456789ab")))
    media.resynced([snap])
    assert media.agent_channels == {"alice": ALICE_CHAN}
    assert media.active["00000000000000aa"].rec_id == "20260101T000000-0123456789ab"


async def test_pause_dialled_from_the_desk_phone_acts_on_the_agents_recording(media: Media):
    """*65 dialled as a call (a second line, the caller on hold): the agent is known by the endpoint."""
    s = FakeSession(())
    await media.connected(s, media._calls()["00000000000000aa"])  # type: ignore[arg-type]
    line2 = FakeSession(("pause", "2001"), {"CHANNEL(endpoint)": "2001"}, channel="PJSIP/2001-00000031")
    await media.agi_record(line2)  # type: ignore[arg-type]
    assert line2.sent[0] == ("ANSWER",) and ("STREAM FILE", "beep", "") in line2.sent and line2.sent[-1] == ("HANGUP",)
    assert media.ami.actions == [("MixMonitorMute", {"Channel": ALICE_CHAN, "Direction": "both",  # type: ignore[attr-defined]
                                                      "State": "1"})]
    other = FakeSession(("resume", "2002"), {"CHANNEL(endpoint)": "2002"}, channel="PJSIP/2002-00000032")
    await media.agi_record(other)  # type: ignore[arg-type]
    assert ("STREAM FILE", "beeperr", "") in other.sent and len(media.ami.actions) == 1  # type: ignore[attr-defined]
