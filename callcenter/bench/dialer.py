"""``callcenter bench dialer [--json]``: predictive vs progressive pacing over several scenarios.

Each scenario runs 8 simulated hours in both modes (same seed, same world) through the
production pacing code. Per scenario: abandon rate, agent occupancy and idle share of both
modes. Summary:

* ``all_within_limit`` -- predictive's abandon rate <= the scenario's limit in every scenario;
* ``idle_never_worse`` -- predictive's idle share <= progressive's in every scenario;
* ``geomean_idle_ratio`` -- geometric mean of predictive idle / progressive idle (target <= 0.5).

``--seeds 1,2,3`` runs the same scenarios for each seed and reports every seed (the
default report is the single ``--seed``, 7).
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

from callcenter.features.dialer.sim import Scenario, simulate

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


def _run(args: tuple[str, str, float, int]) -> tuple[str, str, float, int, dict[str, Any]]:
    name, mode, duration, seed = args
    sc = replace(BASE, **SCENARIOS[name], mode=mode, duration_s=duration, seed=seed)
    return name, mode, duration, seed, simulate(sc)


def _simulate_all(duration_s: float, seeds: list[int], workers: int | None) -> dict[int, dict[str, dict[str, Any]]]:
    """seed -> scenario -> mode -> simulate() result, every run in one process pool."""
    jobs = [(n, m, duration_s, s) for s in seeds for n in SCENARIOS for m in MODES]
    workers = workers or min(len(jobs), os.cpu_count() or 1)
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(_run, jobs))
    else:
        results = [_run(j) for j in jobs]
    by: dict[int, dict[str, dict[str, Any]]] = {}
    for name, mode, _d, seed, r in results:
        by.setdefault(seed, {}).setdefault(name, {})[mode] = r
    return by


def _compare(by: dict[str, dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(per-scenario comparison, summary) for one seed's runs."""
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
    summary = {
        "all_within_limit": within,
        "idle_never_worse": never_worse,
        "geomean_idle_ratio": round(geo, 4),
        "target_geomean_idle_ratio": TARGET_GEOMEAN,
        "geomean_target_met": geo <= TARGET_GEOMEAN,
    }
    return scenarios, summary


def run(duration_s: float = 8 * 3600.0, seed: int = 7, workers: int | None = None) -> dict[str, Any]:
    t0 = time.perf_counter()
    scenarios, summary = _compare(_simulate_all(duration_s, [seed], workers)[seed])
    summary["wall_s"] = round(time.perf_counter() - t0, 2)
    return {
        "benchmark": "dialer",
        "duration_s_per_scenario": duration_s,
        "seed": seed,
        "scenarios": scenarios,
        "summary": summary,
    }


def run_seeds(seeds: list[int], duration_s: float = 8 * 3600.0, workers: int | None = None) -> dict[str, Any]:
    """The same comparison for several seeds: per seed, each scenario's abandon rate against
    its limit and idle ratio, and the seed's summary; overall, whether every seed held."""
    t0 = time.perf_counter()
    by = _simulate_all(duration_s, seeds, workers)
    per_seed: dict[str, Any] = {}
    for seed in seeds:
        scenarios, summary = _compare(by[seed])
        per_seed[str(seed)] = {
            "scenarios": {name: {"limit": s["limit"],
                                 "predictive_abandon_rate": s["predictive"]["abandon_rate"],
                                 "predictive_within_limit": s["predictive_within_limit"],
                                 "idle_ratio": s["idle_ratio"]} for name, s in scenarios.items()},
            "summary": summary,
        }
    geos = [v["summary"]["geomean_idle_ratio"] for v in per_seed.values()]
    return {
        "benchmark": "dialer",
        "duration_s_per_scenario": duration_s,
        "seeds": seeds,
        "per_seed": per_seed,
        "summary": {
            "all_within_limit": all(v["summary"]["all_within_limit"] for v in per_seed.values()),
            "idle_never_worse": all(v["summary"]["idle_never_worse"] for v in per_seed.values()),
            "geomean_idle_ratio_by_seed": dict(zip(map(str, seeds), geos)),
            "geomean_idle_ratio_mean": round(sum(geos) / len(geos), 4),
            "target_geomean_idle_ratio": TARGET_GEOMEAN,
            "wall_s": round(time.perf_counter() - t0, 2),
        },
    }


def _brief(r: dict[str, Any]) -> dict[str, Any]:
    keys = ("abandon_rate", "abandon_rate_actual", "agent_occupancy", "idle_share", "dialed",
            "human_answers", "abandoned", "abandoned_no_agent", "dial_level_mean", "amd_trusted",
            "throttled_share", "connects_per_agent_hour", "released")
    return {k: r[k] for k in keys}


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="callcenter bench dialer", description=__doc__.splitlines()[0])
    p.add_argument("--json", action="store_true")
    p.add_argument("--hours", type=float, default=8.0, help="simulated hours per scenario")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--seeds", default="", help="comma-separated seeds: run every seed, report each")
    p.add_argument("--workers", type=int, default=0, help="processes (0: one per CPU)")
    try:
        a = p.parse_args(argv)
        seeds = [int(x) for x in a.seeds.split(",") if x.strip()]
    except SystemExit as e:
        return int(e.code or 0)
    except ValueError:
        print(f"callcenter bench dialer: --seeds: expected integers, got {a.seeds!r}", file=sys.stderr)
        return 2
    if seeds:
        out = run_seeds(seeds, a.hours * 3600.0, a.workers or None)
    else:
        out = run(a.hours * 3600.0, a.seed, a.workers or None)
    if a.json:
        print(json.dumps(out, indent=2))
    elif seeds:
        for seed, v in out["per_seed"].items():
            worst = max(v["scenarios"].items(),
                        key=lambda kv: kv[1]["predictive_abandon_rate"] / kv[1]["limit"])
            print(f"seed {seed:>4}: geomean {v['summary']['geomean_idle_ratio']:.4f}  within limit "
                  f"{v['summary']['all_within_limit']}  (closest: {worst[0]} "
                  f"{worst[1]['predictive_abandon_rate']:.4f} / {worst[1]['limit']:.3f})")
        print(json.dumps(out["summary"]))
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
