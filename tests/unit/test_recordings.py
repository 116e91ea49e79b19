"""Recordings: ids and paths, policy, stereo join, atomic finalize, crash recovery, retention, the CLI."""

from __future__ import annotations

import copy
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callcenter import config as config_mod
from callcenter.features.recording import files as rec
from callcenter.features.recording.files import (
    REC_ID,
    BadRecId,
    LegsNotClosed,
    check_rec_id,
    final_path,
    finalize,
    leg_paths,
    mixmonitor_options,
    new_rec_id,
    purge,
    recover,
    tmp_path,
)
from callcenter.features.recording.policy import policy_for, should_record
from callcenter.features.recording.store import RecordingStore

ROOT = Path(__file__).resolve().parents[2]
LAB = yaml.safe_load((ROOT / "tests" / "asterisk" / "lab.yaml").read_text())
RATE = 8000
T0 = 1_786_000_000.0  # 2026-08-06 (UTC), a fixed "now"
STEPS = ("legs_repaired", "tmp_partial", "tmp_written", "renamed", "recorded", "leg_deleted")


class Crash(Exception):
    """Stands for the process dying at a step of finalize."""


def tone(freq: float, seconds: float, amp: int = 8000) -> np.ndarray:
    """A PCM16 sine at ``freq`` Hz."""
    t = np.arange(round(seconds * RATE)) / RATE
    return np.round(amp * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def peak_hz(x: np.ndarray) -> float:
    """The strongest frequency in ``x``."""
    spec = np.abs(np.fft.rfft(x.astype(np.float64)))
    return float(np.fft.rfftfreq(len(x), 1 / RATE)[int(np.argmax(spec))])


def write_leg(path: Path, samples: np.ndarray, subtype: str = "PCM_16") -> None:
    """A leg as Asterisk leaves it after closing it: a complete mono WAV."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), samples, RATE, subtype=subtype, format="WAV")


def write_crashed_leg(path: Path, samples: np.ndarray, tail: bytes = b"", riff: int = 0, data: int = 0) -> None:
    """A leg as Asterisk leaves it when killed mid-call: its 44-byte header still says 0 bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = (b"RIFF" + struct.pack("<I", riff) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, RATE, 2 * RATE, 2, 16)
              + b"data" + struct.pack("<I", data))
    path.write_bytes(header + samples.astype("<i2").tobytes() + tail)


def legs(d: Path, rec_id: str, caller: np.ndarray, agent: np.ndarray, crashed: bool = False) -> None:
    c, a = leg_paths(d, rec_id)
    for p, x in ((c, caller), (a, agent)):
        (write_crashed_leg if crashed else write_leg)(p, x)


def age(d: Path, seconds: float = 3600) -> None:
    """Make every file under ``d`` look idle for ``seconds`` before T0."""
    for p in d.rglob("*"):
        if p.is_file():
            os.utime(p, (T0 - seconds, T0 - seconds))


def partial_files(d: Path) -> list[str]:
    p = d / ".partial"
    return sorted(x.name for x in p.iterdir()) if p.exists() else []


@pytest.fixture
def store(tmp_path: Path) -> RecordingStore:
    s = RecordingStore(tmp_path / "cc.sqlite3")
    yield s
    s.close()


@pytest.fixture
def rid() -> str:
    return new_rec_id(T0)


# --------------------------------------------------------------------------- ids and paths

def test_rec_id_encodes_utc_time_and_layout(tmp_path: Path):
    """new_rec_id is valid, carries the UTC second, and the final file goes under YYYY/MM/DD in UTC."""
    r = new_rec_id(T0)
    assert check_rec_id(r) == r and REC_ID.fullmatch(r)
    assert r.startswith(time.strftime("%Y%m%dT%H%M%S", time.gmtime(T0)))
    assert rec.rec_time(r) == T0
    assert final_path(tmp_path, r) == tmp_path / r[0:4] / r[4:6] / r[6:8] / f"{r}.wav"
    assert leg_paths(tmp_path, r) == (tmp_path / ".partial" / f"{r}-caller.wav",
                                      tmp_path / ".partial" / f"{r}-agent.wav")
    assert tmp_path / ".partial" / f"{r}.tmp.wav" == tmp_path_of(tmp_path, r)
    assert len({new_rec_id(T0) for _ in range(100)}) == 100


def tmp_path_of(d: Path, r: str) -> Path:
    return tmp_path(d, r)


@pytest.mark.parametrize("bad", ["", "x", "../etc/passwd", "20260806T154549-0123456789ab/../x",
                                 "20260806T154549-0123456789AB", "20260806T154549-0123456789ab.wav",
                                 "20261306T154549-0123456789ab", "20260806T154549-0123456789ab\n", None, 42])
def test_bad_rec_ids_raise(tmp_path: Path, bad: object):
    """Anything but a daemon-made id is refused before it can name a file."""
    with pytest.raises(BadRecId):
        check_rec_id(bad)
    if isinstance(bad, str):
        with pytest.raises(BadRecId):
            leg_paths(tmp_path, bad)
        with pytest.raises(BadRecId):
            final_path(tmp_path, bad)


@given(st.text(max_size=40))
def test_rec_id_never_accepts_path_characters(s: str):
    """Whatever the text, an accepted id has no separator, dot, NUL or space, and stays a single name."""
    try:
        check_rec_id(s)
    except BadRecId:
        return
    assert not set(s) & set("/\\.\0 \n")
    p = final_path("/rec", s)
    assert p.parent.parent.parent.parent == Path("/rec") and p.name == s + ".wav"


@given(st.from_regex(REC_ID, fullmatch=True), st.sampled_from(["/", "\\", "..", "\0", "\n", " ", "."]),
       st.integers(0, 28))
def test_rec_id_with_an_injected_character_is_refused(s: str, bad: str, at: int):
    """Inserting any separator-like character anywhere makes a valid-looking id invalid."""
    with pytest.raises(BadRecId):
        check_rec_id(s[:at] + bad + s[at:])


def test_mixmonitor_options_map_read_to_agent_and_transmit_to_caller(tmp_path: Path, rid: str):
    """r() (audio read from the agent's phone) is the agent leg, t() (audio sent to it) the caller leg."""
    caller, agent = leg_paths(tmp_path, rid)
    assert mixmonitor_options(tmp_path, rid) == f"r({agent})t({caller})"
    for bad in ("relative/dir", "/var/rec,ordings", "/var/rec(x)", "/var/my recordings", "/var/${EVIL}"):
        with pytest.raises(ValueError):
            mixmonitor_options(bad, rid)


# --------------------------------------------------------------------------- policy

def cfg_with(**changes) -> config_mod.Config:
    data = copy.deepcopy(LAB)
    for k, v in changes.items():
        data[k] = v
    return config_mod.parse(data)


def test_should_record_modes():
    """all -> True, none -> False, on_demand -> "on_demand"; sample at 0 and 100 is exact."""
    R = config_mod.Recording
    assert should_record(R(mode="all"), "c1") is True
    assert should_record(R(mode="none"), "c1") is False
    assert should_record(R(mode="on_demand"), "c1") == "on_demand"
    ids = [f"call-{i}" for i in range(500)]
    assert all(should_record(R(mode="sample", sample_percent=100), c) is True for c in ids)
    assert not any(should_record(R(mode="sample", sample_percent=0), c) for c in ids)


@pytest.mark.parametrize("pct", [1.0, 12.5, 50.0, 90.0])
def test_sample_hits_the_percentage_on_average(pct: float):
    """Over 20 000 call ids the recorded share is within 4.5 standard deviations of sample_percent."""
    pol = config_mod.Recording(mode="sample", sample_percent=pct)
    n = 20_000
    hits = sum(bool(should_record(pol, f"{1_700_000_000 + i}.{i % 97}")) for i in range(n))
    p = pct / 100
    assert abs(hits - n * p) <= 4.5 * (n * p * (1 - p)) ** 0.5


@given(st.text(min_size=1, max_size=30), st.floats(0, 100))
def test_sample_is_deterministic_and_monotonic(call_id: str, pct: float):
    """The same call decides the same way every time, and a call sampled at p is sampled at any higher p."""
    a = should_record(config_mod.Recording(mode="sample", sample_percent=pct), call_id)
    assert a == should_record(config_mod.Recording(mode="sample", sample_percent=pct), call_id)
    if a:
        assert should_record(config_mod.Recording(mode="sample", sample_percent=min(pct + 5, 100)), call_id)


def test_policy_for_prefers_campaign_then_queue_then_default():
    """A campaign's policy beats its queue's, which beats recordings.default."""
    data = copy.deepcopy(LAB)
    data["queues"]["sales"]["recording"] = {"mode": "none"}
    data["recordings"] = {"default": {"mode": "sample", "sample_percent": 10}}
    data.setdefault("campaigns", {})["spring"] = {"queue": "sales", "trunk": "pstn",
                                                  "recording": {"mode": "on_demand"}}
    cfg = config_mod.parse(data)
    assert policy_for(cfg, "sales", "spring").mode == "on_demand"
    assert policy_for(cfg, "sales").mode == "none"
    assert policy_for(cfg, "spill").mode == "sample"
    assert policy_for(cfg).mode == "sample"


def test_a_cli_campaign_follows_its_stored_recording_policy():
    """A campaign made with the CLI is in no YAML: its settings from the dialler's store decide."""
    from callcenter.features.dialer.schema import CampaignConf
    from callcenter.features.recording.schema import RecordingConf
    data = copy.deepcopy(LAB)
    data["queues"]["sales"]["recording"] = {"mode": "none"}
    cfg = config_mod.parse(data)
    stored = CampaignConf(queue="sales", trunk="pstn", recording=RecordingConf(mode="all"))
    assert policy_for(cfg, "sales", "made-by-cli", campaign_conf=stored).mode == "all"
    assert policy_for(cfg, "sales", "made-by-cli").mode == "none"


# --------------------------------------------------------------------------- finalize

def test_stereo_join_caller_left_agent_right_padded(tmp_path: Path, store: RecordingStore, rid: str):
    """Caller's 440 Hz ends up left, agent's 1 kHz right, sample-exact; the shorter leg is padded with silence."""
    caller, agent = tone(440, 1.0), tone(1000, 1.5)
    legs(tmp_path, rid, caller, agent)
    store.start(rid, "call-1", "alice", "sales", T0)
    row = finalize(store, tmp_path, rid, ended_at=T0 + 2)
    assert (row.status, row.truncated, row.duration_s, row.ended_at) == ("done", False, 1.5, T0 + 2)
    assert row.path == f"{rid[0:4]}/{rid[4:6]}/{rid[6:8]}/{rid}.wav"
    data, rate = sf.read(str(tmp_path / row.path), dtype="int16")
    info = sf.info(str(tmp_path / row.path))
    assert (rate, info.channels, info.subtype) == (RATE, 2, "PCM_16")
    assert data.shape == (12000, 2)
    assert np.array_equal(data[:8000, 0], caller) and not data[8000:, 0].any()
    assert np.array_equal(data[:, 1], agent)
    assert peak_hz(data[:8000, 0]) == pytest.approx(440, abs=2)
    assert peak_hz(data[:, 1]) == pytest.approx(1000, abs=2)
    assert row.sha256 == rec._sha256(tmp_path / row.path)
    assert partial_files(tmp_path) == []
    assert rec.verify(store, tmp_path, rid)


def test_ulaw_leg_is_decoded(tmp_path: Path, store: RecordingStore, rid: str):
    """A G.711 u-law leg joins a PCM16 leg; its samples are the u-law decoding of the tone."""
    c, a = leg_paths(tmp_path, rid)
    write_leg(c, tone(300, 0.5), subtype="ULAW")
    write_leg(a, tone(700, 0.5))
    decoded, _ = sf.read(str(c), dtype="int16")
    row = finalize(store, tmp_path, rid)
    data, _ = sf.read(str(tmp_path / row.path), dtype="int16")
    assert np.array_equal(data[:, 0], decoded)
    assert row.status == "done" and peak_hz(data[:, 0]) == pytest.approx(300, abs=3)
    assert np.abs(data[:, 0].astype(int) - tone(300, 0.5)).max() < 300  # u-law quantisation


def test_finalize_refuses_legs_still_being_written(tmp_path: Path, store: RecordingStore, rid: str):
    """A header Asterisk has not completed yet means "not closed": finalize raises and changes nothing."""
    legs(tmp_path, rid, tone(440, 0.5), tone(880, 0.5), crashed=True)
    before = {p: p.read_bytes() for p in leg_paths(tmp_path, rid)}
    store.start(rid, "c", "alice", "sales", T0)
    with pytest.raises(LegsNotClosed):
        finalize(store, tmp_path, rid)
    assert {p: p.read_bytes() for p in leg_paths(tmp_path, rid)} == before
    assert store.get(rid).status == "recording" and not final_path(tmp_path, rid).exists()


def test_finalize_quarantines_unreadable_legs(tmp_path: Path, store: RecordingStore, rid: str):
    """A leg that is not audio moves both legs to quarantine/<rec_id>/ and says why."""
    c, a = leg_paths(tmp_path, rid)
    write_leg(c, tone(440, 0.2))
    a.write_bytes(b"this is not a wav file at all")
    row = finalize(store, tmp_path, rid)
    assert row.status == "quarantined" and row.path == f"quarantine/{rid}"
    assert "not a RIFF/WAVE file" in row.note
    assert sorted(p.name for p in (tmp_path / "quarantine" / rid).iterdir()) == sorted([c.name, a.name])
    assert partial_files(tmp_path) == [] and not final_path(tmp_path, rid).exists()


def test_finalize_is_idempotent(tmp_path: Path, store: RecordingStore, rid: str):
    """A second finalize returns the same row and leaves the file alone."""
    legs(tmp_path, rid, tone(440, 0.3), tone(880, 0.3))
    first = finalize(store, tmp_path, rid)
    assert finalize(store, tmp_path, rid) == first


def reference(rid: str, caller: np.ndarray, agent: np.ndarray, crashed: bool) -> tuple[bytes, str]:
    """The final file's bytes and status a crash-free finalize produces."""
    with tempfile.TemporaryDirectory() as d:
        legs(Path(d), rid, caller, agent, crashed)
        with RecordingStore(Path(d) / "db.sqlite3") as s:
            row = finalize(s, d, rid, repair=True)
            return (Path(d) / row.path).read_bytes(), row.status


def crash_then_recover(d: Path, rid: str, caller: np.ndarray, agent: np.ndarray, crashed: bool, step: str,
                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Finalize, dying at ``step``; check the final name holds nothing or everything; recover; check again."""
    monkeypatch.setattr(rec, "_BLOCK", 997)  # several blocks even for short legs: tmp_partial is mid-file
    ref, ref_status = reference(rid, caller, agent, crashed)
    legs(d, rid, caller, agent, crashed)
    with RecordingStore(d / "db.sqlite3") as s:
        s.start(rid, "call", "alice", "sales", T0)

        def die(name: str) -> None:
            if name == step:
                raise Crash(step)

        monkeypatch.setattr(rec, "_step", die)
        try:
            finalize(s, d, rid, repair=True)
        except Crash:
            pass
        monkeypatch.setattr(rec, "_step", lambda name: None)
        final = final_path(d, rid)
        assert not final.exists() or final.read_bytes() == ref  # never a half file under the final name
        assert final.exists() or all(p.exists() for p in leg_paths(d, rid))  # ... and never neither
        age(d)
        recover(s, d, T0)
        row = s.get(rid)
        assert final.read_bytes() == ref
        assert (row.status, row.sha256) == (ref_status, rec._sha256(final))
        assert row.truncated is crashed
        assert partial_files(d) == []
        assert recover(s, d, T0) == []  # nothing left to do


@pytest.mark.parametrize(("step", "crashed"), [(s, c) for s in STEPS for c in (False, True)
                                               if c or s != "legs_repaired"])  # closed legs need no repair
def test_finalize_is_atomic_under_a_crash_at_every_step(tmp_path: Path, rid: str, step: str, crashed: bool,
                                                         monkeypatch: pytest.MonkeyPatch):
    """Whatever step finalize dies at, recovery ends with exactly the crash-free file and row."""
    crash_then_recover(tmp_path, rid, tone(440, 1.3), tone(1000, 0.9), crashed, step, monkeypatch)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(STEPS), st.integers(1, 3 * 8000 * 10 + 7), st.integers(0, 9000), st.booleans())
def test_finalize_atomic_any_lengths(monkeypatch: pytest.MonkeyPatch, step: str, n_caller: int, n_agent: int,
                                     crashed: bool):
    """Atomicity holds for leg lengths across block boundaries, one leg empty, and either leg longer."""
    if step == "legs_repaired" and not crashed:
        return
    rng = np.random.default_rng(n_caller * 7919 + n_agent)
    caller = rng.integers(-20000, 20000, n_caller, dtype=np.int16)
    agent = rng.integers(-20000, 20000, n_agent, dtype=np.int16)
    with tempfile.TemporaryDirectory() as d:
        crash_then_recover(Path(d), new_rec_id(T0), caller, agent, crashed, step, monkeypatch)


# --------------------------------------------------------------------------- recovery

def test_recover_repairs_asterisk_crash_legs(tmp_path: Path, store: RecordingStore, rid: str):
    """Zero-size headers and a half sample at the end: header rebuilt, odd byte dropped, flagged truncated."""
    caller, agent = tone(440, 1.0), tone(1000, 0.75)
    c, a = leg_paths(tmp_path, rid)
    write_crashed_leg(c, caller, tail=b"\x7f")  # killed in the middle of a 2-byte sample
    write_crashed_leg(a, agent)
    store.start(rid, "call-9", "bob", "sales", T0)
    age(tmp_path)
    [r] = recover(store, tmp_path, T0)
    assert r.action == "repaired" and r.rec_id == rid
    row = store.get(rid)
    assert (row.status, row.truncated, row.duration_s) == ("repaired", True, 1.0)
    assert "caller leg header said 0 data bytes, 16001 present, kept 16000" in row.note
    assert "agent leg header said 0 data bytes, 12000 present, kept 12000" in row.note
    data, _ = sf.read(str(tmp_path / row.path), dtype="int16")
    assert np.array_equal(data[:, 0], caller) and np.array_equal(data[:6000, 1], agent) and not data[6000:, 1].any()


def test_recover_repairs_a_header_claiming_more_than_is_there(tmp_path: Path, store: RecordingStore, rid: str):
    """A file cut short (header says 10 s, 0.5 s present) keeps the 0.5 s and says it is truncated."""
    c, a = leg_paths(tmp_path, rid)
    write_crashed_leg(c, tone(440, 0.5), riff=36 + 160000, data=160000)
    write_leg(a, tone(1000, 0.5))
    age(tmp_path)
    [r] = recover(store, tmp_path, T0)
    row = store.get(rid)
    assert (r.action, row.status, row.truncated, row.duration_s) == ("repaired", "repaired", True, 0.5)


def test_recover_fixes_only_a_wrong_riff_size_without_calling_it_truncated(tmp_path: Path, store: RecordingStore,
                                                                         rid: str):
    """Right data size, wrong RIFF size: repaired, but no audio was lost."""
    c, a = leg_paths(tmp_path, rid)
    x = tone(440, 0.5)
    write_crashed_leg(c, x, riff=0, data=len(x) * 2)
    write_leg(a, tone(1000, 0.5))
    age(tmp_path)
    recover(store, tmp_path, T0)
    row = store.get(rid)
    assert (row.status, row.truncated) == ("repaired", False)


def test_recover_repairs_a_ulaw_leg(tmp_path: Path, store: RecordingStore, rid: str):
    """A u-law leg whose size fields were never written is repaired like a PCM one."""
    c, a = leg_paths(tmp_path, rid)
    write_leg(c, tone(300, 0.5), subtype="ULAW")
    raw = bytearray(c.read_bytes())
    raw[4:8] = b"\0\0\0\0"
    i = raw.index(b"data")
    raw[i + 4:i + 8] = b"\0\0\0\0"
    c.write_bytes(bytes(raw))
    write_leg(a, tone(700, 0.5))
    age(tmp_path)
    recover(store, tmp_path, T0)
    row = store.get(rid)
    assert (row.status, row.truncated, row.duration_s) == ("repaired", True, 0.5)


def test_recover_finalizes_closed_legs_as_done(tmp_path: Path, store: RecordingStore, rid: str):
    """Legs Asterisk closed properly (only the daemon died) give a normal, untruncated recording."""
    legs(tmp_path, rid, tone(440, 0.5), tone(880, 0.5))
    store.start(rid, "c", "alice", "sales", T0 - 100)
    age(tmp_path)
    [r] = recover(store, tmp_path, T0)
    assert r.action == "finalized"
    row = store.get(rid)
    assert (row.status, row.truncated, row.ended_at) == ("done", False, T0 - 100 + 0.5)


@pytest.mark.parametrize("damage", ["garbage", "one-leg", "stereo-leg", "header-only", "rates-differ"])
def test_recover_quarantines_what_cannot_be_read(tmp_path: Path, store: RecordingStore, rid: str, damage: str):
    """Unreadable, missing, wrong-format, empty or mismatched legs are moved to quarantine, never kept silently."""
    c, a = leg_paths(tmp_path, rid)
    write_leg(a, tone(1000, 0.5))
    if damage == "garbage":
        c.write_bytes(os.urandom(3000))
    elif damage == "stereo-leg":
        sf.write(str(c), np.zeros((800, 2), np.int16), RATE, subtype="PCM_16")
    elif damage == "header-only":
        c.write_bytes(b"RIFF\0\0\0\0WAVEfmt ")
    elif damage == "rates-differ":
        sf.write(str(c), tone(440, 0.5), 16000, subtype="PCM_16")
    store.start(rid, "c", "alice", "sales", T0)
    age(tmp_path)
    [r] = recover(store, tmp_path, T0)
    row = store.get(rid)
    assert r.action == "quarantined" and row.status == "quarantined" and row.note.startswith("quarantined: ")
    assert partial_files(tmp_path) == [] and not final_path(tmp_path, rid).exists()
    assert a.name in {p.name for p in (tmp_path / "quarantine" / rid).iterdir()}


def test_recover_leaves_active_and_recently_written_legs_alone(tmp_path: Path, store: RecordingStore):
    """Legs Asterisk may still write (named active, or touched within min_idle_s) are not touched."""
    r1, r2 = new_rec_id(T0), new_rec_id(T0)
    legs(tmp_path, r1, tone(440, 0.2), tone(880, 0.2), crashed=True)
    legs(tmp_path, r2, tone(440, 0.2), tone(880, 0.2), crashed=True)
    age(tmp_path)
    os.utime(leg_paths(tmp_path, r2)[1], (T0 - 5, T0 - 5))
    out = recover(store, tmp_path, T0, active=[r1], min_idle_s=30)
    assert sorted((r.rec_id, r.action) for r in out) == sorted([(r1, "busy"), (r2, "busy")])
    assert len(partial_files(tmp_path)) == 4
    store.start(r1, "c", "a", "q", T0 - 10)  # a row with no file yet, started moments ago
    for p in leg_paths(tmp_path, r1):
        p.unlink()
    assert {(r.rec_id, r.action) for r in recover(store, tmp_path, T0, active=[r2])} == {(r1, "busy"), (r2, "busy")}


def test_recover_verifies_a_final_file_whose_row_still_says_recording(tmp_path: Path, store: RecordingStore, rid: str):
    """Final file in place, no legs, row "recording": the file is checked and the row completed."""
    legs(tmp_path, rid, tone(440, 0.5), tone(880, 0.25))
    store.start(rid, "c", "alice", "sales", T0)
    good = finalize(store, tmp_path, rid)
    store.db.execute("UPDATE recordings SET status='recording', sha256=NULL, path=NULL WHERE rec_id=?", (rid,))
    [r] = recover(store, tmp_path, T0 + 3600)
    assert r.action == "verified"
    row = store.get(rid)
    assert (row.status, row.sha256, row.path, row.duration_s) == ("done", good.sha256, good.path, 0.5)


def test_recover_quarantines_a_half_final_file(tmp_path: Path, store: RecordingStore, rid: str):
    """A final file whose header disagrees with its length is not trusted: quarantined."""
    legs(tmp_path, rid, tone(440, 0.5), tone(880, 0.5))
    finalize(store, tmp_path, rid)
    f = final_path(tmp_path, rid)
    f.write_bytes(f.read_bytes()[:-1000])
    store.db.execute("UPDATE recordings SET status='recording' WHERE rec_id=?", (rid,))
    [r] = recover(store, tmp_path, T0 + 3600)
    assert r.action == "quarantined" and not f.exists()
    assert (tmp_path / "quarantine" / rid / f.name).exists()


def test_recover_marks_recordings_with_no_file_at_all_lost(tmp_path: Path, store: RecordingStore, rid: str):
    """A row "recording" with no leg, tmp or final file is closed as quarantined, with a note."""
    store.start(rid, "c", "alice", "sales", T0 - 3600)
    [r] = recover(store, tmp_path, T0)
    row = store.get(rid)
    assert (r.action, row.status, row.path) == ("lost", "quarantined", None) and "no leg" in row.note


def test_recover_quarantines_an_orphan_tmp(tmp_path: Path, store: RecordingStore, rid: str):
    """A stereo tmp without its legs is never promoted to a final file."""
    t = tmp_path_of(tmp_path, rid)
    t.parent.mkdir(parents=True)
    sf.write(str(t), np.zeros((800, 2), np.int16), RATE, subtype="PCM_16")
    age(tmp_path)
    [r] = recover(store, tmp_path, T0)
    assert r.action == "quarantined" and not final_path(tmp_path, rid).exists()
    assert store.get(rid).status == "quarantined"


def test_recover_ignores_files_that_are_not_ours(tmp_path: Path, store: RecordingStore):
    """Names that are not <rec_id>-caller/-agent/.tmp.wav are left where they are."""
    p = tmp_path / ".partial"
    p.mkdir()
    (p / "notes.txt").write_text("x")
    (p / "20260806T154549-0123456789ab-caller.wav.bak").write_text("x")
    assert recover(store, tmp_path, T0) == [] and (p / "notes.txt").exists()


def test_recover_is_deterministic(tmp_path: Path):
    """Two identical damaged trees recover to identical files and rows, in rec_id order."""
    ids = sorted(new_rec_id(T0 - i) for i in range(4))
    results = []
    for name in ("a", "b"):
        d = tmp_path / name
        for i, r in enumerate(ids):
            legs(d, r, tone(300 + 100 * i, 0.3), tone(900, 0.2 + 0.1 * i), crashed=bool(i % 2))
        age(d)
        with RecordingStore(d / "db.sqlite3") as s:
            out = recover(s, d, T0)
            results.append(([(r.rec_id, r.action) for r in out],
                            [(s.get(r).status, s.get(r).sha256, s.get(r).truncated) for r in ids]))
    assert results[0] == results[1]
    assert [r for r, _ in results[0][0]] == ids


# --------------------------------------------------------------------------- metadata

def test_pause_markers(store: RecordingStore, rid: str):
    """pause/resume record [start, end] offsets; double pause or resume is refused; finish closes an open pause."""
    store.start(rid, "c", "alice", "sales", T0)
    assert store.pause(rid, T0 + 10) and not store.pause(rid, T0 + 11)
    assert store.resume(rid, T0 + 25.5) and not store.resume(rid, T0 + 26)
    assert store.pause(rid, T0 + 40)
    assert store.get(rid).pauses == ((10.0, 25.5), (40.0, None))
    store.finish(rid, status="done", path=None, sha256=None, duration_s=55.0, ended_at=T0 + 55)
    assert store.get(rid).pauses == ((10.0, 25.5), (40.0, 55.0))
    assert not store.pause(rid, T0 + 60)
    assert not store.pause(new_rec_id(T0), T0)


@given(st.lists(st.tuples(st.booleans(), st.floats(0, 100)), max_size=20))
def test_pause_markers_never_overlap(ops: list[tuple[bool, float]]):
    """Any sequence of pause/resume at increasing times yields ordered, non-overlapping [start, end] spans."""
    with RecordingStore(":memory:") as s:
        r = new_rec_id(T0)
        s.start(r, "c", None, None, T0)
        t = T0
        for is_pause, dt in ops:
            t += dt
            (s.pause if is_pause else s.resume)(r, t)
        spans = s.get(r).pauses
    flat = [x for span in spans for x in span if x is not None]
    assert flat == sorted(flat)
    assert all(e is None or e >= b for b, e in spans)
    assert all(e is not None for _, e in spans[:-1])


def test_recordings_filters(store: RecordingStore):
    """Filters by agent, queue, status and start time; newest first."""
    ids = [new_rec_id(T0 + i) for i in range(4)]
    for i, r in enumerate(ids):
        store.start(r, f"c{i}", "alice" if i % 2 else "bob", "sales" if i < 2 else "support", T0 + i)
    assert [r.rec_id for r in store.recordings()] == ids[::-1]
    assert {r.rec_id for r in store.recordings(agent="alice")} == {ids[1], ids[3]}
    assert {r.rec_id for r in store.recordings(queue="support", agent="bob")} == {ids[2]}
    assert {r.rec_id for r in store.recordings(since=T0 + 2)} == set(ids[2:])
    assert store.recordings(status="done") == []
    assert store.recordings(limit=1)[0].rec_id == ids[3]


def test_tables_live_beside_the_daemon_tables(tmp_path: Path):
    """The recording and supervision stores and the call journal share one WAL database file without
    stepping on each other."""
    from callcenter.features.supervision.store import SpyAuditStore
    from callcenter.journal import Journal as Store
    db = tmp_path / "cc.sqlite3"
    Store(db).close()
    SpyAuditStore(db).close()
    with RecordingStore(db) as s:
        assert s.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in s.db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        versions = dict(s.db.execute("SELECT component, MAX(version) FROM migrations GROUP BY component"))
    assert {"calls", "recordings", "spy_audit"} <= tables
    assert versions["recording"] == 1 and versions["supervision"] == 1


def test_store_adopts_a_database_made_before_the_migrations_table(tmp_path: Path, rid: str):
    """A database whose recordings table the old MediaStore made keeps its rows; step 1 is recorded, not redone."""
    import sqlite3
    from callcenter.features.recording.store import MIGRATIONS
    db = tmp_path / "old.sqlite3"
    con = sqlite3.connect(db)
    con.executescript(MIGRATIONS[0].sql)
    con.execute("INSERT INTO recordings(rec_id, call_id, started_at) VALUES (?, 'c-old', ?)", (rid, T0))
    con.commit()
    con.close()
    with RecordingStore(db) as s:
        assert s.get(rid).call_id == "c-old"
        assert s.db.execute("SELECT version FROM migrations WHERE component='recording'").fetchall() == [(1,)]
    with RecordingStore(db) as s:  # opening again applies nothing twice
        assert s.db.execute("SELECT COUNT(*) FROM migrations WHERE component='recording'").fetchone()[0] == 1


# --------------------------------------------------------------------------- retention

def test_purge_deletes_old_recordings_and_says_which(tmp_path: Path, store: RecordingStore):
    """Old done and quarantined recordings go (files and empty date folders); new and in-progress ones stay."""
    old, new, live, bad = (new_rec_id(T0 - 100 * 86400), new_rec_id(T0 - 86400), new_rec_id(T0 - 200 * 86400),
                           new_rec_id(T0 - 95 * 86400))
    for r in (old, new):
        legs(tmp_path, r, tone(440, 0.2), tone(880, 0.2))
        store.start(r, "c", "alice", "sales", rec.rec_time(r))
        finalize(store, tmp_path, r)
    store.start(live, "c", "alice", "sales", rec.rec_time(live))
    legs(tmp_path, bad, tone(440, 0.2), tone(880, 0.2))
    leg_paths(tmp_path, bad)[0].write_bytes(b"junk")
    store.start(bad, "c", "alice", "sales", rec.rec_time(bad))
    assert finalize(store, tmp_path, bad).status == "quarantined"

    dry = purge(store, tmp_path, T0, 90, dry_run=True)
    assert [r.rec_id for r in dry] == [old, bad] and final_path(tmp_path, old).exists()
    seen = []
    gone = purge(store, tmp_path, T0, 90, on_delete=seen.append)
    assert [r.rec_id for r in gone] == [old, bad] == [r.rec_id for r in seen]
    assert all(r.status == "deleted" and r.deleted_at == T0 for r in gone)
    assert gone[0].path == rec._final_rel(old)  # the log can say which file went
    assert not final_path(tmp_path, old).exists() and not final_path(tmp_path, old).parent.exists()
    assert not (tmp_path / "quarantine" / bad).exists()
    assert final_path(tmp_path, new).exists() and store.get(new).status == "done"
    assert store.get(live).status == "recording"
    assert purge(store, tmp_path, T0, 90) == []


def test_purge_survives_a_file_already_gone(tmp_path: Path, store: RecordingStore, rid: str):
    """A crash between deleting the file and marking the row only makes the next purge finish the job."""
    legs(tmp_path, rid, tone(440, 0.2), tone(880, 0.2))
    finalize(store, tmp_path, rid)
    final_path(tmp_path, rid).unlink()
    [r] = purge(store, tmp_path, T0 + 100 * 86400, 90)
    assert r.status == "deleted"


# --------------------------------------------------------------------------- CLI

def _cc(cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "callcenter", "recordings", "--config", str(cfg), *args],
                          check=False, capture_output=True, text=True, cwd=ROOT)


def test_cli_list_show_purge(tmp_path: Path):
    """list (table and JSON, filters), show (verifies the file), purge --dry-run then purge, printing what went."""
    data = copy.deepcopy(LAB)
    data["daemon"]["database"] = str(tmp_path / "cc.sqlite3")
    data["recordings"] = {"dir": str(tmp_path / "rec"), "retention_days": 30}
    cfg = tmp_path / "cc.yaml"
    cfg.write_text(yaml.safe_dump(data))
    now = time.time()
    old, new = new_rec_id(now - 40 * 86400), new_rec_id(now - 3600)
    with RecordingStore(tmp_path / "cc.sqlite3") as s:
        for r, agent in ((old, "alice"), (new, "bob")):
            legs(tmp_path / "rec", r, tone(440, 0.3), tone(880, 0.3))
            s.start(r, "call-" + r[-4:], agent, "sales", rec.rec_time(r))
            finalize(s, tmp_path / "rec", r)

    out = _cc(cfg, "list")
    assert out.returncode == 0 and old in out.stdout and new in out.stdout and "2 recordings" in out.stdout
    rows = json.loads(_cc(cfg, "list", "--json", "--agent", "bob").stdout)
    assert [r["rec_id"] for r in rows] == [new]
    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(now - 86400))
    assert [r["rec_id"] for r in json.loads(_cc(cfg, "list", "--json", "--since", since).stdout)] == [new]
    shown = json.loads(_cc(cfg, "show", new, "--json").stdout)
    assert shown["verified"] is True and shown["status"] == "done" and shown["file"].endswith(f"{new}.wav")
    assert _cc(cfg, "show", "nope").returncode == 1

    dry = _cc(cfg, "purge", "--dry-run")
    assert dry.returncode == 0 and f"would delete {old}" in dry.stdout and new not in dry.stdout
    assert final_path(tmp_path / "rec", old).exists()
    done = _cc(cfg, "purge")
    assert done.returncode == 0 and f"deleted {old}" in done.stdout and "1 recordings older than 30 days deleted" \
        in done.stdout
    assert not final_path(tmp_path / "rec", old).exists() and final_path(tmp_path / "rec", new).exists()
    assert json.loads(_cc(cfg, "show", old, "--json").stdout)["status"] == "deleted"
