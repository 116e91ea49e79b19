"""``callcenter webhooks list [--dead] [--json]`` and ``callcenter webhooks retry <id>... | --all-dead``.

Both work on the daemon's database directly (``daemon.database``), like ``callcenter campaign``: a
replayed dead letter is pending again, due now, with a fresh retry window, and keeps its id; the
running daemon's worker re-reads due rows at least every ``webhooks.rescan_s`` (2 s) and sends it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from pathlib import Path

from callcenter.features.webhooks import store

__all__ = ["main"]


def _iso(t: float | None) -> str:
    return "-" if t is None else dt.datetime.fromtimestamp(t).astimezone().isoformat(timespec="seconds")


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="callcenter webhooks")
    ap.add_argument("--config", default=str(Path("config") / "callcenter.yaml"))
    sub = ap.add_subparsers(dest="op", required=True)
    ls = sub.add_parser("list", help="outbox messages, newest first (with --dead: the dead letters only)")
    ls.add_argument("--dead", action="store_true")
    ls.add_argument("--pending", action="store_true")
    ls.add_argument("--limit", type=int, default=100)
    ls.add_argument("--json", action="store_true")
    rt = sub.add_parser("retry", help="replay dead letters (same webhook-id)")
    rt.add_argument("ids", nargs="*", metavar="ID")
    rt.add_argument("--all-dead", action="store_true")
    rt.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    from callcenter.cli._config import load_or_exit
    cfg = load_or_exit(a.config)
    with store.WebhookStore(cfg.daemon.database) as st:
        if a.op == "list":
            status = "dead" if a.dead else "pending" if a.pending else None
            rows = store.rows(st.db, status=status, limit=a.limit)
            if a.json:
                print(json.dumps({"outbox": [r.as_dict() for r in rows], "counts": store.counts(st.db)}))
                return 0
            for r in rows:
                print(f"{r.id}  {r.status:<9} {r.endpoint:<12} {r.type:<16} attempts={r.attempts:<3} "
                      f"made={_iso(r.created_at)} {'next=' + _iso(r.next_at) if r.status == 'pending' else ''}"
                      f"{'  ' + r.last_error if r.last_error else ''}")
            print(f"({', '.join(f'{k}: {v}' for k, v in sorted(store.counts(st.db).items())) or 'empty'})")
            return 0
        if not a.ids and not a.all_dead:
            ap.error("retry: give message ids or --all-dead")
        n = store.retry(st.db, time.time(), None if a.all_dead else a.ids)
        if a.json:
            print(json.dumps({"retried": n}))
        else:
            print(f"{n} dead letter(s) pending again; the running daemon sends them within webhooks.rescan_s")
        return 0 if n or a.all_dead else 1
