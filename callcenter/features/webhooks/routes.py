"""``/api/v1/webhooks`` (admin scope): the endpoints (the config's, read-only, and the API's, kept in
the database), the outbox (delivered, pending, dead letters) and replaying a dead letter.

Given to :class:`~callcenter.features.api.routes.Api` through ``Ports.extra_routes``: the routes go
through the API's guard (scope, CSRF, body model) and every write is audited as action ``admin``.
"""

from __future__ import annotations

import base64
import os
import re
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, field_validator

from callcenter.features.api.models import NAME
from callcenter.features.api.openapi import Query, Route
from callcenter.features.webhooks import store
from callcenter.features.webhooks.schema import check_events, check_url, check_whsec
from callcenter.features.webhooks.service import WebhookService

__all__ = ["routes", "EndpointIn", "EndpointOut", "EndpointList", "OutboxEntry", "OutboxList", "RetryResult"]

MSG_ID = {"type": "string", "pattern": r"^msg_[0-9a-f]{28}$"}
_MSG_ID = re.compile(MSG_ID["pattern"])


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=2000)


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EndpointIn(_In):
    url: str = Field(description="http(s) URL the events are POSTed to")
    events: list[str] = Field(min_length=1, max_length=20, description="event types, group.* or *")
    secret: str | None = Field(default=None, pattern=r"^whsec_[A-Za-z0-9+/=]{32,88}$",
                               description="whsec_ + base64 of 24-64 bytes; made for you when absent (shown once)")
    enabled: bool = True
    max_age_s: float = Field(default=86400.0, ge=1, le=30 * 86400)
    timeout_s: float = Field(default=5.0, gt=0, le=60)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        return check_url(v)

    @field_validator("events")
    @classmethod
    def _events(cls, v: list[str]) -> list[str]:
        return list(check_events(tuple(v)))

    @field_validator("secret")
    @classmethod
    def _secret(cls, v: str | None) -> str | None:
        return None if v is None else check_whsec(v)


class EndpointOut(_Out):
    name: str
    url: str
    events: list[str]
    enabled: bool
    max_age_s: float
    timeout_s: float
    source: Literal["config", "api"]
    secret: str | None = Field(default=None, description="only in the answer that made or changed it")


class EndpointList(_Out):
    endpoints: list[EndpointOut]


class OutboxEntry(_Out):
    n: int
    id: str
    endpoint: str
    key: str
    type: str
    created_at: float
    next_at: float
    attempts: int
    status: Literal["pending", "delivered", "dead"]
    delivered_at: float | None
    last_error: str


class OutboxList(_Out):
    outbox: list[OutboxEntry]
    counts: dict[str, int]


class RetryResult(_Out):
    retried: int


def routes(svc: WebhookService) -> Any:
    """``Ports.extra_routes`` entry: ``fn(api) -> [Route]``."""

    def make(api: Any) -> list[Route]:
        from callcenter.features.api.routes import BODY, Fail

        def out(name: str, secret: str | None = None) -> EndpointOut:
            t = svc.targets[name]
            return EndpointOut(name=name, url=t.url, events=list(t.events), enabled=t.enabled, max_age_s=t.max_age_s,
                               timeout_s=t.timeout_s, source=t.source, secret=secret)  # type: ignore[arg-type]

        def json(model: BaseModel, status: int = 200) -> web.Response:
            return web.Response(text=model.model_dump_json(), status=status, content_type="application/json")

        async def listing(req: web.Request) -> web.Response:
            api._allow(req, "admin")
            return json(EndpointList(endpoints=[out(n) for n in sorted(svc.targets)]))

        def write(create: bool) -> Any:
            async def handler(req: web.Request) -> web.Response:
                name = req.match_info["name"]
                body: EndpointIn = req[BODY]

                async def act(_: Any) -> web.Response:
                    if not re.fullmatch(NAME, name):
                        raise Fail(400, "bad_request", "a name: lowercase letters, digits, _ or -")
                    known = svc.targets.get(name)
                    if known is not None and known.source == "config":
                        raise Fail(409, "read_only", "an endpoint of the config file: change it there")
                    if create and known is not None:
                        raise Fail(409, "conflict", "an endpoint of that name exists (PUT changes it)")
                    if not create and known is None:
                        raise Fail(404, "not_found")
                    secret = body.secret or (known.secret if known is not None and not create else None) or (
                        "whsec_" + base64.b64encode(os.urandom(32)).decode())
                    await svc.put_endpoint(store.ApiEndpoint(name, body.url, tuple(body.events), secret, body.enabled,
                                                             body.max_age_s, body.timeout_s))
                    shown = secret if create or body.secret is not None else None
                    return json(out(name, shown), 201 if create else 200)

                return await api._audited(req, "admin", f"webhooks.{'create' if create else 'update'}:{name}", None,
                                          act)
            return handler

        async def delete(req: web.Request) -> web.Response:
            name = req.match_info["name"]

            async def act(_: Any) -> web.Response:
                known = svc.targets.get(name)
                if known is None:
                    raise Fail(404, "not_found")
                if known.source == "config":
                    raise Fail(409, "read_only", "an endpoint of the config file: change it there")
                await svc.delete_endpoint(name)
                return web.Response(status=204)

            return await api._audited(req, "admin", f"webhooks.delete:{name}", None, act)  # type: ignore[no-any-return]

        async def outbox(req: web.Request) -> web.Response:
            api._allow(req, "admin")
            status = req.query.get("status")
            if status is not None and status not in ("pending", "delivered", "dead"):
                raise Fail(400, "bad_request", "status: pending, delivered or dead")
            limit_s = req.query.get("limit", "100")
            if not (limit_s.isascii() and limit_s.isdigit()) or not 1 <= int(limit_s) <= 1000:
                raise Fail(400, "bad_request", "limit: 1-1000")
            rows = await svc.outbox(status, int(limit_s))
            counts = await svc.db.run(store.counts, svc.jdb)
            return json(OutboxList(outbox=[OutboxEntry(**r.as_dict()) for r in rows], counts=counts))

        async def retry(req: web.Request) -> web.Response:
            msg_id = req.match_info["id"]
            if not _MSG_ID.fullmatch(msg_id):
                raise Fail(400, "bad_request", "a message id: msg_ + 28 hex digits")

            async def act(_: Any) -> web.Response:
                n = await svc.retry([msg_id])
                if n == 0:
                    raise Fail(404, "not_found", "no dead letter with that id")
                return json(RetryResult(retried=n))

            return await api._audited(req, "admin", f"webhooks.retry:{msg_id}", None, act)  # type: ignore[no-any-return]

        async def retry_all(req: web.Request) -> web.Response:
            async def act(_: Any) -> web.Response:
                return json(RetryResult(retried=await svc.retry(None)))

            return await api._audited(req, "admin", "webhooks.retry:dead", None, act)  # type: ignore[no-any-return]

        A = "/api/v1/webhooks"
        name_param = {"name": {"type": "string", "pattern": NAME}}
        return [
            Route("GET", A, listing, "Webhook endpoints (the config's are read-only here)", scope="admin",
                  out=EndpointList),
            Route("POST", f"{A}/{{name}}", write(True), "Add a webhook endpoint (its secret is in this answer only)",
                  scope="admin", body=EndpointIn, ok=201, out=EndpointOut, errors=(409,), path_params=name_param),
            Route("PUT", f"{A}/{{name}}", write(False), "Change a webhook endpoint made through the API",
                  scope="admin", body=EndpointIn, out=EndpointOut, errors=(404, 409), path_params=name_param),
            Route("DELETE", f"{A}/{{name}}", delete, "Remove a webhook endpoint made through the API (its "
                  "undelivered messages wait, not attempted)", scope="admin", ok=204, errors=(404, 409),
                  path_params=name_param),
            Route("GET", f"{A}-outbox", outbox, "The webhook outbox, newest first, and counts by status",
                  scope="admin", out=OutboxList,
                  query=(Query("status", {"type": "string", "enum": ["pending", "delivered", "dead"]}),
                         Query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}))),
            Route("POST", f"{A}-outbox/{{id}}/retry", retry, "Replay one dead letter (same webhook-id)",
                  scope="admin", out=RetryResult, errors=(404,), path_params={"id": MSG_ID}),
            Route("POST", f"{A}-outbox/retry-dead", retry_all, "Replay every dead letter", scope="admin",
                  out=RetryResult),
        ]

    return make
