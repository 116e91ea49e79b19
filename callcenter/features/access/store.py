"""The API audit trail: the ``api_audit`` table, one row per sign-in attempt and per decision on
an API action (allowed or denied).

Same persistence policy as every store (:func:`callcenter.persistence.connect`, component
``access`` migrations). Blocking: the daemon calls it on its :class:`~callcenter.persistence.DbThread` only.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from callcenter.persistence import Migration, Store

__all__ = ["MIGRATIONS", "AuditRow", "AuditStore"]

MIGRATIONS = [Migration(1, """
CREATE TABLE IF NOT EXISTS api_audit (
    id       INTEGER PRIMARY KEY,
    at       REAL NOT NULL,
    actor    TEXT NOT NULL,
    via      TEXT NOT NULL,
    action   TEXT NOT NULL,
    target   TEXT NOT NULL,
    outcome  TEXT NOT NULL,
    reason   TEXT NOT NULL,
    remote   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS api_audit_at ON api_audit(at);
""")]


@dataclass(frozen=True)
class AuditRow:
    at: float
    actor: str  # user login or token name ("" when nobody was identified)
    via: str  # session | token | "" (a sign-in attempt)
    action: str  # policy action or e.g. "session.create"
    target: str  # what was acted on (an agent, a campaign ...), "" when nothing
    outcome: str  # allowed | denied | ...
    reason: str  # policy.Decision.reason or the service's reason code
    remote: str  # the client's address

    def as_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


class AuditStore(Store):
    """The ``api_audit`` table (see the module doc). ``path``: the daemon's database file."""

    COMPONENT = "access"
    MIGRATIONS = MIGRATIONS

    def audit(self, at: float, actor: str, via: str, action: str, target: str, outcome: str, reason: str,
              remote: str) -> None:
        """One line of the audit trail."""
        self.db.execute("INSERT INTO api_audit(at, actor, via, action, target, outcome, reason, remote)"
                        " VALUES (?,?,?,?,?,?,?,?)", (at, actor, via, action, target, outcome, reason, remote))

    def audits(self, since: float | None = None, limit: int = 1000) -> list[AuditRow]:
        """The newest rows first, from ``since`` on, at most ``limit``."""
        rows = self.db.execute(
            "SELECT at, actor, via, action, target, outcome, reason, remote FROM api_audit"
            " WHERE at>=? ORDER BY at DESC, id DESC LIMIT ?",
            (since if since is not None else float("-inf"), limit))
        return [AuditRow(*r) for r in rows]
