"""The live floor for browsers and integrations: one sequenced stream of the bus's events, the floor
(queues, agents, calls, campaigns) as a snapshot, and resumption by sequence number.

Every domain event the stream carries is encoded **once**, numbered, kept in a bounded ring
(``wallboard.keep_events``) and handed to each viewer allowed to see it; a viewer that reconnects
with ``after=<seq>`` gets exactly what it missed (or a fresh snapshot when that is no longer kept
or the daemon restarted: the ``stream`` id changes). One sequence for all calls keeps the events
of a call in order. The floor is built from memory (ACD state, stats cache, dialler status) — no
database or AMI query per viewer — and encoded once per distinct view (the set of agents and
queues a viewer may see) each time it is pushed.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from callcenter import events as ev
from callcenter.features.acd.agents import AgentState
from callcenter.features.acd.model import AcdState
from callcenter.features.api.schema import STATES, WallboardConf
from callcenter.features.stats.cache import Snapshot
from callcenter.features.stats.status import live_queues

__all__ = ["LiveFloor", "View", "Viewer"]

MAX_BACKLOG = 2000  # a viewer this far behind is cut off; it reconnects and resumes or re-snapshots


@dataclass(frozen=True)
class View:
    """What one viewer may see: ``agents``/``queues`` None = everything."""

    agents: frozenset[str] | None = None
    queues: frozenset[str] | None = None

    def sees(self, agent: str | None, queue: str | None) -> bool:
        if self.agents is None:
            return True
        if agent is not None:
            return agent in self.agents
        return queue is None or self.queues is None or queue in self.queues


@dataclass(eq=False)
class Viewer:
    """One connected stream: its view and the encoded messages waiting to be written."""

    view: View
    pending: deque[str] = field(default_factory=deque)
    wake: Callable[[], None] = lambda: None
    dropped: bool = False
    conn: Any = None  # the transport's handle (the WebSocket), for whoever writes ``pending`` out

    def push(self, text: str) -> None:
        if self.dropped:
            return
        if len(self.pending) >= MAX_BACKLOG:
            self.dropped = True  # too slow: the writer closes it; the browser resumes by seq
            self.pending.clear()
        else:
            self.pending.append(text)
        self.wake()


@dataclass(frozen=True)
class _Kept:
    seq: int
    agent: str | None
    queue: str | None
    text: str


class LiveFloor:
    """See the module doc. ``acd_state``, ``stats``, ``campaigns``: readers of the live state."""

    def __init__(self, cfg: Any, *, acd_state: Callable[[], AcdState], stats: Callable[[], Snapshot],
                 campaigns: Callable[[], Mapping[str, Any]], clock: Callable[[], float] = time.time,
                 campaign_of: Callable[[str], str | None] = lambda call_id: None):
        self.cfg = cfg
        self.campaign_of = campaign_of  # a dialled call's campaign (its dispositions, on the agent panel)
        self.customer_of: Callable[[str], dict[str, Any] | None] = lambda call_id: None  # features.crm's record
        self.acd_state, self.stats, self.campaigns, self.clock = acd_state, stats, campaigns, clock
        self.stream = uuid.uuid4().hex[:12]  # a restarted daemon starts a new stream: clients re-snapshot
        self.seq = 0
        self.kept: deque[_Kept] = deque(maxlen=self._conf.keep_events)
        self.viewers: set[Viewer] = set()
        started = clock()
        self.since: dict[str, float] = {a: started for a in cfg.agents}  # agent -> entered its state
        self.last_state: dict[str, str] = {}
        self.missed: dict[str, deque[float]] = {}  # agent -> when they let an offer ring out
        self.callers: dict[str, tuple[str, str, tuple[str, ...]]] = {}  # call_id -> (num, name, ivr path)
        self.encoded = 0  # messages encoded (events once each; floors once per view): for the bench

    @property
    def _conf(self) -> WallboardConf:
        return self.cfg.wallboard

    def reconfigure(self, cfg: Any) -> None:
        self.cfg = cfg
        for a in cfg.agents:
            self.since.setdefault(a, self.clock())
        if self.kept.maxlen != cfg.wallboard.keep_events:
            self.kept = deque(self.kept, maxlen=cfg.wallboard.keep_events)

    def sizes(self) -> dict[str, int]:
        return {"live_viewers": len(self.viewers), "live_callers": len(self.callers)}

    # ------------------------------------------------------------------ the bus
    def subscribe(self, bus: ev.Bus) -> None:
        bus.subscribe(ev.CallStarted, self._started)
        bus.subscribe(ev.CallPath, self._path)
        bus.subscribe(ev.CallQueued, self._queued)
        bus.subscribe(ev.CallOffered, self._offered)
        bus.subscribe(ev.CallAnswered, lambda e: self.emit(
            "call.answered", {"call_id": e.call_id, "agent": e.agent, "at": e.at}, agent=e.agent))
        bus.subscribe(ev.CallEnded, self._ended)
        bus.subscribe(ev.AgentStateChanged, self._agent)
        bus.subscribe(ev.SpyEvent, lambda e: self.emit(
            "spy", {"kind": e.kind, "supervisor": e.supervisor, "agent": e.agent, "mode": e.mode, "reason": e.reason},
            agent=e.agent))
        bus.subscribe(ev.RecordingEvent, lambda e: self.emit(
            "recording", {"kind": e.kind, "rec_id": e.rec_id, "call_id": e.call_id, "agent": e.agent},
            agent=e.agent))
        bus.subscribe(ev.DialerOutcome, lambda e: self.emit(
            "dialer.outcome", {"campaign": e.campaign, "outcome": e.outcome}))

    def _caller(self, call_id: str) -> tuple[str, str, tuple[str, ...]]:
        known = self.callers.get(call_id)
        if known is not None:
            return known
        c = self.acd_state().calls.get(call_id)
        return (c.caller_num, c.caller_name, ()) if c is not None else ("", "", ())

    def _started(self, e: ev.CallStarted) -> None:
        self.callers[e.call_id] = (e.caller_num, e.caller_name, ())

    def _path(self, e: ev.CallPath) -> None:
        num, name, _ = self._caller(e.call_id)
        self.callers[e.call_id] = (num, name, tuple(e.path))

    def _queued(self, e: ev.CallQueued) -> None:
        num, name, _ = self._caller(e.call_id)
        self.emit("call.queued", {"call_id": e.call_id, "queue": e.queue, "caller_num": num, "caller_name": name,
                                  "entered_at": e.at}, queue=e.queue)

    def _offered(self, e: ev.CallOffered) -> None:
        num, name, path = self._caller(e.call_id)
        c = self.acd_state().calls.get(e.call_id)
        self.emit("call.offered", {"call_id": e.call_id, "agent": e.agent, "queue": e.queue, "caller_num": num,
                                   "caller_name": name, "path": list(path), "campaign": self.campaign_of(e.call_id),
                                   "customer": self.customer_of(e.call_id),
                                   "entered_at": c.entered_at if c is not None else e.at}, agent=e.agent)

    def _ended(self, e: ev.CallEnded) -> None:
        self.callers.pop(e.call_id, None)
        self.emit("call.ended", {"call_id": e.call_id, "outcome": e.outcome, "agent": e.agent}, agent=e.agent)

    def _agent(self, e: ev.AgentStateChanged) -> None:
        before = self.last_state.get(e.agent)
        if before != e.state:
            self.since[e.agent] = e.at
            if before == str(AgentState.RESERVED) and e.state != str(AgentState.BUSY):
                self.missed.setdefault(e.agent, deque()).append(e.at)
        self.last_state[e.agent] = e.state
        self.emit("agent.state", {"agent": e.agent, "state": e.state, "reason": e.paused_reason or "",
                                  "call_id": e.call_id, "at": e.at}, agent=e.agent)

    # ------------------------------------------------------------------ the stream
    def emit(self, kind: str, data: Mapping[str, Any], *, agent: str | None = None, queue: str | None = None) -> int:
        """Number, encode (once), keep and deliver one event."""
        self.seq += 1
        text = json.dumps({"type": "event", "seq": self.seq, "at": self.clock(), "kind": kind, "data": data},
                          separators=(",", ":"))
        self.encoded += 1
        kept = _Kept(self.seq, agent, queue, text)
        self.kept.append(kept)
        for v in self.viewers:
            if v.view.sees(agent, queue):
                v.push(text)
        return self.seq

    def attach(self, view: View, *, after: int | None = None, stream: str | None = None,
               wake: Callable[[], None] = lambda: None, conn: Any = None) -> Viewer:
        """A new viewer: the events after ``after`` when all of them are still kept (same stream),
        else a snapshot. From here on it gets every event it may see, in order."""
        v = Viewer(view, wake=wake, conn=conn)
        oldest = self.kept[0].seq if self.kept else self.seq + 1
        if after is not None and stream == self.stream and after <= self.seq and after >= oldest - 1:
            for k in self.kept:
                if k.seq > after and view.sees(k.agent, k.queue):
                    v.pending.append(k.text)
        else:
            v.pending.append(self.message("snapshot", view))
        self.viewers.add(v)
        return v

    def detach(self, v: Viewer) -> None:
        self.viewers.discard(v)

    def message(self, kind: str, view: View) -> str:
        self.encoded += 1
        return json.dumps({"type": kind, "seq": self.seq, "stream": self.stream, "floor": self.floor(view)},
                          separators=(",", ":"))

    def push_floors(self) -> int:
        """The figures for every viewer, encoded once per distinct view. Returns encodings made."""
        if not self.viewers:
            return 0
        self._prune()
        texts: dict[View, str] = {}
        for v in self.viewers:
            text = texts.get(v.view)
            if text is None:
                text = texts[v.view] = self.message("floor", v.view)
            v.push(text)
        return len(texts)

    def _prune(self) -> None:
        horizon = self.clock() - self.cfg.daemon.stats_window_s
        for agent in list(self.missed):
            q = self.missed[agent]
            while q and q[0] < horizon:
                q.popleft()
            if not q:
                del self.missed[agent]
        live = self.acd_state().calls
        if len(self.callers) > 2 * len(live) + 256:  # ended calls whose end we never saw
            self.callers = {k: v for k, v in self.callers.items() if k in live}

    # ------------------------------------------------------------------ the floor
    def floor(self, view: View = View()) -> dict[str, Any]:
        """Queues, agents, calls and campaigns as ``view`` may see them (the shape of GET /api/v1/floor)."""
        cfg, wb, now = self.cfg, self._conf, self.clock()
        return {"at": now, "seq": self.seq, "stream": self.stream, "queues": self.queues(view, now),
                "agents": self.agents(view, now), "calls": self.calls(view), "campaigns": self.campaign_list(view),
                "state_thresholds_s": {s: list(p) for s, p in wb.state_thresholds_s.items()},
                "pause_reasons": sorted({"break", *cfg.pause_reasons.values()}),
                "window_s": cfg.daemon.stats_window_s}

    def agents(self, view: View = View(), now: float | None = None) -> dict[str, Any]:
        cfg, st, snap, wb = self.cfg, self.acd_state(), self.stats(), self._conf
        now = self.clock() if now is None else now
        agents: dict[str, Any] = {}
        for a in st.agents.values():
            if view.agents is not None and a.name not in view.agents:
                continue
            conf = cfg.agents.get(a.name)
            fig = snap.agents.get(a.name)
            state = str(a.state)
            reason = a.pause_reason if a.state == AgentState.PAUSED else ""
            agents[a.name] = {
                "name": (conf.name if conf is not None and conf.name else a.name), "team": conf.team if conf else None,
                "phone": a.phone, "queues": list(a.queues), "state": state,
                "since": a.idle_since if a.state == AgentState.READY and a.idle_since else self.since.get(a.name, now),
                "reason": reason, "pause_limit_s": wb.pause_limits_s.get(reason) if reason else None,
                "call_id": a.call_id, "handled": fig.answered if fig else 0,
                "missed": len(self.missed.get(a.name, ())), "aht_s": round(fig.aht_s, 1) if fig and fig.aht_s else None,
                "paused_s": dict(snap.paused.get(a.name, {})),
                "fcr_rate": round(fig.fcr_rate, 4) if fig and fig.fcr_rate is not None else None,
                "csat_avg": round(fig.csat_avg, 2) if fig and fig.csat_avg is not None else None}
        return agents

    def queues(self, view: View = View(), now: float | None = None) -> dict[str, Any]:
        cfg, st, snap, wb = self.cfg, self.acd_state(), self.stats(), self._conf
        now = self.clock() if now is None else now
        names = [q for q in cfg.queues if view.queues is None or q in view.queues]
        queues: dict[str, Any] = {}
        for q, live in live_queues(names, st, now).items():
            by_state = dict.fromkeys(STATES, 0)
            for m in cfg.queues[q].members:
                ag = st.agents.get(m)
                if ag is not None:
                    by_state[str(ag.state)] = by_state.get(str(ag.state), 0) + 1
            fig = snap.queues.get(q)
            th = wb.thresholds(q)
            queues[q] = {
                **live,
                "service_level": round(fig.service_level, 4) if fig and fig.service_level is not None else None,
                "asa_s": round(fig.asa_s, 1) if fig and fig.asa_s is not None else None,
                "aht_s": round(fig.aht_s, 1) if fig and fig.aht_s is not None else None,
                "abandon_rate": round(fig.abandon_rate, 4) if fig and fig.abandon_rate is not None else None,
                "offered": fig.offered if fig else 0, "answered": fig.answered if fig else 0,
                "abandoned": fig.abandoned if fig else 0, "agents": by_state,
                "fcr_rate": round(fig.fcr_rate, 4) if fig and fig.fcr_rate is not None else None,
                "csat_avg": round(fig.csat_avg, 2) if fig and fig.csat_avg is not None else None,
                "thresholds": {"waiting": list(th.waiting), "longest_wait_s": list(th.longest_wait_s),
                               "service_level": list(th.service_level), "abandon_rate": list(th.abandon_rate)}}
        return queues

    def calls(self, view: View = View()) -> list[dict[str, Any]]:
        calls_out = [{"call_id": c.call_id, "queue": c.queue, "agent": c.agent,
                      "state": "talking" if c.answered_at else ("ringing" if c.agent else "waiting"),
                      "entered_at": c.entered_at, "answered_at": c.answered_at,
                      "caller_num": c.caller_num, "caller_name": c.caller_name}
                     for c in self.acd_state().calls.values() if view.sees(c.agent, c.queue)]
        calls_out.sort(key=lambda c: c["entered_at"])
        return calls_out

    def campaign_list(self, view: View = View()) -> dict[str, Any]:
        camps: dict[str, Any] = {}
        for name, c in self.campaigns().items():
            conf = self.cfg.campaigns.get(name)
            if view.queues is not None and conf is not None and conf.queue not in view.queues:
                continue
            camps[name] = {"state": c.get("state"), "queue": conf.queue if conf else None, "lines": c.get("lines", 0),
                           "abandon_rate": c.get("abandon_rate", 0.0),
                           "abandon_limit": conf.max_abandon_rate if conf else None,
                           "dispositions": dict(conf.dispositions) if conf else {}}
        return camps


def view_for(agents: Iterable[str] | None, cfg: Any) -> View:
    """The view of a principal who may see ``agents`` (None: all): the queues those agents serve."""
    if agents is None:
        return View()
    names = frozenset(agents)
    queues = frozenset(q for q, qc in cfg.queues.items() if names & set(qc.members))
    return View(names, queues)
