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

Ranks are integers, so the numpy pass and the reference compare exactly the same keys.
"""

from __future__ import annotations

from dataclasses import dataclass
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
    """A agents, S skills, Q queues."""

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

    With ``subset`` (agent indices, e.g. the free ones) the result is (Q, len(subset)): ranks
    among those agents only, in the same order — all a decision step needs. One numpy pass per
    strategy, over all the queues that use it.
    """
    sel = slice(None) if subset is None else subset
    idle = agents.idle_since[sel]
    a_n = len(idle)
    full_n = agents.penalty.shape[1]
    out = np.zeros((len(strategies), a_n), dtype=np.int64)
    groups = _groups(strategies)
    if needed is not None:  # only the queues that have calls to decide (rows of others stay 0)
        groups = {k: v[needed[v]] for k, v in groups.items()}
    idle_rank = _rank(idle)
    out[groups["idle"]] = idle_rank
    qs = groups["leastrecent"]
    if len(qs):
        out[qs] = _rank_rows(agents.last_end[qs][:, sel])
    qs = groups["fewestcalls"]
    if len(qs):
        out[qs] = _rank_rows(agents.calls[qs][:, sel] * a_n + idle_rank)
    qs = groups["rr"]
    if len(qs):
        n = np.maximum(agents.member_pos[qs].max(axis=1) + 1, 1).astype(np.int64)[:, None]
        pos = agents.member_pos[qs][:, sel].astype(np.int64)
        out[qs] = np.where(pos >= 0, (pos - rr_last[qs].astype(np.int64)[:, None] - 1) % n, n)
    qs = groups["linear"]
    if len(qs):
        pos = agents.member_pos[qs][:, sel]
        out[qs] = np.where(pos >= 0, pos, full_n)
    all_groups = _groups(strategies)
    if len(all_groups["random"]) or len(all_groups["wrandom"]):
        rng = np.random.default_rng(seed)
    # Random draws are made for every queue of the family, needed or not, so that a queue's
    # draw does not depend on which other queues have calls (the reference draws them all).
    for q in all_groups["random"]:
        perm = rng.permutation(full_n)
        if q in groups["random"]:
            out[q] = _rank(perm[sel])
    for q in all_groups["wrandom"]:  # random, weighted by penalty: higher penalty, later on average
        draw = rng.random(full_n)
        if q in groups["wrandom"]:
            pen = np.minimum(agents.penalty[q], 1000).astype(np.float64)
            out[q] = _rank((draw * (1.0 + pen))[sel])
    return out


@lru_cache(maxsize=64)
def _groups(strategies: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Queue indices per strategy family (computed once per configuration)."""
    unknown = set(strategies) - set(STRATEGIES)
    if unknown:
        raise ValueError(f"unknown strategy {sorted(unknown)[0]!r}")
    idx = {name: np.array([q for q, st in enumerate(strategies) if st in members], dtype=np.int64)
           for name, members in (("idle", ("skills", "longest-idle")), ("leastrecent", ("leastrecent",)),
                                 ("fewestcalls", ("fewestcalls",)), ("rr", ("rrmemory", "rrordered")),
                                 ("linear", ("linear",)), ("random", ("random",)), ("wrandom", ("wrandom",)))}
    return idx


def _rank_rows(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, axis=1, kind="stable")
    r = np.empty(values.shape, dtype=np.int64)
    np.put_along_axis(r, order, np.arange(values.shape[1], dtype=np.int64)[None, :].repeat(len(values), 0), axis=1)
    return r


def _rank(values: np.ndarray) -> np.ndarray:
    r = np.empty(len(values), dtype=np.int64)
    r[np.argsort(values, kind="stable")] = np.arange(len(values))
    return r


def _keys(agents: AgentArrays, calls: CallArrays, ranks: np.ndarray, skills_strategy: np.ndarray,
          free_idx: np.ndarray, pen_free: np.ndarray | None = None) -> np.ndarray:
    """(C, F) int64 score of each free agent for each call; INF where not eligible.

    ``ranks`` is (Q, F): strategy ranks among the free agents; ``pen_free`` the (Q, F) penalties."""
    a_n = len(agents.free)
    pen = (agents.penalty[:, free_idx] if pen_free is None else pen_free)[calls.queue]  # (C, F)
    eligible = pen <= calls.max_penalty[:, None]
    skills_t = agents.skills[free_idx].T  # (S, F)
    level_sum = np.zeros(pen.shape, dtype=np.int32)
    n_req = np.zeros(len(pen), dtype=np.int32)
    for k in range(calls.req_skill.shape[1]):  # K is tiny (a few skills per call): loop over it, not calls
        req = calls.req_skill[:, k]
        has = req >= 0
        col = skills_t[np.where(has, req, 0)]  # (C, F)
        eligible &= (col >= calls.req_level[:, k, None]) | ~has[:, None]
        level_sum += col * has[:, None]
        n_req += has
    deficit = (MAX_LEVEL * n_req[:, None] - level_sum) * skills_strategy[calls.queue][:, None]
    rank = ranks[calls.queue]  # (C, F)
    key = (pen.astype(np.int64) * (MAX_LEVEL * 64 + 1) + deficit) * (a_n + 1) + rank
    return np.where(eligible, key, INF)


def assign(agents: AgentArrays, calls: CallArrays, strategies: tuple[str, ...], rr_last: np.ndarray,
           seed: int, skills_strategy: np.ndarray, exclude: list[tuple[int, int]] | tuple = ()) -> list[Assignment]:
    """Every assignment the policy makes now (greedy by call rank; exact, in few numpy rounds).

    ``exclude`` lists (call, agent) pairs to avoid while the call has any other eligible agent
    (an agent who just let that call ring out)."""
    free_idx = np.flatnonzero(agents.free)
    if len(free_idx) == 0 or len(calls.queue) == 0:
        return []
    pen_free = agents.penalty[:, free_idx]  # (Q, F)
    has_free = (pen_free < NOT_MEMBER).any(axis=1)  # queues with a free member
    cidx = np.flatnonzero(has_free[calls.queue])  # only their calls can be decided now
    if len(cidx) == 0:
        return []
    if len(cidx) < len(calls.queue):
        calls = CallArrays(calls.queue[cidx], calls.priority[cidx], calls.entered[cidx], calls.req_skill[cidx],
                           calls.req_level[cidx], calls.max_penalty[cidx])
    ranks = strategy_ranks(strategies, agents, rr_last, seed, subset=free_idx, needed=has_free)
    keys = _keys(agents, calls, ranks, skills_strategy, free_idx, pen_free)
    if exclude:
        col = {int(a): i for i, a in enumerate(free_idx)}
        row = {int(c): i for i, c in enumerate(cidx)}
        for c, a in exclude:
            if a in col and c in row and keys[row[c], col[a]] < INF:
                keys[row[c], col[a]] += EXCLUDED
    # Rank order; ties on entry time fall back to the caller's original index.
    order = np.lexsort((cidx, calls.entered, -calls.priority))
    keys = keys[order]
    order = cidx[order]  # back to the caller's call indices
    eligible_count = (keys < INF).sum(axis=1)
    out: list[Assignment] = []
    # Only calls with an eligible agent matter, and never more of them than there are agents.
    active = np.flatnonzero(eligible_count > 0)
    taken = np.zeros(len(free_idx), dtype=bool)
    window = max(8, 2 * len(free_idx))
    left = len(free_idx)
    while len(active) and left:
        head = active[:window]
        sub = keys[head]
        sub[:, taken] = INF
        best = sub.argmin(axis=1)
        val = sub[np.arange(len(head)), best]
        live = val < INF
        if not live.all():  # every agent these calls could have is taken: not this step
            keep = np.ones(len(active), dtype=bool)
            keep[: len(head)] = live
            active = active[keep]
            head, best, val = head[live], best[live], val[live]
            if not len(head):
                continue
        # Calls before the first repeated proposal are decided exactly as one-by-one greedy would.
        _, first = np.unique(best, return_index=True)
        dup = np.ones(len(best), dtype=bool)
        dup[first] = False
        cut = int(np.argmax(dup)) if dup.any() else len(best)
        for i in range(cut):
            out.append(Assignment(int(order[head[i]]), int(free_idx[best[i]]), int(val[i]),
                                  int(eligible_count[head[i]])))
        taken[best[:cut]] = True
        left -= cut
        active = active[cut:]
    return out


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
    order = sorted(range(len(cq)), key=lambda c: (-cp[c], ce[c], c))
    taken: set[int] = set()
    out: list[Assignment] = []
    for c in order:
        q = cq[c]
        reqs = [(s, lv) for s, lv in zip(rs[c], rl[c]) if s >= 0]
        best_key, best_a, count = None, -1, 0
        for a in free:
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
