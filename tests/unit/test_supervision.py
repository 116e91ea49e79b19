"""Supervision: who may listen/whisper/barge on whom, PIN lock-out, and the exact ChanSpy arguments."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from callcenter import config as config_mod
from callcenter.features.supervision import model as sv
from callcenter.features.supervision.model import (
    LOCKOUT_S,
    MAX_BAD_PINS,
    PIN_WINDOW_S,
    Decision,
    LockoutState,
    chanspy_options,
    chanspy_target,
    decide,
)

ROOT = Path(__file__).resolve().parents[2]
CHAN = "PJSIP/2001-0000001a"


@pytest.fixture(scope="module")
def cfg() -> config_mod.Config:
    """The lab config with teams and two supervisors: sam (team red) and tess (no team)."""
    data = copy.deepcopy(yaml.safe_load((ROOT / "tests" / "asterisk" / "lab.yaml").read_text()))
    data["phones"]["2009"] = {"secret": "test-secret-2009"}
    data["phones"]["2010"] = {"secret": "test-secret-2010"}
    data["agents"]["alice"]["team"] = "red"
    data["agents"]["bob"]["team"] = "blue"
    data["supervisors"] = {"sam": {"phone": "2009", "pin": "4321", "teams": ["red"]},
                           "tess": {"phone": "2010", "pin": "987654"}}
    data.pop("access", None)  # its users name the lab's supervisors
    return config_mod.parse(data)


def ask(cfg, phone="2009", mode="listen", target="2001", pin="4321", chan: str | None = CHAN,
        state: LockoutState | None = None, now: float = 1000.0) -> tuple[LockoutState, Decision]:
    return decide(cfg, phone, mode, target, pin, chan, state or LockoutState(), now)


@pytest.mark.parametrize("mode", sv.MODES)
def test_ok(cfg, mode: str):
    """A supervisor with the right PIN may spy on an agent of their team who is on a call, in every mode."""
    _, d = ask(cfg, mode=mode)
    assert d == Decision(True, "ok", "alice", "sam")


@pytest.mark.parametrize(("kwargs", "reason", "agent", "supervisor"), [
    ({"mode": "eavesdrop"}, "bad_mode", None, None),
    ({"phone": "2001"}, "not_a_supervisor", None, None),
    ({"phone": "1999"}, "not_a_supervisor", None, None),
    ({"pin": "1234"}, "bad_pin", None, "sam"),
    ({"pin": ""}, "bad_pin", None, "sam"),
    ({"pin": "43210"}, "bad_pin", None, "sam"),
    ({"target": "2999"}, "not_an_agent", None, "sam"),
    ({"target": "2009"}, "not_an_agent", None, "sam"),
    ({"target": "2002"}, "not_in_team", "bob", "sam"),
    ({"target": "2003"}, "not_in_team", "carol", "sam"),  # carol has no team
    ({"phone": "2010", "pin": "987654"}, "not_in_team", "alice", "tess"),  # tess has no teams
    ({"chan": None}, "agent_not_on_call", "alice", "sam"),
])
def test_refusals(cfg, kwargs: dict, reason: str, agent: str | None, supervisor: str | None):
    """Each failed check gives its stable reason code and names only what is already known."""
    _, d = ask(cfg, **kwargs)
    assert d == Decision(False, reason, agent, supervisor)
    assert reason in sv.REASONS


def test_wrong_pin_reveals_nothing_about_the_target(cfg):
    """With a wrong PIN, a real agent, a stranger and an off-call agent all get the same answer."""
    answers = {ask(cfg, pin="0000", target=t, chan=c)[1] for t, c in (("2001", CHAN), ("2999", CHAN), ("2002", None))}
    assert answers == {Decision(False, "bad_pin", None, "sam")}


def test_lockout_after_max_bad_pins(cfg):
    """MAX_BAD_PINS wrong PINs within the window lock the supervisor out, right PIN included, for LOCKOUT_S."""
    state, t = LockoutState(), 1000.0
    for _ in range(MAX_BAD_PINS):
        state, d = ask(cfg, pin="0000", state=state, now=t)
        assert d.reason == "bad_pin"
        t += 1
    state, d = ask(cfg, state=state, now=t)
    assert d.reason == "locked" and not d.allowed
    state, d = ask(cfg, state=state, now=t - 1 + LOCKOUT_S - 0.001)
    assert d.reason == "locked"
    state, d = ask(cfg, state=state, now=t - 1 + LOCKOUT_S)
    assert d.allowed
    # another supervisor is not affected
    _, d = ask(cfg, phone="2010", pin="987654", state=state, now=t)
    assert d.reason == "not_in_team"


def test_bad_pins_spread_out_do_not_lock(cfg):
    """Wrong PINs further apart than the window never add up to a lock-out."""
    state, t = LockoutState(), 0.0
    for _ in range(3 * MAX_BAD_PINS):
        state, d = ask(cfg, pin="0000", state=state, now=t)
        assert d.reason == "bad_pin"
        t += PIN_WINDOW_S / (MAX_BAD_PINS - 1) + 1


def test_right_pin_resets_the_count(cfg):
    """A right PIN clears earlier wrong ones."""
    state = LockoutState()
    for i in range(MAX_BAD_PINS - 1):
        state, _ = ask(cfg, pin="0000", state=state, now=float(i))
    state, d = ask(cfg, state=state, now=10.0)
    assert d.allowed and state.failures == {}
    state, d = ask(cfg, pin="0000", state=state, now=11.0)
    assert d.reason == "bad_pin"


def test_decide_does_not_mutate_the_state(cfg):
    """The state passed in is left as it was: decide is pure."""
    s0 = LockoutState()
    s1, _ = ask(cfg, pin="0000", state=s0)
    assert s0.failures == {} and s1.failures == {"sam": (1000.0,)}
    with pytest.raises(TypeError):
        s1.failures["sam"] = ()  # type: ignore[index]


@given(st.lists(st.tuples(st.booleans(), st.floats(0, 400, allow_nan=False)), max_size=60))
def test_never_more_than_max_bad_pins_checked_per_window(attempts: list[tuple[bool, float]]):
    """Whatever the sequence, at most MAX_BAD_PINS wrong PINs are compared within any PIN_WINDOW_S without a
    right PIN in between (someone guessing never gets more tries than that)."""
    cfg = _cfg_for_property()
    state, t, runs = LockoutState(), 0.0, [[]]
    for right, dt in attempts:
        t += dt
        state, d = ask(cfg, pin="4321" if right else "1111", state=state, now=t)
        if d.reason == "bad_pin":
            runs[-1].append(t)
        elif d.allowed:
            runs.append([])
    for compared in runs:
        for i, start in enumerate(compared):
            assert sum(1 for x in compared[i:] if x - start < PIN_WINDOW_S) <= MAX_BAD_PINS


_CFG: list[config_mod.Config] = []


def _cfg_for_property() -> config_mod.Config:
    if not _CFG:
        data = copy.deepcopy(yaml.safe_load((ROOT / "tests" / "asterisk" / "lab.yaml").read_text()))
        data["phones"]["2009"] = {"secret": "test-secret-2009"}
        data["agents"]["alice"]["team"] = "red"
        data["supervisors"] = {"sam": {"phone": "2009", "pin": "4321", "teams": ["red"]}}
        data.pop("access", None)
        _CFG.append(config_mod.parse(data))
    return _CFG[0]


def test_pin_compare_is_constant_time(cfg, monkeypatch: pytest.MonkeyPatch):
    """The PIN goes through hmac.compare_digest (no early exit on the first wrong digit)."""
    seen = []
    real = sv.hmac.compare_digest

    def spy(a, b):
        seen.append((a, b))
        return real(a, b)

    monkeypatch.setattr(sv.hmac, "compare_digest", spy)
    assert ask(cfg, pin="4322")[1].reason == "bad_pin"
    assert seen == [(b"4322", b"4321")]


# --------------------------------------------------------------------------- ChanSpy

def test_dtmf_constants_match_chanspy_d_option():
    """ChanSpy option d: 4 = spy, 5 = whisper, 6 = barge."""
    assert (sv.DTMF_LISTEN, sv.DTMF_WHISPER, sv.DTMF_BARGE) == ("4", "5", "6")
    assert dict(sv.DTMF_MODES) == {"4": "listen", "5": "whisper", "6": "barge"}


def test_chanspy_options():
    """Quiet, DTMF mode switch, exit on hangup, stop when none left, exact target; w or B start the mode."""
    assert chanspy_options("listen") == "qdESu"
    assert chanspy_options("whisper") == "qdESuw"
    assert chanspy_options("barge") == "qdESuB"
    with pytest.raises(ValueError):
        chanspy_options("spy")


@pytest.mark.parametrize("ok", ["PJSIP/2001-0000001a", "PJSIP/2001-00000011", "Local/2001@agents-00000002;1",
                                "1712345678.42", "pbx1-1712345678.42", "SIP/trunk_a-0000beef"])
def test_chanspy_target_accepts_channel_names_and_uniqueids(ok: str):
    """Full channel names and uniqueids pass through unchanged."""
    assert chanspy_target(ok) == ok


@pytest.mark.parametrize("bad", ["", "PJSIP/2001,qB", "PJSIP/2001)", "PJSIP/${X}", "PJSIP/2001 x", "2001",
                                 "PJSIP/20|01", "PJSIP/2001;3", "PJSIP/a\nb", "PJSIP/"])
def test_chanspy_target_refuses_anything_that_could_break_the_dialplan(bad: str):
    """Commas, parentheses, variables, spaces, pipes and bare extensions are refused."""
    with pytest.raises(ValueError):
        chanspy_target(bad)


@given(st.text(max_size=40))
def test_chanspy_target_never_passes_argument_separators(s: str):
    """Whatever passes has no character that ends or extends a dialplan argument."""
    try:
        chanspy_target(s)
    except ValueError:
        return
    assert not set(s) & set(",()|\"'${}[]\\ \n\t")


def test_pruned_drops_old_failures_and_ended_lockouts(cfg):
    """Wrong PINs older than the window and lock-outs that have ended leave the state: its maps shrink to empty."""
    state, t = LockoutState(), 1000.0
    for _ in range(MAX_BAD_PINS):
        state, _ = ask(cfg, pin="0000", state=state, now=t)
    assert dict(state.locked_until) == {"sam": t + LOCKOUT_S}
    state, _ = ask(cfg, phone="2010", pin="0000", state=state, now=t)
    assert dict(state.failures) == {"tess": (t,)}
    assert state.pruned(t + 1) is state
    later = state.pruned(t + LOCKOUT_S)
    assert dict(later.failures) == {} and dict(later.locked_until) == {}
    assert dict(state.pruned(t + PIN_WINDOW_S).failures) == {}


# --------------------------------------------------------------------------- the audit store

def test_spy_audit(tmp_path: Path):
    """Every supervision attempt is one audit row, newest first."""
    from callcenter.features.supervision.store import SpyAuditStore
    T0 = 1_786_000_000.0
    with SpyAuditStore(tmp_path / "cc.sqlite3") as store:
        store.audit(T0, "sam", "2003", "alice", "2001", "listen", "denied", "bad_pin")
        store.audit(T0 + 1, "sam", "2003", "alice", "2001", "whisper", "allowed", "ok")
        a = store.audits()
        assert [(x.mode, x.outcome, x.reason) for x in a] == [("whisper", "allowed", "ok"),
                                                              ("listen", "denied", "bad_pin")]
        assert len(store.audits(since=T0 + 0.5)) == 1


# --------------------------------------------------------------------------- the service (fake AGI/AMI)

ALICE = "PJSIP/2001-0000002a"


@pytest.fixture
async def spy_svc(tmp_path: Path):
    from callcenter.events import Bus
    from callcenter.features.supervision.service import SupervisionService
    from callcenter.persistence import DbThread
    from tests.unit.media_fakes import Seen, lab_cfg
    db, bus = DbThread("test-db"), Bus()
    svc = SupervisionService(lab_cfg(tmp_path), db=db, bus=bus)
    svc.seen = Seen(bus)  # type: ignore[attr-defined]
    await svc.start()
    yield svc
    await svc.close()
    db.close()


async def _audits(svc):
    return await svc.db.run(svc.store.audits)


async def test_denied_spy_is_audited_and_never_reaches_chanspy(spy_svc):
    """A wrong PIN: the attempt is audited, the caller hears an error and CC_SPY is never set."""
    from callcenter.features.supervision.handlers import agi_spy
    from tests.unit.media_fakes import FakeSession, event
    spy_svc.on_event(event("BridgeEnter", ALICE, CC_ROLE="agent", CC_AGENT="alice"))
    s = FakeSession(("listen", "2001", "2004"), pin="1111")
    await agi_spy(spy_svc, s)  # type: ignore[arg-type]
    assert not any(c[0] == "SET VARIABLE" for c in s.sent)
    assert s.sent[-1] == ("HANGUP",) and ("STREAM FILE", "auth-incorrect", "") in s.sent
    audits = await _audits(spy_svc)
    assert [(a.supervisor, a.supervisor_phone, a.agent, a.mode, a.outcome, a.reason) for a in audits] == [
        ("sam", "2004", None, "listen", "denied", "bad_pin")]
    assert [(e.kind, e.supervisor, e.reason) for e in spy_svc.seen.events] == [("denied", "sam", "bad_pin")]


async def test_allowed_spy_targets_exactly_the_agents_bridged_channel(spy_svc):
    """The right PIN for an agent of sam's team: ChanSpy gets that channel's full name and option u."""
    from callcenter.features.supervision.handlers import agi_spy
    from tests.unit.media_fakes import FakeSession, event
    spy_svc.on_event(event("BridgeEnter", ALICE, CC_ROLE="agent", CC_AGENT="alice"))
    s = FakeSession(("whisper", "2001", "2004"), pin="4321")
    await agi_spy(spy_svc, s)  # type: ignore[arg-type]
    assert s.vars["CC_SPY"] == "ok" and s.vars["CC_SPY_TARGET"] == ALICE
    assert "u" in s.vars["CC_SPY_OPTIONS"] and "w" in s.vars["CC_SPY_OPTIONS"]
    audits = await _audits(spy_svc)
    assert [(a.agent, a.outcome, a.reason) for a in audits] == [("alice", "allowed", "ok")]
    assert [(e.kind, e.supervisor, e.agent, e.mode) for e in spy_svc.seen.events] == [
        ("allowed", "sam", "alice", "whisper")]


@pytest.mark.parametrize("endpoint,channel,reason", [
    ("2001", ALICE, "not_a_supervisor"),  # an agent's phone dialling *71: not a supervisor
    ("2004", "PJSIP/2002-00000001", "agent_not_on_call"),  # a channel that is not alice's phone
    ("2004", None, "agent_not_on_call"),  # alice not talking
])
async def test_spy_refusals(spy_svc, endpoint: str, channel: str | None, reason: str):
    """Only a supervisor's phone, and only alice's own bridged phone channel, can be spied on."""
    from callcenter.features.supervision.handlers import agi_spy
    from tests.unit.media_fakes import FakeSession, event
    if channel is not None:
        spy_svc.on_event(event("BridgeEnter", channel, CC_ROLE="agent", CC_AGENT="alice"))
    s = FakeSession(("listen", "2001", endpoint), pin="4321")
    await agi_spy(spy_svc, s)  # type: ignore[arg-type]
    assert "CC_SPY" not in s.vars
    audits = await _audits(spy_svc)
    assert [a.reason for a in audits] == [reason]


async def test_hangup_forgets_the_agents_channel(spy_svc):
    """The agent's Hangup removes their talking channel."""
    from tests.unit.media_fakes import event
    spy_svc.on_event(event("BridgeEnter", ALICE, CC_ROLE="agent", CC_AGENT="alice"))
    spy_svc.on_event(event("Hangup", ALICE, CC_ROLE="agent", CC_AGENT="alice"))
    assert spy_svc.agent_channels == {}


async def test_resync_rebuilds_talking_agents(spy_svc):
    """After a reconnect the snapshot's bridge membership is the truth about who is talking."""
    from callcenter.protocol.ami import Message
    snap = Message((("Event", "CoreShowChannel"), ("Channel", ALICE), ("BridgeId", "b1"),
                    ("ChanVariable", "CC_ROLE=agent"), ("ChanVariable", "CC_AGENT=alice"),
                    ("ChanVariable", "CC_CALL_ID=00000000000000aa")))
    spy_svc.agent_channels["bob"] = "PJSIP/2002-00000009"
    spy_svc.resynced([snap])
    assert spy_svc.agent_channels == {"alice": ALICE}


async def test_chanspy_events_are_published_with_who(spy_svc):
    """ChanSpyStart/Stop name the supervisor (by the spyer's endpoint) and the agent (by the spyee's)."""
    from callcenter.protocol.ami import Message
    for ev in ("ChanSpyStart", "ChanSpyStop"):
        spy_svc.on_event(Message((("Event", ev), ("SpyerChannel", "PJSIP/2004-00000003"),
                                  ("SpyeeChannel", ALICE))))
    assert [(e.kind, e.supervisor, e.agent) for e in spy_svc.seen.events] == [
        ("started", "sam", "alice"), ("stopped", "sam", "alice")]


async def test_spy_from_the_api_rings_the_supervisors_phone_on_exactly_the_agents_channel(spy_svc):
    """From the API: Originate of sam's desk phone into cc-spy-api, target alice's full channel; audited."""
    from tests.unit.fakes import FakeAmi
    from tests.unit.media_fakes import event
    spy_svc.ami = FakeAmi()
    spy_svc.on_event(event("BridgeEnter", ALICE, CC_ROLE="agent", CC_AGENT="alice"))
    res = await spy_svc.spy_from_api("sam", "alice", "barge", actor="sam")
    assert res.allowed and res.target == ALICE
    [o] = spy_svc.ami.originates()
    assert (o["Channel"], o["Context"], o["Exten"]) == ("PJSIP/2004", "cc-spy-api", "s")
    assert f"CC_SPY_TARGET={ALICE}" in o["Variables"].split(";")
    assert "B" in next(v for v in o["Variables"].split(";") if v.startswith("CC_SPY_OPTIONS="))
    audits = await _audits(spy_svc)
    assert [(a.supervisor, a.supervisor_phone, a.agent, a.mode, a.outcome) for a in audits] == [
        ("sam", "2004", "alice", "barge", "allowed")]


async def test_spy_from_the_api_without_a_call_originates_nothing(spy_svc):
    """Alice not talking: agent_not_on_call, audited, and no phone rings."""
    from tests.unit.fakes import FakeAmi
    spy_svc.ami = FakeAmi()
    res = await spy_svc.spy_from_api("sam", "alice", "listen", actor="sam")
    assert not res.allowed and res.reason == "agent_not_on_call"
    assert spy_svc.ami.actions == []
    assert [(a.outcome, a.reason) for a in await _audits(spy_svc)] == [("denied", "agent_not_on_call")]
