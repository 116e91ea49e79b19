"""``callcenter provisioning credentials <extension>`` and ``callcenter provisioning show <extension>``.

``credentials`` draws a provisioning password for a desk phone and prints it once, with the HA1 line
for the config and the URL to give the phone (its provisioning server setting or DHCP option 66);
the config keeps only the HA1. ``show`` prints the files that phone will fetch (with its secret:
for the administrator's terminal only).
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
from pathlib import Path

__all__ = ["main"]


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="callcenter provisioning")
    ap.add_argument("--config", default=str(Path("config") / "callcenter.yaml"))
    sub = ap.add_subparsers(dest="op", required=True)
    cr = sub.add_parser("credentials", help="a new provisioning password for a phone: prints it and its HA1")
    cr.add_argument("extension")
    cr.add_argument("--json", action="store_true")
    sh = sub.add_parser("show", help="the files a phone fetches (contains its SIP secret)")
    sh.add_argument("extension")
    a = ap.parse_args(argv)
    from callcenter.cli._config import load_or_exit
    cfg = load_or_exit(a.config)
    ph = cfg.phones.get(a.extension)
    if ph is None or ph.mac is None:
        print(f"callcenter provisioning: phones.{a.extension}: no such phone with a mac", file=sys.stderr)
        return 2
    if a.op == "credentials":
        return _credentials(cfg, a.extension, as_json=a.json)
    return _show(cfg, a.extension)


def _url(cfg: object, ph: object, password: str) -> str:
    c = cfg.provisioning  # type: ignore[attr-defined]
    scheme = "https" if c.tls_cert else "http"
    host = c.bind if c.bind not in ("0.0.0.0", "::") else (c.sip_host or "THIS-SERVER")
    return f"{scheme}://{ph.mac}:{password}@{host}:{c.port}/"  # type: ignore[attr-defined]


def _credentials(cfg: object, ext: str, *, as_json: bool) -> int:
    from callcenter.features.provisioning.digest import ha1
    c = cfg.provisioning  # type: ignore[attr-defined]
    ph = cfg.phones[ext]  # type: ignore[attr-defined]
    password = secrets.token_urlsafe(15)
    h = ha1(ph.mac, c.realm, password, c.algorithm)
    out = {"extension": ext, "mac": ph.mac, "username": ph.mac, "password": password, "provisioning_ha1": h,
           "url": _url(cfg, ph, password)}
    if as_json:
        print(json.dumps(out))
        return 0
    print(f"# phones.{ext} in the config (the password itself is not stored there):")
    print(f"    provisioning_ha1: {h}")
    print(f"# give the phone (provisioning server URL or DHCP option 66), once:")
    print(f"#   username {ph.mac}  password {password}")
    print(f"#   {out['url']}")
    return 0


def _show(cfg: object, ext: str) -> int:
    from callcenter.features.provisioning.model import Route, device_of, site_of
    from callcenter.features.provisioning.render import render
    from callcenter.features.provisioning.schema import read_posix_tz
    from callcenter.features.provisioning.schema import MODELS
    ph = cfg.phones[ext]  # type: ignore[attr-defined]
    vendor = MODELS[ph.model].vendor
    site = site_of(cfg, read_posix_tz(cfg.provisioning.timezone))  # type: ignore[attr-defined]
    names = {"yealink": [("y000000000000.cfg", "common"), (f"{ph.mac}.cfg", "device")],
             "polycom": [("000000000000.cfg", "common"), (f"{ph.mac}-phone.cfg", "device")],
             "grandstream": [(f"cfg{ph.mac}.xml", "device")], "snom": [(f"{ph.mac}.xml", "device")]}[vendor]
    for name, kind in names:
        dev = device_of(cfg, ext) if kind == "device" else None
        print(f"==> {name} <==")
        sys.stdout.write(render(Route(vendor, kind, ph.mac if dev else None), site, dev).decode())  # type: ignore[arg-type]
    return 0
