"""The live floor's stream: numbered once, delivered by view, resumed without gaps, bounded."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from callcenter import config
from callcenter import events as ev
from callcenter.features.acd.model import initial_state
from callcenter.features.api.live import MAX_BACKLOG, LiveFloor, View, view_for
from callcenter.features.stats.cache import Snapshot

CFG = config.load("tests/asterisk/lab.yaml")
AGENTS = sorted(CFG.agents)


def _floor(keep: int | None = None) -> LiveFloor:
    cfg = CFG
    st_ = initial_state(cfg)
    lf = LiveFloor(cfg, acd_state=lambda: st_, stats=Snapshot, campaigns=dict, clock=lambda: 1000.0)
    if keep is not None:
        from collections import deque
        lf.kept = deque(maxlen=keep)
    return lf


def _state(agent: str, state: str) -> ev.AgentStateChanged:
    return ev.AgentStateChanged(agent, state, "", 0.0, None, False, None, 1000.0)


def _texts(v) -> list[dict]:
    return [json.loads(t) for t in v.pending]


@settings(max_examples=60, deadline=None)
@given(events=st.lists(st.sampled_from(AGENTS), max_size=40), cut=st.integers(0, 40),
       team=st.sampled_from([None, "east", "west"]))
def test_resume_replays_exactly_what_the_view_missed(events, cut, team):
    """A viewer resuming after seq N gets, in order, exactly the later events its view may see."""
    lf = _floor()
    bus = ev.Bus()
    lf.subscribe(bus)
    agents = None if team is None else [a for a, c in CFG.agents.items() if c.team == team]
    view = view_for(agents, CFG)
    cut = min(cut, len(events))
    for a in events[:cut]:
        bus.publish(_state(a, "Ready"))
    after = lf.seq
    for a in events[cut:]:
        bus.publish(_state(a, "Paused"))
    v = lf.attach(view, after=after, stream=lf.stream)
    got = _texts(v)
    want = [a for a in events[cut:] if agents is None or a in agents]
    assert [m["data"]["agent"] for m in got] == want
    assert [m["seq"] for m in got] == sorted(m["seq"] for m in got)
    assert all(m["seq"] > after for m in got)


def test_a_resume_older_than_the_kept_events_gets_a_snapshot():
    """When the events after N are no longer all kept, the viewer starts again from a snapshot."""
    lf = _floor(keep=5)
    bus = ev.Bus()
    lf.subscribe(bus)
    for _ in range(10):
        bus.publish(_state("alice", "Ready"))
    assert _texts(lf.attach(View(), after=2, stream=lf.stream))[0]["type"] == "snapshot"
    assert [m["seq"] for m in _texts(lf.attach(View(), after=6, stream=lf.stream))] == [7, 8, 9, 10]
    assert _texts(lf.attach(View(), after=6, stream="other"))[0]["type"] == "snapshot"


def test_each_event_is_encoded_once_whatever_the_number_of_viewers():
    """200 viewers cost one encoding per event, and one floor encoding per distinct view."""
    lf = _floor()
    bus = ev.Bus()
    lf.subscribe(bus)
    viewers = [lf.attach(View()) for _ in range(200)] + [lf.attach(view_for(["alice"], CFG)) for _ in range(5)]
    before = lf.encoded
    bus.publish(_state("alice", "Ready"))
    assert lf.encoded - before == 1
    assert all(len(v.pending) == 2 for v in viewers)  # snapshot + the event
    assert lf.push_floors() == 2
    assert lf.encoded - before == 3


def test_a_viewer_too_far_behind_is_dropped_not_grown():
    """A viewer that never reads stops growing at MAX_BACKLOG and is marked for closing."""
    lf = _floor()
    bus = ev.Bus()
    lf.subscribe(bus)
    v = lf.attach(View())
    for _ in range(MAX_BACKLOG + 10):
        bus.publish(_state("bob", "Ready"))
    assert v.dropped and len(v.pending) < MAX_BACKLOG


def test_missed_offers_count_per_agent():
    """An offer that rang out (Reserved, then not Busy) counts as missed; an answered one does not."""
    lf = _floor()
    bus = ev.Bus()
    lf.subscribe(bus)
    for s in ("Ready", "Reserved", "Ready", "Reserved", "Busy", "WrapUp", "Ready"):
        bus.publish(_state("alice", s))
    assert lf.floor()["agents"]["alice"]["missed"] == 1
