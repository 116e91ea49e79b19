"""The conference feature's API route (``Ports.extra_routes``, behind the API's guard):
``POST /api/v1/calls/{call_id}/conference``. Authorised as an action on the agent holding the call
(``agent.state``: scope ``agent`` for one's own call, ``supervise`` for a call of one's team) and
audited (``conference:<call id>:<to>``), refusals too."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from callcenter.features.api.openapi import Route
from callcenter.features.conference.service import ConferenceService

if TYPE_CHECKING:
    from callcenter.features.api.routes import Api

__all__ = ["routes", "ConferenceIn", "ConferenceStarted"]

_CALL_ID = re.compile(r"^[0-9a-f]{16}$")
REFUSALS = {"no_call": 404, "not_talking": 409, "bad_target": 400, "no_channel": 409, "ami_error": 502}


class ConferenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=32)
    to: str = Field(pattern=r"^[0-9*]{1,20}$", description="the third party, as the agent would dial it: an "
                    "agent's extension, a desk phone or an allow-listed outside number")


class ConferenceStarted(BaseModel):
    model_config = ConfigDict(extra="forbid")
    call_id: str
    agent: str = Field(description="the agent who holds the call")
    kind: str = Field(description="agent | out: what the third party is")
    target: str


def routes(service: ConferenceService) -> Any:
    """``Ports.extra_routes`` entry for ``api``."""

    def make(api: Api) -> list[Route]:
        from callcenter.features.api.routes import BODY, Fail

        async def conference(req: web.Request) -> web.Response:
            call_id = req.match_info["call_id"]
            if not _CALL_ID.fullmatch(call_id):
                raise Fail(400, "bad_request", "a call id is 16 hex digits")
            body: ConferenceIn = req[BODY]
            live = service.acd.state.calls.get(call_id)
            if live is None or live.agent is None:
                raise Fail(404, "not_found", "no call with an agent by that id")
            agent = live.agent

            async def act(_: Any) -> web.Response:
                result, kind, target = await service.conference(call_id, body.to)
                if result != "ok":
                    raise Fail(REFUSALS.get(result, 409), result)
                return web.Response(text=ConferenceStarted(call_id=call_id, agent=agent, kind=kind,
                                                           target=target).model_dump_json(),
                                    status=202, content_type="application/json")

            return await api._audited(req, "agent.state", f"conference:{call_id}:{body.to}", agent, act)

        return [Route("POST", "/api/v1/calls/{call_id}/conference", conference,
                      "Bring a third party (an agent, a desk phone or an allow-listed outside number) into a call "
                      "being talked: caller, agent and third party in one conference; when the agent hangs up the "
                      "other two stay connected. Refusals: no_call, not_talking, bad_target, no_channel, ami_error",
                      scope="agent", body=ConferenceIn, ok=202, out=ConferenceStarted,
                      errors=(400, 403, 404, 409, 502),
                      path_params={"call_id": {"type": "string", "pattern": _CALL_ID.pattern}})]

    return make
