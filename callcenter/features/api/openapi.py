"""The route table and the OpenAPI 3.1 document generated from it and the pydantic models.

Each route declares its method, path, the scope it needs, its request model and its responses;
:func:`document` turns the table into ``/api/v1/openapi.json``, so the document cannot drift from
what the handlers validate and return.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from callcenter.features.api import models as m

__all__ = ["Route", "Query", "document"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Query:
    name: str
    schema: dict[str, Any]
    description: str = ""
    required: bool = False


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    summary: str
    scope: str | None = "read"  # None: no sign-in needed
    body: type[BaseModel] | None = None
    ok: int = 200
    out: type[BaseModel] | None = None
    errors: tuple[int, ...] = ()
    query: tuple[Query, ...] = ()
    path_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    content: str = "application/json"  # of the 200 response (audio/wav for downloads)
    body_content: str = "application/json"
    websocket: bool = False


_DESCRIPTIONS = {400: "Bad request", 401: "Not signed in", 403: "Not allowed (error names why)", 404: "Not found",
                 409: "Conflict with the current state", 413: "Too large", 423: "Account locked",
                 502: "Asterisk did not confirm"}
_PARAM = re.compile(r"\{([a-z_]+)\}")


def document(routes: list[Route], *, version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``routes``."""
    schemas: dict[str, Any] = {}

    def ref(model: type[BaseModel], mode: str = "serialization") -> dict[str, str]:
        s = model.model_json_schema(ref_template="#/components/schemas/{model}", mode=mode)  # type: ignore[arg-type]
        for name, sub in s.pop("$defs", {}).items():
            schemas[name] = sub
        schemas[model.__name__] = s
        return {"$ref": f"#/components/schemas/{model.__name__}"}

    paths: dict[str, Any] = {}
    for r in routes:
        op: dict[str, Any] = {"summary": r.summary, "operationId": f"{r.method.lower()}_{_op_name(r.path)}",
                              "responses": {}}
        params = [{"name": p, "in": "path", "required": True,
                   "schema": r.path_params.get(p, {"type": "string", "pattern": m.NAME})}
                  for p in _PARAM.findall(r.path)]
        params += [{"name": q.name, "in": "query", "required": q.required, "schema": q.schema,
                    **({"description": q.description} if q.description else {})} for q in r.query]
        if params:
            op["parameters"] = params
        if r.body is not None:
            schema = ref(r.body, "validation") if r.body_content == "application/json" else {"type": "string"}
            op["requestBody"] = {"required": True, "content": {r.body_content: {"schema": schema}}}
        if r.websocket:
            op["responses"]["101"] = {"description": "Switching to a WebSocket of JSON messages (snapshot, "
                                                     "event, floor)"}
        elif r.out is not None:
            op["responses"][str(r.ok)] = {"description": "OK", "content": {r.content: {"schema": ref(r.out)}}}
        elif r.content != "application/json":
            op["responses"][str(r.ok)] = {"description": "OK", "content": {r.content: {
                "schema": {"type": "string", "contentEncoding": "binary"}}}}
        else:
            op["responses"][str(r.ok)] = {"description": "Done"}
        errors = set(r.errors) | {400}
        if r.scope is not None:
            errors |= {401, 403}
        for code in sorted(errors):
            model = m.Locked if code == 423 else m.Error
            op["responses"][str(code)] = {"description": _DESCRIPTIONS[code],
                                          "content": {"application/json": {"schema": ref(model)}}}
        if r.scope is not None:
            op["security"] = [{"session": []}, {"bearer": []}]
            op["description"] = f"Needs scope `{r.scope}`." + (
                " Browser sessions send X-CSRF-Token." if r.method not in ("GET", "HEAD") else "")
        paths.setdefault(r.path, {})[r.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "callcenter", "version": version,
                 "description": "The ACD daemon's API: live floor, agents, supervision, campaigns, recordings, "
                                "statistics. Sign in for a session cookie (browsers) or use an API token."},
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {
            "session": {"type": "apiKey", "in": "cookie", "name": "cc_session"},
            "bearer": {"type": "http", "scheme": "bearer"}}},
    }


def _op_name(path: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", path.removeprefix("/api/v1/").lower()).strip("_") or "root"
