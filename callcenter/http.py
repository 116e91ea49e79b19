"""The daemon's HTTP listener: ``/metrics``, ``/status``, ``/healthz`` (open to ``access.open_from``
only) and what the API feature adds (``/api/v1``, the live event stream, the browser pages)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

__all__ = ["start_http"]


async def start_http(host: str, port: int, *, registry: CollectorRegistry, status: Callable[[], dict[str, object]],
                     healthy: Callable[[], bool],
                     features: Iterable[Callable[[web.Application], None]] = (),
                     middlewares: Iterable[Any] = ()) -> web.AppRunner:
    app = web.Application(middlewares=list(middlewares), client_max_size=6 * 1024 * 1024)

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def status_(_: web.Request) -> web.Response:
        return web.json_response(status())

    async def healthz(_: web.Request) -> web.Response:
        ok = healthy()
        return web.Response(status=200 if ok else 503, text="ok\n" if ok else "ami not synced\n")

    for add_routes in features:
        add_routes(app)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/status", status_)
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, host, port, reuse_address=True).start()
    return runner
