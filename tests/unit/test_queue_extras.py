"""Repeat callers, the after-call survey and messages left while waiting: the pieces without Asterisk
(journal reads, statistics, config checks, silence trimming, the FastAGI handlers, the API)."""

from __future__ import annotations

import asyncio
import copy
import re
import sqlite3
import time
import wave
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given, settings, strategies as st

from callcenter import config, events as ev
from callcenter.features.acd import model as acd
from callcenter.features.acd.service import AcdService
from callcenter.features.callback.handlers import CallbackHandlers
from callcenter.features.callback.numbers import dial_back_number
from callcenter.features.messages import service as msg_service
from callcenter.features.messages.audio import trim_silence
from callcenter.features.messages.service import MessageService
from callcenter.features.messages.store import MessageStore
from callcenter.features.repeat.service import RepeatService, previous_call
from callcenter.features.stats import figures
from callcenter.features.survey.handlers import SurveyHandlers, rating
from callcenter.journal import Journal
from callcenter.persistence import DbThread
from callcenter.protocol.ami import Message
from callcenter.tasks import Supervisor

from .fakes import FakeAmi, FakeSession
from .test_api import SAM, _client, _sign_in, api  # noqa: F401 - the daemon-with-API fixture

BASE = yaml.safe_load(open("tests/asterisk/lab.yaml"))
NOW = 1_800_000_000.0
FS = 8000


def _cfg(**queue_changes: object) -> config.Config:
    d = copy.deepcopy(BASE)
    d["queues"]["sales"].update(queue_changes)
    return config.parse(d)


def _wav(path: Path, x: np.ndarray, fs: int = FS, width: int = 2) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(width)
        w.setframerate(fs)
        if width == 2:
            w.writeframes((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())
        else:
            w.writeframes(((np.clip(x, -1, 1) * 127) + 128).astype(np.uint8).tobytes())


def _tone(seconds: float, hz: float = 1000.0, level: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * FS)) / FS
    return level * np.sin(2 * np.pi * hz * t)


def _read(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64) / 32768


# --------------------------------------------------------------------------- repeat callers

def _journal_call(j: Journal, cid: str, num: str, queue: str, entered: float) -> None:
    j.call_started(cid, "u" + cid, "PJSIP/t-1", num, "", "5551000", entered - 2)
    j.call_queued(cid, queue, entered)


def test_previous_call_is_the_same_number_and_queue_within_the_window() -> None:
    """The latest earlier call of the number to that queue since the window's start; not another queue's,
    not an older one, never the call itself."""
    j = Journal(":memory:")
    _journal_call(j, "old", "5550100", "sales", NOW - 7200)
    _journal_call(j, "other", "5550100", "support", NOW - 60)
    _journal_call(j, "a", "5550100", "sales", NOW - 600)
    _journal_call(j, "b", "5550100", "sales", NOW - 300)
    _journal_call(j, "now", "5550100", "sales", NOW)
    assert previous_call(j.db, "5550100", "sales", NOW - 3600, "now") == "b"
    assert previous_call(j.db, "5550100", "sales", NOW - 100, "now") is None
    assert previous_call(j.db, "5550199", "sales", NOW - 3600, "now") is None
    plan = " ".join(str(r) for r in j.db.execute(
        "EXPLAIN QUERY PLAN SELECT call_id FROM calls WHERE caller_num = ? AND entered_at >= ? AND queue = ?"
        " AND call_id != ? ORDER BY entered_at DESC LIMIT 1", ("5550100", 0, "sales", "x")))
    assert "calls_caller" in plan  # an index read, not a scan of the journal


async def test_repeat_check_publishes_and_journals_the_flag() -> None:
    """A repeat is published (CallRepeat) and lands in the call record; anonymous callers, queues without
    a window and a database that does not answer in time leave the call unflagged."""
    j, bus, th = Journal(":memory:"), ev.Bus(), DbThread("test-db")
    j.subscribe(bus, th)
    await th.run(_journal_call, j, "a", "5550100", "sales", NOW - 60)
    await th.run(_journal_call, j, "b", "5550100", "sales", NOW)
    await th.run(_journal_call, j, "c", "anonymous", "sales", NOW)
    cfg = _cfg(repeat_window_s=3600)
    svc = RepeatService(lambda: cfg, lambda fn, *a: th.run(fn, j.db, *a), bus)
    assert await svc.check("b", "sales", "5550100", NOW) == "a"
    assert await svc.check("c", "sales", "anonymous", NOW) is None
    assert await svc.check("b", "empty", "5550100", NOW) is None  # no repeat_window_s there
    await th.drain()
    assert (await th.run(j.call, "b")).repeat_of == "a"

    async def hangs(*_: object) -> None:
        await asyncio.sleep(5)

    slow = RepeatService(lambda: cfg, hangs, bus, timeout_s=0.05)
    t0 = time.monotonic()
    assert await slow.check("b", "sales", "5550100", NOW) is None
    assert time.monotonic() - t0 < 1.0
    th.close()


def test_fcr_and_csat_figures_per_queue_and_agent() -> None:
    """FCR = answered calls not followed by a repeat (the repeat counts against the earlier call's agent);
    CSAT = the average of the ratings given, with how many there were."""
    j = Journal(":memory:")
    calls = [("c1", "alice", 5, None), ("c2", "bob", 2, None), ("c3", "alice", None, "c2"), ("c4", "bob", 4, None)]
    for i, (cid, agent, csat, repeat_of) in enumerate(calls):
        _journal_call(j, cid, f"55501{i}", "sales", NOW - 100 + i)
        j.call_answered(cid, agent, NOW - 90 + i)
        j.call_ended(cid, "completed", NOW - 50 + i)
        if csat is not None:
            j.db.execute("UPDATE calls SET csat=? WHERE call_id=?", (csat, cid))
        if repeat_of is not None:
            j.db.execute("UPDATE calls SET repeat_of=? WHERE call_id=?", (repeat_of, cid))
    q = figures.queue_figures(j.db, NOW - 3600)["sales"]
    assert (q.repeats, q.answered_repeated, q.csat_count) == (1, 1, 3)
    assert q.fcr_rate == pytest.approx(3 / 4) and q.csat_avg == pytest.approx(11 / 3)
    a = figures.agent_figures(j.db, NOW - 3600)
    assert a["bob"].fcr_rate == pytest.approx(1 / 2) and a["alice"].fcr_rate == 1.0
    assert a["bob"].as_dict()["csat_avg"] == 3.0 and a["alice"].csat_count == 1
    assert figures.Figures(0, 0, 0, 0, None, None, None).as_dict()["fcr_rate"] is None


# --------------------------------------------------------------------------- config

@pytest.mark.parametrize(("changes", "expected"), [
    ({"callback": None, "message": {"digit": "6"}}, "queues.sales.message: needs queues.sales.callback"),
    ({"message": {"digit": "5"}}, "queues.sales.message.digit: '5' is already the callback digit"),
])
def test_a_message_needs_a_callback_with_another_digit(changes: dict, expected: str) -> None:
    """A message is called back, so it needs the queue's callback, and a key of its own."""
    d = copy.deepcopy(BASE)
    d["queues"]["sales"].update(changes)
    if d["queues"]["sales"]["callback"] is None:
        del d["queues"]["sales"]["callback"]
    with pytest.raises(config.ConfigError) as e:
        config.parse(d)
    assert any(p.startswith(expected) for p in e.value.problems), e.value.problems


def test_survey_range_is_checked() -> None:
    """A survey whose lowest rating is not below its highest is refused at its key path."""
    d = copy.deepcopy(BASE)
    d["queues"]["sales"]["survey"] = {"lowest": 5, "highest": 5}
    with pytest.raises(config.ConfigError) as e:
        config.parse(d)
    assert any(p.startswith("queues.sales.survey") for p in e.value.problems), e.value.problems


# --------------------------------------------------------------------------- survey

@given(st.text(max_size=2), st.integers(0, 8), st.integers(1, 9))
def test_rating_is_one_digit_within_the_range(key: str, lowest: int, highest: int) -> None:
    """A rating is exactly one digit key within lowest..highest; anything else is no rating."""
    r = rating(key, lowest, highest)
    if r is not None:
        assert key == str(r) and lowest <= r <= highest
    else:
        assert not (len(key) == 1 and key in "0123456789" and lowest <= int(key) <= highest)


def _acd(cfg: config.Config) -> tuple[AcdService, ev.Bus, list[object]]:
    bus = ev.Bus()
    svc = AcdService(cfg, bus, FakeAmi(), Supervisor(lambda n, e: None))
    svc.submit(acd.Resync(()))
    published: list[object] = []
    bus.subscribe(None, published.append)
    return svc, bus, published


async def test_survey_after_a_conversation_stores_the_rating() -> None:
    """The call was answered and has ended: the prompt plays, a wrong key asks again, 4 is the rating."""
    cfg = _cfg(survey={"prompt": ["beep"], "retries": 1})
    svc, bus, published = _acd(cfg)
    j = Journal(":memory:")
    _journal_call(j, "00000000000000c1", "5550100", "sales", NOW)
    j.call_answered("00000000000000c1", "alice", NOW + 5)

    async def lookup(call_id: str) -> object:
        return j.call(call_id)

    h = SurveyHandlers(lambda: cfg, svc, bus, lookup_call=lookup)
    s = FakeSession((), {"CC_CALL_ID": "00000000000000c1", "CC_NEXT": "queue"}, keys="94")
    await h.agi_survey(s)
    rated = [e for e in published if isinstance(e, ev.CsatRated)]
    assert [(e.rating, e.queue, e.agent) for e in rated] == [(4, "sales", "alice")]
    assert s.vars["CC_NEXT"] == "hangup" and ("STREAM FILE", "pm-invalid-option", "") in s.commands


async def test_survey_of_a_refused_claim_sends_the_caller_back_to_waiting() -> None:
    """An answered Dial() whose claim the core refused: the caller was never connected, so no survey;
    CC_NEXT stays 'queue' (back to the wait loop, place kept)."""
    cfg = _cfg(survey={})
    svc, bus, published = _acd(cfg)
    svc.submit(acd.CallQueued("00000000000000c2", "sales", "PJSIP/trunk-1", "5550100", entered_at=time.time()))

    async def lookup(call_id: str) -> None:
        raise AssertionError("no journal read for a caller still waiting")

    s = FakeSession((), {"CC_CALL_ID": "00000000000000c2", "CC_NEXT": "queue"}, keys="4")
    await SurveyHandlers(lambda: cfg, svc, bus, lookup_call=lookup).agi_survey(s)
    assert s.vars["CC_NEXT"] == "queue" and s.commands == []
    assert not any(isinstance(e, ev.CsatRated) for e in published)
    assert "00000000000000c2" in svc.state.calls


# --------------------------------------------------------------------------- trimming

def test_trim_cuts_leading_and_trailing_silence_and_keeps_the_speech(tmp_path: Path) -> None:
    """1 s silence, 1 s tone, 1.5 s quiet noise: what is left is the tone and its padding."""
    rng = np.random.default_rng(7)
    x = np.concatenate([np.zeros(FS), _tone(1.0), 0.0005 * rng.standard_normal(int(1.5 * FS))])
    p = tmp_path / "m.wav"
    _wav(p, x)
    p.chmod(0o640)
    raw, d = trim_silence(p)
    y = _read(p)
    assert raw == pytest.approx(3.5) and d == pytest.approx(1.0 + 2 * 0.2, abs=0.03) and len(y) == pytest.approx(d * FS, abs=1)
    assert np.sqrt(np.mean(y ** 2)) > 0.15  # mostly tone now
    assert p.stat().st_mode & 0o777 == 0o640 and not list(tmp_path.glob("*.tmp"))


def test_trim_leaves_a_silent_file_and_refuses_other_formats(tmp_path: Path) -> None:
    """Silence only: length 0, file untouched. An 8-bit WAV is not what Record() writes: ValueError."""
    p = tmp_path / "quiet.wav"
    _wav(p, np.zeros(FS))
    before = p.read_bytes()
    assert trim_silence(p) == (1.0, 0.0) and p.read_bytes() == before
    q = tmp_path / "eight.wav"
    _wav(q, _tone(0.5), width=1)
    with pytest.raises(ValueError):
        trim_silence(q)


@settings(max_examples=25, deadline=None)
@given(st.floats(0, 2), st.floats(0.1, 2), st.floats(0, 2))
def test_trim_keeps_every_loud_frame(tmp_path_factory: pytest.TempPathFactory, lead: float, tone: float,
                                     tail: float) -> None:
    """Whatever silence surrounds it, the whole tone survives and at most the padding of silence stays."""
    p = tmp_path_factory.mktemp("trim") / "m.wav"
    _wav(p, np.concatenate([np.zeros(int(lead * FS)), _tone(tone), np.zeros(int(tail * FS))]))
    raw, d = trim_silence(p)
    assert d <= raw and tone - 0.02 <= d <= tone + min(lead, 0.2) + min(tail, 0.2) + 0.04


# --------------------------------------------------------------------------- messages over FastAGI

@pytest.fixture
async def messages(tmp_path: Path):
    cfg = _cfg(message={"digit": "6", "max_s": 30, "silence_s": 4, "intro": ["vm-intro"], "announce": ["beep"]})
    svc, bus, published = _acd(cfg)
    svc.submit(acd.CallQueued("00000000000000m1", "sales", "PJSIP/trunk-1", "5550301", entered_at=time.time() - 30))
    th = DbThread("test-db")
    store = await th.run(MessageStore, str(tmp_path / "cc.sqlite3"))

    async def lookup(call_id: str) -> None:
        return None

    cb = CallbackHandlers(lambda: cfg, svc, bus, lookup_call=lookup,
                          dial_back=lambda n, t: dial_back_number(n, cfg.trunks[t], cfg.site))
    tasks = Supervisor(lambda n, e: None)
    m = MessageService(lambda: cfg, svc, bus, db=th, store=store, dirs=lambda: (tmp_path / "rec", "/ast/rec"),
                       dial_back_for=cb.dial_back_for, queue_digit=cb.agi_queue_digit, tasks=tasks)
    (tmp_path / "rec").mkdir()
    yield m, svc, published, tmp_path / "rec", th
    await th.run(store.close)
    th.close()


async def test_message_digit_keeps_the_place_and_records_under_a_generated_name(messages) -> None:
    """6 turns the caller into a callback (place kept), then cc-message records to a daemon-made path."""
    m, svc, published, rec, th = messages
    s = FakeSession(("6",), {"CC_CALL_ID": "00000000000000m1"})
    await m.agi_queue_digit(s)
    c = svc.state.calls["00000000000000m1"]
    assert c.callback == "5550301" and c.channel == "" and svc.state.position(c.call_id) == 1
    assert s.vars["CC_NEXT"] == "message" and (s.vars["CC_MSG_MAX"], s.vars["CC_MSG_SILENCE"]) == ("30", "4")
    assert re.fullmatch(r"/ast/rec/messages/[0-9a-f]{16}", s.vars["CC_MSG_FILE"])
    assert ("STREAM FILE", "vm-intro", "") in s.commands and (rec / "messages").is_dir()
    assert any(isinstance(e, ev.CallOutcome) and e.outcome == "message" for e in published)
    row = await th.run(m.store.get, c.call_id)
    assert row.state == "recording" and row.path == f"messages/{s.vars['CC_MSG_FILE'][-16:]}.wav"


async def test_other_keys_go_to_the_callback_and_a_refused_number_stays_queued(messages) -> None:
    """5 is still the callback's key; a caller ID the trunk may not dial hears 'unavailable' and waits on."""
    m, svc, published, rec, th = messages
    s = FakeSession(("5",), {"CC_CALL_ID": "00000000000000m1"})
    await m.agi_queue_digit(s)
    assert ("HANGUP",) in s.commands and "CC_MSG_FILE" not in s.vars  # a plain callback
    svc.submit(acd.CallQueued("00000000000000m2", "sales", "PJSIP/trunk-2", "+19005550123", entered_at=time.time()))
    s2 = FakeSession(("6",), {"CC_CALL_ID": "00000000000000m2"})
    await m.agi_queue_digit(s2)
    assert not svc.state.calls["00000000000000m2"].callback and "CC_NEXT" not in s2.vars
    assert ("STREAM FILE", "beeperr", "") in s2.commands
    assert await th.run(m.store.get, "00000000000000m2") is None


async def test_finished_message_is_trimmed_once_and_played_to_the_agent(messages, monkeypatch) -> None:
    """After the caller's hang-up the file is trimmed and linked (MessageLeft); the agent who takes the
    callback hears the announcement and the message (one trim, however often asked), marked heard."""
    m, svc, published, rec, th = messages
    s = FakeSession(("6",), {"CC_CALL_ID": "00000000000000m1"})
    await m.agi_queue_digit(s)
    msg_id = s.vars["CC_MSG_FILE"][-16:]
    _wav(rec / "messages" / f"{msg_id}.wav", np.concatenate([np.zeros(FS), _tone(1.5), np.zeros(3 * FS)]))
    m.on_event(Message((("Event", "Hangup"), ("Channel", "Local/party-1;1"), ("Uniqueid", "u1"),
                        ("ChanVariable", "CC_ROLE=caller"), ("ChanVariable", "CC_CALL_ID=00000000000000m1"))))
    for _ in range(100):
        if any(isinstance(e, ev.MessageLeft) for e in published):
            break
        await asyncio.sleep(0.02)
    left = next(e for e in published if isinstance(e, ev.MessageLeft))
    assert left.msg_id == msg_id and left.duration_s == pytest.approx(1.9, abs=0.05)
    calls = []
    monkeypatch.setattr(msg_service, "trim_silence", lambda p: calls.append(p) or (9.9, 9.9))
    agent_leg = FakeSession((), {})
    await m.before_dial(agent_leg, svc.state.calls["00000000000000m1"])
    assert calls == []  # already finished: not trimmed again
    assert agent_leg.commands == [("STREAM FILE", "beep", "#"), ("STREAM FILE", f"/ast/rec/messages/{msg_id}", "#")]
    await th.drain()
    row = await th.run(m.store.get, "00000000000000m1")
    assert row.state == "ready" and row.heard_at is not None and m.sizes() == {"messages_recording": 0,
                                                                               "messages_finishing": 0}



# --------------------------------------------------------------------------- the API

async def test_screen_pop_shows_repeat_csat_and_message_and_the_audio_is_audited(api) -> None:
    """GET /calls/<id>/context carries repeat_of, csat and the message; GET /calls/<id>/message serves the
    WAV to a supervisor of the agent's team (audited) and 404s for a call without one; /queues and
    /agents show CSAT and FCR."""
    d, base = api
    j, cid, first, t = d.journal, "00000000000000e2", "00000000000000e1", time.time() - 100
    for c, at in ((first, t), (cid, t + 50)):
        await d.db.run(_journal_call, j, c, "5550123", "sales", at)
    d.bus.publish(ev.CallRepeat(cid, "sales", first))
    d.bus.publish(ev.CsatRated(cid, "sales", "alice", 5, t + 90))
    await d.db.run(j.call_answered, cid, "alice", t + 55)
    await d.db.run(d.message_store.started, cid, "0123456789abcdef", "sales", "messages/0123456789abcdef.wav", t + 51)
    await d.db.run(d.message_store.finished, cid, "ready", 1.5, t + 60)
    _wav(Path(d.recording.dir) / "messages" / "0123456789abcdef.wav", _tone(1.5))
    async with _client() as s:
        await _sign_in(s, base, "sam", SAM)
        async with s.get(f"{base}/api/v1/calls/{cid}/context") as r:
            assert r.status == 200, await r.text()
            ctx = await r.json()
        async with s.get(f"{base}/api/v1/calls/{cid}/message") as r:
            assert r.status == 200 and r.headers["Content-Type"] == "audio/wav"
            body = await r.read()
        async with s.get(f"{base}/api/v1/calls/{first}/message") as r:
            assert r.status == 404
        await d.stats.refresh(d.stats_db)
        async with s.get(f"{base}/api/v1/queues") as r:
            sales = (await r.json())["queues"]["sales"]
        async with s.get(f"{base}/api/v1/agents") as r:
            alice = (await r.json())["agents"]["alice"]
    assert (sales["csat_avg"], sales["fcr_rate"], alice["csat_avg"]) == (5.0, 1.0, 5.0)
    assert (ctx["repeat_of"], ctx["csat"]) == (first, 5)
    assert ctx["message"]["id"] == "0123456789abcdef" and ctx["message"]["state"] == "ready"
    assert body[:4] == b"RIFF" and len(body) > 1.5 * FS * 2
    audit = sqlite3.connect(d.cfg.daemon.database).execute(
        "SELECT outcome FROM api_audit WHERE action = 'messages.read' AND target = ?", (cid,)).fetchall()
    assert audit == [("done",)]


def test_webhook_call_offered_names_the_call_it_repeats() -> None:
    """The screen pop's webhook (call.offered) carries repeat_of after CallRepeat, None for a first call."""
    from callcenter.features.webhooks.payloads import Payloads
    p = Payloads()
    for cid, rep in (("00000000000000f2", "00000000000000f1"), ("00000000000000f3", None)):
        p.message(ev.CallStarted(cid, "u", "PJSIP/t-1", "5550123", "", "5551000", NOW), NOW)
        if rep:
            p.message(ev.CallRepeat(cid, "sales", rep), NOW)
        p.message(ev.CallQueued(cid, "sales", NOW), NOW)
        offered = p.message(ev.CallOffered(cid, "alice", "sales", "", NOW + 1), NOW)
        assert offered is not None and offered.data["repeat_of"] == rep


async def test_a_message_whose_hangup_was_lost_is_finished_at_the_resync(messages) -> None:
    """The AMI link dropped while the caller spoke: the snapshot after the reconnect no longer has their
    channel, so the message is finished then (silence only here: 'empty', nothing published)."""
    m, svc, published, rec, th = messages
    s = FakeSession(("6",), {"CC_CALL_ID": "00000000000000m1"})
    await m.agi_queue_digit(s)
    _wav(rec / "messages" / f"{s.vars['CC_MSG_FILE'][-16:]}.wav", np.zeros(FS))
    other = Message((("Event", "CoreShowChannel"), ("Channel", "PJSIP/trunk-9"), ("ChanVariable", "CC_ROLE=caller"),
                     ("ChanVariable", "CC_CALL_ID=00000000000000zz")))
    m.resynced([other])
    for _ in range(100):
        if not m.recording:
            break
        await asyncio.sleep(0.02)
    row = await th.run(m.store.get, "00000000000000m1")
    assert row.state == "empty" and not any(isinstance(e, ev.MessageLeft) for e in published)


async def test_an_agent_answering_while_the_caller_still_speaks_waits_for_the_hang_up(messages) -> None:
    """The callback came up while the caller was still recording: the agent's leg waits for the caller's
    hang-up (the file is never trimmed while Asterisk writes it), then hears the message."""
    m, svc, published, rec, th = messages
    s = FakeSession(("6",), {"CC_CALL_ID": "00000000000000m1"})
    await m.agi_queue_digit(s)
    agent_leg = FakeSession((), {})
    waiting = asyncio.create_task(m.before_dial(agent_leg, svc.state.calls["00000000000000m1"]))
    await asyncio.sleep(0.2)
    assert not waiting.done() and agent_leg.commands == []
    _wav(rec / "messages" / f"{s.vars['CC_MSG_FILE'][-16:]}.wav", _tone(1.0))
    m.on_event(Message((("Event", "Hangup"), ("Channel", "Local/party-1;1"), ("Uniqueid", "u1"),
                        ("ChanVariable", "CC_ROLE=caller"), ("ChanVariable", "CC_CALL_ID=00000000000000m1"))))
    await asyncio.wait_for(waiting, 5)
    assert agent_leg.commands[-1][:2] == ("STREAM FILE", s.vars["CC_MSG_FILE"])


async def test_a_recordings_dir_unsafe_for_the_dialplan_refuses_messages(messages) -> None:
    """A recordings directory (as Asterisk sees it) with a comma or space would split Record()'s
    arguments: no message is taken, the caller hears 'unavailable' and keeps waiting."""
    m, svc, published, rec, th = messages
    m.dirs = lambda: (rec, "/var/rec,x y")
    s = FakeSession(("6",), {"CC_CALL_ID": "00000000000000m1"})
    await m.agi_queue_digit(s)
    assert not svc.state.calls["00000000000000m1"].callback and "CC_MSG_FILE" not in s.vars
    assert ("STREAM FILE", "beeperr", "") in s.commands
