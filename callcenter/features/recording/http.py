"""The recording service's HTTP routes: ``POST /recordings/<call_id>/pause|resume``."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from callcenter.features.recording.service import RecordingService

__all__ = ["add_routes", "pause"]

CALL_ID = re.compile(r"[0-9a-f]{16}")
_STATUS = {"ok": 200, "already": 409, "not_recording": 404, "ami_error": 502}


def add_routes(app: web.Application, svc: RecordingService) -> None:
    async def handler(req: web.Request) -> web.Response:
        return await pause(svc, req)

    app.router.add_post("/recordings/{call_id}/{op}", handler)


async def pause(svc: RecordingService, req: web.Request) -> web.Response:
    """``POST /recordings/<call_id>/pause|resume``: e.g. while the caller reads a card number.

    200 done, 404 no recording, 409 already so, 502 Asterisk did not confirm, 400 a bad request.
    """
    call_id, op = req.match_info["call_id"], req.match_info["op"]
    if op not in ("pause", "resume") or not CALL_ID.fullmatch(call_id):
        return web.json_response({"error": "bad_request", "detail": "POST /recordings/<call id>/pause|resume"},
                                 status=400)
    result, a = await svc.set_paused(call_id, op == "pause", "api")
    body: dict[str, object] = {"call_id": call_id, "result": result}
    if a is not None:
        body.update(rec_id=a.rec_id, paused=a.paused)
    return web.json_response(body, status=_STATUS[result])
