"""The supervision audit trail: the ``spy_audit`` table, one row per listen/whisper/barge attempt.

Same persistence policy as every store (:func:`callcenter.persistence.connect`, component
``supervision`` migrations whose step 1 adopts existing databases). Blocking: the daemon calls
it on its :class:`~callcenter.persistence.DbThread` only.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from callcenter.persistence import Migration, Store

__all__ = ["MIGRATIONS", "SpyAudit", "SpyAuditStore"]

MIGRATIONS = [Migration(1, """
CREATE TABLE IF NOT EXISTS spy_audit (
    id               INTEGER PRIMARY KEY,
    at               REAL NOT NULL,
    supervisor       TEXT,
    supervisor_phone TEXT NOT NULL,
    agent            TEXT,
    target_ext       TEXT NOT NULL,
    mode             TEXT NOT NULL,
    outcome          TEXT NOT NULL,
    reason           TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS spy_audit_at ON spy_audit(at);
""")]


@dataclass(frozen=True)
class SpyAudit:
    at: float
    supervisor: str | None
    supervisor_phone: str
    agent: str | None
    target_ext: str
    mode: str
    outcome: str  # e.g. "allowed", "denied", "ended"
    reason: str  # supervision.model.Decision.reason

    def as_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


class SpyAuditStore(Store):
    """The ``spy_audit`` table (see the module doc). ``path``: the daemon's database file."""

    COMPONENT = "supervision"
    MIGRATIONS = MIGRATIONS

    def audit(self, at: float, supervisor: str | None, supervisor_phone: str, agent: str | None, target_ext: str,
              mode: str, outcome: str, reason: str) -> None:
        """One line of the supervision audit trail (every attempt, allowed or not)."""
        self.db.execute("INSERT INTO spy_audit(at, supervisor, supervisor_phone, agent, target_ext, mode, outcome,"
                        " reason) VALUES (?,?,?,?,?,?,?,?)",
                        (at, supervisor, supervisor_phone, agent, target_ext, mode, outcome, reason))

    def audits(self, since: float | None = None, limit: int = 1000) -> list[SpyAudit]:
        rows = self.db.execute(
            "SELECT at, supervisor, supervisor_phone, agent, target_ext, mode, outcome, reason FROM spy_audit"
            " WHERE at>=? ORDER BY at DESC, id DESC LIMIT ?", (since if since is not None else float("-inf"), limit))
        return [SpyAudit(*r) for r in rows]
