"""``callcenter bench provisioning [--fetches 1000] [--phones 100] [--concurrency 20] [--json]``.

The real daemon (``callcenter run``, a subprocess, free loopback ports, no Asterisk) with
``--phones`` desk phones of all four vendors and its provisioning listener on. The bench acts as
phones booting: each fetch is a new HTTP session that asks for a phone's per-MAC file, gets the
digest challenge, answers it with that phone's credentials (aiohttp's own ``DigestAuthMiddleware``)
and checks the body holds that phone's SIP secret -- two requests per fetch. ``--concurrency``
fetches run at once. Baseline in the same run: as many fetches of the public common file (no
authentication, one request each). Also ``--unauthenticated`` bare fetches of per-MAC files, each of
which must come back 401 without any secret.

Target (issue 16): 1,000 authenticated fetches in under 60 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from callcenter.bench.webhooks import _free_port, start_daemon, stop_daemon
from callcenter.features.provisioning.digest import ha1
from callcenter.features.provisioning.schema import MODELS
from callcenter.telemetry import percentile

__all__ = ["main", "run_bench", "build_config", "TARGET_S"]

TARGET_S = 60.0
REALM = "callcenter-provisioning"
_MODELS = ("yealink-t46u", "polycom-vvx411", "grandstream-gxp2170", "snom-d785")


def _file(mac: str, model: str) -> str:
    vendor = MODELS[model].vendor
    return {"yealink": f"{mac}.cfg", "polycom": f"{mac}-phone.cfg", "grandstream": f"cfg{mac}.xml",
            "snom": f"{mac}.xml"}[vendor]


def build_config(tmp: Path, phones: int) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """The daemon's config and the phones' side: (mac, password, file, secret) per phone."""
    devices = []
    conf_phones: dict[str, Any] = {}
    for i in range(phones):
        ext, mac, model = f"{4001 + i}", f"0000c0{i:06x}", _MODELS[i % len(_MODELS)]
        password, secret = f"prov-bench-pw-{i}", f"bench-sip-secret-{i}"
        conf_phones[ext] = {"secret": secret, "mac": mac, "model": model,
                            "provisioning_ha1": ha1(mac, REALM, password)}
        devices.append({"mac": mac, "password": password, "file": _file(mac, model), "secret": secret})
    agents = {f"pb{i:03d}": {"phone": ext} for i, ext in enumerate(conf_phones)}
    cfg = {
        "ami": {"host": "127.0.0.1", "port": _free_port(), "username": "callcenter", "secret": "bench-ami-secret-1"},
        "agi": {"host": "127.0.0.1", "port": _free_port()},
        "http": {"host": "127.0.0.1", "port": _free_port()},
        "audiosocket": {"host": "127.0.0.1", "port": _free_port()},
        "daemon": {"database": str(tmp / "cc.sqlite3"), "log_format": "json", "reconnect_max_s": 2},
        "recordings": {"dir": str(tmp / "recordings")},
        "phones": conf_phones,
        "agents": agents,
        "queues": {"desk": {"members": list(agents), "fallback": {"hangup": ["goodbye"]}}},
        "menus": {},
        "trunks": {},
        # the bench is one source fetching many MACs: no unknown MAC is asked, so the guard never trips
        "provisioning": {"enabled": True, "bind": "127.0.0.1", "port": _free_port(), "timezone": "Europe/Paris"},
    }
    return cfg, devices


async def _fetch(base: str, dev: dict[str, str], auth: bool) -> tuple[bool, float]:
    mw = (aiohttp.DigestAuthMiddleware(dev["mac"], dev["password"], preemptive=False),) if auth else ()
    t0 = time.perf_counter()
    async with aiohttp.ClientSession(middlewares=mw) as http:
        async with http.get(f"{base}/{dev['file']}") as r:
            body = await r.text()
    dt = time.perf_counter() - t0
    if auth:
        return r.status == 200 and dev["secret"] in body, dt
    return r.status == 401 and dev["secret"] not in body, dt


async def _common(base: str) -> tuple[bool, float]:
    t0 = time.perf_counter()
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/y000000000000.cfg") as r:
            ok = r.status == 200 and "#!version:1.0.0.1" in await r.text()
    return ok, time.perf_counter() - t0


async def _run(n: int, concurrency: int, one: Any) -> tuple[int, float, list[float]]:
    """``n`` calls of ``one(i)``, ``concurrency`` at a time: (ok count, wall seconds, per-call seconds)."""
    sem = asyncio.Semaphore(concurrency)
    times: list[float] = []
    oks = 0

    async def task(i: int) -> None:
        nonlocal oks
        async with sem:
            ok, dt = await one(i)
        oks += ok
        times.append(dt)

    t0 = time.perf_counter()
    await asyncio.gather(*(task(i) for i in range(n)))
    return oks, time.perf_counter() - t0, sorted(times)


async def run_bench(*, fetches: int = 1000, phones: int = 100, concurrency: int = 20, unauthenticated: int = 100,
                    tmp: Path) -> dict[str, Any]:
    cfg, devices = build_config(tmp, phones)
    proc = await start_daemon(cfg, tmp)
    base = f"http://127.0.0.1:{cfg['provisioning']['port']}"
    try:
        ok, wall, times = await _run(fetches, concurrency, lambda i: _fetch(base, devices[i % phones], True))
        bare_ok, _, _ = await _run(unauthenticated, concurrency, lambda i: _fetch(base, devices[i % phones], False))
        pub_ok, pub_wall, pub_times = await _run(fetches, concurrency, lambda i: _common(base))
    finally:
        exit_code = stop_daemon(proc)
    served = sum(1 for line in (tmp / "daemon.log").read_text().splitlines()  # per-MAC files served, logged
                 if '"provisioning.fetch"' in line and '"served"' in line and '"mac": "0000c0' in line)
    secrets_logged = sum(line.count("bench-sip-secret-") + line.count("prov-bench-pw-")
                         for line in (tmp / "daemon.log").read_text().splitlines())
    return {
        "fetches": fetches, "phones": phones, "concurrency": concurrency,
        "authenticated_ok": ok, "seconds": round(wall, 3), "fetches_per_s": round(fetches / wall, 1),
        "p50_ms": round(percentile(times, 50) * 1000, 2), "p95_ms": round(percentile(times, 95) * 1000, 2),
        "baseline_public_ok": pub_ok, "baseline_public_seconds": round(pub_wall, 3),
        "baseline_public_per_s": round(fetches / pub_wall, 1),
        "auth_cost_ratio": round(wall / pub_wall, 2),  # authenticated vs public, same run, same listener
        "unauthenticated": unauthenticated, "unauthenticated_refused_without_secret": bare_ok,
        "served_logged": served, "secrets_in_log": secrets_logged, "daemon_exit": exit_code,
        "target_s": TARGET_S,
        "ok": (ok == fetches and wall < TARGET_S and bare_ok == unauthenticated and pub_ok == fetches
               and served == fetches and secrets_logged == 0 and exit_code == 0),
    }


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="callcenter bench provisioning")
    ap.add_argument("--fetches", type=int, default=1000)
    ap.add_argument("--phones", type=int, default=100)
    ap.add_argument("--concurrency", type=int, default=20)
    ap.add_argument("--unauthenticated", type=int, default=100)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--keep", help="a directory for the daemon's database and log (else a temporary one)")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="cc-bench-prov-") as tmpd:
        tmp = Path(a.keep) if a.keep else Path(tmpd)
        tmp.mkdir(parents=True, exist_ok=True)
        result = asyncio.run(run_bench(fetches=a.fetches, phones=a.phones, concurrency=a.concurrency,
                                       unauthenticated=a.unauthenticated, tmp=tmp))
    if a.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:>40}: {v}")
    return 0 if result["ok"] else 1
