"""``callcenter`` command line."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from callcenter.cli._config import EXIT_CONFIG, load_or_exit  # noqa: F401 - EXIT_CONFIG: public name


def cmd_check_config(a: argparse.Namespace) -> int:
    cfg = load_or_exit(a.path)
    print(f"ok: {len(cfg.queues)} queues, {len(cfg.agents)} agents, {len(cfg.menus)} menus, "
          f"{sum(len(t.dids) for t in cfg.trunks.values())} DIDs")
    return 0


def cmd_asterisk_config(a: argparse.Namespace) -> int:
    from callcenter.asterisk.render import render, write
    from callcenter.features.cards.plan import plan
    from callcenter.features.cards.render import system_conf
    cfg = load_or_exit(a.config)
    for p in write(render(cfg), a.out):
        print(p)
    cards, _ = plan(cfg.cards, {n: t.dids for n, t in cfg.trunks.items()})
    if cards.spans:  # DAHDI's own file, read by dahdi_cfg: /etc/dahdi on a real host
        for p in write({"system.conf": system_conf(cards)}, a.dahdi_out or Path(a.out) / "dahdi"):
            print(p)
    return 0


def cmd_run(a: argparse.Namespace) -> int:
    from callcenter.app import serve
    from callcenter.telemetry import configure_logging
    cfg = load_or_exit(a.config)
    configure_logging(cfg.daemon.log_format)
    try:
        return asyncio.run(serve(cfg, a.config))
    except OSError as e:  # typically a port already taken by another daemon
        print(f"callcenter: cannot start: {e}", file=sys.stderr)
        return 1


def cmd_lab(a: argparse.Namespace) -> int:
    from callcenter.lab.asterisk import Lab, LabError
    from callcenter.lab.signals import interrupt_on_stop_signals
    lab = Lab.default()
    try:
        with interrupt_on_stop_signals():  # an interrupted `up` takes down what it had started
            if a.action == "up":
                info = lab.up(a.config)
            elif a.action == "down":
                lab.down()
                info = lab.status()
            else:
                info = lab.status()
    except LabError as e:
        print(f"lab: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:
        print(f"lab: stopped ({e or 'SIGINT'})", file=sys.stderr)
        return 130
    print(json.dumps(info, indent=2))
    return 0


def cmd_status(a: argparse.Namespace) -> int:
    from callcenter.cli.screen import fetch_status, render_text
    cfg = load_or_exit(a.config)
    st = fetch_status(cfg.http.host, cfg.http.port)
    print(json.dumps(st, indent=2) if a.json else render_text(st))
    return 0


def cmd_stats(a: argparse.Namespace) -> int:
    import sqlite3
    import time

    from callcenter.features.stats.cache import StatsCache
    cfg = load_or_exit(a.config)
    cache = StatsCache(cfg.daemon.database, {n: q.service_level_s for n, q in cfg.queues.items()}, a.window)
    try:
        snap = cache.compute(time.time())  # the daemon's own window queries, on a read-only connection
    except sqlite3.Error as e:
        print(f"stats: cannot read {cfg.daemon.database}: {e}", file=sys.stderr)
        return 1
    finally:
        cache.close()
    queues = {q: snap.queues.get(q) for q in cfg.queues}
    agents = snap.agents
    out = {"window_s": a.window,
           "queues": {q: (f.as_dict() if f else None) for q, f in queues.items()},
           "agents": {n: agents[n].as_dict() for n in cfg.agents if n in agents}}
    if a.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"last {a.window:.0f} s")
    hdr = (f"{'':<12} {'OFFERED':>7} {'ANSW':>5} {'ABND':>5} {'SL':>5} {'ASA':>7} {'AHT':>7} {'ABND%':>6}"
           f" {'FCR%':>5} {'CSAT':>4}")
    for title, rows in (("QUEUE", out["queues"]), ("AGENT", out["agents"])):
        print("\n" + title + hdr[len(title):])
        for name, f in rows.items():
            if f is None:
                print(f"{name:<12} {'no calls':>7}")
                continue
            pct = lambda v: "-" if v is None else f"{v * 100:.0f}%"  # noqa: E731
            sec = lambda v: "-" if v is None else f"{v:.1f}s"  # noqa: E731
            print(f"{name:<12} {f['offered']:>7} {f['answered']:>5} {f['abandoned']:>5} {pct(f['service_level']):>5} "
                  f"{sec(f['asa_s']):>7} {sec(f['aht_s']):>7} {pct(f['abandon_rate']):>6} {pct(f['fcr_rate']):>5}"
                  f" {'-' if f['csat_avg'] is None else format(f['csat_avg'], '.1f'):>4}")
    return 0


def cmd_demo(a: argparse.Namespace) -> int:
    from callcenter.lab.demo import main as demo_main
    return demo_main(a.config, a.duration, a.agents, a.call_every)


def cmd_hash_password(a: argparse.Namespace) -> int:
    """Print the Argon2id hash of a password or PIN (for access.users.NAME.password_hash): read
    from stdin when it is not a terminal, else asked for twice."""
    import getpass

    from callcenter.features.access.passwords import hash_secret
    if sys.stdin.isatty():
        secret = getpass.getpass("password: ")
        if getpass.getpass("again: ") != secret:
            print("hash-password: the two entries differ", file=sys.stderr)
            return 1
    else:
        secret = sys.stdin.readline().rstrip("\r\n")
    if not secret:
        print("hash-password: empty password", file=sys.stderr)
        return 1
    print(hash_secret(secret))
    return 0


def cmd_make_token(a: argparse.Namespace) -> int:
    """Print a new API token and its SHA-256 (for access.tokens.NAME.sha256) as JSON."""
    import hashlib
    import secrets
    token = secrets.token_urlsafe(32)
    print(json.dumps({"token": token, "sha256": hashlib.sha256(token.encode()).hexdigest()}))
    return 0


# Subcommands with their own argument parsers, each in its own module: ``main(argv) -> int``.
EXTENSIONS = {
    "bench": ("callcenter.bench", "performance benchmarks, each a ratio against a baseline in one run"),
    "amd": ("callcenter.cli.amd", "answering-machine detection (offline classification)"),
    "dialer": ("callcenter.cli.dialer", "predictive dialer tools (simulation)"),
    "campaign": ("callcenter.cli.campaign", "dialer campaigns: create, import, start/pause/stop, status, DNC"),
    "recordings": ("callcenter.cli.recordings", "call recordings: list, show, purge (retention); supervision audit"),
    "webhooks": ("callcenter.features.webhooks.cli", "webhook outbox: list (dead letters), retry"),
    "provisioning": ("callcenter.features.provisioning.cli", "desk phones: provisioning credentials, show files"),
    "install": ("callcenter.install.cli", "production install: /opt/callcenter, /etc/callcenter, Asterisk includes, systemd unit"),
    "uninstall": ("callcenter.install.uninstall", "undo `install` exactly (configuration kept unless --purge)"),
}


def cmd_extension(a: argparse.Namespace) -> int:
    import importlib
    module = importlib.import_module(EXTENSIONS[a.cmd][0])
    return int(module.main(a.rest) or 0)


def build_parser() -> argparse.ArgumentParser:
    default_cfg = str(Path("config") / "callcenter.yaml")
    p = argparse.ArgumentParser(prog="callcenter", description="ACD daemon for Asterisk")
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("run", help="run the daemon")
    s.add_argument("--config", default=default_cfg)
    s.set_defaults(func=cmd_run)

    s = sub.add_parser("check-config", help="validate a configuration (exit 2 on error)")
    s.add_argument("path")
    s.set_defaults(func=cmd_check_config)

    s = sub.add_parser("asterisk-config", help="render Asterisk's configuration")
    s.add_argument("--config", default=default_cfg)
    s.add_argument("--out", required=True)
    s.add_argument("--dahdi-out", help="where to write DAHDI's system.conf when cards: are configured "
                   "(e.g. /etc/dahdi; default OUT/dahdi)")
    s.set_defaults(func=cmd_asterisk_config)

    s = sub.add_parser("lab", help="the lab Asterisk for demo and tests")
    s.add_argument("action", choices=["up", "down", "status"])
    s.add_argument("--config", default=default_cfg)
    s.set_defaults(func=cmd_lab)

    s = sub.add_parser("status", help="live queues and agents from a running daemon")
    s.add_argument("--config", default=default_cfg)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_status)

    s = sub.add_parser("stats", help="service level, ASA, AHT, abandon rate per queue and agent (from the journal)")
    s.add_argument("--config", default=default_cfg)
    s.add_argument("--window", type=float, default=3600.0, help="seconds of history (default 3600)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_stats)

    s = sub.add_parser("demo", help="lab Asterisk + daemon + simulated agents and callers + live screen")
    s.add_argument("--config", default=default_cfg)
    s.add_argument("--duration", type=float, default=0, help="seconds (0: until Ctrl-C)")
    s.add_argument("--agents", type=int, default=3)
    s.add_argument("--call-every", type=float, default=6.0)
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser("hash-password", help="the Argon2 hash of a password or PIN, for access.users (stdin or asked)")
    s.set_defaults(func=cmd_hash_password)

    s = sub.add_parser("make-token", help="a new API token and its sha256, for access.tokens (JSON)")
    s.set_defaults(func=cmd_make_token)

    for name, (_, help_) in EXTENSIONS.items():
        s = sub.add_parser(name, help=help_, add_help=False)
        s.add_argument("rest", nargs=argparse.REMAINDER)
        s.set_defaults(func=cmd_extension)
    return p


def main(argv: list[str] | None = None) -> int:
    from callcenter.telemetry import configure_logging
    configure_logging("auto")  # logs go to stderr, so --json output on stdout stays clean
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in EXTENSIONS:  # their own parsers get every argument, options included
        return cmd_extension(argparse.Namespace(cmd=argv[0], rest=argv[1:]))
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
