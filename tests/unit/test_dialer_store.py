"""Campaign/lead store: CSV import, atomic reservation under concurrency, DNC, calling windows, retries."""

from __future__ import annotations

import datetime as dt
import io
import multiprocessing
import threading
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from callcenter.features.dialer.store import (
    Lead,
    LeadStore,
    normalise_phone,
    within_window,
    zones_for,
)

NY, LA, LONDON = ZoneInfo("America/New_York"), ZoneInfo("America/Los_Angeles"), ZoneInfo("Europe/London")


def at(tz: ZoneInfo, *args: int) -> float:
    """Unix time of a wall-clock moment in a time zone."""
    return dt.datetime(*args, tzinfo=tz).timestamp()


def lead(*zones: str) -> Lead:
    """A lead in these zones (only zones matter to the window check)."""
    return Lead(id=1, campaign_id=1, phone="+12125550100", name="", zones=tuple(zones))


NOON_NY = at(NY, 2026, 3, 10, 12, 0)  # a weekday, every US zone and London in daytime


@pytest.fixture
def store(tmp_path: Path) -> LeadStore:
    """A fresh file-backed store."""
    s = LeadStore(tmp_path / "leads.sqlite3")
    yield s
    s.close()


def csv_of(*lines: str) -> io.StringIO:
    """An in-memory CSV file."""
    return io.StringIO("\n".join(lines) + "\n")


# --------------------------------------------------------------------------- import

def test_csv_import_reports_bad_rows_with_line_numbers(store: LeadStore) -> None:
    """Bad rows are rejected with their file line numbers and reasons; good ones are imported."""
    cid = store.create_campaign("c", "US")
    n, rejected = store.import_csv(cid, csv_of(
        "phone,name,tz",              # 1
        "(212) 555-0100,Ann,",        # 2 ok (national, US region)
        "+44 20 7946 0958,Cy,",       # 3 ok
        "12,Bad,",                    # 4 invalid number
        "+1 212 555 0100,Dup,",       # 5 duplicate of line 2
        "+1 415 555 0101,Zed,Mars/X", # 6 unknown tz
        "+1 310 555 0199,Bo",         # 7 wrong field count
        "not a number,Nope,",         # 8 unparsable
        "+1 312 555 0102,Ok,America/Chicago",  # 9 ok with explicit tz
    ))
    assert n == 3
    lines = {r.line: r.reason for r in rejected}
    assert sorted(lines) == [4, 5, 6, 7, 8]
    assert "invalid phone number" in lines[4]
    assert "duplicate of line 2" in lines[5]
    assert "unknown time zone" in lines[6]
    assert "expected 3 fields" in lines[7]
    assert "phone number" in lines[8]
    assert n + len(rejected) == 8  # no row silently lost


def test_csv_import_normalises_to_e164_and_refuses_reimport(store: LeadStore) -> None:
    """Numbers are stored in E.164; a second import of the same number is rejected, not dropped."""
    cid = store.create_campaign("c", "GB")
    assert store.import_csv(cid, csv_of("phone", "020 7946 0958"))[0] == 1
    assert store.lead(1).phone == "+442079460958"
    n, rej = store.import_csv(cid, csv_of("phone", "+44 20 7946 0958"))
    assert n == 0 and rej[0].line == 2 and "already in campaign" in rej[0].reason


def test_csv_import_rejects_a_header_without_phone(store: LeadStore) -> None:
    """A header lacking the phone column is reported on line 1."""
    cid = store.create_campaign("c")
    n, rej = store.import_csv(cid, csv_of("number,name", "2125550100,A"))
    assert n == 0 and rej[0].line == 1 and "phone" in rej[0].reason


def test_csv_line_numbers_count_quoted_newlines(store: LeadStore) -> None:
    """A quoted field spanning lines still gives the right line number for later rows."""
    cid = store.create_campaign("c")
    n, rej = store.import_csv(cid, csv_of("phone,name", '2125550100,"two\nlines"', "bad,x"))
    assert n == 1 and [r.line for r in rej] == [4]


def test_normalise_phone() -> None:
    """National numbers use the default region; E.164 input is kept."""
    assert normalise_phone("(212) 555-0100", "US") == "+12125550100"
    assert normalise_phone("+33 1 42 68 53 00", "US") == "+33142685300"
    with pytest.raises(ValueError):
        normalise_phone("", "US")


# --------------------------------------------------------------------------- reservation

def _race(path: Path, cid: int, workers: int) -> list[list[int]]:
    got: list[list[int]] = [[] for _ in range(workers)]
    barrier = threading.Barrier(workers)
    first = threading.Barrier(workers)  # every worker holds a lead before the free-for-all

    def work(i: int) -> None:
        s = LeadStore(path)
        barrier.wait()
        try:
            while (ld := s.reserve(cid, NOON_NY, f"w{i}")) is not None:
                got[i].append(ld.id)
                if len(got[i]) == 1:
                    first.wait(30)
                time.sleep(0)  # let the others in between reservations
        finally:
            s.close()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return got


def test_concurrent_reservations_never_share_a_lead(tmp_path: Path) -> None:
    """Four threads, each with its own connection, reserve 300 leads: no lead twice, none missed."""
    path = tmp_path / "race.sqlite3"
    s = LeadStore(path)
    cid = s.create_campaign("race", "US")
    rows = ["phone"] + [f"+1212555{i:04d}" for i in range(300)]
    n, rej = s.import_csv(cid, csv_of(*rows))
    assert n == 300 and not rej
    s.close()
    got = _race(path, cid, 4)
    flat = [x for g in got for x in g]
    assert len(flat) == len(set(flat)) == 300
    assert sum(1 for g in got if g) == 4  # every worker took part (then raced for the rest)


def _proc_worker(path: str, cid: int, name: str, q: multiprocessing.Queue) -> None:
    s = LeadStore(path)
    ids = []
    while (ld := s.reserve(cid, NOON_NY, name)) is not None:
        ids.append(ld.id)
    s.close()
    q.put(ids)


def test_two_processes_never_reserve_the_same_lead(tmp_path: Path) -> None:
    """Two dialer processes draining one campaign get disjoint leads covering all of them."""
    path = tmp_path / "procs.sqlite3"
    s = LeadStore(path)
    cid = s.create_campaign("race", "US")
    assert s.import_csv(cid, csv_of("phone", *[f"+1312555{i:04d}" for i in range(200)]))[0] == 200
    s.close()
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    procs = [ctx.Process(target=_proc_worker, args=(str(path), cid, f"p{i}", q)) for i in range(2)]
    for p in procs:
        p.start()
    results = [q.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(30)
    flat = [x for r in results for x in r]
    assert len(flat) == len(set(flat)) == 200


def test_dnc_added_after_import_blocks_the_dial(store: LeadStore) -> None:
    """A number put on the DNC list mid-campaign is never reserved; others still are."""
    cid = store.create_campaign("c")
    store.import_csv(cid, csv_of("phone", "2125550100", "2125550101"))
    store.add_dnc("(212) 555-0100", NOON_NY, source="callee request")
    got = store.reserve(cid, NOON_NY, "w")
    assert got is not None and got.phone == "+12125550101"
    assert store.reserve(cid, NOON_NY, "w") is None
    store.remove_dnc("+12125550100")
    assert store.reserve(cid, NOON_NY, "w").phone == "+12125550100"


def test_reservation_skips_leads_outside_their_window(store: LeadStore) -> None:
    """At 07:30 in New York (04:30 in LA) only the London lead may be dialled."""
    cid = store.create_campaign("c")
    store.import_csv(cid, csv_of("phone", "2125550100", "3105550199", "+44 20 7946 0958"))
    t = at(NY, 2026, 3, 10, 7, 30)
    got = store.reserve(cid, t, "w")
    assert got is not None and got.phone == "+442079460958"
    assert store.reserve(cid, t, "w") is None


def test_retries_back_off_by_outcome_and_stop_at_max_attempts(store: LeadStore) -> None:
    """no-answer/busy/machine reschedule with their back-off; max attempts exhausts; all recorded."""
    cid = store.create_campaign("c", max_attempts=3, retry_no_answer_s=3600, retry_busy_s=600)
    store.import_csv(cid, csv_of("phone", "2125550100"))
    t = NOON_NY
    ld = store.reserve(cid, t, "w")
    after = store.record_outcome(ld.id, "busy", t)
    assert after.state == "new" and after.next_at == t + 600
    assert store.reserve(cid, t + 599, "w") is None
    ld = store.reserve(cid, t + 600, "w")
    after = store.record_outcome(ld.id, "no_answer", t + 600)
    assert after.next_at == t + 600 + 3600
    ld = store.reserve(cid, t + 4200, "w")
    after = store.record_outcome(ld.id, "no_answer", t + 4200)
    assert after.state == "exhausted" and after.attempts == 3
    assert [d["outcome"] for d in store.dispositions(ld.id)] == ["busy", "no_answer", "no_answer"]


def test_dnc_request_outcome_closes_the_lead_and_lists_the_number(store: LeadStore) -> None:
    """A callee asking not to be called ends the lead and lands on the DNC list."""
    cid = store.create_campaign("c")
    store.import_csv(cid, csv_of("phone", "2125550100"))
    ld = store.reserve(cid, NOON_NY, "w")
    assert store.record_outcome(ld.id, "dnc_request", NOON_NY).state == "done"
    assert store.on_dnc("+12125550100")


def test_stale_reservations_are_released(store: LeadStore) -> None:
    """A lead reserved by a worker that died goes back to the pool after the lease."""
    cid = store.create_campaign("c")
    store.import_csv(cid, csv_of("phone", "2125550100"))
    assert store.reserve(cid, NOON_NY, "dead") is not None
    assert store.reserve(cid, NOON_NY + 1, "w") is None
    assert store.release_stale(NOON_NY + 700, "dead", older_than_s=600) == 1
    assert store.reserve(cid, NOON_NY + 700, "w").attempts == 1


def test_release_stale_releases_only_this_workers_leads(store: LeadStore) -> None:
    """Worker A releasing its stale reservations leaves worker B's reservations reserved (fault 7)."""
    cid = store.create_campaign("c")
    store.import_csv(cid, csv_of("phone", "2125550100", "2125550101", "2125550102"))
    a = store.reserve(cid, NOON_NY, "worker-a")
    b1, b2 = store.reserve(cid, NOON_NY, "worker-b"), store.reserve(cid, NOON_NY, "worker-b")
    assert store.release_stale(NOON_NY + 700, "worker-a", older_than_s=600) == 1
    assert store.lead(a.id).state == "new"
    assert store.lead(b1.id).state == store.lead(b2.id).state == "reserved"
    assert store.release_stale(NOON_NY + 700, "worker-a", older_than_s=600) == 0


# --------------------------------------------------------------------------- windows

@pytest.mark.parametrize("moment,ny,la,london", [
    (at(NY, 2026, 3, 10, 8, 0), True, False, True),     # 08:00 NY = 05:00 LA = 12:00 London
    (at(NY, 2026, 3, 10, 7, 59), False, False, True),
    (at(NY, 2026, 3, 10, 20, 59), True, True, False),   # 17:59 LA, 00:59 London
    (at(NY, 2026, 3, 10, 21, 0), False, True, False),   # 21:00 NY is already out
    (at(LA, 2026, 3, 10, 21, 0), False, False, False),  # midnight NY, 05:00 London
    (at(LONDON, 2026, 3, 10, 15, 0), True, True, True),
])
def test_window_in_new_york_los_angeles_london(moment: float, ny: bool, la: bool, london: bool) -> None:
    """08:00-21:00 is judged in each callee's own local time."""
    assert within_window(lead("America/New_York"), moment) is ny
    assert within_window(lead("America/Los_Angeles"), moment) is la
    assert within_window(lead("Europe/London"), moment) is london


def test_window_across_us_spring_forward() -> None:
    """On 8 March 2026 (US DST starts) 08:00 New York is 12:00 UTC, the day before 13:00 UTC."""
    ny = lead("America/New_York")
    utc = dt.UTC
    assert within_window(ny, dt.datetime(2026, 3, 8, 12, 0, tzinfo=utc))       # 08:00 EDT
    assert not within_window(ny, dt.datetime(2026, 3, 8, 11, 59, tzinfo=utc))   # 07:59 EDT
    assert not within_window(ny, dt.datetime(2026, 3, 7, 12, 30, tzinfo=utc))   # 07:30 EST
    assert within_window(ny, dt.datetime(2026, 3, 7, 13, 0, tzinfo=utc))        # 08:00 EST
    assert within_window(ny, dt.datetime(2026, 3, 8, 1, 59, tzinfo=utc))        # 20:59 EST on 7 March
    assert not within_window(ny, dt.datetime(2026, 3, 8, 2, 0, tzinfo=utc))     # 21:00 EST on 7 March
    assert within_window(ny, dt.datetime(2026, 3, 9, 0, 59, tzinfo=utc))        # 20:59 EDT on 8 March
    assert not within_window(ny, dt.datetime(2026, 3, 9, 1, 0, tzinfo=utc))     # 21:00 EDT on 8 March


def test_window_across_uk_autumn_change() -> None:
    """On 25 October 2026 (UK back to GMT) 20:30 UTC is 20:30 local: in; the day before it is 21:30 BST: out."""
    ldn = lead("Europe/London")
    utc = dt.UTC
    assert within_window(ldn, dt.datetime(2026, 10, 25, 20, 30, tzinfo=utc))
    assert not within_window(ldn, dt.datetime(2026, 10, 24, 20, 30, tzinfo=utc))
    assert not within_window(ldn, dt.datetime(2026, 10, 25, 7, 30, tzinfo=utc))  # 07:30 GMT
    assert within_window(ldn, dt.datetime(2026, 10, 24, 7, 30, tzinfo=utc))      # 08:30 BST


def test_window_must_hold_in_every_zone_of_the_number() -> None:
    """A number spanning zones is callable only when the window holds in all of them."""
    both = lead("America/New_York", "America/Los_Angeles")
    assert not within_window(both, at(NY, 2026, 3, 10, 9, 0))   # 06:00 in LA
    assert within_window(both, at(NY, 2026, 3, 10, 11, 0))      # 08:00 in LA
    assert not within_window(lead(), NOON_NY)                   # unknown zone: never


def test_zones_derived_from_the_number() -> None:
    """Geographic numbers map to their zone; a toll-free number maps to many (conservative)."""
    assert zones_for("+12125550100") == ("America/New_York",)
    assert zones_for("+13105550199") == ("America/Los_Angeles",)
    assert zones_for("+442079460958") == ("Europe/London",)
    assert len(zones_for("+18005550100")) > 3


def test_a_database_from_before_the_migrations_table_is_adopted(tmp_path) -> None:
    """An old leads database (no state/settings columns, no migrations table) opens with its data kept."""
    import sqlite3 as sq
    path = tmp_path / "old.sqlite3"
    old = sq.connect(path)
    old.executescript(
        "CREATE TABLE campaigns (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, default_region TEXT NOT NULL,"
        " window_start TEXT NOT NULL DEFAULT '08:00', window_end TEXT NOT NULL DEFAULT '21:00',"
        " max_attempts INTEGER NOT NULL DEFAULT 5, retry_no_answer_s REAL NOT NULL DEFAULT 3600,"
        " retry_busy_s REAL NOT NULL DEFAULT 600, retry_machine_s REAL NOT NULL DEFAULT 14400,"
        " retry_abandoned_s REAL NOT NULL DEFAULT 259200, max_abandon_rate REAL NOT NULL DEFAULT 0.03);"
        "INSERT INTO campaigns (name, default_region) VALUES ('old', 'US');")
    old.commit()
    old.close()
    with LeadStore(path) as s:
        (row,) = s.campaign_rows()
        assert (row.name, row.state, row.defined_in, row.settings) == ("old", "created", "cli", {})
        versions = [v for (v,) in s.db.execute("SELECT version FROM migrations WHERE component = 'dialer'")]
        assert versions == [1, 2, 3, 4]
    with LeadStore(path) as s:  # a second open applies nothing again
        assert s.campaign_id("old") == row.id


def test_yaml_upsert_keeps_state_and_retire_stops_listing(store: LeadStore) -> None:
    """Upserting a YAML campaign updates its settings but keeps its state; retired ones are not listed."""
    cid = store.upsert_campaign("y", "US", window_start="08:00", window_end="21:00", max_attempts=5,
                                max_abandon_rate=0.03, settings={"queue": "q1"})
    store.change_campaign(cid, "start")
    assert store.upsert_campaign("y", "GB", window_start="09:00", window_end="20:00", max_attempts=7,
                                 max_abandon_rate=0.02, settings={"queue": "q2"}) == cid
    (row,) = store.campaign_rows()
    assert (row.state, row.default_region, row.window, row.max_attempts, row.settings) == \
        ("running", "GB", "09:00-20:00", 7, {"queue": "q2"})
    store.create_campaign("cli-made")
    assert store.retire_yaml_campaigns(keep=[]) == ["y"]
    assert [r.name for r in store.campaign_rows()] == ["cli-made"]
