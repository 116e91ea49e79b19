"""Recording metadata: the ``recordings`` table in the daemon's database.

One row per recording: ids, who and where, start/end, pause markers, the final file's path and
sha256, its status and any repair note. Opened with :func:`callcenter.persistence.connect`, its
schema kept by :func:`~callcenter.persistence.migrate` (component ``recording``; step 1 adopts a
database made before the migrations table), every read-modify-write inside
:func:`~callcenter.persistence.transaction`. Blocking: the daemon calls it on its
:class:`~callcenter.persistence.DbThread` only.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Literal

from callcenter.features.recording.files import check_rec_id, rec_time
from callcenter.persistence import Migration, Store, transaction

__all__ = ["MIGRATIONS", "STATUSES", "RecordingRow", "RecordingStore", "Status"]

STATUSES = ("recording", "done", "repaired", "quarantined", "deleted")
Status = Literal["recording", "done", "repaired", "quarantined", "deleted"]

MIGRATIONS = [Migration(1, """
CREATE TABLE IF NOT EXISTS recordings (
    rec_id      TEXT PRIMARY KEY,
    call_id     TEXT NOT NULL DEFAULT '',
    agent       TEXT,
    queue       TEXT,
    campaign    TEXT,
    started_at  REAL NOT NULL,
    ended_at    REAL,
    duration_s  REAL,
    path        TEXT,
    sha256      TEXT,
    status      TEXT NOT NULL DEFAULT 'recording'
                CHECK (status IN ('recording', 'done', 'repaired', 'quarantined', 'deleted')),
    truncated   INTEGER NOT NULL DEFAULT 0,
    pauses      TEXT NOT NULL DEFAULT '[]',
    note        TEXT NOT NULL DEFAULT '',
    deleted_at  REAL,
    repaired    INTEGER NOT NULL DEFAULT 0  -- legs were repaired in place (kept across a crash in finalize)
);
CREATE INDEX IF NOT EXISTS recordings_started ON recordings(started_at);
CREATE INDEX IF NOT EXISTS recordings_call ON recordings(call_id);
""")]


@dataclass(frozen=True)
class RecordingRow:
    rec_id: str
    call_id: str
    agent: str | None
    queue: str | None
    campaign: str | None
    started_at: float
    ended_at: float | None
    duration_s: float | None
    path: str | None  # relative to the recordings dir: YYYY/MM/DD/<rec_id>.wav or quarantine/<rec_id>
    sha256: str | None
    status: Status
    truncated: bool
    pauses: tuple[tuple[float, float | None], ...]  # pause markers: [start, end) offsets in s from started_at
    note: str = ""  # what recovery found or did, one line
    deleted_at: float | None = None

    def as_dict(self) -> dict[str, object]:
        d = dataclasses.asdict(self)
        d["pauses"] = [list(p) for p in self.pauses]
        return d


_COLS = ("rec_id, call_id, agent, queue, campaign, started_at, ended_at, duration_s, path, sha256, status,"
         " truncated, pauses, note, deleted_at")


def _row(r: tuple) -> RecordingRow:  # type: ignore[type-arg]
    v = list(r)
    v[11] = bool(v[11])
    v[12] = tuple((float(a), None if b is None else float(b)) for a, b in json.loads(v[12]))
    return RecordingRow(*v)


def _pauses_json(pauses: tuple[tuple[float, float | None], ...]) -> str:
    return json.dumps([list(p) for p in pauses])


class RecordingStore(Store):
    """The ``recordings`` table (see the module doc). ``path``: the daemon's database file."""

    COMPONENT = "recording"
    MIGRATIONS = MIGRATIONS

    # ---------------------------------------------------------------- life cycle of a recording
    def start(self, rec_id: str, call_id: str, agent: str | None, queue: str | None, started_at: float,
              campaign: str | None = None) -> None:
        """A recording began (call this right before/after MixMonitor starts). Idempotent."""
        self.db.execute("INSERT OR IGNORE INTO recordings(rec_id, call_id, agent, queue, campaign, started_at)"
                        " VALUES (?,?,?,?,?,?)", (check_rec_id(rec_id), call_id, agent, queue, campaign, started_at))

    def pause(self, rec_id: str, at: float) -> bool:
        """Open a pause marker (MixMonitorMute on); False if not recording or already paused."""
        with transaction(self.db):
            row = self.get(rec_id)
            if row is None or row.status != "recording" or (row.pauses and row.pauses[-1][1] is None):
                return False
            self._set_pauses(rec_id, row.pauses + ((round(max(at - row.started_at, 0.0), 3), None),))
            return True

    def resume(self, rec_id: str, at: float) -> bool:
        """Close the open pause marker; False if there is none."""
        with transaction(self.db):
            row = self.get(rec_id)
            if row is None or row.status != "recording" or not row.pauses or row.pauses[-1][1] is not None:
                return False
            start = row.pauses[-1][0]
            self._set_pauses(rec_id, row.pauses[:-1] + ((start, max(round(at - row.started_at, 3), start)),))
            return True

    def _set_pauses(self, rec_id: str, pauses: tuple[tuple[float, float | None], ...]) -> None:
        self.db.execute("UPDATE recordings SET pauses=? WHERE rec_id=?", (_pauses_json(pauses), rec_id))

    def _ensure(self, rec_id: str) -> RecordingRow:
        """The row, created from the rec_id alone if the daemon never wrote one (crash before start())."""
        row = self.get(rec_id)
        if row is None:
            self.start(rec_id, "", None, None, rec_time(rec_id))
            row = self.get(rec_id)
            assert row is not None
        return row

    def legs_repaired(self, rec_id: str, truncated: bool, note: str) -> None:
        """Remember, before the legs are rewritten, that they were repaired (a crash must not erase it)."""
        with transaction(self.db):
            row = self._ensure(rec_id)
            if note not in row.note:
                note = f"{row.note}; {note}" if row.note else note
            else:
                note = row.note
            self.db.execute("UPDATE recordings SET repaired=1, truncated=MAX(truncated, ?), note=? WHERE rec_id=?",
                            (int(truncated), note, rec_id))

    def finish(self, rec_id: str, *, status: Status, path: str | None, sha256: str | None,
               duration_s: float | None, ended_at: float | None, truncated: bool = False, note: str = "") -> None:
        """Record how a recording ended (used by ``files.finalize`` and ``files.recover``).

        ``done`` becomes ``repaired`` if :meth:`legs_repaired` was called; the notes add up; an open
        pause is closed at the end of the audio.
        """
        with transaction(self.db):
            row = self._ensure(rec_id)
            was_repaired = bool(self.db.execute("SELECT repaired FROM recordings WHERE rec_id=?",
                                                (rec_id,)).fetchone()[0])
            if status == "done" and was_repaired:
                status = "repaired"
            truncated = truncated or row.truncated
            if row.note and row.note not in note:
                note = f"{row.note}; {note}" if note else row.note
            pauses = row.pauses
            if pauses and pauses[-1][1] is None:
                end = duration_s if duration_s is not None else pauses[-1][0]
                pauses = pauses[:-1] + ((pauses[-1][0], max(round(end, 3), pauses[-1][0])),)
            self.db.execute(
                "UPDATE recordings SET status=?, path=?, sha256=?, duration_s=?, ended_at=?, truncated=?, pauses=?,"
                " note=? WHERE rec_id=?",
                (status, path, sha256, duration_s, ended_at, int(truncated), _pauses_json(pauses), note, rec_id))

    def mark_deleted(self, rec_id: str, at: float) -> None:
        self.db.execute("UPDATE recordings SET status='deleted', deleted_at=? WHERE rec_id=?", (at, rec_id))

    # ---------------------------------------------------------------- queries
    def get(self, rec_id: str) -> RecordingRow | None:
        r = self.db.execute(f"SELECT {_COLS} FROM recordings WHERE rec_id=?", (rec_id,)).fetchone()
        return _row(r) if r else None

    def recordings(self, *, agent: str | None = None, queue: str | None = None, call_id: str | None = None,
                   status: str | None = None, since: float | None = None, until: float | None = None,
                   limit: int | None = 1000) -> list[RecordingRow]:
        """Recordings matching every filter given, newest first."""
        where: list[str] = []
        args: list[object] = []
        for col, val in (("agent", agent), ("queue", queue), ("call_id", call_id), ("status", status)):
            if val is not None:
                where.append(f"{col}=?")
                args.append(val)
        if since is not None:
            where.append("started_at>=?")
            args.append(since)
        if until is not None:
            where.append("started_at<?")
            args.append(until)
        sql = f"SELECT {_COLS} FROM recordings" + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY started_at DESC, rec_id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return [_row(r) for r in self.db.execute(sql, args)]

    def expired(self, before: float) -> list[RecordingRow]:
        """Finished or quarantined recordings that started before ``before`` (oldest first)."""
        return [_row(r) for r in self.db.execute(
            f"SELECT {_COLS} FROM recordings WHERE started_at<? AND status IN ('done','repaired','quarantined')"
            " ORDER BY started_at, rec_id", (before,))]
