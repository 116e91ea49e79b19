"""``callcenter bench routing``: one decision step of the numpy router vs a per-call Python
reference of the same policy, on the same random call-center snapshots, in one run."""

from __future__ import annotations

import argparse
import json
import time

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
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    res = run(a.agents, a.calls, a.skills, a.queues, a.free_share, a.steps, a.reference_steps, a.seed)
    print(json.dumps(res) if a.json else "\n".join(f"{k}: {v}" for k, v in res.items()))
    return 0
