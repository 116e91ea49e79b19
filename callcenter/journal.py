"""SQLite call journal: one row per call; a subscriber of the domain-event bus.

No feature writes the journal: :meth:`Journal.subscribe` turns each domain event
(:mod:`callcenter.events`) into one small write posted to the daemon's
:class:`~callcenter.persistence.DbThread`, so a locked or slow database never blocks the event
loop. Every method here runs on the thread that owns the connection (the database thread in
the daemon; the caller's own thread in tools and tests).

The tables of other features live beside it on the same connection: callbacks
(:mod:`callcenter.features.callback.store`) and agents/pauses (:mod:`callcenter.features.acd.store`);
the journal keeps thin delegating methods for them.

The statistics read the journal through indexes, bounded by their window: ``calls_entered``
(queue and agent figures), ``calls_started`` (outcome counts, recent calls), ``calls_ended``.
"""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from callcenter import events as ev
from callcenter.features.acd.agents import AgentState
from callcenter.features.acd.model import Call
from callcenter.features.acd.store import AgentStore
from callcenter.features.callback.store import CallbackStore
from callcenter.features.transfer.store import LegStore
from callcenter.persistence import Migration, connect, migrate, transaction
from callcenter.persistence.db import column_missing

if TYPE_CHECKING:
    from callcenter.persistence import DbThread

__all__ = ["Journal", "CallRecord", "MIGRATIONS", "JOURNALLED", "OutboxHook"]

E = TypeVar("E", bound=ev.DomainEvent)
# What the journal writes (others' outbox rows for other events need a transaction of their own).
JOURNALLED: frozenset[type[ev.DomainEvent]] = frozenset({
    ev.CallStarted, ev.CallPath, ev.CallQueued, ev.CallOffered, ev.CallAnswered, ev.CallEnded, ev.CallOutcome,
    ev.CallOverflowed, ev.AgentStateChanged, ev.CallbackStored, ev.CallbackDone, ev.CallRepeat, ev.CsatRated,
    ev.MessageLeft, ev.CallLegEnded, ev.CallLegStarted, ev.CallTransferred})
OutboxHook = Callable[[ev.DomainEvent], "Callable[[sqlite3.Connection], None] | None"]


def _add_route(db: sqlite3.Connection) -> None:
    if column_missing(db, "calls", "route"):  # journals from before routing explanations
        db.execute("ALTER TABLE calls ADD COLUMN route TEXT NOT NULL DEFAULT ''")


def _add_extras(db: sqlite3.Connection) -> None:
    """Repeat callers (``repeat_of``: the earlier call of the same number to the same queue), the
    after-call survey's rating (``csat``) and a message left while waiting (``message``: its id)."""
    for col in ("repeat_of TEXT", "csat INTEGER", "message TEXT"):
        if column_missing(db, "calls", col.split()[0]):
            db.execute(f"ALTER TABLE calls ADD COLUMN {col}")
    db.execute("CREATE INDEX IF NOT EXISTS calls_caller ON calls(caller_num, entered_at)"
               " WHERE entered_at IS NOT NULL")
    db.execute("CREATE INDEX IF NOT EXISTS calls_repeat_of ON calls(repeat_of) WHERE repeat_of IS NOT NULL")


MIGRATIONS = [
    Migration(1, """
CREATE TABLE IF NOT EXISTS calls (
    call_id     TEXT PRIMARY KEY,
    uniqueid    TEXT NOT NULL,
    channel     TEXT NOT NULL,
    caller_num  TEXT NOT NULL DEFAULT '',
    caller_name TEXT NOT NULL DEFAULT '',
    did         TEXT NOT NULL DEFAULT '',
    ivr_path    TEXT NOT NULL DEFAULT '[]',
    queue       TEXT,
    started_at  REAL NOT NULL,
    entered_at  REAL,
    answered_at REAL,
    ended_at    REAL,
    agent       TEXT,
    outcome     TEXT
);
CREATE INDEX IF NOT EXISTS calls_started ON calls(started_at);
"""),
    Migration(2, fn=_add_route),
    # The live statistics read only their window: queue/agent figures by entry time, the rest by end.
    Migration(3, """
CREATE INDEX IF NOT EXISTS calls_entered ON calls(entered_at) WHERE entered_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS calls_ended ON calls(ended_at) WHERE ended_at IS NOT NULL;
"""),
    Migration(4, fn=_add_extras),
]

COLUMNS = ("call_id, uniqueid, channel, caller_num, caller_name, did, ivr_path, queue, started_at, entered_at,"
           " answered_at, ended_at, agent, outcome, route, repeat_of, csat, message")


@dataclass(frozen=True)
class CallRecord:
    call_id: str
    uniqueid: str
    channel: str
    caller_num: str
    caller_name: str
    did: str
    ivr_path: tuple[str, ...]
    queue: str | None
    started_at: float
    entered_at: float | None
    answered_at: float | None
    ended_at: float | None
    agent: str | None
    outcome: str | None
    route: str = ""  # the routing decision's explanation (strategy, score, candidates)
    repeat_of: str | None = None  # a repeat caller: the earlier call (same number, same queue, within the window)
    csat: int | None = None  # the after-call survey's rating
    message: str | None = None  # the id of the message the caller left while waiting


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def as_data(text: str, limit: int) -> str:
    """Caller-sent text kept as data, never as control: control characters (a CR/LF caller ID) shown
    escaped (``\\n``), bounded in length — whoever reads the journal (exports, logs) sees one line."""
    return _CONTROL.sub(lambda m: m[0].encode("unicode_escape").decode(), text)[:limit]


class Journal:
    """The call journal on one connection: a path (opened with the one connection policy) or a connection."""

    def __init__(self, path: str | Path | sqlite3.Connection):
        if isinstance(path, sqlite3.Connection):
            self.path, self.db = "", path
        else:
            self.path = str(path)
            self.db = connect(self.path)
        migrate(self.db, "journal", MIGRATIONS)
        self.callback_store = CallbackStore(self.db)
        self.agent_store = AgentStore(self.db)
        self.leg_store = LegStore(self.db)  # transferred calls (features/transfer)
        self._outbox: list[OutboxHook] = []

    def close(self) -> None:
        self.db.close()

    # ---------------------------------------------------------------- the bus
    def add_outbox(self, fn: OutboxHook) -> None:
        """``fn(event)`` is asked, on the event loop, for every event the journal writes: it returns a
        writer of that event's outbox rows (``writer(connection)``, run on the database thread), or
        None. With rows, the journal's write and theirs run in one transaction: both or neither."""
        self._outbox.append(fn)

    def subscribe(self, bus: ev.Bus, db_thread: DbThread) -> None:
        """Journal every domain event that changes a call, an agent or a callback: each handler only
        posts its write to ``db_thread`` (in publication order; a failed write is logged and counted there)."""
        post = db_thread.post

        def on(kind: type[E], write: Callable[[E], None]) -> None:
            def handler(e: E) -> None:
                extra = [w for fn in self._outbox if (w := fn(e)) is not None]
                if extra:
                    post(self._together, write, e, extra)
                else:
                    post(write, e)
            bus.subscribe(kind, handler)

        on(ev.CallStarted, lambda e: self.call_started(e.call_id, e.uniqueid, e.channel, e.caller_num,
                                                       e.caller_name, e.did, e.at))
        on(ev.CallPath, lambda e: self.call_path(e.call_id, e.path))
        on(ev.CallQueued, lambda e: self.call_queued(e.call_id, e.queue, e.at))
        on(ev.CallOffered, lambda e: self.call_route(e.call_id, e.explain))
        on(ev.CallAnswered, lambda e: self.call_answered(e.call_id, e.agent, e.at))
        on(ev.CallEnded, lambda e: self.call_ended(e.call_id, e.outcome, e.at))
        on(ev.CallOutcome, lambda e: self.call_outcome(e.call_id, e.outcome))
        on(ev.CallOverflowed, lambda e: self.call_overflow(e.call_id, e.queue))
        on(ev.AgentStateChanged, self._agent_changed)
        on(ev.CallbackStored, lambda e: self.save_callback(e.call, e.at))
        on(ev.CallbackDone, lambda e: self.delete_callback(e.call_id))
        on(ev.CallRepeat, lambda e: self.db.execute("UPDATE calls SET repeat_of=? WHERE call_id=?",
                                                    (e.previous, e.call_id)))
        on(ev.CsatRated, lambda e: self.db.execute("UPDATE calls SET csat=? WHERE call_id=?", (e.rating, e.call_id)))
        on(ev.MessageLeft, lambda e: self.db.execute("UPDATE calls SET message=? WHERE call_id=?",
                                                     (e.msg_id, e.call_id)))
        on(ev.CallLegEnded, lambda e: self.leg_store.leg_ended(e.call_id, e.agent, e.answered_at, e.at, e.how))
        on(ev.CallLegStarted, lambda e: self.leg_store.leg_started(e.call_id, e.agent))
        on(ev.CallTransferred, lambda e: self.leg_store.transferred(e.call_id, e.kind, e.to_kind, e.target))

    def _together(self, write: Callable[[E], None], e: E, extra: list[Callable[[sqlite3.Connection], None]]) -> None:
        with transaction(self.db):
            write(e)
            for w in extra:
                w(self.db)

    def _agent_changed(self, e: ev.AgentStateChanged) -> None:
        self.save_agent(e.agent, AgentState(e.state), e.reason, e.idle_since)
        if e.pause_reason_changed:  # pause intervals per reason, for durations in the statistics
            self.pause_changed(e.agent, e.paused_reason, e.at)

    # ---------------------------------------------------------------- calls
    def call_started(self, call_id: str, uniqueid: str, channel: str, caller_num: str, caller_name: str,
                     did: str, at: float) -> None:
        self.db.execute(
            "INSERT OR IGNORE INTO calls(call_id, uniqueid, channel, caller_num, caller_name, did, started_at)"
            " VALUES (?,?,?,?,?,?,?)", (call_id, uniqueid, channel, as_data(caller_num, 64),
                                        as_data(caller_name, 128), did, at))

    def call_path(self, call_id: str, path: tuple[str, ...]) -> None:
        self.db.execute("UPDATE calls SET ivr_path=? WHERE call_id=?", (json.dumps(list(path)), call_id))

    def call_queued(self, call_id: str, queue: str, at: float) -> None:
        # A fallback to another queue re-queues the same call: keep the first entry time.
        self.db.execute("UPDATE calls SET queue=?, entered_at=COALESCE(entered_at, ?) WHERE call_id=?",
                        (queue, at, call_id))

    def call_answered(self, call_id: str, agent: str, at: float) -> None:
        self.db.execute("UPDATE calls SET agent=?, answered_at=? WHERE call_id=?", (agent, at, call_id))

    def call_ended(self, call_id: str, outcome: str, at: float) -> None:
        """First outcome wins (a fallback that leads to an answered call is recorded by the later
        stages as they update; ``ended`` is written only once the caller is really gone)."""
        self.db.execute("UPDATE calls SET outcome=?, ended_at=? WHERE call_id=? AND ended_at IS NULL",
                        (outcome, at, call_id))

    def call_overflow(self, call_id: str, queue: str) -> None:
        """Overflow to another queue: the record follows the caller; the path keeps the trail."""
        self.db.execute("UPDATE calls SET queue=?, ivr_path=json_insert(ivr_path, '$[#]', ?) WHERE call_id=?",
                        (queue, "overflow:" + queue, call_id))

    def call_route(self, call_id: str, explain: str) -> None:
        self.db.execute("UPDATE calls SET route=? WHERE call_id=?", (explain, call_id))

    def call_outcome(self, call_id: str, outcome: str) -> None:
        self.db.execute("UPDATE calls SET outcome=? WHERE call_id=?", (outcome, call_id))

    def call(self, call_id: str) -> CallRecord | None:
        row = self.db.execute(f"SELECT {COLUMNS} FROM calls WHERE call_id=?", (call_id,)).fetchone()
        return _record(row) if row else None

    def calls(self, limit: int = 100) -> list[CallRecord]:
        rows = self.db.execute(f"SELECT {COLUMNS} FROM calls ORDER BY started_at DESC LIMIT ?", (limit,)).fetchall()
        return [_record(r) for r in rows]

    def outcome_counts(self, since: float | None = None) -> dict[str, int]:
        """Calls by outcome (``active`` while none yet); with ``since``, only the calls started since
        then, read through ``calls_started`` (what ``/status`` shows: bounded by its window)."""
        return outcome_counts_on(self.db, since)

    # ---------------------------------------------------------------- callbacks (features/callback/store.py)
    def save_callback(self, call: Call, at: float) -> None:
        self.callback_store.save(call, at)

    def delete_callback(self, call_id: str) -> None:
        self.callback_store.delete(call_id)

    def callbacks(self) -> list[Call]:
        return self.callback_store.all()

    # ---------------------------------------------------------------- agents (features/acd/store.py)
    def save_agent(self, agent: str, state: AgentState, reason: str, since: float) -> None:
        self.agent_store.save_agent(agent, state, reason, since)

    def pause_changed(self, agent: str, reason: str | None, at: float) -> None:
        """Close the agent's open pause (if any) and open a new one when ``reason`` is given."""
        self.agent_store.pause_changed(agent, reason, at)

    def pause_seconds(self, since: float, now: float) -> dict[str, dict[str, float]]:
        """agent -> reason -> seconds paused within [since, now] (open pauses count up to now)."""
        return self.agent_store.pause_seconds(since, now)

    def agents(self) -> dict[str, tuple[AgentState, str, float]]:
        return self.agent_store.agents()




def outcome_counts_on(db: sqlite3.Connection, since: float | None = None) -> dict[str, int]:
    """:meth:`Journal.outcome_counts` on any connection to the journal (the statistics' read connection)."""
    if since is None:
        return dict(db.execute("SELECT COALESCE(outcome,'active'), COUNT(*) FROM calls GROUP BY 1").fetchall())
    return dict(db.execute("SELECT COALESCE(outcome,'active'), COUNT(*) FROM calls WHERE started_at >= ? GROUP BY 1",
                           (since,)).fetchall())


def _record(row: tuple) -> CallRecord:
    vals = list(row)
    vals[6] = tuple(json.loads(vals[6]))
    return CallRecord(*vals)
