"""Recording and supervision against the real Asterisk, measured on real audio.

Audio in and out: pjsua2 phones can neither play nor record, so every party's voice is a known
tone Asterisk generates and every party's ears are a recording Asterisk makes (test dialplan
``LAB_MEDIA_DIALPLAN`` in conftest):

- the caller is a Local channel whose far half plays its tone into the call and records what
  the caller hears;
- a desk phone (agent, supervisor) calls a *tap* extension that plays its tone and records what
  the phone relays back; the phone's conference bridge connects the tap call and its real call
  both ways, so the tone goes out on the real call and what it hears there comes back.

Tones: caller 500 Hz, agent 1400 Hz, supervisor 1900 Hz. Levels are band levels in dB relative
to a full-scale sine (dBFS), over windows in the middle of each phase.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import pwd
import re
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from callcenter.features.recording import files as rec
from callcenter.features.recording.store import RecordingRow, RecordingStore
from callcenter.features.supervision.store import SpyAuditStore
from callcenter.lab.asterisk import Lab
from callcenter.lab.phones import _pj

from tests.asterisk.conftest import LAB_CONFIG, LAB_EXTRA, SIP, DaemonProc, Floor, Witness

pytestmark = pytest.mark.asterisk

CALLER_HZ, AGENT_HZ, SUPERVISOR_HZ = 500, 1400, 1900
PRESENT_DB = -35.0  # a tone a party sends arrives well above this ...
ABSENT_DB = -50.0  # ... and one it must not hear stays below this
SAM_PIN = "4321"


# --------------------------------------------------------------------------- audio measurements

def band_db(x: np.ndarray, hz: float, width: float = 30.0) -> float:
    """Level of ``x`` (float, full scale 1.0) within ``hz`` +- ``width``, in dB re a full-scale sine."""
    if len(x) < 256:
        return -120.0
    w = np.hanning(len(x))
    spec = np.fft.rfft(x * w)
    f = np.fft.rfftfreq(len(x), 1 / 8000)
    p = np.sum(np.abs(spec[(f > hz - width) & (f < hz + width)]) ** 2)
    rms = np.sqrt(2 * p / (len(x) * np.sum(w ** 2)))
    return float(20 * np.log10(max(rms / np.sqrt(0.5), 1e-6)))


def rms_db(x: np.ndarray) -> float:
    return float(20 * np.log10(max(np.sqrt(np.mean(x ** 2)) / np.sqrt(0.5), 1e-6))) if len(x) else -120.0


def read_mono(path: Path) -> tuple[np.ndarray, int]:
    x, fs = sf.read(str(path), dtype="float64")
    return (x if x.ndim == 1 else x[:, 0]), fs


def _zero_runs(x: np.ndarray, fs: int, min_s: float = 0.5) -> list[tuple[float, float]]:
    """Spans (s) where both channels are exactly zero (a muted MixMonitor writes zeros)."""
    z = np.r_[0, np.all(x == 0, axis=1).astype(np.int8), 0]
    d = np.diff(z)
    return [(round(a / fs, 2), round(b / fs, 2)) for a, b in zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1))
            if b - a >= min_s * fs]


def window(x: np.ndarray, fs: int, t0: float, t1: float) -> np.ndarray:
    return x[max(int(t0 * fs), 0):max(int(t1 * fs), 0)]


# --------------------------------------------------------------------------- the lab's files

def _lab() -> Lab:
    return Lab.default()


def _spool() -> tuple[Path, str]:
    """Asterisk's spool directory: (as this process sees it, as Asterisk sees it)."""
    lab = _lab()
    if lab.chroot:
        return lab.root / "var/spool/asterisk", "/var/spool/asterisk"
    return lab.state / "spool", str(lab.state / "spool")


def _asterisk_ids() -> tuple[int, int]:
    lab = _lab()
    if not lab.chroot:
        pw = pwd.getpwnam("asterisk")
        return pw.pw_uid, pw.pw_gid
    for line in (lab.root / "etc/passwd").read_text().splitlines():
        f = line.split(":")
        if f[0] == "asterisk":
            return int(f[2]), int(f[3])
    raise AssertionError("no asterisk user in the lab root")


def heard(test_id: str, timeout: float = 10.0) -> Path:
    """A party's 'ears' (cc-test/<id>.wav in the monitor spool), once MixMonitor has closed it."""
    p = _spool()[0] / "monitor" / "cc-test" / f"{test_id}.wav"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if p.exists() and not rec.inspect_leg(p).needs_repair:
            return p
        time.sleep(0.1)
    raise AssertionError(f"{p} not closed within {timeout}s")


@pytest.fixture
def media_dirs(lab: dict[str, object]) -> Iterator[tuple[Path, str]]:
    """A fresh recordings directory inside Asterisk's spool, writable by Asterisk: (daemon's view,
    Asterisk's view)."""
    outside, inside = _spool()
    name = f"cc-rec/{uuid.uuid4().hex[:12]}"
    d = outside / name
    d.mkdir(parents=True)
    uid, gid = _asterisk_ids()
    for p in (d, d.parent):
        os.chown(p, uid, gid)
    yield d, f"{inside}/{name}"


@pytest.fixture
def recording_daemon(daemon_config: Callable[..., Path], media_dirs: tuple[Path, str]) -> Callable[..., DaemonProc]:
    started: list[DaemonProc] = []

    def start(mode: str = "all") -> DaemonProc:
        d, inside = media_dirs
        path = daemon_config(recordings={"dir": str(d), "asterisk_dir": inside, "retention_days": 30,
                                         "default": {"mode": mode}})
        proc = DaemonProc(path).start()
        started.append(proc)
        proc.wait_for("ami.resynced", 20)
        return proc

    yield start
    for p in started:
        p.stop()


# --------------------------------------------------------------------------- parties

class Parties:
    """Callers as Local channels, and taps on desk phones (see the module doc)."""

    def __init__(self, witness: Witness, floor: Floor):
        self.witness = witness
        self.floor = floor
        self.callers: list[str] = []  # uniqueids of the callers' Local ;1 halves

    async def caller(self, tone: int | None, *, did: str = "5551001", context: str = "cc-trunk-pstn",
                     number: str = "5550123", name: str = "Tone Caller") -> tuple[str, str, float]:
        """A caller dialling ``did`` and sending ``tone`` Hz; returns (uniqueid, ears id, start time)."""
        ears = "c" + uuid.uuid4().hex[:10]
        uid = f"cctest-{ears}"
        headers = {"Action": "Originate", "Channel": "Local/party@cc-test-party/n", "Context": context,
                   "Exten": did if context == "cc-trunk-pstn" else "s", "Priority": "1",
                   "CallerID": f'"{name}" <{number}>', "ChannelId": uid, "OtherChannelId": uid + "-2",
                   "Async": "true", "Variable": [f"_CC_TEST_ID={ears}", f"_CC_TEST_TONE={tone or ''}"]}
        t = time.time()
        r = await self.witness.action(headers)
        first = dict(r[0] if isinstance(r, list) else r)
        assert first.get("Response") == "Success", first
        self.callers.append(uid)
        return uid, ears, t

    async def channel(self, uniqueid: str) -> dict[str, str] | None:
        return next((c for c in await self.witness.channels() if c.get("Uniqueid") == uniqueid), None)

    async def hangup(self, uniqueid: str) -> None:
        ch = await self.channel(uniqueid)
        if ch is not None:
            await self.witness.action({"Action": "Hangup", "Channel": ch["Channel"]})

    async def tap(self, acc: object, tone: int) -> tuple[object, str, float]:
        """``acc`` calls a tap sending ``tone`` Hz (0: silence) to it; returns (handle, ears id, start)."""
        ears = str(uuid.uuid4().int)[:10]
        h = acc.dial(f"sip:tap{tone:04d}{ears}@{SIP}")
        await self.floor.wait(lambda: h.state == "CONFIRMED" and h.media, 10, "the tap to answer")
        return h, ears, time.time()

    @staticmethod
    def relay(a: object, b: object) -> None:
        """Connect two calls of one phone both ways through its conference bridge."""
        ma, mb = a.call.getAudioMedia(-1), b.call.getAudioMedia(-1)
        _pj(lambda: ma.startTransmit(mb))
        _pj(lambda: mb.startTransmit(ma))

    async def close(self) -> None:
        for uid in self.callers:
            with contextlib.suppress(Exception):
                await self.hangup(uid)


@pytest.fixture
async def parties(witness: Witness, floor: Floor) -> object:
    p = Parties(witness, floor)
    yield p
    await p.close()


async def _talking(floor: Floor, acc: object) -> object:
    """The agent phone's answered incoming call (the agent leg)."""
    await floor.wait(lambda: any(h.state == "CONFIRMED" and h.media and not h.local.startswith("<sip:tap")
                                 and "tap" not in h.remote for h in acc.calls[1:]), 15, "the agent leg to be up")
    return next(h for h in reversed(acc.calls) if h.state == "CONFIRMED" and "tap" not in h.remote)


EAST_TOKEN = "east-lab-token"  # access.tokens.east in lab.yaml: scopes read, agent, supervise on team east


def _post(daemon: DaemonProc, path: str) -> tuple[int, dict[str, object]]:
    req = urllib.request.Request(f"http://127.0.0.1:{daemon.cfg.http.port}{path}", data=b"", method="POST",
                                 headers={"Authorization": f"Bearer {EAST_TOKEN}"})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _cli(daemon: DaemonProc, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "callcenter", "recordings", "--config", str(daemon.config_path),
                           *args], capture_output=True, text=True, timeout=30, check=False,
                          env={**os.environ, "CALLCENTER_TOKEN": EAST_TOKEN})


def _row(daemon: DaemonProc, rec_id: str) -> RecordingRow:
    with RecordingStore(daemon.cfg.daemon.database) as st:
        row = st.get(rec_id)
    assert row is not None
    return row


# --------------------------------------------------------------------------- recording

async def test_stereo_recording_caller_left_agent_right_with_pauses(
        recording_daemon: Callable[..., DaemonProc], floor: Floor, parties: Parties,
        media_dirs: tuple[Path, str]) -> None:
    """A recorded call is one stereo WAV, caller (500 Hz) left and agent (1400 Hz) right; pauses by
    the agent's *65/*66 mid-call and by the CLI/HTTP API hold no audio and are in the metadata."""
    daemon = recording_daemon("all")
    alice = await floor.login(daemon, "alice")
    mark = daemon.mark()
    uid, _ears, _t = await parties.caller(CALLER_HZ)
    started = await daemon.until("recording.started", 20, after=mark, agent="alice")
    call_id, rec_id = str(started["call_id"]), str(started["rec_id"])
    assert started["why"] == "policy:all"
    t_rec = _row(daemon, rec_id).started_at
    await daemon.until("call.bridged", 10, after=mark, call_id=call_id)
    leg = await _talking(floor, alice)
    tap, _agent_ears, _ = await parties.tap(alice, AGENT_HZ)
    parties.relay(leg, tap)
    t_relay = time.time()

    await asyncio.sleep(3.0)
    m = daemon.mark()
    leg.dtmf("*65")  # mid-call, from the agent's phone
    await daemon.until("recording.paused", 10, after=m, call_id=call_id, source="phone")
    await asyncio.sleep(3.0)
    m = daemon.mark()
    leg.dtmf("*66")
    await daemon.until("recording.resumed", 10, after=m, call_id=call_id, source="phone")
    await asyncio.sleep(2.5)
    m = daemon.mark()
    r = await asyncio.to_thread(_cli, daemon, "pause", call_id)  # the CLI, through the daemon's HTTP API
    assert r.returncode == 0, r.stderr
    await daemon.until("recording.paused", 10, after=m, call_id=call_id, source="api")
    status, body = await asyncio.to_thread(_post, daemon, f"/api/v1/calls/{call_id}/recording/pause")
    assert status == 409 and body["error"] == "already"  # no second marker
    await asyncio.sleep(2.5)
    status, body = await asyncio.to_thread(_post, daemon, f"/api/v1/calls/{call_id}/recording/resume")
    assert status == 200 and body["paused"] is False and body["rec_id"] == rec_id
    await asyncio.sleep(2.5)
    m = daemon.mark()
    await parties.hangup(uid)
    fin = await daemon.until("recording.finalized", 20, after=m, rec_id=rec_id)

    row = _row(daemon, rec_id)
    assert row.status == "done" and not row.truncated and row.call_id == call_id
    assert row.agent == "alice" and row.queue == "sales"
    path = media_dirs[0] / row.path
    assert str(path) == fin["path"] and path.exists()
    assert rec.verify(RecordingStore(daemon.cfg.daemon.database), media_dirs[0], rec_id)
    info = sf.info(str(path))
    assert (info.channels, info.samplerate, info.subtype) == (2, 8000, "PCM_16")
    x, fs = sf.read(str(path), dtype="float64")
    left, right = x[:, 0], x[:, 1]

    assert len(row.pauses) == 2, row.pauses
    (p0, p1), (q0, q1) = row.pauses
    assert 2.5 < p1 - p0 < 3.8 and 2.0 < q1 - q0 < 3.4, row.pauses
    spans = [(t_relay - t_rec + 0.5, p0 - 0.3), (p1 + 0.3, q0 - 0.3), (q1 + 0.3, row.duration_s - 0.5)]
    levels = []
    for a, b in spans:  # talking: each side carries its own party only
        lw, rw = window(left, fs, a, b), window(right, fs, a, b)
        lv = {"span": (round(a, 2), round(b, 2)), "L500": round(band_db(lw, CALLER_HZ), 1),
              "L1400": round(band_db(lw, AGENT_HZ), 1), "R500": round(band_db(rw, CALLER_HZ), 1),
              "R1400": round(band_db(rw, AGENT_HZ), 1)}
        levels.append(lv)
        assert lv["L500"] > PRESENT_DB and lv["R1400"] > PRESENT_DB, levels
        assert lv["L1400"] < ABSENT_DB and lv["R500"] < ABSENT_DB, levels
    for a, b in ((p0, p1), (q0, q1)):  # paused: nothing at all in either channel
        seg = x[int((a + 0.05) * fs):int((b - 0.05) * fs)]
        assert len(seg) > fs and rms_db(seg[:, 0]) < -80 and rms_db(seg[:, 1]) < -80, (a, b, rms_db(seg[:, 0]))
    print("\nstereo levels (dB re full-scale sine):", json.dumps(levels))
    print("pause markers:", row.pauses, "digital-silence runs in the file:", _zero_runs(x, fs))


async def test_on_demand_policy_records_only_after_star_67(recording_daemon: Callable[..., DaemonProc],
                                                           floor: Floor, parties: Parties) -> None:
    """With policy on_demand nothing is recorded at the bridge; the agent's *67 mid-call starts it."""
    daemon = recording_daemon("on_demand")
    alice = await floor.login(daemon, "alice")
    mark = daemon.mark()
    uid, _ears, _t = await parties.caller(CALLER_HZ)
    ev = await daemon.until("recording.not_started", 20, after=mark, agent="alice")
    assert ev["policy"] == "on_demand"
    call_id = str(ev["call_id"])
    leg = await _talking(floor, alice)
    await asyncio.sleep(2.0)
    status, body = await asyncio.to_thread(_post, daemon, f"/api/v1/calls/{call_id}/recording/pause")
    assert status == 404 and body["error"] == "not_recording"
    m = daemon.mark()
    t_press = time.time()
    leg.dtmf("*67")
    started = await daemon.until("recording.started", 10, after=m, call_id=call_id)
    assert started["why"] == "on_demand"
    await asyncio.sleep(2.0)
    m = daemon.mark()
    await parties.hangup(uid)
    fin = await daemon.until("recording.finalized", 20, after=m, rec_id=started["rec_id"])
    row = _row(daemon, str(started["rec_id"]))
    assert row.status == "done" and row.started_at >= t_press and 1.5 < row.duration_s < 3.5, row
    x, fs = sf.read(str(fin["path"]), dtype="float64")
    assert band_db(x[int(0.3 * fs):, 0], CALLER_HZ) > PRESENT_DB


async def test_retention_purge_runs_in_the_daemon_and_says_what_it_deleted(
        recording_daemon: Callable[..., DaemonProc], media_dirs: tuple[Path, str], tmp_path: Path) -> None:
    """At start-up (then daily) the daemon deletes recordings older than retention_days and logs each."""
    d = media_dirs[0]
    db = tmp_path / "callcenter.sqlite3"  # the daemon_config fixture's database
    old_at, new_at = time.time() - 40 * 86400, time.time() - 5 * 86400
    ids = []
    with RecordingStore(db) as st:
        for at in (old_at, new_at):
            rid = rec.new_rec_id(at)
            ids.append(rid)
            st.start(rid, "0123456789abcdef", "alice", "sales", at)
            for leg in rec.leg_paths(d, rid):
                leg.parent.mkdir(parents=True, exist_ok=True)
                sf.write(str(leg), np.zeros(800, dtype=np.int16), 8000, subtype="PCM_16")
            assert rec.finalize(st, d, rid).status == "done"
    daemon = recording_daemon("all")
    ev = daemon.wait_for("recording.purged", 10)
    assert ev["rec_id"] == ids[0] and ev["path"] == str(rec.final_path(d, ids[0]))
    assert daemon.wait_for("recordings.purge", 10)["deleted"] == 1
    assert not rec.final_path(d, ids[0]).exists() and rec.final_path(d, ids[1]).exists()
    assert _row(daemon, ids[0]).status == "deleted" and _row(daemon, ids[1]).status == "done"


# --------------------------------------------------------------------------- supervision

async def _supervisor(floor: Floor) -> object:
    """Supervisor sam's desk phone (2004), registered once per session."""
    ext = "2004"
    cache = floor.phones.__dict__.setdefault("desk", {})
    acc = cache.get(ext)
    if acc is None:
        acc = cache[ext] = floor.phones.agent(ext, floor.cfg.phones[ext].secret)
    floor.accounts.append(acc)
    await floor.wait(lambda: acc.registered, 10, f"{ext} registered")
    return acc


async def _spy_call(floor: Floor, acc: object, code: str, pin: str) -> object:
    """Dial ``code`` from ``acc``, then key in the PIN while the prompt plays."""
    h = acc.dial(f"sip:{code}@{SIP}")
    await floor.wait(lambda: h.state == "CONFIRMED" and h.media, 10, f"{code} to answer")
    await asyncio.sleep(0.8)
    h.dtmf(pin + "#")
    return h


class SpyEvents:
    """ChanSpyStart events as Asterisk reports them (panoramisk witness)."""

    def __init__(self, witness: Witness):
        self.starts: list[dict[str, str]] = []
        witness.m.register_event("ChanSpyStart", lambda _m, msg: self.starts.append(dict(msg)))


async def _no_chanspy_channel(witness: Witness) -> None:
    chans = await witness.channels()
    assert not [c for c in chans if c.get("Application") == "ChanSpy"], chans


async def test_listen_whisper_barge_by_code_and_dtmf(recording_daemon: Callable[..., DaemonProc], floor: Floor,
                                                    parties: Parties, witness: Witness) -> None:
    """Sam (team east) listens to alice with *71, then switches by DTMF to whisper (5), barge (6) and
    back to listen (4). With sam sending 1900 Hz: in listen he hears caller (500) and agent (1400)
    and neither hears him; in whisper only alice hears him; in barge both do."""
    daemon = recording_daemon("all")
    spies = SpyEvents(witness)
    alice = await floor.login(daemon, "alice")
    sam = await _supervisor(floor)
    mark = daemon.mark()
    uid, caller_ears, t_caller = await parties.caller(CALLER_HZ)
    started = await daemon.until("recording.started", 20, after=mark, agent="alice")
    call_id = str(started["call_id"])
    await daemon.until("call.bridged", 10, after=mark, call_id=call_id)
    leg = await _talking(floor, alice)
    atap, agent_ears, t_agent = await parties.tap(alice, AGENT_HZ)
    parties.relay(leg, atap)
    agent_chan = next(c["Channel"] for c in await witness.channels()
                      if c["Channel"].startswith("PJSIP/2001-") and c.get("BridgeId"))

    stap, sam_ears, t_sam = await parties.tap(sam, SUPERVISOR_HZ)
    m = daemon.mark()
    spy = await _spy_call(floor, sam, f"*71{floor.cfg.agents['alice'].phone}", SAM_PIN)
    ok = await daemon.until("spy.allowed", 15, after=m, supervisor="sam", agent="alice")
    assert ok["mode"] == "listen" and ok["channel"] == agent_chan
    await daemon.until("spy.started", 10, after=m)
    parties.relay(spy, stap)
    phases: list[tuple[str, float]] = [("listen", time.time())]
    for digit, mode in (("5", "whisper"), ("6", "barge"), ("4", "listen")):
        await asyncio.sleep(3.5)
        spy.dtmf(digit)
        phases.append((mode, time.time()))
    await asyncio.sleep(3.5)
    phases.append(("end", time.time()))
    spy.hangup()
    await floor.wait(lambda: spy.ended, 10, "the spy call to end")
    for h in (stap, atap):
        h.hangup()
    await parties.hangup(uid)
    await daemon.until("recording.finalized", 20, after=m)

    assert [s["SpyeeChannel"] for s in spies.starts] == [agent_chan], spies.starts  # exactly alice's channel
    with SpyAuditStore(daemon.cfg.daemon.database) as st:
        audits = st.audits()
    assert [(a.supervisor, a.supervisor_phone, a.agent, a.target_ext, a.mode, a.outcome, a.reason)
            for a in audits] == [("sam", "2004", "alice", "2001", "listen", "allowed", "ok")]

    ears = {"caller": (read_mono(heard(caller_ears)), t_caller), "agent": (read_mono(heard(agent_ears)), t_agent),
            "sam": (read_mono(heard(sam_ears)), t_sam)}
    table = []
    for (mode, t0), (_next, t1) in itertools.pairwise(phases):
        row: dict[str, object] = {"mode": mode}
        for who, ((x, fs), start) in ears.items():
            w = window(x, fs, t0 - start + 1.0, t1 - start - 0.4)
            assert len(w) > fs, (who, mode, len(w))
            row[who] = {hz: round(band_db(w, hz), 1) for hz in (CALLER_HZ, AGENT_HZ, SUPERVISOR_HZ)}
        table.append(row)
    print("\nwhat each party hears (dB re full-scale sine):\n" + "\n".join(json.dumps(r) for r in table))
    for r in table:
        mode = r["mode"]
        caller, agent, samh = r["caller"], r["agent"], r["sam"]
        assert samh[CALLER_HZ] > PRESENT_DB and samh[AGENT_HZ] > PRESENT_DB, r  # sam hears both sides
        assert caller[AGENT_HZ] > PRESENT_DB and agent[CALLER_HZ] > PRESENT_DB, r  # the call goes on
        if mode == "listen":
            assert caller[SUPERVISOR_HZ] < ABSENT_DB and agent[SUPERVISOR_HZ] < ABSENT_DB, r
        elif mode == "whisper":
            assert agent[SUPERVISOR_HZ] > PRESENT_DB and caller[SUPERVISOR_HZ] < ABSENT_DB, r
        else:
            assert agent[SUPERVISOR_HZ] > PRESENT_DB and caller[SUPERVISOR_HZ] > PRESENT_DB, r


async def test_unauthorised_supervisor_is_denied_audited_and_never_spies(
        recording_daemon: Callable[..., DaemonProc], floor: Floor, parties: Parties, witness: Witness) -> None:
    """A wrong PIN, and the right PIN for an agent outside sam's teams (carol, west), are denied and
    audited; no ChanSpy ever runs (no spy channel, no ChanSpyStart in AMI)."""
    daemon = recording_daemon("none")
    spies = SpyEvents(witness)
    await floor.login(daemon, "alice")
    await floor.login(daemon, "carol")
    sam = await _supervisor(floor)
    mark = daemon.mark()
    await parties.caller(None, did="5551001")
    await parties.caller(None, did="5551002")
    await daemon.until("call.bridged", 20, after=mark, agent="alice")
    await daemon.until("call.bridged", 20, after=mark, agent="carol")

    attempts = [(f"*71{floor.cfg.agents['alice'].phone}", "1111", "bad_pin", None),
                (f"*73{floor.cfg.agents['carol'].phone}", SAM_PIN, "not_in_team", "carol")]
    for code, pin, reason, agent in attempts:
        m = daemon.mark()
        h = await _spy_call(floor, sam, code, pin)
        ev = await daemon.until("spy.denied", 15, after=m, reason=reason)
        assert ev["supervisor"] == "sam" and ev["agent"] == agent
        await _no_chanspy_channel(witness)  # while the denied call is still up ...
        await floor.wait(lambda h=h: h.ended, 15, "the denied call to be hung up")
        await _no_chanspy_channel(witness)  # ... and after
    await asyncio.sleep(0.5)
    assert spies.starts == []
    with SpyAuditStore(daemon.cfg.daemon.database) as st:
        audits = sorted(st.audits(), key=lambda a: a.at)
    assert [(a.supervisor, a.supervisor_phone, a.agent, a.target_ext, a.mode, a.outcome, a.reason)
            for a in audits] == [("sam", "2004", None, "2001", "listen", "denied", "bad_pin"),
                                 ("sam", "2004", "carol", "2003", "barge", "denied", "not_in_team")]


# --------------------------------------------------------------------------- hostile input, crashes

async def test_hostile_caller_id_never_reaches_a_path_or_command(
        recording_daemon: Callable[..., DaemonProc], floor: Floor, parties: Parties,
        media_dirs: tuple[Path, str], witness: Witness) -> None:
    """Caller ID with '../', ';', '$(...)' and a newline: the call is recorded under the daemon's own
    id, no file or directory is named after it, nothing it names is created or run."""
    pwned = [Path("/tmp/cc-pwned"), _lab().root / "tmp/cc-pwned"]
    for p in pwned:
        p.unlink(missing_ok=True)
    daemon = recording_daemon("all")
    await floor.login(daemon, "alice")
    mark = daemon.mark()
    uid, _ears, _t = await parties.caller(CALLER_HZ, context="cc-test-hostile")
    started = await daemon.until("recording.started", 20, after=mark, agent="alice")
    call_id, rec_id = str(started["call_id"]), str(started["rec_id"])
    assert rec.REC_ID.fullmatch(rec_id) and re.fullmatch(r"[0-9a-f]{16}", call_id)
    caller = await parties.channel(uid)
    assert caller is not None and "\n" in caller["CallerIDName"] + caller["CallerIDNum"]  # it really is hostile
    agent_leg = next(c for c in await witness.channels() if c["Channel"].startswith("PJSIP/2001-"))
    assert not re.search(r"[\n;$/()]", agent_leg["ConnectedLineName"] + agent_leg["ConnectedLineNum"]), agent_leg
    await asyncio.sleep(1.5)
    m = daemon.mark()
    await parties.hangup(uid)
    fin = await daemon.until("recording.finalized", 20, after=m, rec_id=rec_id)
    d = media_dirs[0]
    assert fin["path"] == str(rec.final_path(d, rec_id)) and Path(str(fin["path"])).exists()
    names = [p.relative_to(d).as_posix() for p in d.rglob("*")]
    allowed = re.compile(r"\.partial|\d{4}|\d{4}/\d{2}|\d{4}/\d{2}/\d{2}|\d{4}/\d{2}/\d{2}/" + rec.REC_ID.pattern + r"\.wav")
    assert all(allowed.fullmatch(n) for n in names), names
    assert not any(p.exists() for p in pwned)
    journal = daemon.call_record(call_id)
    assert "$(touch" in journal["caller_name"]  # kept as data, where it belongs
    row = _row(daemon, rec_id)
    assert row.status == "done" and row.call_id == call_id and row.path == rec.final_path(Path(), rec_id).as_posix()


def _kill_asterisk() -> None:
    """SIGKILL the lab Asterisk (and reap it if this process started it)."""
    lab = _lab()
    pid = lab.pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
    deadline = time.monotonic() + 10
    while lab.pid() is not None and time.monotonic() < deadline:
        time.sleep(0.1)


async def test_killing_asterisk_mid_recording_leaves_no_silently_truncated_file(
        recording_daemon: Callable[..., DaemonProc], floor: Floor, parties: Parties,
        media_dirs: tuple[Path, str]) -> None:
    """Two recorded calls; Asterisk is SIGKILLed (and the daemon with it). The legs are left with
    headers that were never completed. After both restart, recovery repairs each recording from
    the audio actually written, marks it truncated with a note, and leaves no leg behind."""
    daemon = recording_daemon("all")
    await floor.login(daemon, "alice")
    await floor.login(daemon, "bob")
    mark = daemon.mark()
    await parties.caller(CALLER_HZ)
    await parties.caller(700)
    a = await daemon.until("recording.started", 20, after=mark, agent="alice")
    b = await daemon.until("recording.started", 20, after=mark, agent="bob")
    rec_ids = sorted([str(a["rec_id"]), str(b["rec_id"])])
    await asyncio.sleep(3.0)
    _kill_asterisk()
    daemon.kill(signal.SIGKILL)
    d = media_dirs[0]
    for rid in rec_ids:  # what a crash leaves: legs whose header says 0 bytes of audio
        for leg in rec.leg_paths(d, rid):
            info = rec.inspect_leg(leg)
            assert info.declared == 0 and info.available > 8000 * 2 * 2, (leg, info)
    parties.callers.clear()
    await asyncio.to_thread(_lab().up, LAB_CONFIG, extra=LAB_EXTRA)
    again = DaemonProc(daemon.config_path).start()
    try:
        await again.until("ami.resynced", 30)
        got = {str((await again.until("recording.recovered", 30, rec_id=rid))["rec_id"]) for rid in rec_ids}
        assert got == set(rec_ids)
    finally:
        again.stop()
    assert not list((d / rec.PARTIAL).glob("*")), list((d / rec.PARTIAL).glob("*"))
    with RecordingStore(again.cfg.daemon.database) as st:
        rows = [st.get(rid) for rid in rec_ids]
        for row in rows:
            assert row is not None and row.status == "repaired" and row.truncated, row
            assert "header said 0 data bytes" in row.note, row.note
            assert rec.verify(st, d, row.rec_id)
            info = sf.info(str(d / row.path))
            # what Asterisk had written out (its last stdio buffers die with it), and it says so
            assert info.channels == 2 and 1.0 < info.duration < 8 and row.duration_s == round(info.duration, 3)
        finals = sorted(p.name for p in d.rglob("*.wav"))
        assert finals == sorted(f"{r}.wav" for r in rec_ids)  # every file on disk is accounted for
    print("\nrecovered:", [(r.rec_id, r.status, r.truncated, r.duration_s, r.note) for r in rows])
