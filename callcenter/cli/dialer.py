"""``callcenter dialer ...``: predictive dialer tools.

``callcenter dialer simulate --scenario FILE.yaml [--json]`` runs the discrete-event
simulation of :mod:`callcenter.features.dialer.sim` (driving the production pacing code) and prints
the result. A scenario that does not validate exits 2 naming each bad key.
"""

from __future__ import annotations

import argparse
import json
import sys

from callcenter.features.dialer.sim import ScenarioError, load_scenario, simulate


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="callcenter dialer", description="predictive dialer tools")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("simulate", help="simulate a campaign from a scenario YAML")
    s.add_argument("--scenario", required=True, help="scenario YAML (see config/dialer-scenario.example.yaml)")
    s.add_argument("--json", action="store_true", help="one JSON object on stdout")
    s.add_argument("--mode", choices=["predictive", "progressive", "preview"],
                   help="override the scenario's mode")
    s.add_argument("--seed", type=int, help="override the scenario's seed")
    return p


def main(argv: list[str]) -> int:
    try:
        a = _parser().parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    try:
        sc = load_scenario(a.scenario)
    except ScenarioError as e:
        for problem in e.problems:
            print(f"callcenter dialer: {problem}", file=sys.stderr)
        return 2
    if a.mode or a.seed is not None:
        from dataclasses import replace
        sc = replace(sc, **{k: v for k, v in (("mode", a.mode), ("seed", a.seed)) if v is not None})
    result = simulate(sc)
    if a.json:
        print(json.dumps(result, sort_keys=False))
    else:
        for k, v in result.items():
            print(f"{k:>36}: {v}")
    return 0
