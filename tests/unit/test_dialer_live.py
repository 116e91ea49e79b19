"""The live dialler with fakes: campaigns from the store (YAML upserted, CLI-made), AMI resync, bounded maps."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from callcenter import config
from callcenter.features.acd.agents import AgentState
from callcenter.features.acd.model import initial_state
from callcenter.features.dialer.live import LiveDialer
from callcenter.features.dialer.ports import Host
from callcenter.features.dialer.store import LeadStore
from callcenter.persistence import DbThread
from callcenter.protocol.ami import Message

from .fakes import FakeAmi

LAB = yaml.safe_load(open("tests/asterisk/lab.yaml"))
NOON_NY = dt.datetime(2026, 3, 4, 12, 0, tzinfo=ZoneInfo("America/New_York")).timestamp()
CAMP = {"queue": "sales", "trunk": "sim", "caller_id": "5551000", "ring_s": 20, "mode": "progressive"}


class Family:
    def __init__(self) -> None:
        self.values: dict[tuple[str, ...], float] = {}

    def labels(self, *key: str) -> Family:
        self._key = key
        return self

    def inc(self, n: float = 1.0) -> None:
        self.values[self._key] = self.values.get(self._key, 0.0) + n

    def set(self, v: float) -> None:
        self.values[self._key] = v


class FakeMetrics:
    def __init__(self) -> None:
        self.dialled, self.dial_outcomes, self.dial_level = Family(), Family(), Family()
        self.dial_abandon_rate, self.dial_occupancy = Family(), Family()


def _cfg(tmp_path: Path, campaigns: dict[str, Any]) -> config.Config:
    data = copy.deepcopy(LAB)
    data["daemon"]["database"] = str(tmp_path / "cc.sqlite3")
    data["campaigns"] = campaigns
    return config.parse(data)


class Rig:
    """A LiveDialer over a real LeadStore on a real DbThread, with a fake AMI, ACD view and clock."""

    def __init__(self, tmp_path: Path, campaigns: dict[str, Any], ready: tuple[str, ...] = ("alice", "bob")) -> None:
        self.cfg = _cfg(tmp_path, campaigns)
        self.now = NOON_NY
        self.store = LeadStore(tmp_path / "cc.sqlite3")
        self.db = DbThread()
        self.ami, self.metrics = FakeAmi(), FakeMetrics()
        self.state = replace(initial_state(self.cfg, {a: (AgentState.READY, "", 0.0) for a in ready}), synced=True)
        self.gone: list[str] = []
        self.compliance: list[tuple[str, str]] = []
        self.published: list[object] = []
        host = Host(ami=self.ami, metrics=self.metrics, acd_state=lambda: self.state,
                    queue_aht=lambda q, now: None, caller_gone=self.gone.append,
                    compliance=lambda ch, cid: self.compliance.append((ch, cid)), publish=self.published.append)
        self.dialer = LiveDialer(host, self.cfg, self.store, self.db, worker="w1", clock=lambda: self.now)

    def leads(self, name: str, n: int, start: bool = True) -> int:
        cid = self.store.campaign_id(name)
        rows = "\n".join(f"+1212555{k:04d}" for k in range(n))
        imported, rejected = self.store.import_csv(cid, __import__("io").StringIO(f"phone\n{rows}\n"))
        assert imported == n, rejected[:3]
        if start and self.store.campaign_state(cid) != "running":
            self.store.change_campaign(cid, "start")
        return cid

    def line_ids(self) -> list[str]:
        return [h["ChannelId"] for h in self.ami.originates()]


@pytest.fixture
def rig_factory(tmp_path: Path) -> Iterator[Callable[..., Rig]]:
    made: list[Rig] = []

    def make(campaigns: dict[str, Any], **kw: Any) -> Rig:
        r = Rig(tmp_path, campaigns, **kw)
        made.append(r)
        return r

    yield make
    for r in made:
        r.db.close()
        r.store.close()


def _response(aid: str, ok: bool, reason: str = "", channel: str = "PJSIP/trunk-sim-1") -> Message:
    return Message((("Event", "OriginateResponse"), ("ActionID", aid), ("Response", "Success" if ok else "Failure"),
                    ("Reason", reason), ("Channel", channel)))


def _chan(uniqueid: str, state: str = "6") -> Message:
    return Message((("Event", "CoreShowChannel"), ("Uniqueid", uniqueid), ("Channel", f"PJSIP/x-{uniqueid}"),
                    ("ChannelState", state)))


async def test_a_cli_created_campaign_is_paced_and_dialled(rig_factory):
    """No campaign in the YAML: one made with the CLI's settings (queue, trunk, mode) is dialled."""
    rig = rig_factory({})
    rig.store.create_campaign("cli", "US", settings={"queue": "sales", "trunk": "sim", "mode": "progressive"})
    rig.leads("cli", 5)
    await rig.dialer.apply_config(rig.cfg)
    await rig.dialer.tick()
    got = rig.ami.originates()
    assert len(got) == 2  # progressive: one line per free agent
    assert all(h["Channel"].endswith("@trunk-sim") and "CC_CAMPAIGN=cli" in h["Variables"] for h in got)


async def test_a_campaign_without_queue_or_trunk_is_not_dialled(rig_factory):
    """A CLI campaign with no queue/trunk (or one the config lacks) is reported, never dialled."""
    rig = rig_factory({})
    rig.store.create_campaign("bare", "US")
    rig.store.create_campaign("ghost", "US", settings={"queue": "nope", "trunk": "sim"})
    rig.leads("bare", 2)
    rig.leads("ghost", 2)
    await rig.dialer.apply_config(rig.cfg)
    await rig.dialer.tick()
    assert rig.ami.originates() == [] and set(rig.dialer._unusable) == {"bare", "ghost"}


async def test_a_yaml_edit_takes_effect_after_apply_config(rig_factory):
    """The YAML wins for its settings on reload (caller id, attempts); the campaign's state is kept."""
    rig = rig_factory({"out": CAMP})
    await rig.dialer.apply_config(rig.cfg)
    rig.leads("out", 6)
    await rig.dialer.tick()
    assert {h["CallerID"] for h in rig.ami.originates()} == {"<5551000>"}
    for h in rig.ami.originates():
        rig.dialer.on_originate_response(_response(h["ActionID"], False, "5"))
        rig.dialer.on_hangup(h["ChannelId"], "17")
    await rig.db.drain()
    new = replace(rig.cfg, campaigns={"out": replace(rig.cfg.campaigns["out"], caller_id="5552000", max_attempts=9)})
    await rig.dialer.apply_config(new)
    rig.ami.actions.clear()
    await rig.dialer.tick()
    assert {h["CallerID"] for h in rig.ami.originates()} == {"<5552000>"}
    cid = rig.store.campaign_id("out")
    assert rig.store.campaign(cid).max_attempts == 9 and rig.store.campaign_state(cid) == "running"


async def test_a_campaign_without_caller_id_presents_its_trunks(rig_factory):
    """No campaign caller_id: the Originate presents the trunk's (trunks.carrier.caller_id in lab.yaml)."""
    rig = rig_factory({"out": {**CAMP, "trunk": "carrier", "caller_id": ""}})
    await rig.dialer.apply_config(rig.cfg)
    rig.leads("out", 1)
    await rig.dialer.tick()
    got = rig.ami.originates()
    assert [(h["Channel"], h["CallerID"]) for h in got] == [("PJSIP/12125550000@trunk-carrier", "<+12125551500>")]


async def test_a_campaign_removed_from_the_yaml_stops_being_dialled(rig_factory):
    """Dropped from the YAML: no new lines; the line in flight still settles normally."""
    rig = rig_factory({"out": CAMP})
    await rig.dialer.apply_config(rig.cfg)
    rig.leads("out", 6)
    await rig.dialer.tick()
    first = rig.line_ids()
    assert len(first) == 2
    await rig.dialer.apply_config(replace(rig.cfg, campaigns={}))
    rig.ami.actions.clear()
    rig.now += 5
    await rig.dialer.tick()
    assert rig.ami.originates() == [] and "out" not in rig.dialer.status()
    rig.dialer.ami_down()
    rig.dialer.on_hangup(first[0], "17")
    await rig.db.drain()
    assert first[0] not in rig.dialer.lines
    assert rig.store.counts(rig.store.campaign_id("out")) == {"new": 5, "reserved": 1}


async def test_resync_settles_lost_lines_releases_their_leads_and_recounts_amd(rig_factory):
    """After an AMI reconnect: a line whose channel is gone is settled and its lead released; a
    ringing line found up counts as in AMD."""
    rig = rig_factory({"out": CAMP})
    await rig.dialer.apply_config(rig.cfg)
    cid = rig.leads("out", 2)
    await rig.dialer.tick()
    up, lost = rig.line_ids()
    rig.dialer.ami_down()
    assert rig.dialer.resync([_chan(up, "6"), _chan("someone-else")]) == 1
    await rig.db.drain()
    assert lost not in rig.dialer.lines and rig.dialer.lines[up].state == "amd"
    assert rig.store.counts(cid) == {"new": 1, "reserved": 1}
    assert [(e.campaign, e.outcome) for e in rig.published] == [("out", "no_answer")]  # on the bus, once
    inp = rig.dialer._inputs("out", rig.dialer.camps["out"].conf, rig.now)
    assert inp.amd_pending == 1 and inp.ringing_elapsed == ()
    assert inp.ring_cdf == rig.dialer.est["out"].ring_cdf()  # the estimator the simulator runs
    assert rig.dialer.resync([], node="elsewhere") == 0 and up in rig.dialer.lines  # another node's resync


async def test_an_agent_may_dispose_a_long_call_after_it_ends(rig_factory):
    """The disposition window runs from the hang-up, so a call longer than the window can still be disposed."""
    rig = rig_factory({"out": CAMP})
    await rig.dialer.apply_config(rig.cfg)
    rig.leads("out", 1)
    await rig.dialer.tick()
    (h,) = rig.ami.originates()
    rig.dialer.on_originate_response(_response(h["ActionID"], True))
    rig.dialer.on_queued(h["ChannelId"], "c1", lambda _s, fn: None)
    rig.dialer.on_call_answered("c1", "alice")
    rig.now += 2 * 3600  # a two-hour call
    rig.dialer.on_hangup(h["ChannelId"], "16")
    rig.dialer.expire(rig.now + 60)
    assert await rig.dialer.dispose("alice", "2", rig.now + 60) == "callback"


async def test_staffed_agents_are_the_acd_models(rig_factory):
    """The pacer's staffed count is acd.model.staffed: a paused member is not staffed."""
    rig = rig_factory({"out": CAMP}, ready=("alice",))
    await rig.dialer.apply_config(rig.cfg)
    rig.state = replace(rig.state, agents={**rig.state.agents,
                                           "bob": replace(rig.state.agents["bob"], state=AgentState.PAUSED)})
    inp = rig.dialer._inputs("out", rig.dialer.camps["out"].conf, rig.now)
    assert inp.agents_total == 1 and inp.agents_free == 1


async def test_ten_thousand_lines_leave_every_map_empty(rig_factory):
    """10,000 lines (answered, machine, busy, hung up before the verdict, abandoned, Originate never
    answered): lines, by_action, by_call and last_lead all return to 0, no lead stays reserved."""
    rig = rig_factory({"out": CAMP})
    await rig.dialer.apply_config(rig.cfg)
    cid = rig.leads("out", 10_000, start=False)
    d, conf = rig.dialer, rig.dialer.camps["out"].conf
    timers: list[Callable[[], None]] = []
    leads = rig.store.db.execute(  # reserved for this worker in one go (reserve() has its own tests)
        "UPDATE leads SET state = 'reserved', reserved_by = 'w1', reserved_at = ?, attempts = 1"
        " WHERE campaign_id = ? RETURNING id, phone", (rig.now, cid)).fetchall()
    for i, (lead_id, phone) in enumerate(sorted(tuple(r) for r in leads)):
        await d._dial("out", conf, lead_id, phone, amd=True)
        orig = rig.ami.actions[-1][1]
        lid, aid = orig["ChannelId"], orig["ActionID"]
        kind = i % 6
        if kind == 0:  # a person reaches an agent, talks, hangs up
            d.on_originate_response(_response(aid, True))
            d.on_queued(lid, f"c{i}", lambda _s, fn: timers.append(fn))
            d.on_call_answered(f"c{i}", f"agent-{i}")
            d.on_hangup(lid, "16")
        elif kind == 1:  # a machine
            d.on_originate_response(_response(aid, True))
            d.on_verdict(lid, "MACHINE")
            d.on_hangup(lid, "16")
        elif kind == 2:  # busy
            d.on_hangup(lid, "17")
            d.on_originate_response(_response(aid, False, "5"))
        elif kind == 3:  # hangs up before the verdict is read; the late verdict and queueing are ignored
            d.on_originate_response(_response(aid, True))
            d.on_hangup(lid, "16")
            d.on_verdict(lid, "HUMAN")
            d.on_queued(lid, f"c{i}", lambda _s, fn: timers.append(fn))
        elif kind == 4:  # no agent within 2 s: compliance message, then the hangup
            d.on_originate_response(_response(aid, True))
            d.on_queued(lid, f"c{i}", lambda _s, fn: timers.append(fn))
            timers.pop()()
            d.on_hangup(lid, "16")
        # kind 5: the Originate's response and hangup never come
        rig.now += 0.5
    for fn in timers:  # grace timers of calls long over
        fn()
    assert len(d.lines) < 10_000 // 6 + 1
    rig.now += 4 * 3600
    d.expire(rig.now)
    await rig.db.drain()
    assert d.sizes() == {"lines": 0, "by_action": 0, "by_call": 0, "last_lead": 0}
    assert "reserved" not in rig.store.counts(cid)
    assert len(rig.compliance) == len(rig.gone) == 10_000 // 6 + (10_000 % 6 > 4)


async def test_an_agent_disposes_their_last_dialler_call(rig_factory):
    """dispose() (awaitable, on the database thread) records the agent's code once."""
    rig = rig_factory({"out": CAMP})
    await rig.dialer.apply_config(rig.cfg)
    rig.leads("out", 1)
    await rig.dialer.tick()
    (lid,), aid = rig.line_ids(), rig.ami.originates()[0]["ActionID"]
    rig.dialer.on_originate_response(_response(aid, True))
    rig.dialer.on_queued(lid, "c1", lambda _s, fn: None)
    rig.dialer.on_call_answered("c1", "alice")
    assert await rig.dialer.dispose("alice", "1", rig.now) == "sale"
    assert await rig.dialer.dispose("alice", "1", rig.now) is None
    await rig.db.drain()
    lead = rig.store.campaign_id("out")
    outcomes = [r["outcome"] for r in rig.store.dispositions(rig.store.lead(1).id)]
    assert outcomes == ["human", "agent:sale"] and lead


async def test_run_releases_only_its_own_leftover_reservations(rig_factory):
    """At start the dialler gives back the leads its own worker id left reserved, not another daemon's."""
    rig = rig_factory({"out": CAMP}, ready=())
    await rig.dialer.apply_config(rig.cfg)
    cid = rig.leads("out", 2)
    mine = rig.store.reserve(cid, rig.now - 60, "w1")
    theirs = rig.store.reserve(cid, rig.now - 60, "w2")
    released = await rig.db.run(rig.store.release_stale, rig.now, rig.dialer.worker, 0.0)
    assert released == 1
    assert rig.store.lead(mine.id).state == "new" and rig.store.lead(theirs.id).state == "reserved"


async def test_the_lead_store_is_never_called_on_the_event_loop(rig_factory):
    """Every LeadStore call of a round (campaigns, counts, rolling, reserve, outcome) runs on the database thread."""
    import threading
    rig = rig_factory({"out": CAMP})
    loop_thread = threading.get_ident()
    calls: list[tuple[str, bool]] = []
    store = rig.store
    for name in ("campaign_rows", "counts", "rolling", "reserve", "record_outcome", "upsert_campaign",
                 "retire_yaml_campaigns", "dispose"):
        real = getattr(store, name)

        def spy(*a: Any, _real: Any = real, _name: str = name, **kw: Any) -> Any:
            calls.append((_name, threading.get_ident() == loop_thread))
            return _real(*a, **kw)
        setattr(store, name, spy)
    await rig.dialer.apply_config(rig.cfg)
    rig.leads("out", 2)
    await rig.dialer.tick()
    for h in rig.ami.originates():
        rig.dialer.on_originate_response(_response(h["ActionID"], False, "5"))
        rig.dialer.on_hangup(h["ChannelId"], "17")
    await rig.db.drain()
    names = {n for n, _ in calls}
    assert {"campaign_rows", "counts", "rolling", "reserve", "record_outcome", "upsert_campaign"} <= names
    assert not [n for n, on_loop in calls if on_loop]


async def test_a_locked_database_costs_a_round_not_the_dialler(rig_factory):
    """A database error in one round (locked past the busy timeout) is logged; the next round runs."""
    import asyncio
    import sqlite3
    rig = rig_factory({"out": CAMP})
    real, calls, again = rig.store.campaign_rows, [], asyncio.Event()

    def flaky() -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise sqlite3.OperationalError("database is locked")
        if len(calls) >= 3:
            rig.db_loop.call_soon_threadsafe(again.set)
        return real()
    rig.db_loop = asyncio.get_running_loop()
    rig.store.campaign_rows = flaky
    task = asyncio.create_task(rig.dialer.run())
    await asyncio.wait_for(again.wait(), 10)
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
