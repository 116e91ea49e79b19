"""The CRM feature's API routes (added through ``Ports.extra_routes``, behind the API's one guard):
the local customer table and click-to-call. Writes are authorised and audited by ``Api._audited``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from callcenter.features.api import models as m
from callcenter.features.api.openapi import Route
from callcenter.features.crm.model import Customer, normalise
from callcenter.features.crm.service import CrmService, Refused

if TYPE_CHECKING:
    from callcenter.features.api.routes import Api

__all__ = ["routes", "CustomerIn", "CustomerOut", "ClickToCall", "ClickToCallStarted"]

NUMBER = {"type": "string", "pattern": r"^\+?[0-9]{3,15}$"}


class CustomerIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=200)

    name: str = Field(default="", max_length=100)
    vip: bool = False
    priority: int | None = Field(default=None, ge=0, le=100)
    language: str | None = Field(default=None, pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")
    account_manager: str | None = Field(default=None, pattern=m.NAME, description="an agent name")
    tags: list[str] = Field(default_factory=list, max_length=20)


class CustomerOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    number: str = Field(description="E.164")
    customer: m.CustomerRecord


class CustomerDeleted(BaseModel):
    model_config = ConfigDict(extra="forbid")
    number: str
    deleted: bool


class ClickToCall(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=64)
    agent: str = Field(pattern=m.NAME)
    number: str = Field(pattern=NUMBER["pattern"], description="the customer's number (E.164 or national)")


class ClickToCallStarted(BaseModel):
    model_config = ConfigDict(extra="forbid")
    call_id: str
    agent: str
    number: str = Field(description="E.164, as dialled")


def routes(crm: CrmService) -> Any:
    """``Ports.extra_routes`` entry: the customer table and click-to-call routes for ``api``."""

    def make(api: Api) -> list[Route]:
        from callcenter.features.api.routes import BODY, Fail

        def number_of(req: web.Request) -> str:
            e164 = normalise(req.match_info["number"], api.cfg.site.country)
            if e164 is None:
                raise Fail(400, "bad_request", "not a valid phone number")
            return e164

        def out(e164: str, rec: Customer) -> web.Response:
            body = CustomerOut(number=e164, customer=m.CustomerRecord(**rec.public()))
            return web.Response(text=body.model_dump_json(), content_type="application/json")

        async def get_customer(req: web.Request) -> web.Response:
            e164 = number_of(req)

            async def act(_: Any) -> web.Response:
                rec = await crm.get(e164)
                if rec is None:
                    raise Fail(404, "not_found", "no customer with that number")
                return out(e164, rec)

            return await api._audited(req, "campaigns", f"customer-read:{e164}", None, act)

        async def put_customer(req: web.Request) -> web.Response:
            e164 = number_of(req)
            body: CustomerIn = req[BODY]

            async def act(_: Any) -> web.Response:
                try:  # the record's own rules (tag length, no control characters) beyond the body's schema
                    rec = Customer.model_validate({**body.model_dump(), "source": "table"})
                except ValidationError as e:
                    raise Fail(400, "bad_request", str(e.errors()[0]["msg"])[:200]) from None
                await crm.put(e164, rec)
                return out(e164, rec)

            return await api._audited(req, "campaigns", f"customer-put:{e164}", None, act)

        async def delete_customer(req: web.Request) -> web.Response:
            e164 = number_of(req)

            async def act(_: Any) -> web.Response:
                gone = await crm.delete(e164)
                if not gone:
                    raise Fail(404, "not_found", "no customer with that number")
                return web.Response(text=CustomerDeleted(number=e164, deleted=True).model_dump_json(),
                                    content_type="application/json")

            return await api._audited(req, "campaigns", f"customer-delete:{e164}", None, act)

        async def click_to_call(req: web.Request) -> web.Response:
            body: ClickToCall = req[BODY]

            async def act(_: Any) -> web.Response:
                try:
                    call_id = await crm.click_to_call(body.agent, body.number)
                except Refused as r:
                    raise Fail(r.status, r.error, r.detail) from None
                number = normalise(body.number, api.cfg.site.country) or body.number
                return web.Response(text=ClickToCallStarted(call_id=call_id, agent=body.agent,
                                                            number=number).model_dump_json(),
                                    status=202, content_type="application/json")

            return await api._audited(req, "agent.state", f"click-to-call:{body.agent}", body.agent, act)

        A = "/api/v1"
        return [
            Route("GET", f"{A}/customers/{{number}}", get_customer, "A customer of the local table (the lookup's "
                  "source without a CRM)", scope="supervise", out=CustomerOut, errors=(404,),
                  path_params={"number": NUMBER}),
            Route("PUT", f"{A}/customers/{{number}}", put_customer, "Create or replace a customer of the local "
                  "table: VIP / priority, language, account manager, tags", scope="supervise", body=CustomerIn,
                  out=CustomerOut, path_params={"number": NUMBER}),
            Route("DELETE", f"{A}/customers/{{number}}", delete_customer, "Remove a customer from the local table",
                  scope="supervise", out=CustomerDeleted, errors=(404,), path_params={"number": NUMBER}),
            Route("POST", f"{A}/calls", click_to_call, "Click-to-call: the agent's phone rings, then the customer "
                  "is dialled through crm.click_to_call.trunk. Refusals name the rule: not_allowed_number, dnc, "
                  "outside_calling_window, agent_busy", scope="agent", body=ClickToCall, ok=202,
                  out=ClickToCallStarted, errors=(403, 404, 409)),
        ]

    return make
