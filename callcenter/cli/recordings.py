"""``callcenter recordings …``: list, show, purge call recordings; the supervision audit trail.

Metadata is read from the daemon's SQLite database (``daemon.database``); files live under
``recordings.dir``. ``purge`` applies ``recordings.retention_days`` and prints every recording it
deleted. ``pause``/``resume CALL_ID`` ask the running daemon (its HTTP API) to mute or unmute a
call's recording, e.g. while the caller reads out a card number.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from callcenter import config as config_mod
from callcenter.features.recording.files import purge, recordings_dir, verify
from callcenter.features.recording.store import STATUSES, RecordingRow, RecordingStore
from callcenter.features.supervision.store import SpyAuditStore


def _config(path: str) -> config_mod.Config:
    from callcenter.cli._config import load_or_exit
    return load_or_exit(path)


def _since(text: str) -> float:
    """ISO date or date-time; without a zone it is local time."""
    try:
        t = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date/time: {text!r}") from None
    return (t if t.tzinfo else t.astimezone()).timestamp()


def _iso(t: float | None) -> str:
    return "-" if t is None else dt.datetime.fromtimestamp(t).astimezone().isoformat(timespec="seconds")


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="callcenter recordings")
    ap.add_argument("--config", default=str(Path("config") / "callcenter.yaml"))
    sub = ap.add_subparsers(dest="op", required=True)
    ls = sub.add_parser("list", help="recordings, newest first")
    ls.add_argument("--agent")
    ls.add_argument("--queue")
    ls.add_argument("--status", choices=STATUSES)
    ls.add_argument("--since", type=_since, help="ISO date or date-time (local time unless it has a zone)")
    ls.add_argument("--limit", type=int, default=100)
    ls.add_argument("--json", action="store_true")
    sh = sub.add_parser("show", help="one recording's metadata (and whether its file verifies)")
    sh.add_argument("rec_id")
    sh.add_argument("--json", action="store_true")
    pu = sub.add_parser("purge", help="delete recordings older than recordings.retention_days")
    pu.add_argument("--dry-run", action="store_true", help="only print what would be deleted")
    pu.add_argument("--json", action="store_true")
    au = sub.add_parser("audit", help="supervision (listen/whisper/barge) audit trail, newest first")
    au.add_argument("--since", type=_since)
    au.add_argument("--limit", type=int, default=100)
    au.add_argument("--json", action="store_true")
    for op in ("pause", "resume"):
        pr = sub.add_parser(op, help=f"{op} a live call's recording (asks the running daemon)")
        pr.add_argument("call_id")
        pr.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    cfg = _config(a.config)
    if a.op in ("pause", "resume"):
        return _pause(cfg, a)
    if a.op == "audit":
        with SpyAuditStore(cfg.daemon.database) as audit_store:
            return _audit(audit_store, a)
    with RecordingStore(cfg.daemon.database) as store:
        return _run(cfg, store, a)


def _pause(cfg: config_mod.Config, a: argparse.Namespace) -> int:
    """POST /api/v1/calls/<call_id>/recording/pause|resume to the daemon with the API token in
    ``$CALLCENTER_TOKEN`` (scope agent, of a supervisor of the agent's team); exit 0 done, 1 refused,
    2 unreachable or no token."""
    url = f"http://{cfg.http.host}:{cfg.http.port}/api/v1/calls/{a.call_id}/recording/{a.op}"
    token = os.environ.get("CALLCENTER_TOKEN", "")
    if not token:
        print("recordings: set CALLCENTER_TOKEN to an API token (callcenter make-token)", file=sys.stderr)
        return 2
    req = urllib.request.Request(url, data=b"", method="POST", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            body, status = json.loads(r.read() or b"{}"), r.status
    except urllib.error.HTTPError as e:
        body, status = json.loads(e.read() or b"{}"), e.code
    except (urllib.error.URLError, OSError, ValueError) as e:
        print(f"recordings: daemon not reachable at {url}: {e}", file=sys.stderr)
        return 2
    if a.json:
        print(json.dumps(body))
    elif status == 200:
        print(f"recording {body.get('rec_id')} of call {a.call_id} {'paused' if body.get('paused') else 'resumed'}")
    else:
        print(f"recordings: {a.op} refused: {body.get('result') or body.get('error')}", file=sys.stderr)
    return 0 if status == 200 else 1


def _line(r: RecordingRow) -> str:
    dur = "-" if r.duration_s is None else f"{r.duration_s:.1f}s"
    flags = ("T" if r.truncated else "") + ("P" if r.pauses else "")
    return (f"{r.rec_id:<28} {_iso(r.started_at):<25} {dur:>8} {r.agent or '-':<12} {r.queue or r.campaign or '-':<12}"
            f" {r.status:<11} {flags:<3} {r.path or '-'}")


def _run(cfg: config_mod.Config, store: RecordingStore, a: argparse.Namespace) -> int:
    rdir = recordings_dir(cfg)
    if a.op == "list":
        rows = store.recordings(agent=a.agent, queue=a.queue, status=a.status, since=a.since, limit=a.limit)
        if a.json:
            print(json.dumps([r.as_dict() for r in rows], indent=2))
            return 0
        print(f"{'REC_ID':<28} {'STARTED':<25} {'DUR':>8} {'AGENT':<12} {'QUEUE':<12} {'STATUS':<11} FL  PATH")
        for r in rows:
            print(_line(r))
        print(f"{len(rows)} recordings (FL: T truncated, P has pauses)")
    elif a.op == "show":
        row = store.get(a.rec_id)
        if row is None:
            print(f"recordings: no recording {a.rec_id!r}", file=sys.stderr)
            return 1
        ok = verify(store, rdir, row.rec_id) if row.status in ("done", "repaired") else None
        if a.json:
            print(json.dumps({**row.as_dict(), "file": str(rdir / row.path) if row.path else None,
                              "verified": ok}, indent=2))
            return 0
        for k, v in row.as_dict().items():
            if k in ("started_at", "ended_at", "deleted_at"):
                v = _iso(v)  # type: ignore[arg-type]
            print(f"{k:<11} {v}")
        if row.path:
            print(f"{'file':<11} {rdir / row.path}")
        if ok is not None:
            print(f"{'verified':<11} {'yes (sha256 matches)' if ok else 'NO: file missing or sha256 differs'}")
        return 0 if ok is not False else 3
    elif a.op == "purge":
        days = cfg.recordings.retention_days

        def what(r: RecordingRow) -> str:
            return f"{r.rec_id} {rdir / r.path if r.path else '-'} (started {_iso(r.started_at)}, agent {r.agent or '-'})"

        def say(r: RecordingRow) -> None:
            if not a.json:
                print(f"deleted {what(r)}")

        rows = purge(store, rdir, time.time(), days, dry_run=a.dry_run, on_delete=say)
        if a.json:
            print(json.dumps({"dry_run": a.dry_run, "retention_days": days,
                              "deleted": [r.as_dict() for r in rows]}, indent=2))
        elif a.dry_run:
            for r in rows:
                print(f"would delete {what(r)}, {r.status}")
            print(f"{len(rows)} recordings older than {days:g} days would be deleted")
        else:
            print(f"{len(rows)} recordings older than {days:g} days deleted")
    return 0


def _audit(store: SpyAuditStore, a: argparse.Namespace) -> int:
    audits = store.audits(since=a.since, limit=a.limit)
    if a.json:
        print(json.dumps([x.as_dict() for x in audits], indent=2))
        return 0
    for x in audits:
        print(f"{_iso(x.at)} {x.supervisor or '-'}@{x.supervisor_phone} {x.mode} {x.target_ext}"
              f" ({x.agent or '-'}): {x.outcome} {x.reason}")
    return 0
