"""``callcenter bench dialer [--json]``: predictive vs progressive pacing over several scenarios.

Each scenario runs 8 simulated hours in both modes (same seed, same world) through the
production pacing code. Per scenario: abandon rate, agent occupancy and idle share of both
modes. Summary:

* ``all_within_limit`` -- predictive's abandon rate <= the scenario's limit in every scenario;
* ``idle_never_worse`` -- predictive's idle share <= progressive's in every scenario;
* ``geomean_idle_ratio`` -- geometric mean of predictive idle / progressive idle (target <= 0.5).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from typing import Any

from ..dialer.sim import Scenario, simulate

BASE = Scenario(seed=7, duration_s=8 * 3600.0, agents=20, aht_s=180.0, aht_cv=0.5, wrap_s=10.0,
                answer_prob=0.35, machine_prob=0.25, busy_prob=0.05, ring_s=12.0,
                amd_machine_detect=0.9, amd_false_positive=0.01, machine_agent_s=8.0,
                max_abandon_rate=0.03)

SCENARIOS: dict[str, dict[str, Any]] = {
    "base-20-agents": {},
    "small-team-3-agents": {"agents": 3},
    "low-answer-10pct": {"answer_prob": 0.10},
    "long-calls-9min": {"aht_s": 540.0},
    "limit-1pct": {"max_abandon_rate": 0.01},
    "amd-fp-breaks-limit": {"amd_false_positive": 0.05},
}
MODES = ("predictive", "progressive")
TARGET_GEOMEAN = 0.5


def _run(args: tuple[str, str, float, int]) -> tuple[str, str, dict[str, Any]]:
    name, mode, duration, seed = args
    sc = replace(BASE, **SCENARIOS[name], mode=mode, duration_s=duration, seed=seed)
    return name, mode, simulate(sc)


def run(duration_s: float = 8 * 3600.0, seed: int = 7, workers: int | None = None) -> dict[str, Any]:
    jobs = [(n, m, duration_s, seed) for n in SCENARIOS for m in MODES]
    t0 = time.perf_counter()
    workers = workers or min(len(jobs), os.cpu_count() or 1)
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(_run, jobs))
    else:
        results = [_run(j) for j in jobs]
    by: dict[str, dict[str, dict[str, Any]]] = {}
    for name, mode, r in results:
        by.setdefault(name, {})[mode] = r
    scenarios: dict[str, Any] = {}
    ratios: list[float] = []
    within = True
    never_worse = True
    for name, settings in SCENARIOS.items():
        p, g = by[name]["predictive"], by[name]["progressive"]
        ratio = p["idle_share"] / g["idle_share"] if g["idle_share"] > 0 else (0.0 if p["idle_share"] == 0 else math.inf)
        ratios.append(max(ratio, 1e-9))
        ok = p["abandon_rate"] <= p["max_abandon_rate"]
        within &= ok
        never_worse &= p["idle_share"] <= g["idle_share"]
        scenarios[name] = {
            "settings": dict(settings),
            "limit": p["max_abandon_rate"],
            "predictive": _brief(p),
            "progressive": _brief(g),
            "idle_ratio": round(ratio, 4),
            "predictive_within_limit": ok,
        }
    geo = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
    return {
        "benchmark": "dialer",
        "duration_s_per_scenario": duration_s,
        "seed": seed,
        "scenarios": scenarios,
        "summary": {
            "all_within_limit": within,
            "idle_never_worse": never_worse,
            "geomean_idle_ratio": round(geo, 4),
            "target_geomean_idle_ratio": TARGET_GEOMEAN,
            "geomean_target_met": geo <= TARGET_GEOMEAN,
            "wall_s": round(time.perf_counter() - t0, 2),
        },
    }


def _brief(r: dict[str, Any]) -> dict[str, Any]:
    keys = ("abandon_rate", "abandon_rate_actual", "agent_occupancy", "idle_share", "dialed",
            "human_answers", "abandoned", "abandoned_no_agent", "dial_level_mean", "amd_trusted",
            "throttled_share", "connects_per_agent_hour")
    return {k: r[k] for k in keys}


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="callcenter bench dialer", description=__doc__.splitlines()[0])
    p.add_argument("--json", action="store_true")
    p.add_argument("--hours", type=float, default=8.0, help="simulated hours per scenario")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--workers", type=int, default=0, help="processes (0: one per CPU)")
    try:
        a = p.parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    out = run(a.hours * 3600.0, a.seed, a.workers or None)
    if a.json:
        print(json.dumps(out, indent=2))
    else:
        for name, s in out["scenarios"].items():
            pr, pg = s["predictive"], s["progressive"]
            print(f"{name:22} limit {s['limit']:.3f}  predictive abandon {pr['abandon_rate']:.4f} idle "
                  f"{pr['idle_share']:.4f} | progressive abandon {pg['abandon_rate']:.4f} idle "
                  f"{pg['idle_share']:.4f} | ratio {s['idle_ratio']:.3f}")
        print(json.dumps(out["summary"]))
    s = out["summary"]
    return 0 if (s["all_within_limit"] and s["idle_never_worse"]) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
