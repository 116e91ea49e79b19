"""``callcenter bench routing``: one decision step of the numpy router vs a per-call Python
reference of the same policy, on the same random call-center snapshots, in one run; and (unless
``--no-end-to-end``) the whole decision inside the daemon's real :class:`AcdService`: from an
agent-free event given to ``submit`` to the ring (the Redirect of the caller into cc-offer) arriving at a (recording) AMI peer."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import time
from typing import Any

import numpy as np

from callcenter.features.acd.routing import NOT_MEMBER, AgentArrays, CallArrays, assign, assign_reference

DETERMINISTIC = ("skills", "longest-idle", "leastrecent", "fewestcalls", "rrmemory", "linear")


def snapshot(rng: np.random.Generator, agents: int, calls: int, skills: int, queues: int,
             free_share: float) -> tuple[AgentArrays, CallArrays, tuple[str, ...], np.ndarray]:
    """A plausible busy moment: most agents talking, callers waiting with skill requirements."""
    sk = np.zeros((agents, skills), dtype=np.int8)
    for a in range(agents):  # each agent masters a handful of skills
        chosen = rng.choice(skills, size=rng.integers(3, 10), replace=False)
        sk[a, chosen] = rng.integers(1, 11, size=len(chosen))
    penalty = np.full((queues, agents), NOT_MEMBER, dtype=np.int32)
    member_pos = np.full((queues, agents), -1, dtype=np.int32)
    for q in range(queues):
        members = rng.choice(agents, size=agents * 3 // queues, replace=False)
        penalty[q, members] = rng.integers(0, 4, size=len(members))
        member_pos[q, members] = np.arange(len(members))
    now = 1.8e9
    a = AgentArrays(
        free=rng.random(agents) < free_share, skills=sk, penalty=penalty,
        idle_since=now - rng.random(agents) * 600, last_end=now - rng.random((queues, agents)) * 900,
        calls=rng.integers(0, 40, size=(queues, agents)), member_pos=member_pos)
    k = 3
    req = np.full((calls, k), -1, dtype=np.int32)
    lvl = np.zeros((calls, k), dtype=np.int8)
    n_req = rng.integers(0, k + 1, size=calls)
    for c in range(calls):
        req[c, : n_req[c]] = rng.choice(skills, size=n_req[c], replace=False)
        lvl[c, : n_req[c]] = rng.integers(1, 6, size=n_req[c])
    c = CallArrays(queue=rng.integers(0, queues, size=calls).astype(np.int32),
                   priority=rng.choice([0, 0, 0, 1, 5], size=calls).astype(np.int32),
                   entered=now - rng.random(calls) * 300, req_skill=req, req_level=lvl,
                   max_penalty=rng.integers(0, 4, size=calls).astype(np.int32))
    strategies = tuple(DETERMINISTIC[q % len(DETERMINISTIC)] for q in range(queues))
    rr_last = rng.integers(0, 10, size=queues)
    return a, c, strategies, rr_last


def reference_ranks(strategies: tuple[str, ...], a: AgentArrays, rr_last: np.ndarray) -> list[list[int]]:
    """Python version of strategy_ranks for the deterministic strategies."""
    n = len(a.free)
    idle = a.idle_since.tolist()

    def rank(values: list[float]) -> list[int]:
        r = [0] * n
        for pos, i in enumerate(sorted(range(n), key=lambda i: (values[i], i))):
            r[i] = pos
        return r

    idle_rank = rank(idle)
    out = []
    for q, s in enumerate(strategies):
        if s in ("skills", "longest-idle"):
            out.append(idle_rank)
        elif s == "leastrecent":
            out.append(rank(a.last_end[q].tolist()))
        elif s == "fewestcalls":
            calls = a.calls[q].tolist()
            out.append(rank([calls[i] * n + idle_rank[i] for i in range(n)]))
        elif s == "rrmemory":
            pos = a.member_pos[q].tolist()
            m = max(max(pos) + 1, 1)
            out.append([(p - int(rr_last[q]) - 1) % m if p >= 0 else m for p in pos])
        else:  # linear
            out.append([p if p >= 0 else n for p in a.member_pos[q].tolist()])
    return out


def run(agents: int, calls: int, skills: int, queues: int, free_share: float, steps: int,
        reference_steps: int, seed: int) -> dict[str, object]:
    rng = np.random.default_rng(seed)
    # Snapshots are built first, so the timed loops measure decision steps, not their set-up.
    snaps = [snapshot(rng, agents, calls, skills, queues, free_share) for _ in range(steps)]
    fast: list[float] = []
    slow: list[float] = []
    results = []
    for i, (a, c, strategies, rr_last) in enumerate(snaps):
        skills_strategy = np.array([s == "skills" for s in strategies], dtype=np.int64)
        t0 = time.perf_counter()
        got = assign(a, c, strategies, rr_last, i, skills_strategy)
        fast.append(time.perf_counter() - t0)
        results.append(got)
    identical = True
    for i, (a, c, strategies, rr_last) in enumerate(snaps[:reference_steps]):
        skills_strategy = np.array([s == "skills" for s in strategies], dtype=np.int64)
        t0 = time.perf_counter()
        ref_ranks = np.array(reference_ranks(strategies, a, rr_last), dtype=np.int64)
        want = assign_reference(a, c, ref_ranks, skills_strategy)
        slow.append(time.perf_counter() - t0)
        identical &= [(x.call, x.agent) for x in results[i]] == [(x.call, x.agent) for x in want]
    assigned = sum(len(r) for r in results)
    p = np.percentile
    return {
        "agents": agents, "calls": calls, "skills": skills, "queues": queues, "free_share": free_share,
        "steps": steps, "reference_steps": reference_steps,
        "assignments_per_step": round(assigned / steps, 1),
        "p50_ms": round(float(p(fast, 50)) * 1e3, 4), "p99_ms": round(float(p(fast, 99)) * 1e3, 4),
        "reference_p50_ms": round(float(p(slow, 50)) * 1e3, 3),
        "reference_p99_ms": round(float(p(slow, 99)) * 1e3, 3),
        "speedup": round(float(p(slow, 99)) / float(p(fast, 99)), 1),
        "identical": bool(identical),
    }


class _RecordingAmi:
    """An AMI peer that answers every action at once and notes when each ring started — the Redirect
    of the caller into cc-offer, whose Dial() rings the agent (``time.perf_counter``, inside ``send``,
    where the daemon's AMI client writes the action to its socket)."""

    def __init__(self) -> None:
        self.n = 0
        self.originates: list[tuple[float, str, str]] = []  # (arrived, call id, agent)
        self.arrived: asyncio.Event | None = None

    def new_action_id(self) -> str:
        self.n += 1
        return f"b-{self.n}"

    def send(self, name: str, headers: Any = (), *, action_id: str | None = None) -> asyncio.Future[Any]:
        from callcenter.protocol.ami import Message
        if name == "Redirect" and headers.get("Context") == "cc-offer":
            self.originates.append((time.perf_counter(), headers["Channel"], ""))
            if self.arrived is not None:
                self.arrived.set()
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        fut.set_result(Message((("Response", "Success"),)))
        return fut

    async def action(self, name: str, headers: Any = (), *, action_id: str | None = None,
                     timeout: float = 10.0) -> Any:
        return await self.send(name, headers, action_id=action_id)


def bench_config(rng: np.random.Generator, agents: int, skills: int, queues: int) -> tuple[Any, AgentArrays]:
    """The configuration of a snapshot (:func:`snapshot`): agents with their skills, queues with members,
    penalties, the deterministic strategies, penalty rules (the limit grows as callers wait) and no
    wrap-up (a hung-up agent is free in the same step). Max wait is long: no timer fires meanwhile."""
    from callcenter import config
    a, _, strategies, _ = snapshot(rng, agents, 1, skills, queues, 0.0)
    names = [f"a{i:05d}" for i in range(agents)]
    cfg: dict[str, Any] = {
        "ami": {"host": "127.0.0.1", "port": 5038, "username": "bench", "secret": "bench-secret-1"},
        "phones": {str(10000 + i): {"secret": f"bench-secret-{i:05d}"} for i in range(agents)},
        "agents": {n: {"phone": str(10000 + i),
                       "skills": {f"s{s:02d}": int(a.skills[i, s]) for s in np.nonzero(a.skills[i])[0]}}
                   for i, n in enumerate(names)},
        "queues": {}, "menus": {}, "trunks": {}}
    for q in range(queues):
        members = np.argsort(np.where(a.member_pos[q] >= 0, a.member_pos[q], agents + 1))[: int((a.member_pos[q] >= 0).sum())]
        cfg["queues"][f"q{q:02d}"] = {
            "members": [names[m] for m in members], "strategy": strategies[q],
            "penalties": {names[m]: int(a.penalty[q, m]) for m in members if a.penalty[q, m]},
            "max_penalty": 1, "penalty_rules": [{"after_s": 60, "max_penalty": 2}, {"after_s": 180, "max_penalty": 3}],
            "wrapup_s": 0, "max_wait_s": 86400, "ring_timeout_s": 15, "fallback": {"hangup": ["goodbye"]}}
    return config.parse(cfg, source="bench"), a


def _new_call(rng: np.random.Generator, i: int, queues: int, skills: int, entered: float) -> Any:
    from callcenter.features.acd import model
    n_req = int(rng.integers(0, 4))
    req = rng.choice(skills, size=n_req, replace=False)
    return model.CallQueued(f"c{i:07d}", f"q{int(rng.integers(0, queues)):02d}", f"PJSIP/trunk-{i}", "5550100",
                            entered_at=entered, priority=int(rng.choice([0, 0, 0, 1, 5])),
                            skills=tuple((f"s{int(s):02d}", int(rng.integers(1, 6))) for s in req))


async def _end_to_end(agents: int, calls: int, skills: int, queues: int, rounds: int, seed: int) -> dict[str, object]:
    from callcenter import events as ev
    from callcenter.features.acd import model
    from callcenter.features.acd.agents import AgentState
    from callcenter.features.acd.service import AcdService
    from callcenter.tasks import Supervisor

    rng = np.random.default_rng(seed)
    cfg, arr = bench_config(rng, agents, skills, queues)
    names = list(cfg.agents)
    now = time.time()
    ami = _RecordingAmi()
    svc = AcdService(cfg, ev.Bus(), ami, Supervisor(lambda n, e: None),
                     persisted={n: (AgentState.READY, "", now - 600 + float(arr.idle_since[i] - arr.idle_since.max()) % 600)
                                for i, n in enumerate(names)})
    # Every agent talking (an up agent leg bridged to its caller), `calls` callers in the wait loop.
    chans = []
    for i, n in enumerate(names):
        cid = f"t{i:07d}"
        queue = svc.state.agents[n].queues[0] if svc.state.agents[n].queues else "q00"
        chans.append(model.ChannelSnapshot(uniqueid=f"u-{cid}", channel=f"PJSIP/trunk-{cid}", role="caller", call_id=cid,
                                           queue=queue, entered_at=now - 200, up=True, bridged=True, context="cc-bridge"))
        chans.append(model.ChannelSnapshot(uniqueid=f"a-{cid}", channel=f"PJSIP/{10000 + i}-x", role="agent", call_id=cid,
                                           agent=n, up=True, bridged=True, context="cc-agent"))
    for i in range(calls):
        q = _new_call(rng, i, queues, skills, now - float(rng.random()) * 300)
        chans.append(model.ChannelSnapshot(uniqueid=f"u-{q.call_id}", channel=q.channel, role="caller",
                                           call_id=q.call_id, queue=q.queue, entered_at=q.entered_at, up=True,
                                           context="cc-wait", caller_num=q.caller_num, priority=q.priority,
                                           skills=q.skills))
    svc.submit(model.Resync(tuple(chans)))
    next_id = calls
    lat: list[float] = []
    in_submit: list[float] = []  # of those: the time spent inside submit (the core step and its commands)
    idle_rounds = 0
    ami.arrived = asyncio.Event()
    gc.collect()
    for r in range(rounds):
        busy = [a for a in svc.state.agents.values() if a.state == AgentState.BUSY]
        a = busy[int(rng.integers(0, len(busy)))]
        event = model.AgentHungUp(a.name, a.call_id or "")
        ami.arrived.clear()
        seen = len(ami.originates)
        t0 = time.perf_counter()
        cmds = svc.submit(event)  # the agent is free at once (no wrap-up): the decision and the ring follow
        t1 = time.perf_counter()
        if any(isinstance(c, model.Offer) for c in cmds):
            await asyncio.wait_for(ami.arrived.wait(), 5.0)
            lat.append(ami.originates[seen][0] - t0)
            in_submit.append(t1 - t0)
        else:  # nobody waiting can be served by this agent: it stays free
            idle_rounds += 1
        # Untimed: every ringing agent answers, and new callers keep `calls` waiting.
        for _ in range(3):
            await asyncio.sleep(0)
        waiting = sum(1 for c in svc.state.calls.values() if c.agent is None)
        while waiting < calls:
            svc.submit(_new_call(rng, next_id, queues, skills, time.time()))
            next_id += 1
            waiting += 1
        for _ in range(3):
            await asyncio.sleep(0)
        for a2 in [x for x in svc.state.agents.values() if x.state == AgentState.RESERVED]:
            svc.submit(model.OfferAnswered(a2.call_id or "", a2.name))
    free = sum(1 for x in svc.state.agents.values() if x.state == AgentState.READY)
    p = np.percentile
    ms = lambda v: round(float(v) * 1e3, 4)  # noqa: E731
    return {"e2e_rounds": rounds, "e2e_offers": len(lat), "e2e_no_offer": idle_rounds, "e2e_free_agents_end": free,
            "e2e_p50_ms": ms(p(lat, 50)), "e2e_p99_ms": ms(p(lat, 99)), "e2e_max_ms": ms(max(lat)),
            "e2e_submit_p50_ms": ms(p(in_submit, 50)), "e2e_submit_p99_ms": ms(p(in_submit, 99))}


def end_to_end(agents: int, calls: int, skills: int, queues: int, rounds: int, seed: int) -> dict[str, object]:
    """Agent-free event (the agent hangs up; no wrap-up) -> ``AcdService.submit`` -> core step -> the
    AMI peer's ``send("Redirect")`` into cc-offer (the write to the socket): p50/p99/max over ``rounds``.
    Logging is configured as the daemon's (JSON) but written to /dev/null; the bus has no subscribers."""
    from callcenter.telemetry import configure_logging
    with open(os.devnull, "w") as null, contextlib.redirect_stderr(null):
        configure_logging("json")
        return asyncio.run(_end_to_end(agents, calls, skills, queues, rounds, seed))


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="callcenter bench routing")
    ap.add_argument("--agents", type=int, default=2000)
    ap.add_argument("--calls", type=int, default=1000)
    ap.add_argument("--skills", type=int, default=64)
    ap.add_argument("--queues", type=int, default=24)
    ap.add_argument("--free-share", type=float, default=0.002,
                    help="share of agents free at the step (0.002: ~4 of 2000, an agent-free event; 0.02: a burst)")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--reference-steps", type=int, default=30)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=500, help="end-to-end rounds (agent-free event -> ring)")
    ap.add_argument("--no-end-to-end", dest="end_to_end", action="store_false",
                    help="only the numpy step and its reference")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    res = run(a.agents, a.calls, a.skills, a.queues, a.free_share, a.steps, a.reference_steps, a.seed)
    if a.end_to_end:
        res |= end_to_end(a.agents, a.calls, a.skills, a.queues, a.rounds, a.seed)
    print(json.dumps(res) if a.json else "\n".join(f"{k}: {v}" for k, v in res.items()))
    return 0
