"""The API's reads of the call journal (blocking: run them on the database thread only)."""

from __future__ import annotations

import json
import sqlite3

__all__ = ["history", "call_context", "intervals", "message_of"]


def message_of(db: sqlite3.Connection, call_id: str) -> dict[str, object] | None:
    """The message the caller left (features.messages), or None (none; no messages table yet)."""
    try:
        row = db.execute("SELECT msg_id, state, duration_s, created_at, heard_at, heard_by FROM messages"
                         " WHERE call_id = ?", (call_id,)).fetchone()
    except sqlite3.OperationalError:
        return None
    return None if row is None else dict(zip(("id", "state", "duration_s", "created_at", "heard_at", "heard_by"),
                                             row, strict=True))


def call_context(db: sqlite3.Connection, call_id: str) -> dict[str, object] | None:
    row = db.execute("SELECT call_id, caller_num, caller_name, queue, ivr_path, entered_at, started_at, agent,"
                     " repeat_of, csat FROM calls WHERE call_id = ?", (call_id,)).fetchone()
    if row is None:
        return None
    try:
        path = [str(p) for p in json.loads(row[4])]
    except (ValueError, TypeError):
        path = []
    return {"call_id": row[0], "caller_num": row[1], "caller_name": row[2], "queue": row[3], "path": path,
            "entered_at": row[5], "started_at": row[6], "agent": row[7], "repeat_of": row[8], "csat": row[9],
            "message": message_of(db, call_id)}


def history(db: sqlite3.Connection, number: str, since: float, before: float, *, exclude: str = "",
            limit: int = 20) -> list[dict[str, object]]:
    """Earlier calls from ``number`` that started in [since, before), newest first."""
    if not number:
        return []
    rows = db.execute("SELECT call_id, started_at, queue, agent, outcome FROM calls WHERE caller_num = ?"
                      " AND started_at >= ? AND started_at < ? AND call_id != ? ORDER BY started_at DESC LIMIT ?",
                      (number, since, before, exclude, limit)).fetchall()
    return [{"call_id": r[0], "at": r[1], "queue": r[2], "agent": r[3], "outcome": r[4]} for r in rows]


def intervals(db: sqlite3.Connection, size_s: int, since: float, by: str, sl_s: float = 20.0) -> list[dict[str, object]]:
    """Per ``size_s`` interval (aligned to the epoch) and queue or agent: offered, answered,
    abandoned, answered within ``sl_s``, ASA and AHT of the calls that entered a queue since ``since``."""
    col = {"queue": "queue", "agent": "agent"}[by]
    rows = db.execute(
        f"SELECT CAST(entered_at / :size AS INTEGER) * :size AS start, {col}, COUNT(*),"
        " SUM(answered_at IS NOT NULL), SUM(outcome = 'abandoned'),"
        " SUM(answered_at IS NOT NULL AND answered_at - entered_at <= :sl),"
        " AVG(CASE WHEN answered_at IS NOT NULL THEN answered_at - entered_at END),"
        " AVG(CASE WHEN outcome = 'completed' AND answered_at IS NOT NULL THEN ended_at - answered_at END)"
        f" FROM calls WHERE entered_at IS NOT NULL AND entered_at >= :since AND {col} IS NOT NULL"
        f" GROUP BY start, {col} ORDER BY start, {col}", {"size": size_s, "since": since, "sl": sl_s}).fetchall()
    return [{"start": float(r[0]), "key": r[1], "offered": r[2], "answered": r[3] or 0, "abandoned": r[4] or 0,
             "answered_in_sl": r[5] or 0, "asa_s": None if r[6] is None else round(r[6], 2),
             "aht_s": None if r[7] is None else round(r[7], 2)} for r in rows]
