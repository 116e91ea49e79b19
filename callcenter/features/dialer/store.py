"""Campaigns and leads in SQLite: CSV import, atomic reservation, DNC, calling windows, retries.

Rules of this module:

* Every phone number is stored in E.164 (``phonenumbers``, with the campaign's default region
  for national numbers). A CSV import never loses a row silently: it returns the number
  imported and one :class:`Rejected` (line number, reason) per row it refused.
* :meth:`LeadStore.reserve` is the only way to hand a lead to a dialer worker. It runs in one
  :func:`~callcenter.persistence.transaction` (``BEGIN IMMEDIATE``: SQLite's write lock) and
  flips ``state`` from ``new`` to ``reserved`` with ``WHERE state = 'new'``, so two workers -- threads with their own
  connections or separate processes -- never get the same lead.
* The do-not-call list is checked inside that transaction, i.e. at dial time: a number added
  mid-campaign is never dialled again, even if it was imported earlier.
* Calling windows are in the callee's local time (47 CFR 64.1200(c)(1): not before 08:00 nor
  at/after 21:00): the lead's ``tz`` if the CSV gave one, else every zone
  ``phonenumbers.timezone`` maps the number to -- and the window must hold in *all* of them.
  Times are computed with :mod:`zoneinfo`, so DST changes are exact.
* Retries back off by outcome (no answer, busy, machine, abandoned) up to ``max_attempts``;
  every attempt's disposition is recorded.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import phonenumbers
from phonenumbers import timezone as pn_timezone

from callcenter.persistence import Migration, Store, transaction
from callcenter.persistence.db import column_missing

__all__ = [
    "OUTCOMES",
    "Campaign",
    "CampaignRow",
    "Lead",
    "LeadStore",
    "Rejected",
    "normalise_phone",
    "within_window",
    "zones_for",
]

# outcome -> (final?, default back-off seconds)
OUTCOMES: dict[str, tuple[bool, float]] = {
    "human": (True, 0.0),  # reached a person: the lead is done (the agent's disposition says how)
    "no_answer": (False, 3600.0),
    "busy": (False, 600.0),
    "machine": (False, 4 * 3600.0),
    "abandoned": (False, 72 * 3600.0),  # Ofcom: no repeat within 72 h without a guaranteed agent
    "invalid": (True, 0.0),  # number does not exist
    "dnc_request": (True, 0.0),  # the callee asked not to be called: also added to the DNC list
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS campaigns (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    default_region TEXT NOT NULL,
    window_start TEXT NOT NULL DEFAULT '08:00',
    window_end TEXT NOT NULL DEFAULT '21:00',
    max_attempts INTEGER NOT NULL DEFAULT 5,
    retry_no_answer_s REAL NOT NULL DEFAULT 3600,
    retry_busy_s REAL NOT NULL DEFAULT 600,
    retry_machine_s REAL NOT NULL DEFAULT 14400,
    retry_abandoned_s REAL NOT NULL DEFAULT 259200,
    max_abandon_rate REAL NOT NULL DEFAULT 0.03
);
CREATE TABLE IF NOT EXISTS leads (
    id INTEGER PRIMARY KEY,
    campaign_id INTEGER NOT NULL REFERENCES campaigns(id),
    phone TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    zones TEXT NOT NULL,
    tz_given INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT 'new' CHECK (state IN ('new', 'reserved', 'done', 'exhausted')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL DEFAULT 0,
    reserved_by TEXT,
    reserved_at REAL,
    last_outcome TEXT,
    source_line INTEGER,
    UNIQUE (campaign_id, phone)
);
CREATE INDEX IF NOT EXISTS leads_pick ON leads (campaign_id, state, next_at, id);
CREATE TABLE IF NOT EXISTS dnc (
    phone TEXT PRIMARY KEY,
    added_at REAL NOT NULL,
    source TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS dispositions (
    id INTEGER PRIMARY KEY,
    lead_id INTEGER NOT NULL REFERENCES leads(id),
    at REAL NOT NULL,
    attempt INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    worker TEXT NOT NULL DEFAULT ''
);
"""


def _add_state(db: sqlite3.Connection) -> None:
    if column_missing(db, "campaigns", "state"):
        db.execute("ALTER TABLE campaigns ADD COLUMN state TEXT NOT NULL DEFAULT 'created'")


def _add_settings(db: sqlite3.Connection) -> None:
    """A campaign's dialling settings (queue, trunk, mode ... as JSON) and where it is defined:
    ``yaml`` (upserted from the config at start and reload), ``cli``, or ``removed`` (gone from
    the YAML: no longer dialled, its leads and history kept)."""
    if column_missing(db, "campaigns", "settings"):
        db.execute("ALTER TABLE campaigns ADD COLUMN settings TEXT NOT NULL DEFAULT '{}'")
    if column_missing(db, "campaigns", "defined_in"):
        db.execute("ALTER TABLE campaigns ADD COLUMN defined_in TEXT NOT NULL DEFAULT 'cli'")


MIGRATIONS = [
    Migration(1, _SCHEMA),
    Migration(2, fn=_add_state),
    Migration(3, fn=_add_settings),
    Migration(4, "CREATE INDEX IF NOT EXISTS leads_reserved ON leads (state, reserved_by, reserved_at)"),
]


@dataclass(frozen=True)
class Campaign:
    id: int
    name: str
    default_region: str
    window_start: dt.time
    window_end: dt.time
    max_attempts: int
    retry_s: dict[str, float]
    max_abandon_rate: float


@dataclass(frozen=True)
class CampaignRow:
    """A campaign as the live dialler reads it: the store's columns and its dialling settings."""

    id: int
    name: str
    state: str
    defined_in: str
    default_region: str
    window: str
    max_attempts: int
    max_abandon_rate: float
    settings: dict[str, object]


@dataclass(frozen=True)
class Lead:
    id: int
    campaign_id: int
    phone: str
    name: str
    zones: tuple[str, ...]
    state: str = "new"
    attempts: int = 0
    next_at: float = 0.0


@dataclass(frozen=True)
class Rejected:
    """A CSV row that was not imported: its 1-based line number in the file, and why."""

    line: int
    reason: str
    row: tuple[str, ...] = ()


# --------------------------------------------------------------------------- pure helpers

_ALL_ZONES: frozenset[str] | None = None


def _valid_zone(name: str) -> bool:
    global _ALL_ZONES
    if _ALL_ZONES is None:
        _ALL_ZONES = frozenset(available_timezones())
    if name not in _ALL_ZONES:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def normalise_phone(raw: str, region: str) -> str:
    """E.164 for ``raw`` (national numbers read in ``region``); ValueError says why not."""
    text = (raw or "").strip()
    if not text:
        raise ValueError("empty phone number")
    try:
        num = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as e:
        raise ValueError(f"unparsable phone number {text!r}: {e}") from None
    if not phonenumbers.is_valid_number(num):
        raise ValueError(f"invalid phone number {text!r}")
    return phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)


def zones_for(e164: str) -> tuple[str, ...]:
    """Every IANA zone the number may be in (sorted); () when unknown."""
    num = phonenumbers.parse(e164, None)
    zs = tuple(sorted(z for z in pn_timezone.time_zones_for_number(num) if z and z != "Etc/Unknown"))
    return tuple(z for z in zs if _valid_zone(z))


def _parse_hhmm(text: str) -> dt.time:
    h, m = text.split(":")
    if h == "24" and m == "00":
        return dt.time(23, 59, 59, 999999)
    return dt.time(int(h), int(m))


def within_window(lead: Lead, now: float | dt.datetime, start: str | dt.time = "08:00",
                  end: str | dt.time = "21:00") -> bool:
    """True when ``now`` is inside [start, end) local time in EVERY zone of the lead.

    ``now`` is Unix time or an aware datetime. A lead with no zone is never in its window
    (we cannot prove the callee's local time).
    """
    if not lead.zones:
        return False
    t0 = _parse_hhmm(start) if isinstance(start, str) else start
    t1 = _parse_hhmm(end) if isinstance(end, str) else end
    if isinstance(now, dt.datetime):
        if now.tzinfo is None:
            raise ValueError("within_window needs an aware datetime or Unix time")
        instant = now
    else:
        instant = dt.datetime.fromtimestamp(now, dt.UTC)
    for z in lead.zones:
        local = instant.astimezone(ZoneInfo(z)).time()
        if not (t0 <= local < t1):
            return False
    return True


# --------------------------------------------------------------------------- the store

# A campaign's life, as a table; anything else is an IllegalCampaignTransition.
CAMPAIGN_TRANSITIONS: dict[str, dict[str, str]] = {
    "created": {"start": "running", "stop": "stopped"},
    "running": {"pause": "paused", "stop": "stopped"},
    "paused": {"start": "running", "stop": "stopped"},
    "stopped": {},
}


class IllegalCampaignTransition(Exception):
    def __init__(self, name: str, state: str, trigger: str):
        self.state, self.trigger = state, trigger
        super().__init__(f"campaign {name!r} is {state}: cannot {trigger}")


class LeadStore(Store):
    """One SQLite connection (:func:`callcenter.persistence.connect`), used by one thread at a time:
    the daemon calls it only on its database thread."""

    COMPONENT = "dialer"
    MIGRATIONS = MIGRATIONS
    ROW_FACTORY = sqlite3.Row

    # ---- campaigns
    def create_campaign(self, name: str, default_region: str = "US", *, window_start: str = "08:00",
                        window_end: str = "21:00", max_attempts: int = 5,
                        retry_no_answer_s: float = 3600, retry_busy_s: float = 600,
                        retry_machine_s: float = 14400, retry_abandoned_s: float = 259200,
                        max_abandon_rate: float = 0.03, settings: dict[str, object] | None = None,
                        defined_in: str = "cli") -> int:
        region = _checked(default_region, window_start, window_end, max_attempts)
        cur = self.db.execute(
            "INSERT INTO campaigns (name, default_region, window_start, window_end, max_attempts,"
            " retry_no_answer_s, retry_busy_s, retry_machine_s, retry_abandoned_s, max_abandon_rate,"
            " settings, defined_in) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (name, region, window_start, window_end, max_attempts, retry_no_answer_s, retry_busy_s,
             retry_machine_s, retry_abandoned_s, max_abandon_rate, json.dumps(settings or {}), defined_in))
        return int(cur.lastrowid or 0)

    def upsert_campaign(self, name: str, default_region: str, *, window_start: str, window_end: str,
                        max_attempts: int, max_abandon_rate: float, settings: dict[str, object]) -> int:
        """A campaign the YAML defines: its settings are the YAML's; its state and leads are kept."""
        region = _checked(default_region, window_start, window_end, max_attempts)
        with transaction(self.db):
            row = self.db.execute("SELECT id FROM campaigns WHERE name = ?", (name,)).fetchone()
            if row is None:
                return self.create_campaign(name, region, window_start=window_start, window_end=window_end,
                                            max_attempts=max_attempts, max_abandon_rate=max_abandon_rate,
                                            settings=settings, defined_in="yaml")
            self.db.execute(
                "UPDATE campaigns SET default_region = ?, window_start = ?, window_end = ?, max_attempts = ?,"
                " max_abandon_rate = ?, settings = ?, defined_in = 'yaml' WHERE id = ?",
                (region, window_start, window_end, max_attempts, max_abandon_rate, json.dumps(settings),
                 row["id"]))
            return int(row["id"])

    def retire_yaml_campaigns(self, keep: Iterable[str]) -> list[str]:
        """Campaigns the YAML no longer defines are ``removed``: never dialled again, leads kept."""
        keep = set(keep)
        with transaction(self.db):
            gone = [r["name"] for r in self.db.execute("SELECT name FROM campaigns WHERE defined_in = 'yaml'")
                    if r["name"] not in keep]
            self.db.executemany("UPDATE campaigns SET defined_in = 'removed' WHERE name = ?", [(n,) for n in gone])
        return gone

    def campaign_rows(self) -> list[CampaignRow]:
        """Every campaign still defined (YAML or CLI), with its settings."""
        return [CampaignRow(id=r["id"], name=r["name"], state=r["state"], defined_in=r["defined_in"],
                            default_region=r["default_region"], window=f"{r['window_start']}-{r['window_end']}",
                            max_attempts=r["max_attempts"], max_abandon_rate=r["max_abandon_rate"],
                            settings=json.loads(r["settings"] or "{}"))
                for r in self.db.execute("SELECT * FROM campaigns WHERE defined_in != 'removed' ORDER BY id")]

    def rolling(self, campaign_id: int, since: float) -> tuple[int, int]:
        """(human answers, abandoned) of the campaign's dispositions since ``since``."""
        rows = self.db.execute(
            "SELECT d.outcome, COUNT(*) FROM dispositions d JOIN leads l ON l.id = d.lead_id"
            " WHERE l.campaign_id = ? AND d.at >= ? AND d.outcome IN ('human', 'abandoned') GROUP BY 1",
            (campaign_id, since)).fetchall()
        n = {r[0]: int(r[1]) for r in rows}
        return n.get("human", 0) + n.get("abandoned", 0), n.get("abandoned", 0)

    def campaign(self, campaign_id: int) -> Campaign:
        r = self.db.execute("SELECT * FROM campaigns WHERE id = ?", (campaign_id,)).fetchone()
        if r is None:
            raise KeyError(f"no campaign {campaign_id}")
        return Campaign(
            id=r["id"], name=r["name"], default_region=r["default_region"],
            window_start=_parse_hhmm(r["window_start"]), window_end=_parse_hhmm(r["window_end"]),
            max_attempts=r["max_attempts"],
            retry_s={"no_answer": r["retry_no_answer_s"], "busy": r["retry_busy_s"],
                     "machine": r["retry_machine_s"], "abandoned": r["retry_abandoned_s"]},
            max_abandon_rate=r["max_abandon_rate"])

    # ---- import
    def import_csv(self, campaign_id: int, source: str | Path | io.TextIOBase) -> tuple[int, list[Rejected]]:
        """Import leads from CSV (header with ``phone``; optional ``name``, ``tz``).

        Returns (imported, rejected); every data row is either imported or rejected with its
        line number and a reason. All accepted rows go in one transaction.
        """
        camp = self.campaign(campaign_id)
        if isinstance(source, (str, Path)):
            with open(source, newline="", encoding="utf-8-sig") as f:
                return self._import(camp, f)
        return self._import(camp, source)

    def _import(self, camp: Campaign, f: Iterable[str]) -> tuple[int, list[Rejected]]:
        reader = csv.reader(f)
        rejected: list[Rejected] = []
        try:
            header = next(reader)
        except StopIteration:
            return 0, [Rejected(1, "empty file: no header")]
        except csv.Error as e:
            return 0, [Rejected(1, f"bad CSV: {e}")]
        cols = [h.strip().lower() for h in header]
        if "phone" not in cols:
            return 0, [Rejected(1, f"header has no 'phone' column (got {', '.join(cols) or 'nothing'})")]
        unknown = [c for c in cols if c not in ("phone", "name", "tz")]
        if unknown:
            return 0, [Rejected(1, f"header: unknown column(s) {', '.join(unknown)} (allowed: phone, name, tz)")]
        seen: dict[str, int] = {}
        rows: list[tuple[str, str, str, int, int]] = []
        line = reader.line_num
        while True:
            try:
                raw = next(reader)
            except StopIteration:
                break
            except csv.Error as e:
                rejected.append(Rejected(reader.line_num, f"bad CSV: {e}"))
                continue
            line = reader.line_num  # last physical line of this record
            if not raw or all(not c.strip() for c in raw):
                rejected.append(Rejected(line, "empty row", tuple(raw)))
                continue
            if len(raw) != len(cols):
                rejected.append(Rejected(line, f"expected {len(cols)} fields, got {len(raw)}", tuple(raw)))
                continue
            rec = dict(zip(cols, (c.strip() for c in raw)))
            try:
                phone = normalise_phone(rec["phone"], camp.default_region)
            except ValueError as e:
                rejected.append(Rejected(line, str(e), tuple(raw)))
                continue
            tz = rec.get("tz", "")
            if tz:
                if not _valid_zone(tz):
                    rejected.append(Rejected(line, f"unknown time zone {tz!r}", tuple(raw)))
                    continue
                zones: tuple[str, ...] = (tz,)
            else:
                zones = zones_for(phone)
                if not zones:
                    rejected.append(Rejected(line, f"cannot tell the time zone of {phone}; give a tz column",
                                             tuple(raw)))
                    continue
            if phone in seen:
                rejected.append(Rejected(line, f"duplicate of line {seen[phone]} ({phone})", tuple(raw)))
                continue
            seen[phone] = line
            rows.append((phone, rec.get("name", ""), ",".join(zones), 1 if tz else 0, line))
        imported = 0
        with transaction(self.db):
            for phone, name, zones_s, tz_given, ln in rows:
                try:
                    self.db.execute(
                        "INSERT INTO leads (campaign_id, phone, name, zones, tz_given, source_line)"
                        " VALUES (?, ?, ?, ?, ?, ?)", (camp.id, phone, name, zones_s, tz_given, ln))
                    imported += 1
                except sqlite3.IntegrityError:
                    rejected.append(Rejected(ln, f"already in campaign {camp.name!r} ({phone})"))
        rejected.sort(key=lambda r: r.line)
        return imported, rejected

    # ---- DNC
    def add_dnc(self, phone: str, now: float, source: str = "", region: str = "US") -> str:
        e164 = normalise_phone(phone, region)
        self.db.execute("INSERT OR IGNORE INTO dnc (phone, added_at, source) VALUES (?, ?, ?)",
                        (e164, now, source))
        return e164

    def remove_dnc(self, phone: str, region: str = "US") -> None:
        self.db.execute("DELETE FROM dnc WHERE phone = ?", (normalise_phone(phone, region),))

    def on_dnc(self, phone: str) -> bool:
        return self.db.execute("SELECT 1 FROM dnc WHERE phone = ?", (phone,)).fetchone() is not None

    # ---- reservation
    def reserve(self, campaign_id: int, now: float, worker: str, scan: int = 200) -> Lead | None:
        """Atomically take the next dialable lead (due, not on the DNC list, inside its window).

        One ``BEGIN IMMEDIATE`` transaction: the DNC check, the window check and the
        ``new -> reserved`` flip happen under SQLite's write lock, so concurrent workers never
        get the same lead and a DNC entry committed before this call always wins.
        """
        camp = self.campaign(campaign_id)
        with transaction(self.db):
            cur = self.db.execute(
                "SELECT * FROM leads WHERE campaign_id = ? AND state = 'new' AND next_at <= ?"
                " AND NOT EXISTS (SELECT 1 FROM dnc WHERE dnc.phone = leads.phone)"
                " ORDER BY next_at, id LIMIT ?", (campaign_id, now, scan))
            try:  # read lazily: the first lead in its window is usually the first row
                for batch in iter(lambda: cur.fetchmany(16), []):
                    for r in batch:
                        lead = _lead(r)
                        if not within_window(lead, now, camp.window_start, camp.window_end):
                            continue
                        got = self.db.execute(
                            "UPDATE leads SET state = 'reserved', reserved_by = ?, reserved_at = ?,"
                            " attempts = attempts + 1 WHERE id = ? AND state = 'new' RETURNING *",
                            (worker, now, lead.id)).fetchone()
                        if got is not None:
                            return _lead(got)
            finally:
                cur.close()
            return None

    def release_stale(self, now: float, worker: str, older_than_s: float = 600.0) -> int:
        """Give back the leads ``worker`` reserved more than ``older_than_s`` ago without an outcome
        (its own leftovers, e.g. after a restart); other workers' reservations are theirs."""
        cur = self.db.execute(
            "UPDATE leads SET state = 'new', reserved_by = NULL, reserved_at = NULL,"
            " attempts = attempts - 1 WHERE state = 'reserved' AND reserved_by = ? AND reserved_at < ?",
            (worker, now - older_than_s))
        return cur.rowcount

    def record_outcome(self, lead_id: int, outcome: str, now: float, worker: str = "",
                       detail: str = "") -> Lead:
        """Record an attempt's disposition and schedule the retry (or close the lead)."""
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r} (one of {', '.join(OUTCOMES)})")
        with transaction(self.db):
            r = self.db.execute("SELECT * FROM leads WHERE id = ?", (lead_id,)).fetchone()
            if r is None:
                raise KeyError(f"no lead {lead_id}")
            if r["state"] != "reserved":
                raise ValueError(f"lead {lead_id} is {r['state']}, not reserved")
            camp = self.campaign(r["campaign_id"])
            final, _ = OUTCOMES[outcome]
            if final:
                state, next_at = "done", r["next_at"]
            elif r["attempts"] >= camp.max_attempts:
                state, next_at = "exhausted", r["next_at"]
            else:
                state, next_at = "new", now + camp.retry_s[outcome]
            self.db.execute(
                "UPDATE leads SET state = ?, next_at = ?, last_outcome = ?, reserved_by = NULL,"
                " reserved_at = NULL WHERE id = ?", (state, next_at, outcome, lead_id))
            self.db.execute(
                "INSERT INTO dispositions (lead_id, at, attempt, outcome, detail, worker)"
                " VALUES (?, ?, ?, ?, ?, ?)", (lead_id, now, r["attempts"], outcome, detail, worker))
            if outcome == "dnc_request":
                self.db.execute("INSERT OR IGNORE INTO dnc (phone, added_at, source) VALUES (?, ?, ?)",
                                (r["phone"], now, f"lead {lead_id}"))
        got = self.db.execute("SELECT * FROM leads WHERE id = ?", (lead_id,)).fetchone()
        return _lead(got)

    def dispose(self, lead_id: int, disposition: str, now: float, agent: str = "") -> None:
        """An agent's disposition of a finished call (the lead's dial outcome is already recorded).
        ``dnc`` puts the number on the do-not-call list; ``callback`` recycles the lead in an hour."""
        with transaction(self.db):
            r = self.db.execute("SELECT * FROM leads WHERE id = ?", (lead_id,)).fetchone()
            if r is None:
                raise KeyError(f"no lead {lead_id}")
            self.db.execute(
                "INSERT INTO dispositions (lead_id, at, attempt, outcome, detail, worker) VALUES (?, ?, ?, ?, ?, ?)",
                (lead_id, now, r["attempts"], "agent:" + disposition, "", agent))
            if disposition == "dnc":
                self.db.execute("INSERT OR IGNORE INTO dnc (phone, added_at, source) VALUES (?, ?, ?)",
                                (r["phone"], now, f"agent {agent}"))
            elif disposition == "callback" and r["state"] == "done":
                self.db.execute("UPDATE leads SET state = 'new', next_at = ? WHERE id = ?", (now + 3600, lead_id))

    def dispositions(self, lead_id: int) -> list[dict[str, object]]:
        return [dict(r) for r in self.db.execute(
            "SELECT at, attempt, outcome, detail, worker FROM dispositions WHERE lead_id = ? ORDER BY id",
            (lead_id,))]

    def lead(self, lead_id: int) -> Lead:
        r = self.db.execute("SELECT * FROM leads WHERE id = ?", (lead_id,)).fetchone()
        if r is None:
            raise KeyError(f"no lead {lead_id}")
        return _lead(r)

    def campaign_id(self, name: str) -> int:
        r = self.db.execute("SELECT id FROM campaigns WHERE name = ?", (name,)).fetchone()
        if r is None:
            raise KeyError(f"no campaign named {name!r}")
        return int(r[0])

    def campaign_state(self, campaign_id: int) -> str:
        return str(self.db.execute("SELECT state FROM campaigns WHERE id = ?", (campaign_id,)).fetchone()[0])

    def change_campaign(self, campaign_id: int, trigger: str) -> str:
        """Apply start/pause/stop by the transition table, atomically; the new state."""
        with transaction(self.db):
            row = self.db.execute("SELECT name, state FROM campaigns WHERE id = ?", (campaign_id,)).fetchone()
            new = CAMPAIGN_TRANSITIONS[row["state"]].get(trigger)
            if new is None:
                raise IllegalCampaignTransition(row["name"], row["state"], trigger)
            self.db.execute("UPDATE campaigns SET state = ? WHERE id = ?", (new, campaign_id))
        return new

    def counts(self, campaign_id: int) -> dict[str, int]:
        return {r[0]: r[1] for r in self.db.execute(
            "SELECT state, COUNT(*) FROM leads WHERE campaign_id = ? GROUP BY state", (campaign_id,))}


def _checked(region: str, window_start: str, window_end: str, max_attempts: int) -> str:
    """Validate a campaign's store settings; the region, upper case."""
    if region.upper() not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"default_region: unknown region {region!r}")
    if not _parse_hhmm(window_start) < _parse_hhmm(window_end):
        raise ValueError(f"window: start {window_start} must be before end {window_end}")
    if max_attempts < 1:
        raise ValueError("max_attempts: must be >= 1")
    return region.upper()


def _lead(r: sqlite3.Row) -> Lead:
    return Lead(id=r["id"], campaign_id=r["campaign_id"], phone=r["phone"], name=r["name"],
                zones=tuple(z for z in r["zones"].split(",") if z), state=r["state"],
                attempts=r["attempts"], next_at=r["next_at"])
