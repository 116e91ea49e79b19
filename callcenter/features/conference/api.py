"""The conference feature's API route (``Ports.extra_routes``, behind the API's guard):
``POST /api/v1/calls/{call_id}/conference``. Authorised as an action on the agent holding the call
(``agent.state``: scope ``agent`` for one's own call, ``supervise`` for a call of one's team) and
audited (``conference:<call id>:<to>``), refusals too — the transfer route's shape
(:func:`callcenter.features.transfer.api.call_action`)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from callcenter.features.acd.model import Call
from callcenter.features.conference.service import ConferenceService
from callcenter.features.transfer.api import call_action

__all__ = ["routes", "ConferenceIn", "ConferenceStarted"]


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

    async def perform(call_id: str, to: str, live: Call) -> tuple[str, str, str]:
        return await service.conference(call_id, to)

    return call_action("conference", lambda: service.acd.state.calls, perform, ConferenceIn, ConferenceStarted,
                       "Bring a third party (an agent, a desk phone or an allow-listed outside number) into a "
                       "call being talked: caller, agent and third party in one conference; when the agent hangs "
                       "up the other two stay connected.")
