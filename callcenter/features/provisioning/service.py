"""The provisioning listener: its own aiohttp site on ``provisioning.bind:port`` (the phones' LAN),
apart from the API (which stays on loopback).

``GET /<file>``: the common files (no secrets) to anyone; a per-MAC file only to a client that
answers the digest challenge with that device's credentials (username = its MAC). Unknown MACs and
bad credentials are strikes against the source address (:class:`~.model.SourceGuard`); a source
with too many is refused for a while. Every fetch is one ``provisioning.fetch`` log line (MAC, model,
source, file, outcome) and counts in ``callcenter_provisioning_fetches{vendor,outcome}``; no header,
password or file body is ever logged.
"""

from __future__ import annotations

import re
import secrets
import ssl
import time
from collections.abc import Callable
from typing import Any

import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter

from callcenter.features.provisioning import digest
from callcenter.features.provisioning.model import Device, Route, Site, SourceGuard, device_of, route, site_of
from callcenter.features.provisioning.render import render
from callcenter.features.provisioning.schema import read_posix_tz

__all__ = ["ProvisioningServer", "OUTCOMES"]

log = structlog.get_logger("callcenter.provisioning")
OUTCOMES = ("served", "challenged", "stale", "denied", "no-credentials", "unknown-mac", "not-found", "blocked")
_SAFE_NAME = re.compile(r"[A-Za-z0-9._-]{1,40}")


class _Index:
    """One config's views: MAC -> extension, the site, the rendered device files on demand."""

    def __init__(self, cfg: Any):
        self.cfg = cfg
        self.by_mac = {ph.mac: ext for ext, ph in cfg.phones.items() if ph.mac is not None}
        self.site: Site = site_of(cfg, read_posix_tz(cfg.provisioning.timezone))
        self._devices: dict[str, Device] = {}

    def device(self, ext: str) -> Device:
        d = self._devices.get(ext)
        if d is None:
            d = self._devices[ext] = device_of(self.cfg, ext)
        return d


class ProvisioningServer:
    def __init__(self, config: Callable[[], Any], registry: CollectorRegistry | None = None,
                 clock: Callable[[], float] = time.time):
        self.config = config
        self.clock = clock
        self._key = secrets.token_bytes(32)
        self._opaque = secrets.token_hex(8)
        self._index: _Index | None = None
        c = config().provisioning
        self.guard = SourceGuard(c.unknown_limit, c.unknown_window_s, c.block_s)
        self.counts = digest.NonceCounts()
        self.fetches = Counter("callcenter_provisioning_fetches", "Provisioning fetches, by vendor and outcome",
                               ["vendor", "outcome"], registry=registry)
        self._runner: web.AppRunner | None = None
        self.port = 0

    # ------------------------------------------------------------------ lifecycle
    def app(self) -> web.Application:
        app = web.Application(client_max_size=4096)
        app.router.add_get("/{name}", self.handle)
        return app

    async def start(self, port: int | None = None) -> None:
        """Listen on ``provisioning.bind:port`` (``port`` overrides it: 0 picks a free one, see :attr:`port`)."""
        c = self.config().provisioning
        self._runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        ctx = None
        if c.tls_cert and c.tls_key:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(c.tls_cert, c.tls_key)
        await web.TCPSite(self._runner, c.bind, c.port if port is None else port, ssl_context=ctx,
                          reuse_address=True).start()
        self.port = int(self._runner.addresses[0][1])
        log.info("provisioning.started", bind=c.bind, port=self.port, tls=ctx is not None,
                 devices=len(self.index().by_mac))

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def reconfigure(self, cfg: Any) -> None:
        """A reload: new phones, keys and limits; blocked sources stay blocked."""
        c = cfg.provisioning
        self.guard.limit, self.guard.window_s, self.guard.block_s = c.unknown_limit, c.unknown_window_s, c.block_s
        self._index = None

    def index(self) -> _Index:
        cfg = self.config()
        if self._index is None or self._index.cfg is not cfg:
            self._index = _Index(cfg)
        return self._index

    def sizes(self) -> dict[str, int]:
        return {**self.guard.sizes(), "provisioning_nonces": len(self.counts)}

    # ------------------------------------------------------------------ requests
    def _done(self, outcome: str, *, source: str, name: str, r: Route | None = None, ext: str | None = None,
              model: str | None = None, **extra: object) -> None:
        self.fetches.labels(r.vendor if r else "none", outcome).inc()
        log.info("provisioning.fetch", outcome=outcome, source=source, file=name if _SAFE_NAME.fullmatch(name) else "?",
                 mac=r.mac if r else None, model=model, extension=ext, **extra)

    def _challenge(self, stale: bool = False) -> web.Response:
        c = self.config().provisioning
        nonce = digest.make_nonce(self._key, self.clock())
        return web.Response(status=401, text="authentication required\n", headers={
            "WWW-Authenticate": digest.challenge(c.realm, nonce, self._opaque, c.algorithm, stale=stale)})

    def _strike(self, source: str, what: str, now: float) -> None:
        if self.guard.strike(source, what, now):
            c = self.config().provisioning
            log.warning("provisioning.source_blocked", source=source, for_s=c.block_s,
                        strikes=c.unknown_limit, window_s=c.unknown_window_s)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        source = request.remote or "?"
        now = self.clock()
        if self.guard.blocked(source, now):
            self._done("blocked", source=source, name=name, r=route(name))
            return web.Response(status=403, text="refused for a while\n")
        r = route(name)
        if r is None:
            self._done("not-found", source=source, name=name)
            return web.Response(status=404, text="not found\n")
        idx = self.index()
        if r.kind == "common":
            self._done("served", source=source, name=name, r=r)
            return web.Response(body=render(r, idx.site, None), content_type="text/plain",
                                headers={"Cache-Control": "no-store"})
        assert r.mac is not None
        # Without valid credentials every per-MAC name answers alike (401), known or not: no MAC enumeration.
        ext = idx.by_mac.get(r.mac)
        header = request.headers.get("Authorization")
        if ext is None:
            self._strike(source, f"mac:{r.mac}", now)
            self._done("unknown-mac", source=source, name=name, r=r)
            return self._challenge()
        ph = idx.cfg.phones[ext]
        dev = idx.device(ext)
        if header is None:
            self._done("challenged", source=source, name=name, r=r, ext=ext, model=ph.model)
            return self._challenge()
        creds = digest.parse_authorization(header)
        if ph.provisioning_ha1 is None:
            self._done("no-credentials", source=source, name=name, r=r, ext=ext, model=ph.model)
            return self._challenge()
        c = self.config().provisioning
        verdict: str = "bad"
        if creds is not None and creds.username == r.mac and creds.opaque in (None, self._opaque):
            verdict = digest.verify(creds, method=request.method, uri=request.path_qs, realm=c.realm,
                                    algorithm=c.algorithm, ha1_hex=ph.provisioning_ha1, key=self._key, now=now,
                                    ttl_s=c.nonce_ttl_s, counts=self.counts)
        if verdict == "stale":
            self._done("stale", source=source, name=name, r=r, ext=ext, model=ph.model)
            return self._challenge(stale=True)
        if verdict != "ok":
            self._strike(source, f"auth:{r.mac}:{secrets.token_hex(4)}", now)
            self._done("denied", source=source, name=name, r=r, ext=ext, model=ph.model)
            return self._challenge()
        if dev.vendor != r.vendor:  # e.g. a Polycom asking for <mac>.cfg before its master file
            self._done("not-found", source=source, name=name, r=r, ext=ext, model=ph.model)
            return web.Response(status=404, text="not found\n")
        body = render(r, idx.site, dev)
        self._done("served", source=source, name=name, r=r, ext=ext, model=ph.model)
        ctype = "text/plain" if name.endswith(".cfg") else "application/xml"
        return web.Response(body=body, content_type=ctype, headers={"Cache-Control": "no-store"})
