"""Vectorised routing: one numpy pass decides every waiting call against every free agent.

Rules of this module: pure (no I/O, no clock; ``now`` and a seed come in), numpy in the hot
path, and a plain per-call Python reference (:func:`assign_reference`) of the very same policy
that the tests and ``callcenter bench routing`` check for identical results.

The policy, in words:

* **Calls** are served in rank order: higher ``priority`` first, then the longest wait (across
  all queues: the caller waiting longest among those an agent can serve wins), then call index.
* A free agent is **eligible** for a call when it is a member of the call's queue, its penalty
  there is within the call's current maximum (penalty rules relax it as the call waits, like
  app_queue's), and it has every required skill at the required minimum level.
* Each call, in rank order, takes its **best** eligible agent not yet taken: lowest penalty
  first, then — for the ``skills`` strategy — the highest proficiency in the required skills,
  then the queue's strategy order (longest idle, least recent, fewest calls, round robin,
  linear, random, weighted random), then the lowest agent index.
* A call with a **preferred agent** (``only``: its account manager, for a while) is eligible for
  that one agent only (when it is otherwise eligible); nobody else is offered it meanwhile.

Ranks are integers, so the numpy pass and the reference compare exactly the same keys.

How a step stays cheap (a typical step: ~4 free agents, ~1000 waiting calls): the pass over
all calls is a handful of 1-D lookups — the free agents eligible for a call are a bit set, one
table lookup per requirement (queue and penalty limit; skill and level), ANDed — never a
calls x agents matrix. Only the calls some free agent can take are then sorted and scored, over
the free agents' columns only, and the greedy walk stops as soon as nobody left can be used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

__all__ = ["STRATEGIES", "AgentArrays", "CallArrays", "Assignment", "strategy_ranks", "assign",
           "assign_reference", "max_penalty"]

STRATEGIES = ("skills", "longest-idle", "leastrecent", "fewestcalls", "random", "rrmemory", "rrordered",
              "linear", "wrandom")
NOT_MEMBER = np.int32(1 << 20)  # penalty of a non-member: never within any maximum
MAX_LEVEL = 10  # skill proficiency 0 (none) .. 10
INF = np.iinfo(np.int64).max
EXCLUDED = np.int64(1) << 60  # added to an excluded pair's key: chosen only when nothing else is eligible


@dataclass(frozen=True)
class AgentArrays:
    """A agents, S skills, Q queues.

    Read, never written. Per-configuration facts derived from ``member_pos`` (members per
    queue) are remembered for the last array seen (by identity), so build a new array when
    the configuration changes rather than editing one in place."""

    free: np.ndarray  # (A,) bool: Ready, phone usable, not in a no-answer retry delay
    skills: np.ndarray  # (A, S) int8 proficiency 0..10
    penalty: np.ndarray  # (Q, A) int32; NOT_MEMBER where not a member
    idle_since: np.ndarray  # (A,) float64
    last_end: np.ndarray  # (Q, A) float64: when the agent last finished a call of that queue
    calls: np.ndarray  # (Q, A) int64: calls of that queue handled
    member_pos: np.ndarray  # (Q, A) int32: position in the queue's member list (linear/rr), -1 if none


@dataclass(frozen=True)
class CallArrays:
    """C waiting calls; K = the most required skills of any call (padding: skill -1)."""

    queue: np.ndarray  # (C,) int32
    priority: np.ndarray  # (C,) int32
    entered: np.ndarray  # (C,) float64
    req_skill: np.ndarray  # (C, K) int32, -1 = none
    req_level: np.ndarray  # (C, K) int8
    max_penalty: np.ndarray  # (C,) int32
    # (C,) int32: the one agent the call may go to now (its preferred agent), -1 = any; None: none has one
    only: np.ndarray | None = field(default=None)


@dataclass(frozen=True)
class Assignment:
    call: int
    agent: int
    key: int  # the winning score (lower is better), for the explanation
    candidates: int  # eligible free agents the call had when it was decided


def max_penalty(rules: tuple[tuple[float, int], ...], initial: int, waited: float) -> int:
    """Penalty rules as in app_queue: after ``after_s`` seconds of waiting the maximum becomes ``max``."""
    m = initial
    for after_s, value in rules:
        if waited >= after_s:
            m = value
    return m


def strategy_ranks(strategies: tuple[str, ...], agents: AgentArrays, rr_last: np.ndarray, seed: int,
                   subset: np.ndarray | None = None, needed: np.ndarray | None = None) -> np.ndarray:
    """(Q, A) int64 rank of each agent under each queue's strategy (0 = first choice).

    With ``subset`` (agent indices in increasing order, e.g. the free ones) the result is
    (Q, len(subset)): ranks among those agents only, in the same order — all a decision step
    needs; only the subset's columns are read. With ``needed`` (a (Q,) bool mask) the rows of the
    other queues are 0. Round-robin and linear rows hold member positions (lower is better,
    non-members last) rather than 0..n-1 ranks.
    """
    g = _groups(strategies)
    full_n = agents.penalty.shape[1]
    if subset is None:
        subset = np.arange(full_n)
    a_n = len(subset)
    idle = agents.idle_since[subset]
    # Every family but round-robin/linear is ordered by one float value per agent (ties: the lower
    # agent index), so a single row-wise stable argsort ranks them all (rows of the other two are
    # overwritten below).
    value = np.zeros((len(strategies), a_n), dtype=np.float64)
    value[g.idle] = idle
    qs = g.leastrecent
    if len(qs):
        value[qs] = agents.last_end[qs[:, None], subset]
    qs = g.fewestcalls
    if len(qs):  # fewest calls, then longest idle
        value[qs] = agents.calls[qs[:, None], subset] * a_n + idle.argsort(kind="stable").argsort()
    if g.draws:
        rng = np.random.default_rng(seed)
        # Draws for every queue of the family, in queue order, whatever the subset: a queue's
        # draw depends neither on who is free nor on which other queues have calls.
        for q, weighted in g.draws:
            if weighted:  # random, weighted by penalty: higher penalty, later on average
                value[q] = rng.random((full_n,))[subset] * (1.0 + np.minimum(agents.penalty[q, subset], 1000))
            else:
                value[q] = rng.permutation(full_n)[subset]
    out = value.argsort(axis=1, kind="stable").argsort(axis=1)
    qs = g.rr
    if len(qs):
        n = _member_counts(agents.member_pos)[qs, None]
        pos = agents.member_pos[qs[:, None], subset]
        out[qs] = np.where(pos >= 0, (pos - rr_last[qs, None] - 1) % n, n)
    qs = g.linear
    if len(qs):
        pos = agents.member_pos[qs[:, None], subset]
        out[qs] = np.where(pos >= 0, pos, full_n)
    if needed is not None:
        out[~np.asarray(needed, dtype=bool)] = 0
    return out.astype(np.int64, copy=False)


@dataclass(frozen=True)
class _Families:
    """Queue indices per strategy family."""

    idle: np.ndarray  # skills, longest-idle
    leastrecent: np.ndarray
    fewestcalls: np.ndarray
    rr: np.ndarray  # rrmemory, rrordered
    linear: np.ndarray
    draws: tuple[tuple[int, bool], ...]  # (queue, weighted): random queues, then wrandom ones (draw order)


@lru_cache(maxsize=64)
def _groups(strategies: tuple[str, ...]) -> _Families:
    """Queue indices per strategy family (computed once per configuration)."""
    unknown = set(strategies) - set(STRATEGIES)
    if unknown:
        raise ValueError(f"unknown strategy {sorted(unknown)[0]!r}")

    def of(*names: str) -> np.ndarray:
        return np.array([q for q, st in enumerate(strategies) if st in names], dtype=np.int64)

    draws = [(q, False) for q, st in enumerate(strategies) if st == "random"]
    draws += [(q, True) for q, st in enumerate(strategies) if st == "wrandom"]
    return _Families(of("skills", "longest-idle"), of("leastrecent"), of("fewestcalls"), of("rrmemory", "rrordered"),
                     of("linear"), tuple(draws))


_MEMBER_COUNTS: list[tuple[np.ndarray, np.ndarray]] = []


def _member_counts(member_pos: np.ndarray) -> np.ndarray:
    """(Q,) int64 members per queue (at least 1), remembered for the last ``member_pos`` array.

    The configuration's arrays are built once and never written to, so identity is a safe key."""
    if _MEMBER_COUNTS and _MEMBER_COUNTS[0][0] is member_pos:
        return _MEMBER_COUNTS[0][1]
    counts: np.ndarray = np.maximum(member_pos.max(axis=1, initial=-1) + 1, 1).astype(np.int64)
    _MEMBER_COUNTS[:] = [(member_pos, counts)]
    return counts


_LEVELS = np.arange(MAX_LEVEL + 2, dtype=np.int8)[:, None]  # 0..MAX_LEVEL, and one level nobody has
_PAD = np.iinfo(np.int64).max  # padding agents' penalty: never below any limit
_PADS = np.array([_PAD])


def _word(f_n: int) -> tuple[type, int]:
    """The unsigned type holding a set of ``f_n`` agents (bit f = agent f), and the padded count."""
    for dtype, bits in ((np.uint8, 8), (np.uint16, 16), (np.uint32, 32)):
        if f_n <= bits:
            return dtype, bits
    return np.uint64, -(-f_n // 64) * 64


def _eligible_sets(calls: CallArrays, pen: np.ndarray, limits: np.ndarray, skills_t: np.ndarray,
                   dtype: type) -> np.ndarray:
    """(C, W) sets of the free agents eligible for each call: W words of ``dtype``, bit f = agent f.

    ``pen`` is (Q, F') int64 and ``skills_t`` (S + 1, F') int8 over the free agents padded to a
    whole number of words (padding agents: penalty ``_PAD``); ``skills_t``'s last row stands for
    "no requirement" (skill -1) and is always met. ``limits``: the free agents' distinct penalties.

    Two small lookup tables replace a calls x agents matrix: per penalty limit and queue, the
    members within it; per level and skill, the agents with at least that level. A call's set is
    one lookup per requirement, ANDed: a few 1-D passes over the calls, whatever the agent count.
    Exact for proficiencies 0..MAX_LEVEL (what the configuration allows); requirements are any.
    """
    q_n, width = pen.shape
    w_n = width // (8 * np.dtype(dtype).itemsize)
    # Row block k: penalty below limits[k] (past the last limit: any real penalty). A call whose
    # maximum m has k limits <= m uses block k: exactly the penalties <= m.
    bounds = np.concatenate((limits, _PADS))[:, None]
    within: np.ndarray = np.packbits(pen.ravel() < bounds, bitorder="little").view(dtype).reshape(-1, w_n)  # ((P+1)*Q, W)
    sets: np.ndarray = within.take(limits.searchsorted(calls.max_penalty, side="right") * q_n + calls.queue, axis=0)
    k_n = calls.req_skill.shape[1]
    if k_n:
        s_n = skills_t.shape[0]
        having: np.ndarray = np.packbits(skills_t.ravel() >= _LEVELS, bitorder="little").view(dtype).reshape(-1, w_n)
        need = np.minimum(np.maximum(calls.req_level.T, 0), MAX_LEVEL + 1)  # (K, C)
        # Level-major blocks of S + 1 rows, each ending with the "always met" row, which skill -1
        # lands on: the previous block's last row (block 0: the table's last row, index -1).
        got = having.take(np.multiply(need, s_n, dtype=np.intp) + calls.req_skill.T, axis=0)  # (K, C, W)
        for k in range(k_n):
            sets &= got[k]
    return sets


def assign(agents: AgentArrays, calls: CallArrays, strategies: tuple[str, ...], rr_last: np.ndarray,
           seed: int, skills_strategy: np.ndarray, exclude: list[tuple[int, int]] | tuple = ()) -> list[Assignment]:
    """Every assignment the policy makes now (greedy by call rank; exact, in few numpy passes).

    ``exclude`` lists (call, agent) pairs to avoid while the call has any other eligible agent
    (an agent who just let that call ring out).

    The work over all calls is a handful of 1-D passes (eligible free agents as bit sets); ranking
    and scoring touch only the calls some free agent can take, and only the free agents' columns.
    """
    free_idx = agents.free.nonzero()[0]
    f_n = len(free_idx)
    if f_n == 0 or len(calls.queue) == 0:
        return []
    dtype, width = _word(f_n)
    pen_free = agents.penalty[:, free_idx]  # (Q, F)
    pen = np.empty((len(pen_free), width), dtype=np.int64)
    pen.fill(_PAD)
    pen[:, :f_n] = pen_free
    s_n = agents.skills.shape[1]
    skills_t = np.empty((s_n + 1, width), dtype=np.int8)
    skills_t.fill(127)  # row -1: "no requirement", always met; padding agents: anything
    skills_t[:s_n, :f_n] = agents.skills[free_idx].T
    sets = _eligible_sets(calls, pen, _distinct(pen_free), skills_t, dtype)
    if calls.only is not None:
        _restrict(sets, calls.only, free_idx, dtype)
    # The calls some free agent can take, in rank order: priority, then the longest wait, then
    # call index (lexsort is stable).
    cidx = (sets[:, 0] if sets.shape[1] == 1 else np.logical_or.reduce(sets, axis=1)).nonzero()[0]
    if len(cidx) == 0:
        return []
    cidx = cidx[np.lexsort((calls.entered[cidx], -calls.priority[cidx]))]
    queue = calls.queue[cidx]
    sets = sets[cidx]
    # Keys, lower is better: penalty, then (skills strategy) the proficiency deficit, then strategy rank.
    key = pen[:, :f_n][queue] * (MAX_LEVEL * 64 + 1)
    k_n = calls.req_skill.shape[1]
    if k_n and skills_strategy.any():
        short = MAX_LEVEL - skills_t[:, :f_n].astype(np.int64)  # (S + 1, F) levels below the top
        short[-1] = 0  # "no requirement"
        deficit = np.add.reduce(short[calls.req_skill[cidx]], axis=1)  # (n, F)
        key += deficit * skills_strategy[queue, None]
    key *= len(agents.free) + 1
    key += strategy_ranks(strategies, agents, rr_last, seed, subset=free_idx)[queue]
    key[np.unpackbits(sets.view(np.uint8), axis=1, count=f_n, bitorder="little") == 0] = INF
    if exclude:
        col = {a: i for i, a in enumerate(free_idx.tolist())}
        row = {c: i for i, c in enumerate(cidx.tolist())}
        for c, a in set(exclude):  # a pair named twice is still excluded once
            i, j = row.get(c), col.get(a)
            if i is not None and j is not None and key[i, j] < INF:
                key[i, j] += EXCLUDED
    # Each call's eligible agents, and those of it and every call after it, as Python ints.
    if sets.shape[1] == 1:
        bits = sets[:, 0].tolist()
        reach = np.bitwise_or.accumulate(sets[::-1, 0])[::-1].tolist()
    else:
        bits = [int.from_bytes(r.tobytes(), "little") for r in sets]
        reach = bits[:]
        for r in range(len(reach) - 2, -1, -1):
            reach[r] |= reach[r + 1]
    return _greedy(key, bits, reach, cidx, free_idx)


def _restrict(sets: np.ndarray, only: np.ndarray, free_idx: np.ndarray, dtype: type) -> None:
    """Calls with a preferred agent keep at most that agent's bit (none if it is not free), in place."""
    rows = (only >= 0).nonzero()[0]
    if not len(rows):
        return
    want = only[rows]
    j = np.minimum(free_idx.searchsorted(want), len(free_idx) - 1)
    is_free = free_idx[j] == want
    bits = 8 * np.dtype(dtype).itemsize
    mask = np.zeros((len(rows), sets.shape[1]), dtype=dtype)
    r = is_free.nonzero()[0]
    mask[r, j[r] // bits] = np.left_shift(np.ones(len(r), dtype=dtype), (j[r] % bits).astype(dtype))
    sets[rows] &= mask


def _distinct(values: np.ndarray) -> np.ndarray:
    """The distinct values, sorted (np.unique without its overhead)."""
    v = values.flatten()
    v.sort()
    keep = np.empty(len(v), dtype=bool)
    keep[:1] = True
    np.not_equal(v[1:], v[:-1], out=keep[1:])
    return v[keep]


_INLINE = 8  # conflicts re-decided one by one before the remaining calls' choices are recomputed at once


def _greedy(key: np.ndarray, bits: list[int], reach: list[int], cidx: np.ndarray,
            free_idx: np.ndarray) -> list[Assignment]:
    """Each call (rows of ``key``, in rank order) takes its best agent (columns) not yet taken.

    ``bits``: each row's eligible agents as a bit set; ``reach``: those of the row and every row
    after it (the walk stops when none of them is left). Every remaining call's best untaken
    agent is computed at once; walking the calls in order, a choice stands while its agent is
    still untaken (taking agents only removes options, so an unchanged best stays best). A call
    with no untaken eligible agent is skipped; one whose choice was taken meanwhile is re-decided
    on its own, or, after several such, all remaining calls are recomputed at once."""
    kt = np.ascontiguousarray(key.T)  # (F, n): per-call reductions run along contiguous memory
    f_n, n = kt.shape
    picks: list[tuple[int, int, int]] = []
    free = (1 << f_n) - 1  # untaken agents
    start = 0
    while start < n and free & reach[start]:
        sub = kt[:, start:]
        best, val = sub.argmin(axis=0).tolist(), np.minimum.reduce(sub, axis=0).tolist()
        conflicts, resume = 0, n
        for r in range(start, n):
            if not free & reach[r]:
                break
            if not free & bits[r]:
                continue
            j, v = best[r - start], val[r - start]
            if not free >> j & 1:  # its best was taken since: decide it again
                if conflicts == _INLINE:
                    resume = r
                    break
                conflicts += 1
                col = kt[:, r]
                j = int(col.argmin())
                v = int(col[j])
            picks.append((r, j, v))
            free &= ~(1 << j)
            kt[j] = INF
        start = resume
    calls, agents = cidx.tolist(), free_idx.tolist()
    return [Assignment(calls[r], agents[j], v, bits[r].bit_count()) for r, j, v in picks]


def assign_reference(agents: AgentArrays, calls: CallArrays, ranks: np.ndarray,
                     skills_strategy: np.ndarray, exclude: list[tuple[int, int]] | tuple = ()) -> list[Assignment]:
    """The same policy as :func:`assign`, one call and one agent at a time in plain Python.

    ``ranks`` are the full (Q, A) strategy ranks (:func:`strategy_ranks` without a subset)."""
    excluded = set(exclude)
    a_n = len(agents.free)
    free = [a for a in range(a_n) if bool(agents.free[a])]
    skills = agents.skills.tolist()
    penalty = agents.penalty.tolist()
    rank = ranks.tolist()
    cq, cp, ce = calls.queue.tolist(), calls.priority.tolist(), calls.entered.tolist()
    rs, rl, mp = calls.req_skill.tolist(), calls.req_level.tolist(), calls.max_penalty.tolist()
    only = calls.only.tolist() if calls.only is not None else [-1] * len(cq)
    order = sorted(range(len(cq)), key=lambda c: (-cp[c], ce[c], c))
    taken: set[int] = set()
    out: list[Assignment] = []
    for c in order:
        q = cq[c]
        reqs = [(s, lv) for s, lv in zip(rs[c], rl[c]) if s >= 0]
        best_key, best_a, count = None, -1, 0
        for a in free:
            if only[c] >= 0 and a != only[c]:
                continue
            p = penalty[q][a]
            if p > mp[c] or any(skills[a][s] < lv for s, lv in reqs):
                continue
            count += 1
            if a in taken:
                continue
            deficit = sum(MAX_LEVEL - skills[a][s] for s, _ in reqs) * int(skills_strategy[q])
            key = (p * (MAX_LEVEL * 64 + 1) + deficit) * (a_n + 1) + rank[q][a]
            if (c, a) in excluded:
                key += int(EXCLUDED)
            if best_key is None or key < best_key:
                best_key, best_a = key, a
        if best_key is not None:
            taken.add(best_a)
            out.append(Assignment(c, best_a, best_key, count))
    return out
