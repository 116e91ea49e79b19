"""The live screen's data (``/status``, ``callcenter status``, the Prometheus collector): live state
from the ACD's memory, window figures from the stats cache — no SQL on the event loop."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from callcenter.features.acd.agents import AgentState
from callcenter.features.acd.model import AcdState
from callcenter.features.stats.cache import Snapshot
from callcenter.features.stats.figures import Figures

__all__ = ["build_status"]

EMPTY = Figures(0, 0, 0, 0, None, None, None)


def build_status(queues: Mapping[str, Any], st: AcdState, snap: Snapshot, now: float, *,
                 campaigns: Mapping[str, object], config: Mapping[str, object]) -> dict[str, object]:
    out_queues = {}
    for q in queues:
        waiting = st.waiting(q)
        out_queues[q] = {"waiting": len(waiting),
                         "talking": sum(1 for c in st.calls.values() if c.queue == q and c.answered_at is not None),
                         "ringing": sum(1 for c in st.calls.values() if c.queue == q and c.agent and c.answered_at is None),
                         "longest_wait_s": round(now - waiting[0].entered_at, 1) if waiting else 0.0,
                         **snap.queues.get(q, EMPTY).as_dict()}
    per_agent = snap.agents
    agents = {a.name: {"state": str(a.state), "device": a.device, "call_id": a.call_id,
                       "answered": per_agent[a.name].answered if a.name in per_agent else 0,
                       "paused_s": dict(snap.paused.get(a.name, {})),
                       "aht_s": (round(per_agent[a.name].aht_s, 1)
                                 if a.name in per_agent and per_agent[a.name].aht_s else None),
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
