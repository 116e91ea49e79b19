"""``callcenter campaign …``: create, import leads, start/pause/stop, status, do-not-call list.

Campaigns live in the daemon's SQLite database (``daemon.database`` of the config), the one store
of their settings and state: the daemon dials a campaign made here (``--queue``, ``--trunk``) as it
dials the YAML's, which it upserts there at start and on every reload.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from callcenter.features.dialer import campaigns
from callcenter.features.dialer.store import CampaignRow, IllegalCampaignTransition, LeadStore

if TYPE_CHECKING:
    from callcenter.config import Config


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
    c.add_argument("--queue", help="answered people join this queue of the config (needed to dial)")
    c.add_argument("--trunk", help="dial out through this trunk of the config (it needs a host; needed to dial)")
    c.add_argument("--mode", choices=["preview", "progressive", "predictive"], default="predictive")
    c.add_argument("--caller-id", default="", help="the number presented")
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
    from callcenter.cli._config import load_or_exit
    cfg = load_or_exit(a.config)
    with LeadStore(cfg.daemon.database) as store:
        try:
            return _run(store, cfg, a)
        except (KeyError, ValueError, IllegalCampaignTransition) as e:
            print(f"campaign: {e.args[0] if isinstance(e, KeyError) else e}", file=sys.stderr)
            return 1


def _create(store: LeadStore, cfg: Config, a: argparse.Namespace) -> int:
    if a.name in cfg.campaigns:
        raise ValueError(f"{a.name!r} is defined in the config (campaigns.{a.name}): edit it there")
    start, _, end = a.window.partition("-")
    settings: dict[str, object] = {}
    if a.queue or a.trunk:  # validated as the YAML's would be, against this config
        if not (a.queue and a.trunk):
            raise ValueError("--queue and --trunk go together (a campaign needs both to be dialled)")
        settings = {"queue": a.queue, "trunk": a.trunk, "mode": a.mode, "caller_id": a.caller_id}
        row = CampaignRow(0, a.name, "created", "cli", a.region.upper(), a.window, a.max_attempts,
                          a.max_abandon_rate, settings)
        why = campaigns.not_dialable(campaigns.conf_of(row), cfg)
        if why is not None:
            raise ValueError(why)
    try:
        cid = store.create_campaign(a.name, a.region, window_start=start, window_end=end,
                                    max_attempts=a.max_attempts, max_abandon_rate=a.max_abandon_rate,
                                    settings=settings)
    except sqlite3.IntegrityError:
        raise ValueError(f"a campaign named {a.name!r} already exists") from None
    print(f"campaign {a.name!r} created (id {cid}, state created)")
    if not settings:
        print("note: no --queue/--trunk: the daemon will not dial it", file=sys.stderr)
    return 0


def _run(store: LeadStore, cfg: Config, a: argparse.Namespace) -> int:
    if a.op == "create":
        return _create(store, cfg, a)
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
