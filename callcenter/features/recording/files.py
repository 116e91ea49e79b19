"""Recording files: ids and paths, Asterisk's two mono legs -> one stereo WAV, recovery and retention.

Rules of this module (it does no Asterisk I/O; :mod:`.service` starts/stops MixMonitor). Blocking
(disk, fsync, and the metadata rows it writes through the :class:`~.store.RecordingStore` it is
given): the daemon runs it on its database thread.

* Every file name comes from a ``rec_id`` the daemon made with :func:`new_rec_id` and that
  matches :data:`REC_ID` (``20260806T154549-0123456789ab``: UTC time, 48 random bits). Anything
  else raises :class:`BadRecId` -- caller data never reaches a path or the dialplan.
* Layout under the recordings directory ``dir``::

      .partial/<rec_id>-caller.wav   leg: what the agent hears (MixMonitor t(), "transmit")
      .partial/<rec_id>-agent.wav    leg: what the agent says  (MixMonitor r(), "receive")
      .partial/<rec_id>.tmp.wav      stereo being written by finalize
      YYYY/MM/DD/<rec_id>.wav        final: PCM16 stereo, left = caller, right = agent (UTC date)
      quarantine/<rec_id>/           legs/tmp/final that could not be turned into a sound recording

  MixMonitor's r()/t() are from the channel's point of view: r = audio *read from* the agent's
  phone (the agent's voice), t = audio *written to* it (the caller's voice). Only
  :func:`mixmonitor_options` knows that; everything else speaks of caller and agent.
* :func:`finalize` is atomic: it writes ``.partial/<rec_id>.tmp.wav``, fsyncs it, ``os.replace``-s
  it under the final name, fsyncs the directory, records the metadata, and only then deletes the
  legs. A crash at any point leaves the legs (redo), or the complete final file -- never a partial
  file under the final name, never a finished row without its file.
* :func:`recover` (at start-up) finishes what a crash interrupted: legs whose WAV header Asterisk
  never completed (sizes 0, or cut mid-frame) are repaired in place -- header rewritten from the
  data actually present, partial frame trimmed -- and finalized with status ``repaired`` and
  ``truncated`` set; what cannot be read moves to ``quarantine/`` with status ``quarantined``.
  Nothing silently truncated is kept: every repair is on the row.
* Metadata lives in the daemon's SQLite database, see :mod:`callcenter.features.recording.store`.
"""

from __future__ import annotations

import calendar
import dataclasses
import hashlib
import os
import re
import secrets
import shutil
import struct
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import soundfile as sf

from callcenter import config as config_mod

if TYPE_CHECKING:
    from callcenter.features.recording.store import RecordingRow, RecordingStore

__all__ = [
    "PARTIAL",
    "QUARANTINE",
    "REC_ID",
    "BadRecId",
    "LegInfo",
    "LegsNotClosed",
    "Recovery",
    "check_rec_id",
    "final_path",
    "finalize",
    "inspect_leg",
    "leg_paths",
    "mixmonitor_options",
    "new_rec_id",
    "purge",
    "recordings_dir",
    "rec_time",
    "recover",
    "repair_leg",
    "tmp_path",
    "verify",
]

REC_ID = re.compile(r"[0-9]{8}T[0-9]{6}-[0-9a-f]{12}")
PARTIAL = ".partial"
QUARANTINE = "quarantine"
_BLOCK = 8000 * 10  # frames per read/write block: 10 s of 8 kHz audio
# (format tag, bits per sample) of the mono legs we accept: PCM16 (Asterisk's "wav"), G.711 u-law, A-law.
_LEG_FORMATS = {(1, 16): "PCM_16", (7, 8): "ULAW", (6, 8): "ALAW"}
# Characters allowed in a path handed to MixMonitor (dialplan arguments: no , ( ) | " ' $ { } \ spaces).
_SAFE_PATH = re.compile(r"/[A-Za-z0-9_./-]*")


class BadRecId(ValueError):
    """A recording id that :func:`new_rec_id` did not make; never used as a file name."""


class LegsNotClosed(Exception):
    """A leg's WAV header is not complete yet: Asterisk is still writing it (or died doing so).

    :func:`finalize` without ``repair=True`` raises this and touches nothing; retry once MixMonitor
    has closed the files, or leave it to :func:`recover`.
    """


def _step(name: str) -> None:
    """Test seam: called after each durable step of :func:`finalize`; tests raise here to simulate a crash."""


# --------------------------------------------------------------------------- ids and paths

def new_rec_id(now: float) -> str:
    """A fresh recording id: UTC ``YYYYMMDDTHHMMSS`` of ``now``, a dash, 12 random hex digits."""
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + "-" + secrets.token_hex(6)


def check_rec_id(rec_id: object) -> str:
    """``rec_id`` itself if it is one of ours; :class:`BadRecId` otherwise."""
    if not isinstance(rec_id, str) or not REC_ID.fullmatch(rec_id):
        raise BadRecId(f"not a recording id: {rec_id!r}")
    try:
        time.strptime(rec_id[:15], "%Y%m%dT%H%M%S")
    except ValueError:
        raise BadRecId(f"not a recording id (bad date): {rec_id!r}") from None
    return rec_id


def rec_time(rec_id: str) -> float:
    """The UTC start time encoded in a rec_id (whole seconds)."""
    return float(calendar.timegm(time.strptime(check_rec_id(rec_id)[:15], "%Y%m%dT%H%M%S")))


def leg_paths(dir: str | Path, rec_id: str) -> tuple[Path, Path]:
    """``(caller_path, agent_path)``: the two mono legs Asterisk writes for ``rec_id``."""
    p = Path(dir) / PARTIAL
    check_rec_id(rec_id)
    return p / f"{rec_id}-caller.wav", p / f"{rec_id}-agent.wav"


def tmp_path(dir: str | Path, rec_id: str) -> Path:
    return Path(dir) / PARTIAL / f"{check_rec_id(rec_id)}.tmp.wav"


def _final_rel(rec_id: str) -> str:
    check_rec_id(rec_id)
    return f"{rec_id[0:4]}/{rec_id[4:6]}/{rec_id[6:8]}/{rec_id}.wav"


def final_path(dir: str | Path, rec_id: str) -> Path:
    """``<dir>/YYYY/MM/DD/<rec_id>.wav`` (the UTC date in the rec_id)."""
    return Path(dir) / _final_rel(rec_id)


def _quarantine_rel(rec_id: str) -> str:
    return f"{QUARANTINE}/{check_rec_id(rec_id)}"


def recordings_dir(cfg: config_mod.Config) -> Path:
    """``recordings.dir`` as an absolute path (a relative one is relative to the working directory)."""
    return Path(cfg.recordings.dir).absolute()


def mixmonitor_options(dir: str | Path, rec_id: str) -> str:
    """MixMonitor options that write ``rec_id``'s legs: ``r(<agent leg>)t(<caller leg>)``.

    Use as ``MixMonitor(,<options>)`` (no mixed file). ``dir`` must be absolute (Asterisk has its
    own working directory) and made only of letters, digits, ``_ . / -``.
    """
    caller, agent = leg_paths(dir, rec_id)
    for p in (caller, agent):
        if not _SAFE_PATH.fullmatch(str(p)):
            raise ValueError(f"recordings dir must be an absolute path of [A-Za-z0-9_./-]: {str(dir)!r}")
    return f"r({agent})t({caller})"


# --------------------------------------------------------------------------- WAV legs

class _Unreadable(Exception):
    """A leg (or final file) that cannot be turned into audio; the message says why."""


@dataclass(frozen=True)
class LegInfo:
    """What a leg's header says and what its file holds."""

    subtype: str  # soundfile subtype: PCM_16, ULAW, ALAW
    samplerate: int
    block_align: int
    data_offset: int
    declared: int  # data chunk size in the header
    available: int  # bytes actually after the data chunk header
    riff_ok: bool

    @property
    def data_len(self) -> int:
        """Bytes of audio we keep: the declared size if the file holds it, else all that is there
        (Asterisk writes size 0 until it closes the file), trimmed to whole frames."""
        n = self.declared if 0 < self.declared <= self.available else self.available
        return n - n % self.block_align

    @property
    def truncated(self) -> bool:
        """The header did not describe the audio we keep: it was never completed (the writer died, so the
        audio may stop before the call did), the file was cut short, or a partial frame had to go."""
        return self.data_len != self.declared

    @property
    def needs_repair(self) -> bool:
        return self.truncated or not self.riff_ok

    @property
    def frames(self) -> int:
        return self.data_len // self.block_align


def _chunks(path: Path) -> tuple[int, bytes, bytes | None, int, int]:
    """(file size, head, fmt chunk, data offset, declared data size) of a RIFF/WAVE file; sizes untrusted."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(4096)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise _Unreadable("not a RIFF/WAVE file")
    pos, fmt = 12, None
    while True:
        if pos + 8 > len(head):
            raise _Unreadable("no data chunk")
        cid, csize = head[pos:pos + 4], int.from_bytes(head[pos + 4:pos + 8], "little")
        if cid == b"data":
            return size, head, fmt, pos + 8, csize
        if cid == b"fmt ":
            fmt = head[pos + 8:pos + 8 + min(csize, 40)]
        pos += 8 + csize + (csize & 1)


def inspect_leg(path: Path) -> LegInfo:
    """Parse a mono WAV leg's header without trusting its sizes; :class:`_Unreadable` if it is not one."""
    size, head, fmt, data_offset, declared = _chunks(path)
    if fmt is None or len(fmt) < 16:
        raise _Unreadable("no fmt chunk")
    tag, channels, rate, _byte_rate, block_align, bits = struct.unpack("<HHIIHH", fmt[:16])
    if tag == 0xFFFE and len(fmt) >= 26:  # WAVE_FORMAT_EXTENSIBLE: the real tag starts the sub-format GUID
        tag = int.from_bytes(fmt[24:26], "little")
    subtype = _LEG_FORMATS.get((tag, bits))
    if subtype is None or channels != 1 or block_align != bits // 8 or not 1000 <= rate <= 192000:
        raise _Unreadable(f"unsupported format (tag {tag}, {channels} ch, {bits} bit, {rate} Hz)")
    riff = int.from_bytes(head[4:8], "little")
    available = max(size - data_offset, 0)
    info = LegInfo(subtype, rate, block_align, data_offset, declared, available, riff_ok=True)
    end = data_offset + info.data_len
    riff_ok = riff == size - 8 or (riff == end - 8 and not info.truncated)
    return dataclasses.replace(info, riff_ok=riff_ok)


def repair_leg(path: Path) -> LegInfo:
    """Rewrite a leg's header from the audio actually present (partial frame trimmed), in place, fsynced.

    Idempotent: running it again (e.g. after a crash during it) finds a sound header and does nothing.
    """
    info = inspect_leg(path)
    if not info.needs_repair:
        return info
    end = info.data_offset + info.data_len
    with open(path, "r+b") as f:
        f.truncate(end)
        f.seek(4)
        f.write(struct.pack("<I", end - 8))
        f.seek(info.data_offset - 4)
        f.write(struct.pack("<I", info.data_len))
        f.flush()
        os.fsync(f.fileno())
    return info


# --------------------------------------------------------------------------- durable file operations

def _fsync_dir(d: Path) -> None:
    fd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _makedirs(d: Path) -> None:
    """``mkdir -p`` whose new entries survive a power cut (each parent fsynced)."""
    missing = []
    p = d
    while not p.exists():
        missing.append(p)
        p = p.parent
    for p in reversed(missing):
        try:
            p.mkdir()
        except FileExistsError:
            pass
        _fsync_dir(p.parent)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _unlink(paths: Iterable[Path]) -> None:
    dirs = set()
    for p in paths:
        try:
            p.unlink()
            dirs.add(p.parent)
        except FileNotFoundError:
            pass
    for d in dirs:
        _fsync_dir(d)


def _quarantine(dir: Path, rec_id: str, files: Iterable[Path]) -> list[str]:
    """Move ``files`` (those that exist) into ``quarantine/<rec_id>/``; their names."""
    q = dir / _quarantine_rel(rec_id)
    moved = []
    for p in files:
        if p.exists():
            _makedirs(q)
            os.replace(p, q / p.name)
            moved.append(p.name)
    if moved:
        _fsync_dir(q)
        _fsync_dir(dir / PARTIAL)
    return moved


def _write_stereo(caller: Path, agent: Path, out: Path, samplerate: int) -> int:
    """Stream the two legs into a PCM16 stereo WAV (left caller, right agent); the shorter leg is padded
    with silence at its end. Returns the frame count; ``out`` is fsynced."""
    frames = 0
    with sf.SoundFile(str(caller)) as c, sf.SoundFile(str(agent)) as a, open(out, "wb") as fh:
        with sf.SoundFile(fh, "w", samplerate=samplerate, channels=2, subtype="PCM_16", format="WAV") as o:
            while True:
                lc, la = c.read(_BLOCK, dtype="int16"), a.read(_BLOCK, dtype="int16")
                n = max(len(lc), len(la))
                if n == 0:
                    break
                block = np.zeros((n, 2), dtype=np.int16)
                block[:len(lc), 0] = lc
                block[:len(la), 1] = la
                o.write(block)
                frames += n
                _step("tmp_partial")
        fh.flush()
        os.fsync(fh.fileno())
    return frames


def _check_final(path: Path) -> int:
    """Frames of a finished recording; :class:`_Unreadable` if it is not a complete stereo PCM16 WAV."""
    size, _head, _fmt, data_offset, declared = _chunks(path)
    try:
        info = sf.info(str(path))
    except sf.SoundFileError as e:
        raise _Unreadable(f"final file unreadable: {e}") from None
    if info.channels != 2 or info.subtype != "PCM_16" or info.format != "WAV":
        raise _Unreadable(f"final file is not stereo PCM16 WAV ({info.channels} ch, {info.subtype})")
    if declared != info.frames * 4 or size != data_offset + declared:  # _write_stereo puts data last
        raise _Unreadable(f"final file header says {declared} data bytes, file holds {size - data_offset}")
    return int(info.frames)


# --------------------------------------------------------------------------- finalize

def finalize(store: RecordingStore, dir: str | Path, rec_id: str, *, ended_at: float | None = None,
             repair: bool = False) -> RecordingRow:
    """Join ``rec_id``'s legs into ``YYYY/MM/DD/<rec_id>.wav`` atomically, record it, delete the legs.

    Call once MixMonitor has closed the legs (StopMixMonitor returns only after closing them).
    Legs that cannot be read are quarantined (status ``quarantined``). Raises only on a bad
    ``rec_id``, :class:`LegsNotClosed`, or an OS error (disk full...): the legs then stay for a
    retry or :func:`recover`.

    Args:
        ended_at: when the call ended; default: start + audio duration.
        repair: legs whose header the writer never completed are repaired in place (status
            ``repaired``, ``truncated`` set) instead of raising :class:`LegsNotClosed`. Only for legs
            nobody writes any more -- :func:`recover` passes it after its idle check.
    """
    dir = Path(dir)
    check_rec_id(rec_id)
    caller, agent = leg_paths(dir, rec_id)
    tmp, final = tmp_path(dir, rec_id), final_path(dir, rec_id)
    row = store.get(rec_id)
    started = row.started_at if row is not None else rec_time(rec_id)
    if row is not None and row.status != "recording" and not caller.exists() and not agent.exists():
        return row  # already finalized (or quarantined)

    try:
        infos = []
        for leg in (caller, agent):
            if not leg.exists():
                raise _Unreadable(f"{leg.name} missing")
            info = inspect_leg(leg)
            if info.needs_repair and not repair:
                raise LegsNotClosed(f"{leg.name}: header says {info.declared} data bytes, {info.available} present")
            infos.append(info)
        broken = [(side, i) for side, i in zip(("caller", "agent"), infos, strict=True) if i.needs_repair]
        if broken:
            store.legs_repaired(rec_id, any(i.truncated for _, i in broken), "repaired: " + "; ".join(
                f"{side} leg header said {i.declared} data bytes, {i.available} present, kept {i.data_len}"
                for side, i in broken))
            for leg, i in zip((caller, agent), infos, strict=True):
                if i.needs_repair:
                    repair_leg(leg)
            _step("legs_repaired")
        rates = {i.samplerate for i in infos}
        if len(rates) != 1:
            raise _Unreadable(f"legs differ in sample rate ({sorted(rates)})")
        if all(i.frames == 0 for i in infos):
            raise _Unreadable("no audio in either leg")
        rate = rates.pop()
        frames = _write_stereo(caller, agent, tmp, rate)
    except OSError:
        tmp.unlink(missing_ok=True)  # e.g. disk full: free the space; the legs stay for recover()
        raise
    except (_Unreadable, sf.SoundFileError) as e:
        tmp.unlink(missing_ok=True)
        moved = _quarantine(dir, rec_id, (caller, agent))
        note = f"quarantined: {e}" + (f" (moved {', '.join(moved)})" if moved else "")
        store.finish(rec_id, status="quarantined", path=_quarantine_rel(rec_id) if moved else None, sha256=None,
                     duration_s=None, ended_at=ended_at, note=note)
        got = store.get(rec_id)
        assert got is not None
        return got
    _step("tmp_written")
    digest = _sha256(tmp)
    _makedirs(final.parent)
    os.replace(tmp, final)
    _fsync_dir(final.parent)
    _fsync_dir(tmp.parent)
    _step("renamed")
    duration = round(frames / rate, 3)
    store.finish(rec_id, status="done", path=_final_rel(rec_id), sha256=digest,  # -> "repaired" if legs were
                 duration_s=duration, ended_at=ended_at if ended_at is not None else started + duration)
    _step("recorded")
    caller.unlink(missing_ok=True)
    _step("leg_deleted")
    agent.unlink(missing_ok=True)
    _fsync_dir(caller.parent)
    got = store.get(rec_id)
    assert got is not None
    return got


def verify(store: RecordingStore, dir: str | Path, rec_id: str) -> bool:
    """Does the finished recording's file exist and hash to the recorded sha256?"""
    row = store.get(rec_id)
    p = final_path(dir, rec_id)
    return row is not None and row.sha256 is not None and p.exists() and _sha256(p) == row.sha256


# --------------------------------------------------------------------------- recovery

@dataclass(frozen=True)
class Recovery:
    """What :func:`recover` did about one recording."""

    rec_id: str
    action: Literal["finalized", "repaired", "quarantined", "verified", "cleaned", "lost", "busy"]
    row: RecordingRow | None


def _partial_files(dir: Path) -> dict[str, list[Path]]:
    """rec_id -> its files in .partial (files with other names are not ours and stay untouched)."""
    out: dict[str, list[Path]] = {}
    part = dir / PARTIAL
    if not part.is_dir():
        return out
    pat = re.compile(rf"({REC_ID.pattern})(-caller\.wav|-agent\.wav|\.tmp\.wav)")
    for p in sorted(part.iterdir()):
        m = pat.fullmatch(p.name)
        if m and p.is_file():
            out.setdefault(m.group(1), []).append(p)
    return out


def recover(store: RecordingStore, dir: str | Path, now: float, *, active: Iterable[str] = (),
            min_idle_s: float = 30.0) -> list[Recovery]:
    """Finish what a crash left behind; deterministic (sorted by rec_id); safe to run again.

    For each rec_id with files in ``.partial`` or a row still ``recording``:

    * still written to -- in ``active``, or a leg modified less than ``min_idle_s`` before ``now``
      (Asterisk may outlive the daemon): left alone (``busy``);
    * legs present: a stale ``.tmp.wav`` is dropped and the legs finalized (repaired or quarantined
      as :func:`finalize` does); if the row is already finished and its file verifies, the legs were
      merely not yet deleted (``cleaned``);
    * no legs, final file present, row ``recording``: the file is checked (complete stereo WAV) and
      recorded (``verified``), or quarantined;
    * a ``.tmp.wav`` alone: quarantined (a tmp is never promoted without its legs);
    * nothing at all for a ``recording`` row: ``lost`` (status ``quarantined``, note says why).
    """
    dir = Path(dir)
    busy_ids = set(active)
    files = _partial_files(dir)
    ids = set(files) | {r.rec_id for r in store.recordings(status="recording", limit=None)}
    out: list[Recovery] = []
    for rec_id in sorted(ids):
        try:
            check_rec_id(rec_id)
        except BadRecId:
            continue  # a row someone else wrote; never a file name
        caller, agent = leg_paths(dir, rec_id)
        tmp, final = tmp_path(dir, rec_id), final_path(dir, rec_id)
        legs = [p for p in (caller, agent) if p.exists()]
        row = store.get(rec_id)
        if (rec_id in busy_ids or any(now - p.stat().st_mtime < min_idle_s for p in legs)
                or (not legs and row is not None and row.status == "recording"
                    and now - row.started_at < min_idle_s)):  # MixMonitor creates its files at the first frame
            out.append(Recovery(rec_id, "busy", row))
            continue
        if legs:
            tmp.unlink(missing_ok=True)
            if row is not None and row.status in ("done", "repaired") and verify(store, dir, rec_id):
                _unlink(legs)
                out.append(Recovery(rec_id, "cleaned", store.get(rec_id)))
                continue
            got = finalize(store, dir, rec_id, repair=True)
            action: Literal["finalized", "repaired", "quarantined"] = (
                "quarantined" if got.status == "quarantined" else "repaired" if got.status == "repaired"
                else "finalized")
            out.append(Recovery(rec_id, action, got))
            continue
        if tmp.exists():
            moved = _quarantine(dir, rec_id, [tmp])
            if row is None or row.status == "recording":
                store.finish(rec_id, status="quarantined", path=_quarantine_rel(rec_id), sha256=None,
                             duration_s=None, ended_at=None,
                             note=f"quarantined: stereo tmp without legs (moved {', '.join(moved)})")
            out.append(Recovery(rec_id, "quarantined", store.get(rec_id)))
            continue
        if row is None or row.status != "recording":
            continue
        if final.exists():
            try:
                frames = _check_final(final)
            except _Unreadable as e:
                moved = _quarantine(dir, rec_id, [final])
                store.finish(rec_id, status="quarantined", path=_quarantine_rel(rec_id), sha256=None,
                             duration_s=None, ended_at=None, note=f"quarantined: {e} (moved {', '.join(moved)})")
                out.append(Recovery(rec_id, "quarantined", store.get(rec_id)))
                continue
            rate = sf.info(str(final)).samplerate
            duration = round(frames / rate, 3)
            store.finish(rec_id, status="done", path=_final_rel(rec_id), sha256=_sha256(final), duration_s=duration,
                         ended_at=row.started_at + duration, note="verified at recovery (row was still recording)")
            out.append(Recovery(rec_id, "verified", store.get(rec_id)))
            continue
        store.finish(rec_id, status="quarantined", path=None, sha256=None, duration_s=None, ended_at=None,
                     note="lost: no leg, tmp or final file found at recovery")
        out.append(Recovery(rec_id, "lost", store.get(rec_id)))
    return out


# --------------------------------------------------------------------------- retention

def purge(store: RecordingStore, dir: str | Path, now: float, retention_days: float, *, dry_run: bool = False,
          on_delete: Callable[[RecordingRow], None] | None = None) -> list[RecordingRow]:
    """Delete recordings (file and quarantine folder) that started more than ``retention_days`` ago.

    Rows stay, marked ``deleted``; rows still ``recording`` are left to :func:`recover`. The file is
    deleted before the row is marked, so a crash in between only makes the next purge redo it.
    Returns the rows deleted (now ``deleted``, path kept for the log); ``dry_run``: those it would delete.

    Args:
        on_delete: called after each deletion (e.g. to log it).
    """
    dir = Path(dir)
    rows = store.expired(now - retention_days * 86400.0)
    if dry_run:
        return rows
    deleted: list[RecordingRow] = []
    for row in rows:
        check_rec_id(row.rec_id)  # paths come from the rec_id, never from the row's path column
        if row.status == "quarantined":
            q = dir / _quarantine_rel(row.rec_id)
            if q.is_dir():
                shutil.rmtree(q)
                _fsync_dir(q.parent)
        else:
            p = final_path(dir, row.rec_id)
            _unlink([p])
            for d in (p.parent, p.parent.parent, p.parent.parent.parent):  # drop empty DD, MM, YYYY
                try:
                    d.rmdir()
                except OSError:
                    break
        store.mark_deleted(row.rec_id, now)
        done = store.get(row.rec_id)
        assert done is not None
        deleted.append(done)
        if on_delete is not None:
            on_delete(done)
    return deleted
