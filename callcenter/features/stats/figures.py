"""Live statistics from the call journal: service level, ASA, AHT, abandon rate, first-call resolution
and after-call survey ratings — per queue and per agent.

One SQL aggregate over the calls that ended (or were answered) in a time window; the daemon
adds what only live state knows (callers waiting now, the longest current wait). The same
function feeds ``/status``, the Prometheus collector, ``callcenter stats`` and the expected
wait announced to callers.
"""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass

__all__ = ["Figures", "queue_figures", "agent_figures", "expected_wait"]

SL_THRESHOLD_S = 20.0


@dataclass(frozen=True)
class Figures:
    offered: int  # calls that entered the queue in the window
    answered: int
    answered_in_sl: int
    abandoned: int
    asa_s: float | None  # average speed of answer (answered calls)
    aht_s: float | None  # average handle time: answer to hang-up of completed calls
    longest_answered_wait_s: float | None
    # First-call resolution: calls flagged as repeats (their number called the same queue within the
    # queue's repeat window), and answered calls that a repeat call followed (the call did not resolve it)
    repeats: int = 0
    answered_repeated: int = 0
    # After-call survey (CSAT): ratings given and their average
    csat_count: int = 0
    csat_avg: float | None = None

    @property
    def fcr_rate(self) -> float | None:
        """First-call resolution: share of answered calls not followed by a repeat call."""
        return 1 - self.answered_repeated / self.answered if self.answered else None

    @property
    def service_level(self) -> float | None:
        done = self.answered + self.abandoned
        return self.answered_in_sl / done if done else None

    @property
    def abandon_rate(self) -> float | None:
        done = self.answered + self.abandoned
        return self.abandoned / done if done else None

    def as_dict(self) -> dict[str, float | int | None]:
        d = asdict(self)
        d["service_level"] = None if self.service_level is None else round(self.service_level, 4)
        d["abandon_rate"] = None if self.abandon_rate is None else round(self.abandon_rate, 4)
        d["fcr_rate"] = None if self.fcr_rate is None else round(self.fcr_rate, 4)
        for k in ("asa_s", "aht_s", "longest_answered_wait_s", "csat_avg"):
            d[k] = None if d[k] is None else round(d[k], 2)
        return d


_SQL = """
SELECT {group},
       COUNT(*),
       SUM(answered_at IS NOT NULL),
       SUM(answered_at IS NOT NULL AND answered_at - entered_at <= :sl),
       SUM(outcome = 'abandoned'),
       AVG(CASE WHEN answered_at IS NOT NULL THEN answered_at - entered_at END),
       AVG(CASE WHEN outcome = 'completed' AND answered_at IS NOT NULL THEN ended_at - answered_at END),
       MAX(CASE WHEN answered_at IS NOT NULL THEN answered_at - entered_at END),
       SUM(repeat_of IS NOT NULL),
       SUM(CASE WHEN answered_at IS NOT NULL THEN EXISTS (SELECT 1 FROM calls r WHERE r.repeat_of = calls.call_id) END),
       COUNT(csat),
       AVG(csat)
FROM calls
WHERE entered_at IS NOT NULL AND entered_at >= :since AND {group} IS NOT NULL
GROUP BY {group}
"""


def _figures(db: sqlite3.Connection, group: str, since: float, sl: float) -> dict[str, Figures]:
    rows = db.execute(_SQL.format(group=group), {"since": since, "sl": sl}).fetchall()
    return {r[0]: Figures(int(r[1]), int(r[2] or 0), int(r[3] or 0), int(r[4] or 0), r[5], r[6], r[7],
                          int(r[8] or 0), int(r[9] or 0), int(r[10] or 0), r[11])
            for r in rows}


def queue_figures(db: sqlite3.Connection, since: float, sl_threshold_s: float = SL_THRESHOLD_S) -> dict[str, Figures]:
    return _figures(db, "queue", since, sl_threshold_s)


def agent_figures(db: sqlite3.Connection, since: float, sl_threshold_s: float = SL_THRESHOLD_S) -> dict[str, Figures]:
    return _figures(db, "agent", since, sl_threshold_s)


def expected_wait(position: int, staffed: int, aht_s: float | None, default_aht_s: float = 180.0) -> float:
    """Seconds until a caller at ``position`` is answered: ``staffed`` agents free up one every
    AHT/staffed seconds on average, so the wait is position x AHT / staffed (live AHT of the queue)."""
    aht = aht_s if aht_s else default_aht_s
    return position * aht / max(staffed, 1) if position > 0 else 0.0
