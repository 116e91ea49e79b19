"""The dialler's HTTP route: ``POST /dialer/disposition {"agent": "alice", "code": "1"}``."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

__all__ = ["routes"]


def routes(dialer: Callable[[], Any]) -> Callable[[web.Application], None]:
    async def disposition(req: web.Request) -> web.Response:
        """The agent's disposition of their last dialler call (as ``*69<code>`` from the phone)."""
        try:
            body = await req.json()
            agent, code = str(body["agent"]), str(body["code"])
        except (ValueError, KeyError, TypeError):
            return web.json_response({"error": "body must be JSON with agent and code"}, status=400)
        d = dialer()
        name = await d.dispose(agent, code, time.time()) if d is not None else None
        if name is None:
            return web.json_response({"error": "no dialler call of that agent, or unknown code"}, status=404)
        return web.json_response({"agent": agent, "disposition": name})

    def add(app: web.Application) -> None:
        app.router.add_post("/dialer/disposition", disposition)

    return add
