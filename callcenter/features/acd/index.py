"""The ACD core's routing index: what routing, the timers and the figures need from one state,
kept step by step (see :class:`_Index`). Derived from the state alone; :mod:`.model` owns it."""

from __future__ import annotations

import bisect
import heapq
import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np

from callcenter.features.acd import model as _model  # _needs, _dialable: used at call time (no cycle)
from callcenter.features.acd import routing
from callcenter.features.acd.agents import AgentState

if TYPE_CHECKING:
    from callcenter.config import Config
    from callcenter.features.acd.model import AcdState, Agent, Call, _Tracked

@dataclass(frozen=True)
class _Static:
    """What routing needs from the configuration, as arrays (built once per configuration)."""

    agents: tuple[str, ...]
    queues: tuple[str, ...]
    skill_index: Mapping[str, int]
    skills: np.ndarray
    penalty: np.ndarray
    member_pos: np.ndarray
    strategies: tuple[str, ...]
    skills_strategy: np.ndarray
    per_queue_history: bool = False


_STATIC: dict[int, tuple[Config, _Static]] = {}


def _static(cfg: Config) -> _Static:
    hit = _STATIC.get(id(cfg))
    if hit is not None and hit[0] is cfg:
        return hit[1]
    agents = tuple(cfg.agents)
    queues = tuple(cfg.queues)
    names = sorted({s for a in cfg.agents.values() for s in a.skills} | {s for q in cfg.queues.values() for s in q.skills})
    skill_index = {s: i for i, s in enumerate(names)}
    skills = np.zeros((len(agents), max(len(names), 1)), dtype=np.int8)
    for i, a in enumerate(agents):
        for s, lv in cfg.agents[a].skills.items():
            skills[i, skill_index[s]] = lv
    penalty = np.full((len(queues), len(agents)), routing.NOT_MEMBER, dtype=np.int32)
    member_pos = np.full((len(queues), len(agents)), -1, dtype=np.int32)
    pos = {a: i for i, a in enumerate(agents)}
    for qi, q in enumerate(queues):
        for k, m in enumerate(cfg.queues[q].members):
            penalty[qi, pos[m]] = cfg.queues[q].penalties.get(m, 0)
            member_pos[qi, pos[m]] = k
    # ringall rings everyone; its first pick (the call's primary offer) follows the member order
    strategies = tuple("linear" if cfg.queues[q].strategy == "ringall" else cfg.queues[q].strategy for q in queues)
    st = _Static(agents, queues, MappingProxyType(skill_index), skills, penalty, member_pos, strategies,
                 np.array([s == "skills" for s in strategies], dtype=np.int64),
                 any(s in ("leastrecent", "fewestcalls") for s in strategies))
    _STATIC.clear()
    _STATIC[id(cfg)] = (cfg, st)
    return st


_REBUILD_AT = 64  # more changes than this in one step (a Resync, a reload): rebuild the index instead


class _Index:
    """What routing, the timers and the figures need from one :class:`AcdState`, kept up to date
    step by step instead of being rebuilt from every agent and call.

    It is derived from the state alone (``_Index.build`` of a state gives the same decisions) and
    belongs to the newest state of a line of steps: ``step`` brings it forward in place (the keys
    each step wrote, from :class:`_Tracked`) and hands it to the state it returns. A state whose
    mappings are no longer the ones the index reflects (an older state stepped again, a reload)
    gets a fresh one. Contents:

    * the waiting calls (no agent), sorted by (entry time, call id), and their routing rows as
      numpy arrays in that order (queue, priority, entry, time in queue, required skills/levels, a
      skill nobody has): inserted and deleted as calls change, never rebuilt per step;
    * the agents' idle time, calls taken and per-queue history as arrays; the Ready ones as a set;
    * a heap of every deadline ``_expire`` acts on (wrap-up end, ring timeout, overflow, max wait),
      stale entries (the agent or call changed since) dropped when they reach the top;
    * counts of agents per state and of waiting calls per queue (the published figures).
    """

    def __init__(self, cfg: Config, agents: Mapping[str, Agent], calls: Mapping[str, Call]) -> None:
        st = _static(cfg)
        self.cfg, self.st = cfg, st
        self.agents_ref: Mapping[str, Agent] | None = None
        self.calls_ref: Mapping[str, Call] | None = None
        self.apos = {n: i for i, n in enumerate(st.agents)}
        self.qidx = {q: i for i, q in enumerate(st.queues)}
        a_n, q_n = len(st.agents), len(st.queues)
        qs = [cfg.queues[q] for q in st.queues]
        self.initial = np.array([routing.NOT_MEMBER - 1 if q.max_penalty is None else q.max_penalty for q in qs],
                                dtype=np.int32)
        r_n = max((len(q.penalty_rules) for q in qs), default=0)
        self.rules = r_n > 0  # per queue, rule r: after this wait (inf: no such rule), this maximum
        self.after = np.full((q_n, r_n), np.inf, dtype=np.float64)
        self.value = np.zeros((q_n, r_n), dtype=np.int32)
        for i, q in enumerate(qs):
            for r, rule in enumerate(q.penalty_rules):
                self.after[i, r], self.value[i, r] = rule.after_s, rule.max_penalty
        self.leave_empty = [q for q in st.queues if cfg.queues[q].leave_when_empty]
        self.seq = itertools.count()
        # agents
        self.amirror: dict[str, Agent] = {}
        self.idle = np.zeros(a_n, dtype=np.float64)
        self.taken = np.zeros(a_n, dtype=np.int64)
        self.last_end = np.zeros((q_n, a_n), dtype=np.float64) if st.per_queue_history else None
        self.calls_q = np.zeros((q_n, a_n), dtype=np.int64) if st.per_queue_history else None
        self.ready: set[str] = set()  # Ready agents (any device): no-answer retry delays
        self.routable: set[int] = set()  # Ready, device usable, in the configuration: st.agents index
        self.counts = {str(x): 0 for x in AgentState}
        self.heap: list[tuple[float, int, bool, str, object]] = []  # (deadline, seq, is_call, key, object)
        # calls
        self.cmirror: dict[str, Call] = {}
        self.keys: list[tuple[float, str]] = []
        self.k = 1
        c = len(calls)
        self.queue = np.empty(0, dtype=np.int32)
        self.priority = np.empty(0, dtype=np.int32)
        self.entered = np.empty(0, dtype=np.float64)
        self.since = np.empty(0, dtype=np.float64)
        self.req_skill = np.full((0, 1), -1, dtype=np.int32)
        self.req_level = np.zeros((0, 1), dtype=np.int8)
        self.impossible = np.empty(0, dtype=bool)
        self.only = np.empty(0, dtype=np.int32)  # the preferred agent (st.agents index), -1: none
        self.pref_until = np.empty(0, dtype=np.float64)
        self.callbacks: set[str] = set()  # waiting callbacks: dialable only at times
        self.tried: set[str] = set()  # waiting calls with agents to avoid
        self.qwaiting: dict[str, int] = {}  # queue -> waiting calls (callbacks too)
        self.qlive: dict[str, int] = {}  # queue -> waiting live callers (not callbacks)
        for name, a in agents.items():
            self._agent(name, a)
        waiting = sorted((x for x in calls.values() if x.agent is None), key=lambda x: (x.entered_at, x.call_id))
        rows = [self._row(x) for x in waiting]
        self.k = max((len(r[4]) for r in rows), default=0) or 1
        c = len(rows)
        self.keys = [(x.entered_at, x.call_id) for x in waiting]
        self.queue = np.array([r[0] for r in rows], dtype=np.int32)
        self.priority = np.array([r[1] for r in rows], dtype=np.int32)
        self.entered = np.array([r[2] for r in rows], dtype=np.float64)
        self.since = np.array([r[3] for r in rows], dtype=np.float64)
        self.req_skill = np.full((c, self.k), -1, dtype=np.int32)
        self.req_level = np.zeros((c, self.k), dtype=np.int8)
        for i, r in enumerate(rows):
            for j, (sk, lv) in enumerate(r[4]):
                self.req_skill[i, j], self.req_level[i, j] = sk, lv
        self.impossible = np.array([r[5] for r in rows], dtype=bool)
        self.only = np.array([r[6] for r in rows], dtype=np.int32)
        self.pref_until = np.array([r[7] for r in rows], dtype=np.float64)
        for cid, x in calls.items():
            self._call(cid, x, row=False)

    @staticmethod
    def of(cfg: Config, state: AcdState) -> _Index:
        idx = state._index
        if isinstance(idx, _Index) and idx.cfg is cfg and idx.agents_ref is state.agents \
                and idx.calls_ref is state.calls:
            return idx
        return _Index(cfg, state.agents, state.calls)

    # ------------------------------------------------------------ following the changes
    def sync(self, agents: _Tracked, calls: _Tracked) -> None:
        """Take in the keys written since the last sync."""
        if not agents.touched and not calls.touched:
            return
        self.agents_ref = self.calls_ref = None  # no longer the index of the state the step started from
        if len(agents.touched) + len(calls.touched) > _REBUILD_AT:
            self.__init__(self.cfg, agents, calls)  # type: ignore[misc]
        else:
            for name in agents.touched:
                self._agent(name, agents.get(name))
            for cid in calls.touched:
                self._call(cid, calls.get(cid))
        agents.touched.clear()
        calls.touched.clear()

    def _agent(self, name: str, a: Agent | None) -> None:
        old = self.amirror.get(name)
        if old is a:
            return
        if old is not None:
            self.counts[str(old.state)] -= 1
        self.ready.discard(name)
        i = self.apos.get(name)
        if i is not None:
            self.routable.discard(i)
        if a is None:
            del self.amirror[name]
            return
        self.amirror[name] = a
        self.counts[str(a.state)] += 1
        if a.state == AgentState.READY:
            self.ready.add(name)
            if i is not None and a.device not in _model.UNAVAILABLE_DEVICE:
                self.routable.add(i)
        if a.state == AgentState.WRAPUP and a.wrap_until is not None:
            heapq.heappush(self.heap, (a.wrap_until, next(self.seq), False, name, a))
        if i is None:
            return
        self.idle[i] = a.idle_since
        self.taken[i] = a.calls_taken
        if self.last_end is not None and self.calls_q is not None:
            self.last_end[:, i] = 0.0
            self.calls_q[:, i] = 0
            for q, t in a.queue_last_end.items():
                if q in self.qidx:
                    self.last_end[self.qidx[q], i] = t
            for q, k in a.queue_calls.items():
                if q in self.qidx:
                    self.calls_q[self.qidx[q], i] = k

    def _row(self, c: Call) -> tuple[int, int, float, float, list[tuple[int, int]], bool, int, float]:
        reqs = [(self.st.skill_index.get(sk, -2), lv) for sk, lv in _model._needs(self.cfg, c).items() if lv > 0]
        since = c.queue_entered_at if c.queue_entered_at is not None else c.entered_at
        # the preferred agent, while a member of the call's queue (the time is checked per step)
        pref = c.preferred is not None and c.preferred in self.cfg.queues[c.queue].members
        only = self.apos.get(c.preferred, -1) if pref and c.preferred is not None else -1
        return (self.qidx[c.queue], c.priority, c.entered_at, since, [(max(sk, 0), lv) for sk, lv in reqs],
                any(sk == -2 for sk, _ in reqs), only, c.prefer_until if only >= 0 else 0.0)

    def _call(self, cid: str, c: Call | None, row: bool = True) -> None:
        old = self.cmirror.get(cid)
        if old is c and row:
            return
        if old is not None and old.agent is None and row:
            i = bisect.bisect_left(self.keys, (old.entered_at, cid))
            del self.keys[i]
            for name in ("queue", "priority", "entered", "since", "req_skill", "req_level", "impossible", "only",
                         "pref_until"):
                setattr(self, name, np.delete(getattr(self, name), i, axis=0))
        if old is not None and old.agent is None:
            self.qwaiting[old.queue] -= 1
            if not old.callback:
                self.qlive[old.queue] -= 1
            self.callbacks.discard(cid)
            self.tried.discard(cid)
        if c is None:
            self.cmirror.pop(cid, None)
            return
        self.cmirror[cid] = c
        if c.agent is None:
            self.qwaiting[c.queue] = self.qwaiting.get(c.queue, 0) + 1
            if c.callback:
                self.callbacks.add(cid)
            else:
                self.qlive[c.queue] = self.qlive.get(c.queue, 0) + 1
            if c.tried:
                self.tried.add(cid)
            if row:
                self._insert(cid, c)
            if not c.callback:
                q = self.cfg.queues[c.queue]
                since = c.queue_entered_at if c.queue_entered_at is not None else c.entered_at
                due = since + q.max_wait_s
                if q.overflow is not None and q.overflow.after_s is not None:
                    due = min(due, since + q.overflow.after_s)
                if c.preferred is not None:  # the preference ends (the step clears it)
                    due = min(due, c.prefer_until)
                heapq.heappush(self.heap, (due, next(self.seq), True, cid, c))
        elif c.answered_at is None and c.offer_deadline is not None:
            heapq.heappush(self.heap, (c.offer_deadline, next(self.seq), True, cid, c))

    def _insert(self, cid: str, c: Call) -> None:
        key = (c.entered_at, cid)
        i = bisect.bisect_left(self.keys, key)
        self.keys.insert(i, key)
        q, pr, ent, since, reqs, impossible, only, pref_until = self._row(c)
        if len(reqs) > self.k:  # a call asking for more skills than any before: wider rows
            grow = len(reqs) - self.k
            self.req_skill = np.pad(self.req_skill, ((0, 0), (0, grow)), constant_values=-1)
            self.req_level = np.pad(self.req_level, ((0, 0), (0, grow)))
            self.k = len(reqs)
        rs = np.full(self.k, -1, dtype=np.int32)
        rl = np.zeros(self.k, dtype=np.int8)
        for j, (sk, lv) in enumerate(reqs):
            rs[j], rl[j] = sk, lv
        self.queue = np.insert(self.queue, i, q)
        self.priority = np.insert(self.priority, i, pr)
        self.entered = np.insert(self.entered, i, ent)
        self.since = np.insert(self.since, i, since)
        self.req_skill = np.insert(self.req_skill, i, rs, axis=0)
        self.req_level = np.insert(self.req_level, i, rl, axis=0)
        self.impossible = np.insert(self.impossible, i, impossible)
        self.only = np.insert(self.only, i, only)
        self.pref_until = np.insert(self.pref_until, i, pref_until)

    # ------------------------------------------------------------ reads
    def waiting_in(self, queue: str) -> int:
        return self.qwaiting.get(queue, 0)

    def _top(self) -> float | None:
        """The earliest deadline still standing (stale entries dropped)."""
        h = self.heap
        while h:
            _, _, is_call, key, obj = h[0]
            if (self.cmirror if is_call else self.amirror).get(key) is obj:
                return h[0][0]
            heapq.heappop(h)
        return None

    def pop_due(self, now: float) -> tuple[list[str], list[str]]:
        """The agents and calls whose deadline has come (taken off the heap: ``_expire`` changes them all)."""
        agents: list[str] = []
        calls: list[str] = []
        h = self.heap
        while h and h[0][0] <= now:
            _, _, is_call, key, obj = heapq.heappop(h)
            if (self.cmirror if is_call else self.amirror).get(key) is obj:
                (calls if is_call else agents).append(key)
        return agents, calls

    def next_deadline(self, cfg: Config, now: float | None) -> float | None:
        times = []
        top = self._top()
        if top is not None:
            times.append(top)
        if now is not None and self.keys:
            times += [a.retry_at for n in self.ready if (a := self.amirror[n]).retry_at > now]
            for cid in self.callbacks:
                c = self.cmirror[cid]
                if c.not_before > now:
                    times.append(c.not_before)
                else:
                    cb = cfg.queues[c.queue].callback
                    if cb is not None and cb.schedule is not None:
                        times.append(now + 60)
        return min(times) if times else None

    def free(self, agents: Mapping[str, Agent], now: float) -> np.ndarray | None:
        """(A,) bool: the agents routing may use now, or None if there is none."""
        names = self.st.agents
        ok = [i for i in self.routable if agents[names[i]].retry_at <= now]
        if not ok:
            return None
        free = np.zeros(len(names), dtype=bool)
        free[ok] = True
        return free

    def agent_arrays(self, free: np.ndarray) -> routing.AgentArrays:
        st = self.st
        q_n, a_n = len(st.queues), len(st.agents)
        if self.last_end is not None and self.calls_q is not None:
            last_end, calls_q = self.last_end, self.calls_q
        else:
            last_end, calls_q = np.broadcast_to(self.idle, (q_n, a_n)), np.broadcast_to(self.taken, (q_n, a_n))
        return routing.AgentArrays(free=free, skills=st.skills, penalty=st.penalty, idle_since=self.idle,
                                   last_end=last_end, calls=calls_q, member_pos=st.member_pos)

    def call_arrays(self, cfg: Config, calls: Mapping[str, Call], now: float
                    ) -> tuple[list[tuple[float, str]], routing.CallArrays, list[tuple[int, int]]] | None:
        """The dialable waiting calls in routing order (their keys), their arrays and the (call, agent)
        pairs to avoid; None if none is dialable."""
        keys = self.keys
        sel: np.ndarray | None = None
        late = [cid for cid in self.callbacks if not _model._dialable(cfg, calls[cid], now)]
        if late:
            rows = [bisect.bisect_left(keys, (calls[cid].entered_at, cid)) for cid in late]
            sel = np.ones(len(keys), dtype=bool)
            sel[rows] = False
            if not sel.any():
                return None
            keys = [k for k, keep in zip(keys, sel.tolist()) if keep]
        limit = self.initial[self.queue]
        if self.rules:  # as routing.max_penalty: the last rule whose wait has passed sets the maximum
            waited = now - self.since
            after, value = self.after[self.queue], self.value[self.queue]
            for r in range(after.shape[1]):
                limit = np.where(waited >= after[:, r], value[:, r], limit)
        limit[self.impossible] = -1
        only = np.where(self.pref_until > now, self.only, -1) if (self.only >= 0).any() else None
        arrays = routing.CallArrays(queue=self.queue, priority=self.priority, entered=self.entered,
                                    req_skill=self.req_skill, req_level=self.req_level, max_penalty=limit,
                                    only=only)
        if sel is not None:
            arrays = routing.CallArrays(*(getattr(arrays, f)[sel] for f in
                                          ("queue", "priority", "entered", "req_skill", "req_level", "max_penalty")),
                                        only=None if only is None else only[sel])
        exclude = []
        if self.tried:
            for cid in self.tried:
                c = calls[cid]
                i = bisect.bisect_left(keys, (c.entered_at, cid))
                if i < len(keys) and keys[i][1] == cid:
                    exclude += [(i, self.apos[a]) for a in c.tried if a in self.apos]
        return keys, arrays, exclude

    def figures(self) -> tuple[tuple[tuple[str, int], ...], tuple[tuple[str, int], ...]]:
        return tuple((q, self.qwaiting.get(q, 0)) for q in self.cfg.queues), tuple(self.counts.items())
