"""``callcenter install`` / ``callcenter uninstall`` (``make install`` / ``make uninstall``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from callcenter.install import installer as inst

__all__ = ["main_install", "main_uninstall", "next_steps"]


def next_steps(live: bool) -> str:
    c = f"{inst.PREFIX}/.venv/bin/callcenter"
    return f"""
Next steps:
  1. Your site's settings in {inst.CONFDIR}/conf.d/10-site.yaml (merged over callcenter.yaml; see
     conf.d/README): trunks (match, host, DIDs), phones and their secrets, agents, queues, menus —
     and replace every demo credential (phone secrets, access.users password_hash from
     `{c} hash-password`, access.tokens from `{c} make-token`, supervisor PINs).
  2. {c} check-config {inst.CONFDIR}/callcenter.yaml
  3. Run the install again (`make install`): it re-renders Asterisk's part into
     {inst.ASTERISK_ETC}/callcenter/ from that configuration, changing nothing else.
  4. systemctl restart asterisk        (a pjsip [global] change needs a restart, not a reload)
  5. systemctl enable --now callcenter
     systemctl status callcenter       (active (running), Status: "AMI logged in and synced")
     {c} status --config {inst.CONFDIR}/callcenter.yaml
  6. The agent panel and wallboard are on http://127.0.0.1:9180/ (loopback only: reach them through
     an SSH tunnel or a TLS reverse proxy; set access.secure_cookies: true behind TLS).
""" if live else "\n(DESTDIR install: on the target host, follow the README's \"Production install\".)\n"


def _report(r: inst.Result, verb: str) -> None:
    for line in r.changes:
        print(f"  {line}")
    if not r.changes:
        print(f"{verb}: nothing to change")
    for n in r.notes:
        print("note: " + n.replace("\n", "\n      "))


def _parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog)
    p.add_argument("--destdir", default="", help="install under this scratch root (no user, no chown, no systemctl)")
    p.add_argument("--source", default=".", help="the checkout to install from (default: .)")
    return p


def main_install(argv: list[str]) -> int:
    p = _parser("callcenter install")
    p.add_argument("--no-venv", action="store_true", help=f"do not build {inst.PREFIX}/.venv (default under --destdir)")
    p.add_argument("--venv", action="store_true", help="build the venv even under --destdir")
    p.add_argument("--print-includes", action="store_true",
                   help="do not touch the site's Asterisk files: print the #include lines to add instead")
    a = p.parse_args(argv)
    dest = Path(a.destdir or "/")
    opts = inst.Options(source=Path(a.source).resolve(), destdir=dest,
                        venv=a.venv or (not a.no_venv and dest.resolve() == Path("/")),
                        edit_asterisk=not a.print_includes)
    if opts.live and not _root_ok():
        return 1
    r = inst.install(opts)
    print(f"callcenter install{f' into {dest}' if not opts.live else ''}:")
    _report(r, "install")
    if r.config_errors:
        for line in r.config_errors:
            print(f"config error: {line}", file=sys.stderr)
        print("callcenter install: Asterisk's part was not rendered (fix the configuration, run it again)",
              file=sys.stderr)
        return 2
    print(next_steps(opts.live))
    return 0


def main_uninstall(argv: list[str]) -> int:
    p = _parser("callcenter uninstall")
    p.add_argument("--purge", action="store_true", help="also remove the configuration and the system user")
    a = p.parse_args(argv)
    opts = inst.Options(source=Path(a.source).resolve(), destdir=Path(a.destdir or "/"), purge=a.purge)
    if opts.live and not _root_ok():
        return 1
    r = inst.uninstall(opts)
    print("callcenter uninstall:")
    _report(r, "uninstall")
    return 0


def _root_ok() -> bool:
    import os
    if os.geteuid() != 0:
        print("callcenter install: run as root (or use --destdir DIR)", file=sys.stderr)
        return False
    return True


def main(argv: list[str]) -> int:
    """Dispatch for ``callcenter install|uninstall`` (see :data:`callcenter.cli.EXTENSIONS`)."""
    return main_install(argv)
