"""The live screen's data (``/status``, ``callcenter status``, the Prometheus collector): live state
from the ACD's memory, window figures from the stats cache — no SQL on the event loop."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from callcenter.features.acd.agents import AgentState
from callcenter.features.acd.model import AcdState
from callcenter.features.stats.cache import Snapshot
from callcenter.features.stats.figures import Figures

__all__ = ["build_status", "live_queues"]

EMPTY = Figures(0, 0, 0, 0, None, None, None)


def live_queues(queues: Iterable[str], st: AcdState, now: float) -> dict[str, dict[str, float | int]]:
    """Per queue, from the ACD's memory in one pass over the calls: waiting, ringing, talking and
    the longest current wait (s)."""
    out: dict[str, dict[str, float | int]] = {q: {"waiting": 0, "ringing": 0, "talking": 0, "longest_wait_s": 0.0}
                                             for q in queues}
    oldest: dict[str, float] = {}
    for c in st.calls.values():
        fig = out.get(c.queue)
        if fig is None:
            continue
        if c.answered_at is not None:
            fig["talking"] += 1
        elif c.agent:
            fig["ringing"] += 1
        else:
            fig["waiting"] += 1
            oldest[c.queue] = min(oldest.get(c.queue, c.entered_at), c.entered_at)
    for q, t in oldest.items():
        out[q]["longest_wait_s"] = round(now - t, 1)
    return out


def build_status(queues: Mapping[str, Any], st: AcdState, snap: Snapshot, now: float, *,
                 campaigns: Mapping[str, object], config: Mapping[str, object]) -> dict[str, object]:
    out_queues = {q: {**live, **snap.queues.get(q, EMPTY).as_dict()} for q, live in live_queues(queues, st, now).items()}
    per_agent = snap.agents
    agents = {a.name: {"state": str(a.state), "device": a.device, "call_id": a.call_id,
                       "answered": per_agent[a.name].answered if a.name in per_agent else 0,
                       "paused_s": dict(snap.paused.get(a.name, {})),
                       "aht_s": (round(per_agent[a.name].aht_s, 1)
                                 if a.name in per_agent and per_agent[a.name].aht_s else None),
                       "fcr_rate": per_agent[a.name].as_dict()["fcr_rate"] if a.name in per_agent else None,
                       "csat_avg": per_agent[a.name].as_dict()["csat_avg"] if a.name in per_agent else None,
                       "csat_count": per_agent[a.name].csat_count if a.name in per_agent else 0,
                       "reason": a.pause_reason, "calls": a.calls_taken,
                       "idle_s": round(now - a.idle_since, 1) if a.state == AgentState.READY else None}
              for a in st.agents.values()}
    calls = [{"call_id": c.call_id, "queue": c.queue, "agent": c.agent,
              "state": "talking" if c.answered_at else ("ringing" if c.agent else "waiting"),
              "wait_s": round((c.answered_at or now) - c.entered_at, 1),
              "interrupted": c.interrupted_at is not None}
             for c in st.calls.values()]
    return {"synced": st.synced, "queues": out_queues, "agents": agents, "calls": calls,
            "outcomes": dict(snap.outcomes), "config": dict(config), "campaigns": dict(campaigns)}
