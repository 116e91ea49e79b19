"""The daemon's recording service (callcenter.features.recording.service, .handlers, .http) against fake
AGI and AMI peers, on a real database thread, task supervisor and bus."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from callcenter import config as config_mod
from callcenter.asterisk.agi_server import ChannelGone
from callcenter.events import Bus, RecordingEvent, SpyEvent
from callcenter.features.recording import files as rec
from callcenter.features.recording import handlers
from callcenter.features.recording.service import RecordingService
from callcenter.features.supervision import handlers as spy_handlers
from callcenter.features.supervision import model as sup
from callcenter.features.supervision.service import SupervisionService
from callcenter.persistence import DbThread
from callcenter.tasks import Supervisor
from callcenter.protocol.ami import Message
from tests.unit.media_fakes import ALICE_CHAN, Call, FakeAmi, FakeSession, Seen, Tasks, event, lab_cfg

CALL = "00000000000000aa"


@pytest.fixture
def cfg(tmp_path: Path) -> config_mod.Config:
    return lab_cfg(tmp_path)


@pytest.fixture
async def deps():
    db, tasks, bus = DbThread("test-db"), Tasks(), Bus()
    yield db, tasks, bus
    await tasks.close()
    db.close()
    assert tasks.fatal == []


@pytest.fixture
async def media(cfg: config_mod.Config, deps):
    db, tasks, bus = deps
    calls = {CALL: Call(CALL, "sales", "alice")}
    m = RecordingService(cfg, FakeAmi(), lambda: calls, db=db, tasks=tasks, bus=bus)  # type: ignore[arg-type]
    await m.start()
    yield m
    await tasks.settle()
    await m.close()


def write_legs(d: Path, rec_id: str) -> None:
    """What Asterisk wrote: one second of 500 Hz (caller) and 1400 Hz (agent)."""
    for leg, hz in zip(rec.leg_paths(d, rec_id), (500, 1400), strict=True):
        leg.parent.mkdir(parents=True, exist_ok=True)
        t = np.arange(8000) / 8000
        sf.write(str(leg), (8000 * np.sin(2 * np.pi * hz * t)).astype(np.int16), 8000, subtype="PCM_16")


async def test_recording_start_pause_resume_and_finalize(media: RecordingService, deps):
    """Policy all: MixMonitor on the agent leg with daemon-made paths; pause = mute + marker, resume =
    marker closed before the unmute; the Hangup event carrying CC_REC_ID finalizes the stereo file."""
    seen = Seen(deps[2])
    call = media.calls()[CALL]
    s = FakeSession(())
    await media.connected(s, call)  # type: ignore[arg-type]
    rec_id = s.vars["CC_REC_ID"]
    assert rec.REC_ID.fullmatch(rec_id)
    exec_ = next(c for c in s.sent if c[0] == "EXEC")
    assert exec_ == ("EXEC", "MixMonitor", "," + rec.mixmonitor_options(media.dir, rec_id))

    assert (await media.set_paused(CALL, True, "api"))[0] == "ok"
    assert (await media.set_paused(CALL, True, "api"))[0] == "already"
    assert (await media.set_paused(CALL, False, "phone"))[0] == "ok"
    assert (await media.set_paused("0000000000000bbb", True, "api"))[0] == "not_recording"
    mutes = [(n, h["Channel"], h["State"]) for n, h in media.ami.actions]  # type: ignore[attr-defined]
    assert mutes == [("MixMonitorMute", ALICE_CHAN, "1"), ("MixMonitorMute", ALICE_CHAN, "0")]
    row = await media.db.run(media.store.get, rec_id)  # type: ignore[union-attr]
    assert row is not None and len(row.pauses) == 1 and row.pauses[0][1] is not None

    write_legs(media.dir, rec_id)
    media.on_event(event("Hangup", ALICE_CHAN, CC_ROLE="agent", CC_AGENT="alice", CC_REC_ID=rec_id))
    assert media.active == {}
    await seen.wait(lambda e: isinstance(e, RecordingEvent) and e.rec_id == rec_id and e.kind == "finished")
    row = await media.db.run(media.store.get, rec_id)  # type: ignore[union-attr]
    assert row is not None and row.status == "done"
    assert sf.info(str(media.dir / row.path)).channels == 2
    assert [(e.kind, e.rec_id, e.call_id, e.agent) for e in seen.events] == [
        (k, rec_id, CALL, "alice") for k in ("started", "paused", "resumed", "finished")]


async def test_feature_code_from_another_phone_is_refused(media: RecordingService):
    """The record AGI acts only for the agent whose own phone the leg is on."""
    s = FakeSession(("pause",), {"CC_CALL_ID": CALL, "CC_AGENT": "alice", "CHANNEL(endpoint)": "2002"})
    await handlers.agi_record(media, s)  # type: ignore[arg-type]
    assert ("STREAM FILE", "beeperr", "") in s.sent
    assert media.ami.actions == []  # type: ignore[attr-defined]


async def test_resync_rebuilds_recordings(media: RecordingService):
    """After a reconnect the snapshot's CC_REC_ID is the truth about what is being recorded."""
    snap = Message((("Event", "CoreShowChannel"), ("Channel", ALICE_CHAN), ("BridgeId", "b1"),
                    ("ChanVariable", "CC_ROLE=agent"), ("ChanVariable", "CC_AGENT=alice"),
                    ("ChanVariable", f"CC_CALL_ID={CALL}"),
                    ("ChanVariable", "CC_REC_ID=20260101T000000-0123456789ab")))
    media.resynced([snap])
    assert media.active[CALL].rec_id == "20260101T000000-0123456789ab"


async def test_pause_dialled_from_the_desk_phone_acts_on_the_agents_recording(media: RecordingService):
    """*65 dialled as a call (a second line, the caller on hold): the agent is known by the endpoint."""
    s = FakeSession(())
    await media.connected(s, media.calls()[CALL])  # type: ignore[arg-type]
    line2 = FakeSession(("pause", "2001"), {"CHANNEL(endpoint)": "2001"}, channel="PJSIP/2001-00000031")
    await handlers.agi_record(media, line2)  # type: ignore[arg-type]
    assert line2.sent[0] == ("ANSWER",) and ("STREAM FILE", "beep", "") in line2.sent and line2.sent[-1] == ("HANGUP",)
    assert media.ami.actions == [("MixMonitorMute", {"Channel": ALICE_CHAN, "Direction": "both",  # type: ignore[attr-defined]
                                                      "State": "1"})]
    other = FakeSession(("resume", "2002"), {"CHANNEL(endpoint)": "2002"}, channel="PJSIP/2002-00000032")
    await handlers.agi_record(media, other)  # type: ignore[arg-type]
    assert ("STREAM FILE", "beeperr", "") in other.sent and len(media.ami.actions) == 1  # type: ignore[attr-defined]


async def test_hangup_without_the_variable_still_ends_the_recording(media: RecordingService, deps):
    """A Hangup of the recorded channel that lacks CC_REC_ID ends and finalizes that recording too."""
    seen = Seen(deps[2])
    s = FakeSession(())
    await media.connected(s, media.calls()[CALL])  # type: ignore[arg-type]
    rec_id = s.vars["CC_REC_ID"]
    write_legs(media.dir, rec_id)
    media.on_event(event("Hangup", ALICE_CHAN, CC_ROLE="agent", CC_AGENT="alice"))
    assert media.active == {}
    await seen.wait(lambda e: isinstance(e, RecordingEvent) and e.rec_id == rec_id and e.kind == "finished")


async def test_zombie_hangup_is_ignored(media: RecordingService):
    """The <ZOMBIE> Hangup of a masquerade never ends the real channel's recording."""
    s = FakeSession(())
    await media.connected(s, media.calls()[CALL])  # type: ignore[arg-type]
    media.on_event(event("Hangup", ALICE_CHAN + "<ZOMBIE>", CC_REC_ID=s.vars["CC_REC_ID"]))
    assert list(media.active) == [CALL]


async def test_channel_gone_right_after_mixmonitor_leaves_nothing_behind(media: RecordingService, deps):
    """The agent hangs up between MixMonitor and SET VARIABLE: no active entry stays, and what was written
    is finalized (here: nothing, so quarantined) instead of waiting for the next resync."""
    seen = Seen(deps[2])
    media.legs_appear_s = 0.0
    s = FakeSession((), gone_on="SET VARIABLE")
    with pytest.raises(ChannelGone):
        await media.connected(s, media.calls()[CALL])  # type: ignore[arg-type]
    assert media.active == {}
    ev = await seen.wait(lambda e: isinstance(e, RecordingEvent) and e.kind == "quarantined")
    row = await media.db.run(media.store.get, ev.rec_id)  # type: ignore[union-attr]
    assert row is not None and row.status == "quarantined" and row.note.endswith("-caller.wav missing")


async def test_purge_publishes_each_deleted_recording(media: RecordingService, deps):
    """A recording past retention is deleted by purge_now and published as purged."""
    seen = Seen(deps[2])
    old = rec.new_rec_id(media.clock() - 400 * 86400)
    store = media.store
    assert store is not None

    def old_quarantined() -> None:
        store.start(old, "c-old", "alice", "sales", rec.rec_time(old))
        store.finish(old, status="quarantined", path=None, sha256=None, duration_s=None, ended_at=None)

    await media.db.run(old_quarantined)
    rows = await media.purge_now()
    assert [r.rec_id for r in rows] == [old]
    assert [(e.kind, e.rec_id, e.call_id) for e in seen.events] == [("purged", old, "c-old")]


async def test_maps_return_to_idle_after_many_calls(cfg: config_mod.Config, deps):
    """2,000 synthetic calls recorded, paused, spied on (some with wrong PINs) and hung up (half the Hangups
    without CC_REC_ID): every per-call map of both services is empty again and only the purge loop runs."""
    db, tasks, bus = deps
    seen = Seen(bus)
    now = [1_786_000_000.0]
    n = 2000
    calls = {f"{i:016x}": Call(f"{i:016x}", "sales", "alice") for i in range(n)}
    recording = RecordingService(cfg, FakeAmi(), lambda: calls, db=db, tasks=tasks, bus=bus,  # type: ignore[arg-type]
                                 clock=lambda: now[0])
    supervision = SupervisionService(cfg, db=db, bus=bus, clock=lambda: now[0])
    recording.legs_appear_s = 0.0
    await recording.start()
    await supervision.start()
    channels = {}
    for i, call_id in enumerate(calls):
        channels[call_id] = chan = f"PJSIP/2001-{i:08x}"
        s = FakeSession((), channel=chan)
        await recording.connected(s, calls[call_id])  # type: ignore[arg-type]
        supervision.on_event(event("BridgeEnter", chan, CC_ROLE="agent", CC_AGENT="alice", CC_CALL_ID=call_id))
        if i % 50 == 0:
            assert (await recording.set_paused(call_id, True, "api"))[0] == "ok"
            spy = FakeSession(("listen", "2001", "2004"), pin="1111" if i % 100 == 50 else "4321")
            await spy_handlers.agi_spy(supervision, spy)  # type: ignore[arg-type]
    assert len(recording.active) == n and supervision.agent_channels == {"alice": channels[call_id]}
    assert supervision.lockout.failures or supervision.lockout.locked_until
    for i, call_id in enumerate(calls):
        a = recording.active[call_id]
        extra = {"CC_REC_ID": a.rec_id} if i % 2 else {}
        recording.on_event(event("Hangup", channels[call_id], CC_ROLE="agent", CC_AGENT="alice", **extra))
        supervision.on_event(event("Hangup", channels[call_id], CC_ROLE="agent", CC_AGENT="alice", **extra))
    await tasks.settle()
    assert sum(1 for e in seen.events if isinstance(e, RecordingEvent) and e.kind == "quarantined") == n
    assert recording.active == {} and recording.finalizing == set()
    assert supervision.agent_channels == {}
    now[0] += sup.LOCKOUT_S + sup.PIN_WINDOW_S
    supervision.on_event(event("Hangup", "PJSIP/2002-00000001"))
    assert dict(supervision.lockout.failures) == {} and dict(supervision.lockout.locked_until) == {}
    assert len(tasks) == 1 and tasks.alive("recording.purge")
    assert any(isinstance(e, SpyEvent) and e.kind == "denied" for e in seen.events)
    await supervision.close()
    await recording.close()


class _Both:
    """Recording and supervision as the daemon builds them: one database thread, supervisor and bus."""

    def __init__(self, cfg: config_mod.Config, calls: dict) -> None:
        self.db, self.tasks, self.bus = DbThread("test-db"), Supervisor(lambda n, e: None), Bus()
        self.recording = RecordingService(cfg, FakeAmi(), lambda: calls, db=self.db, tasks=self.tasks,  # type: ignore[arg-type]
                                          bus=self.bus)
        self.supervision = SupervisionService(cfg, db=self.db, bus=self.bus)

    async def start(self) -> None:
        await self.recording.start()
        await self.supervision.start()

    def on_event(self, msg) -> None:
        self.recording.on_event(msg)
        self.supervision.on_event(msg)

    def reconfigure(self, cfg: config_mod.Config) -> None:
        self.recording.reconfigure(cfg)
        self.supervision.reconfigure(cfg)

    async def close(self) -> None:
        await self.tasks.close()
        await self.recording.close()
        await self.supervision.close()
        self.db.close()


async def test_recording_and_supervision_wired_as_the_daemon_does(cfg: config_mod.Config):
    """Both AGI scripts, both services fed from the same AMI events."""
    calls = {CALL: Call(CALL, "sales", "alice")}
    m = _Both(cfg, calls)
    await m.start()
    try:
        assert set(m.recording.agi_routes()) | set(m.supervision.agi_routes()) == {"record", "spy"}
        m.recording.campaign_of = lambda call_id: "spring"
        assert m.recording.campaign_of(CALL) == "spring"
        m.on_event(event("BridgeEnter", ALICE_CHAN, CC_ROLE="agent", CC_AGENT="alice"))
        assert m.supervision.agent_channels == {"alice": ALICE_CHAN}
        s = FakeSession(())
        await m.recording.connected(s, calls[CALL])  # type: ignore[arg-type]
        assert list(m.recording.active) == [CALL]
    finally:
        await m.close()


async def test_reload_reconfigures_both_services(cfg: config_mod.Config, tmp_path: Path):
    """The daemon's reload reconfigures both: the recording policy and the supervisors change at once,
    the recordings directory stays, and a removed agent's talking channel is forgotten."""
    import copy

    import yaml

    from tests.unit.media_fakes import ROOT
    calls = {CALL: Call(CALL, "sales", "alice")}
    m = _Both(cfg, calls)
    await m.start()
    try:
        m.on_event(event("BridgeEnter", ALICE_CHAN, CC_ROLE="agent", CC_AGENT="alice"))
        data = copy.deepcopy(yaml.safe_load((ROOT / "tests" / "asterisk" / "lab.yaml").read_text()))
        data["daemon"]["database"] = cfg.daemon.database
        data["recordings"] = {"dir": str(tmp_path / "elsewhere"), "default": {"mode": "none"}}
        data["queues"]["sales"]["recording"] = {"mode": "none"}
        del data["agents"]["alice"]
        data["access"]["users"].pop("alice", None)  # the user of a removed agent goes with it
        data["queues"]["sales"]["members"] = ["bob"]
        new = config_mod.parse(data)
        old_dir = m.recording.dir
        m.reconfigure(new)
        assert m.recording.cfg is new and m.supervision.cfg is new
        assert m.recording.dir == old_dir
        assert m.supervision.agent_channels == {}
        calls[CALL] = Call(CALL, "sales", "bob")
        s = FakeSession(())
        await m.recording.connected(s, calls[CALL])  # type: ignore[arg-type]
        assert m.recording.active == {} and not any(c[0] == "EXEC" for c in s.sent)
    finally:
        await m.close()
