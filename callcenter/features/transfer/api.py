"""The transfers feature's API route (added through ``Ports.extra_routes``, behind the API's guard):
``POST /api/v1/calls/{call_id}/transfer``. Authorised as an action on the agent holding the call
(``agent.state``: scope ``agent`` for one's own call, ``supervise`` for a call of one's team) and
audited (``transfer:<call id>:<to>``), refusals too. The daemon then does what the desk phone does:
AMI BlindTransfer of the agent's channel into cc-xfer, where the target is checked again."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from callcenter.features.api.openapi import Route
from callcenter.features.transfer.service import TransferService

if TYPE_CHECKING:
    from callcenter.features.api.routes import Api

__all__ = ["routes", "TransferIn", "TransferStarted"]

_CALL_ID = re.compile(r"^[0-9a-f]{16}$")
# refusal -> (HTTP status, what it means)
REFUSALS = {"no_call": 404, "not_talking": 409, "bad_target": 400, "no_channel": 409, "ami_error": 502}


class TransferIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=32)
    to: str = Field(pattern=r"^[0-9*]{1,20}$", description="what the agent would dial: an agent's extension, a "
                    "queue's transfer code (transfers.queues), the park code or a parking slot (parking), a desk "
                    "phone or an allow-listed outside number")


class TransferStarted(BaseModel):
    model_config = ConfigDict(extra="forbid")
    call_id: str
    agent: str = Field(description="the agent who held the call")
    kind: str = Field(description="agent | queue | park | out: what the target is")
    target: str


def routes(service: TransferService) -> Any:
    """``Ports.extra_routes`` entry for ``api``."""

    def make(api: Api) -> list[Route]:
        from callcenter.features.api.routes import BODY, Fail

        async def transfer(req: web.Request) -> web.Response:
            call_id = req.match_info["call_id"]
            if not _CALL_ID.fullmatch(call_id):
                raise Fail(400, "bad_request", "a call id is 16 hex digits")
            body: TransferIn = req[BODY]
            live = service.acd.state.calls.get(call_id)
            if live is None or live.agent is None:
                raise Fail(404, "not_found", "no call with an agent by that id")
            agent = live.agent

            async def act(_: Any) -> web.Response:
                kind, target, _dial = service.resolve(body.to, live)
                result = await service.transfer(call_id, body.to)
                if result != "ok":
                    raise Fail(REFUSALS.get(result, 409), result)
                return web.Response(text=TransferStarted(call_id=call_id, agent=agent, kind=kind,
                                                         target=target).model_dump_json(),
                                    status=202, content_type="application/json")

            return await api._audited(req, "agent.state", f"transfer:{call_id}:{body.to}", agent, act)

        return [Route("POST", "/api/v1/calls/{call_id}/transfer", transfer,
                      "Blind-transfer a call being talked to another agent, a queue (the caller keeps its "
                      "seniority), a desk phone or an allow-listed outside number, as from the desk phone. "
                      "Refusals: no_call, not_talking, bad_target, no_channel, ami_error",
                      scope="agent", body=TransferIn, ok=202, out=TransferStarted, errors=(400, 403, 404, 409, 502),
                      path_params={"call_id": {"type": "string", "pattern": _CALL_ID.pattern}})]

    return make
