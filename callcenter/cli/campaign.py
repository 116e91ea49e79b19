"""``callcenter campaign …``: create, import leads, start/pause/stop, status, do-not-call list.

Campaigns live in the daemon's SQLite database (``daemon.database`` of the config).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from callcenter.features.dialer.store import IllegalCampaignTransition, LeadStore


def _store(config_path: str) -> LeadStore:
    from callcenter.cli._config import load_or_exit
    return LeadStore(load_or_exit(config_path).daemon.database)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="callcenter campaign")
    ap.add_argument("--config", default=str(Path("config") / "callcenter.yaml"))
    sub = ap.add_subparsers(dest="op", required=True)
    c = sub.add_parser("create", help="a new campaign")
    c.add_argument("name")
    c.add_argument("--region", default="US", help="default region for numbers without a country code")
    c.add_argument("--window", default="08:00-21:00", help="calling window in the callee's local time")
    c.add_argument("--max-attempts", type=int, default=5)
    c.add_argument("--max-abandon-rate", type=float, default=0.03)
    i = sub.add_parser("import", help="import leads from CSV (bad rows are reported by line)")
    i.add_argument("name")
    i.add_argument("csv")
    for op in ("start", "pause", "stop"):
        sub.add_parser(op, help=f"{op} the campaign").add_argument("name")
    st = sub.add_parser("status", help="state and lead counts")
    st.add_argument("name")
    st.add_argument("--json", action="store_true")
    d = sub.add_parser("dnc", help="do-not-call list: add or remove a number (takes effect at once)")
    d.add_argument("action", choices=["add", "remove"])
    d.add_argument("number")
    d.add_argument("--region", default="US")
    a = ap.parse_args(argv)
    with _store(a.config) as store:
        try:
            return _run(store, a)
        except (KeyError, ValueError, IllegalCampaignTransition) as e:
            print(f"campaign: {e.args[0] if isinstance(e, KeyError) else e}", file=sys.stderr)
            return 1


def _run(store: LeadStore, a: argparse.Namespace) -> int:
    if a.op == "create":
        start, _, end = a.window.partition("-")
        cid = store.create_campaign(a.name, a.region, window_start=start, window_end=end,
                                    max_attempts=a.max_attempts, max_abandon_rate=a.max_abandon_rate)
        print(f"campaign {a.name!r} created (id {cid}, state created)")
    elif a.op == "import":
        imported, rejected = store.import_csv(store.campaign_id(a.name), a.csv)
        for r in rejected:
            print(f"{a.csv}:{r.line}: {r.reason}", file=sys.stderr)
        print(f"{imported} leads imported, {len(rejected)} rejected")
        return 0 if not rejected else 3
    elif a.op in ("start", "pause", "stop"):
        new = store.change_campaign(store.campaign_id(a.name), a.op)
        print(f"campaign {a.name!r} is {new}")
    elif a.op == "status":
        cid = store.campaign_id(a.name)
        out = {"campaign": a.name, "state": store.campaign_state(cid), "leads": store.counts(cid)}
        print(json.dumps(out) if a.json else f"{a.name}: {out['state']}; leads " +
              ", ".join(f"{k} {v}" for k, v in sorted(out["leads"].items())))
    elif a.op == "dnc":
        if a.action == "add":
            print(f"{store.add_dnc(a.number, time.time(), source='cli', region=a.region)} is on the do-not-call list")
        else:
            store.remove_dnc(a.number, region=a.region)
            print(f"{a.number} removed from the do-not-call list")
    return 0
