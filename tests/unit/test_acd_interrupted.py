"""Calls cut off by a lost Asterisk: flagged when the AMI link drops, ended ``interrupted`` when the
next Resync shows that Asterisk restarted without them, unflagged when they are still there."""

from __future__ import annotations

from pathlib import Path

from callcenter.app import asterisk_restarted, asterisk_started_at
from callcenter.config import load
from callcenter.features.acd import model as acd
from callcenter.features.acd.agents import AgentState
from callcenter.features.stats.cache import Snapshot
from callcenter.features.stats.status import build_status
from callcenter.protocol.ami import Message

LAB = Path(__file__).resolve().parents[1] / "asterisk" / "lab.yaml"
CFG = load(LAB)


def caller(cid: str, **kw: object) -> acd.ChannelSnapshot:
    kw.setdefault("context", "cc-wait")
    return acd.ChannelSnapshot(uniqueid=f"u-{cid}", channel=f"PJSIP/trunk-pstn-{cid}", role="caller",
                               call_id=cid, queue="sales", entered_at=0.0, **kw)  # type: ignore[arg-type]


def agent_leg(cid: str, agent: str) -> acd.ChannelSnapshot:
    return acd.ChannelSnapshot(uniqueid=f"a-{cid}", channel=f"PJSIP/{agent}-{cid}", role="agent",
                               call_id=cid, agent=agent, up=True, bridged=True, context="cc-agent")


def talking_and_waiting() -> acd.AcdState:
    """alice talks on t1 (adopted by a Resync); w1 waits (bob and carol logged out)."""
    chans = (caller("t1", bridged=True, up=True, context="cc-connect"), agent_leg("t1", "alice"), caller("w1"))
    state, _ = acd.step(CFG, acd.initial_state(CFG), acd.Resync(chans), 10)
    assert state.calls["t1"].answered_at is not None and state.calls["w1"].agent is None
    return state


def ended(cmds: list) -> dict[str, str]:
    return {c.call_id: c.outcome for c in cmds if isinstance(c, acd.CallEnded)}


def test_ami_down_flags_the_nodes_live_calls():
    """AmiDown flags every live call of its node at once and says which; another node's are untouched."""
    state = talking_and_waiting()
    state, cmds = acd.step(CFG, state, acd.AmiDown("local"), 20)
    assert [c for c in cmds if isinstance(c, acd.CallsInterrupted)] == [acd.CallsInterrupted(("t1", "w1"), "local", 20)]
    assert state.calls["t1"].interrupted_at == 20 and state.calls["w1"].interrupted_at == 20
    other, cmds = acd.step(CFG, talking_and_waiting(), acd.AmiDown("node2"), 20)
    assert not [c for c in cmds if isinstance(c, acd.CallsInterrupted)]
    assert all(c.interrupted_at is None for c in other.calls.values())


def test_status_shows_interrupted_calls():
    """/status marks a flagged call interrupted (and the others not)."""
    state, _ = acd.step(CFG, talking_and_waiting(), acd.AmiDown(), 20)
    out = build_status(CFG.queues, state, Snapshot(), 21, campaigns={}, config={})
    assert {c["call_id"]: c["interrupted"] for c in out["calls"]} == {"t1": True, "w1": True}
    out = build_status(CFG.queues, talking_and_waiting(), Snapshot(), 21, campaigns={}, config={})
    assert {c["call_id"]: c["interrupted"] for c in out["calls"]} == {"t1": False, "w1": False}


def test_restarted_asterisk_without_the_calls_ends_them_interrupted():
    """After a restart of Asterisk, flagged calls it no longer has end 'interrupted'; their agent is freed."""
    state, _ = acd.step(CFG, talking_and_waiting(), acd.AmiDown(), 20)
    state, cmds = acd.step(CFG, state, acd.Resync((), restarted=True), 25)
    assert ended(cmds) == {"t1": "interrupted", "w1": "interrupted"}
    assert dict(state.calls) == {}
    assert state.agents["alice"].state is not AgentState.BUSY and state.agents["alice"].call_id is None


def test_plain_reconnect_keeps_the_usual_outcomes_and_unflags_survivors():
    """Without a restart, calls gone while the link was down end as their parties ended them, and the
    calls still there lose the flag."""
    state, _ = acd.step(CFG, talking_and_waiting(), acd.AmiDown(), 20)
    state, cmds = acd.step(CFG, state, acd.Resync(()), 25)
    assert ended(cmds) == {"t1": "completed", "w1": "abandoned"}
    state, _ = acd.step(CFG, talking_and_waiting(), acd.AmiDown(), 20)
    chans = (caller("t1", bridged=True, up=True, context="cc-connect"), agent_leg("t1", "alice"), caller("w1"))
    state, cmds = acd.step(CFG, state, acd.Resync(chans, restarted=True), 25)
    assert ended(cmds) == {}
    assert state.calls["t1"].interrupted_at is None and state.calls["w1"].interrupted_at is None


def test_asterisk_restart_from_fully_booted_uptime():
    """A later start time (FullyBooted's Uptime) is a restart; the same Asterisk or an unknown one is not."""
    booted = Message((("Event", "FullyBooted"), ("Uptime", "100"), ("LastReload", "100")))
    assert asterisk_started_at(booted, 1000.0) == 900.0
    assert asterisk_started_at(Message((("Event", "FullyBooted"),)), 1000.0) is None
    assert asterisk_restarted(900.0, 901.0) is False  # the same Asterisk, read a second apart
    assert asterisk_restarted(900.0, 960.0) is True
    assert asterisk_restarted(None, 960.0) is False and asterisk_restarted(900.0, None) is False
