"""The transfers feature's API route (added through ``Ports.extra_routes``, behind the API's guard):
``POST /api/v1/calls/{call_id}/transfer``. Authorised as an action on the agent holding the call
(``agent.state``: scope ``agent`` for one's own call, ``supervise`` for a call of one's team) and
audited (``transfer:<call id>:<to>``), refusals too. The daemon then does what the desk phone does:
AMI BlindTransfer of the agent's channel into cc-xfer, where the target is checked again.

:func:`call_action` is that route's shape for every action on a call being talked (transfer,
conference): one check of the call id and the holder, one audit, one mapping of refusals."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from callcenter.features.acd.model import Call
from callcenter.features.api.models import CALL_ID
from callcenter.features.api.openapi import Route
from callcenter.features.transfer.service import TransferService

if TYPE_CHECKING:
    from callcenter.features.api.routes import Api

__all__ = ["routes", "call_action", "TransferIn", "TransferStarted"]

_CALL_ID = re.compile(CALL_ID)
# refusal -> HTTP status
REFUSALS = {"no_call": 404, "not_talking": 409, "bad_target": 400, "no_channel": 409, "ami_error": 502}
# (call id, what was dialled, the live call) -> (result: "ok" or a refusal, target kind, target)
Perform = Callable[[str, str, Call], Awaitable[tuple[str, str, str]]]


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


def call_action(action: str, calls: Callable[[], Any], perform: Perform, body_model: type[BaseModel],
                out_model: type[BaseModel], summary: str) -> Any:
    """``Ports.extra_routes`` entry for ``POST /api/v1/calls/{call_id}/<action>``: the call must be
    live with an agent; audited as ``<action>:<call id>:<to>`` on that agent; 202 with
    ``out_model(call_id, agent, kind, target)``, or the refusal's status."""

    def make(api: Api) -> list[Route]:
        from callcenter.features.api.routes import BODY, Fail

        async def handle(req: web.Request) -> web.Response:
            call_id = req.match_info["call_id"]
            if not _CALL_ID.fullmatch(call_id):
                raise Fail(400, "bad_request", "a call id is 16 hex digits")
            to: str = req[BODY].to
            live = calls().get(call_id)
            if live is None or live.agent is None:
                raise Fail(404, "not_found", "no call with an agent by that id")
            agent = live.agent

            async def act(_: Any) -> web.Response:
                result, kind, target = await perform(call_id, to, live)
                if result != "ok":
                    raise Fail(REFUSALS.get(result, 409), result)
                return web.Response(text=out_model(call_id=call_id, agent=agent, kind=kind,
                                                   target=target).model_dump_json(),
                                    status=202, content_type="application/json")

            return await api._audited(req, "agent.state", f"{action}:{call_id}:{to}", agent, act)

        return [Route("POST", f"/api/v1/calls/{{call_id}}/{action}", handle,
                      f"{summary} Refusals: {', '.join(REFUSALS)}",
                      scope="agent", body=body_model, ok=202, out=out_model, errors=(400, 403, 404, 409, 502),
                      path_params={"call_id": {"type": "string", "pattern": CALL_ID}})]

    return make


def routes(service: TransferService) -> Any:
    """``Ports.extra_routes`` entry for ``api``."""

    async def perform(call_id: str, to: str, live: Call) -> tuple[str, str, str]:
        kind, target, _dial = service.resolve(to, live)
        return await service.transfer(call_id, to), kind, target

    return call_action("transfer", lambda: service.acd.state.calls, perform, TransferIn, TransferStarted,
                       "Blind-transfer a call being talked to another agent, a queue (the caller keeps its "
                       "seniority), a desk phone or an allow-listed outside number, as from the desk phone.")
