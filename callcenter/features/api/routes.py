"""``/api/v1``: the authenticated REST API, the live event WebSocket, the OpenAPI document and the
browser pages (``/ui/``).

Every route goes through one guard: who is calling (session cookie or API token,
:mod:`callcenter.features.access.service`), the scope the route needs, CSRF for browser writes,
then the request body validated by its model. What a principal may do to which agent is decided
by :func:`callcenter.features.access.policy.may`; every write, and every refusal of one, is
audited (database and log) before the answer goes out. Nothing here touches SQLite on the event
loop: reads of the journal and stores go to the database thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from aiohttp import WSMsgType, web
from pydantic import BaseModel, ValidationError

from callcenter.features.access import policy
from callcenter.features.access.service import COOKIE, AccessService, _same_origin
from callcenter.features.acd import model as acd_model
from callcenter.features.api import models as m
from callcenter.features.api import queries
from callcenter.features.api.live import LiveFloor, View, view_for
from callcenter.features.api.openapi import Query, Route, document

__all__ = ["Api", "Ports", "STATIC"]

log = structlog.get_logger("callcenter.api")
STATIC = Path(__file__).parent / "static"
SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_BODY = 5 * 1024 * 1024  # a lead import
FLUSH_S = 0.1  # live streams: messages arriving this close together go out in one frame
CALL_ID = {"type": "string", "pattern": m.CALL_ID}
REC_ID = {"type": "string", "pattern": r"^[0-9A-Za-z_-]{1,64}$"}
NUMBER = {"type": "string", "pattern": r"^\+?[0-9]{3,15}$"}
_REC_ID = re.compile(REC_ID["pattern"])
_CALL_ID = re.compile(m.CALL_ID)
_NAME = re.compile(m.NAME)
_NUMBER = re.compile(NUMBER["pattern"])
HEADERS = {"Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
           "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"}
PRINCIPAL = web.RequestKey("principal", object)
BODY = web.RequestKey("body", object)
OPEN_PATHS = frozenset({"/metrics", "/healthz", "/status"})


@dataclass
class Ports:
    """What the API reaches in the rest of the daemon (the composition root fills it)."""

    cfg: Callable[[], Any]
    access: AccessService
    live: LiveFloor
    acd: Any  # AcdService: state and submit()
    supervision: Any  # SupervisionService.spy_from_api
    dialer: Callable[[], Any]  # LiveDialer: dispose(), store, wake()
    recording: Any  # RecordingService: set_paused(), store, dir
    db: Any  # DbThread
    journal_db: Any  # the journal's connection (used on db only)
    version: str = "0.1.0"
    # Other features' routes (webhook subscriptions, click-to-call ...): each gets the Api (its
    # helpers: PRINCIPAL/BODY, _audited, Fail) and returns Routes that go through the same guard.
    extra_routes: list[Callable[[Api], list[Route]]] = field(default_factory=list)
    customer_of: Callable[[str], Any] = lambda call_id: None  # features.crm: a live call's customer record


class Fail(Exception):
    def __init__(self, status: int, error: str, detail: str = ""):
        super().__init__(error)
        self.status, self.error, self.detail = status, error, detail


def _json(model: BaseModel | dict[str, Any], status: int = 200) -> web.Response:
    body = model.model_dump_json() if isinstance(model, BaseModel) else m.Error(**model).model_dump_json()
    return web.Response(text=body, status=status, content_type="application/json")


def _error(status: int, error: str, detail: str = "", **extra: Any) -> web.Response:
    if status == 423:
        return web.Response(text=m.Locked(error="locked", detail=detail, **extra).model_dump_json(), status=423,
                            content_type="application/json")
    return web.Response(text=m.Error(error=error, detail=detail[:300]).model_dump_json(), status=status,
                        content_type="application/json")


class Api:
    def __init__(self, ports: Ports):
        self.p = ports
        self.routes = self._routes()
        self._doc: dict[str, Any] | None = None
        self._dirty = asyncio.Event()  # some viewer has messages to write

    # ------------------------------------------------------------------ wiring
    def middleware(self) -> Callable[..., Any]:
        access = self.p.access

        @web.middleware
        async def guard(req: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
            if req.path in OPEN_PATHS and not access.open_to(req.remote or ""):
                return _error(403, "not_open", "metrics, health and status are open to configured addresses only")
            try:
                resp = await handler(req)
            except web.HTTPException as e:
                if not req.path.startswith("/api/"):
                    raise
                resp = _error(e.status, {404: "not_found", 405: "method_not_allowed"}.get(e.status, "bad_request"),
                              e.reason or "")
            if not resp.prepared:
                resp.headers.update(HEADERS)
                if req.path.startswith("/api/"):
                    resp.headers["Cache-Control"] = "no-store"
            return resp

        return guard

    def add_to(self, app: web.Application) -> None:
        for extra in self.p.extra_routes:
            self.routes.extend(extra(self))
        self._doc = None
        for r in self.routes:
            app.router.add_route(r.method, r.path, self._guarded(r))
        app.router.add_get("/api/v1/openapi.json", self._openapi)
        app.router.add_get("/", self._home)
        if STATIC.is_dir():
            app.router.add_static("/ui/", STATIC, show_index=False, follow_symlinks=False)

    def document(self) -> dict[str, Any]:
        if self._doc is None:
            self._doc = document(self.routes, version=self.p.version)
            self._doc["paths"]["/api/v1/openapi.json"] = {"get": {
                "summary": "This document", "operationId": "get_openapi", "responses": {"200": {
                    "description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}}}}}
        return self._doc

    async def _openapi(self, _: web.Request) -> web.Response:
        return web.json_response(self.document())

    async def _home(self, _: web.Request) -> web.Response:
        raise web.HTTPFound("/ui/wallboard.html")

    def _guarded(self, r: Route) -> Callable[[web.Request], Any]:
        access = self.p.access

        async def handler(req: web.Request) -> web.StreamResponse:
            p = None
            if r.scope is not None:
                p = access.principal(req)
                if p is None:
                    return _error(401, "unauthenticated", "sign in (POST /api/v1/session) or send an API token")
                if r.scope not in p.scopes:
                    if r.method not in SAFE:
                        await access.audit(p, _action(r), req.path[:200], "denied", "missing_scope", req.remote or "")
                    return _error(403, "missing_scope", f"needs scope {r.scope}")
                if r.method not in SAFE and not access.csrf_ok(req, p):
                    await access.audit(p, _action(r), req.path[:200], "denied", "csrf", req.remote or "")
                    return _error(403, "csrf", "browser writes need the X-CSRF-Token header of the session, same origin")
            req[PRINCIPAL] = p
            if r.body is not None:
                if r.body_content == "application/json":
                    try:
                        raw = await req.read() if (req.content_length or 0) <= MAX_BODY else None
                        if raw is None:
                            return _error(413, "too_large")
                        req[BODY] = r.body.model_validate_json(raw or b"null")
                    except ValidationError as e:
                        return _error(400, "bad_request", _first_error(e))
                else:
                    raw = await req.content.read(MAX_BODY + 1)
                    if len(raw) > MAX_BODY:
                        return _error(413, "too_large", f"at most {MAX_BODY} bytes")
                    req[BODY] = raw.decode("utf-8-sig", errors="replace")
            try:
                return await r.handler(req)
            except Fail as f:
                return _error(f.status, f.error, f.detail)

        return handler

    # ------------------------------------------------------------------ helpers
    @property
    def cfg(self) -> Any:
        return self.p.cfg()

    def _allow(self, req: web.Request, action: str, agent: str | None = None) -> policy.Principal:
        p: policy.Principal = req[PRINCIPAL]
        d = policy.may(p, action, self.cfg, agent=agent)
        if not d.allowed:
            raise _refused(d)
        return p

    async def _audited(self, req: web.Request, action: str, target: str, agent: str | None,
                       act: Callable[[policy.Principal], Any]) -> Any:
        """Authorise ``action`` on ``agent``, run ``act``, audit the outcome (refusals too)."""
        p: policy.Principal = req[PRINCIPAL]
        remote = req.remote or ""
        d = policy.may(p, action, self.cfg, agent=agent)
        if not d.allowed:
            await self.p.access.audit(p, action, target, "denied", d.reason, remote)
            raise _refused(d)
        try:
            result = await act(p)
        except Fail as f:
            await self.p.access.audit(p, action, target, "failed", f.error, remote)
            raise
        await self.p.access.audit(p, action, target, "done", "", remote)
        return result

    def _view(self, p: policy.Principal) -> View:
        agents = policy.visible_agents(p, self.cfg)
        everyone = agents >= frozenset(self.cfg.agents)
        return view_for(None if everyone else agents, self.cfg)

    # ------------------------------------------------------------------ session
    async def sign_in(self, req: web.Request) -> web.Response:
        body: m.SignIn = req[BODY]
        origin = req.headers.get("Origin")
        if origin is not None and not _same_origin(origin, req.host):
            return _error(403, "csrf", "sign-in from another origin")
        res = await self.p.access.sign_in(body.login, body.password, req.remote or "")
        if res.reason == "locked":
            return _error(423, "locked", "too many failed sign-ins", retry_after_s=round(res.retry_after_s, 1))
        if not res.ok or res.principal is None:
            return _error(401, "bad_credentials")
        resp = _json(m.SessionInfo(**{**self.p.access.session_info(res.principal), "csrf": res.csrf}))
        resp.set_cookie(COOKIE, res.session, **self.p.access.cookie_kwargs())
        return resp

    async def session(self, req: web.Request) -> web.Response:
        p = req[PRINCIPAL]
        return _json(m.SessionInfo(**self.p.access.session_info(p, req)))

    async def sign_out(self, req: web.Request) -> web.Response:
        self.p.access.sign_out(req.cookies.get(COOKIE, ""))
        resp = web.Response(status=204)
        resp.del_cookie(COOKIE, path="/")
        return resp

    # ------------------------------------------------------------------ reads
    async def floor(self, req: web.Request) -> web.Response:
        return web.json_response(self.p.live.floor(self._view(req[PRINCIPAL])))

    async def queues(self, req: web.Request) -> web.Response:
        return web.json_response({"queues": self.p.live.queues(self._view(req[PRINCIPAL]))})

    async def agents(self, req: web.Request) -> web.Response:
        return web.json_response({"agents": self.p.live.agents(self._view(req[PRINCIPAL]))})

    async def calls(self, req: web.Request) -> web.Response:
        return web.json_response({"calls": self.p.live.calls(self._view(req[PRINCIPAL]))})

    async def callbacks(self, req: web.Request) -> web.Response:
        view = self._view(req[PRINCIPAL])
        out = [{"call_id": c.call_id, "queue": c.queue, "number": c.callback, "attempts": c.attempts,
                "not_before": c.not_before}
               for c in self.p.acd.state.calls.values() if c.callback and view.sees(c.agent, c.queue)]
        return _json(m.CallbackList(callbacks=[m.Callback(**c) for c in out]))

    async def context(self, req: web.Request) -> web.Response:
        call_id = req.match_info["call_id"]
        if not _CALL_ID.fullmatch(call_id):
            raise Fail(400, "bad_request", "a call id is 16 hex digits")
        p: policy.Principal = req[PRINCIPAL]
        live = self.p.acd.state.calls.get(call_id)
        ctx = await self.p.db.run(queries.call_context, self.p.journal_db, call_id)
        if ctx is None and live is None:
            raise Fail(404, "not_found")
        rec: dict[str, Any] = ctx or {}
        agent = live.agent if live is not None and live.agent is not None else rec.get("agent")
        queue = live.queue if live is not None else rec.get("queue")
        if not self._view(p).sees(agent, queue):
            raise Fail(403, "not_in_team")
        num = str(rec.get("caller_num") or (live.caller_num if live else ""))
        started = float(rec.get("started_at") or (live.entered_at if live else time.time()))
        days = self.cfg.wallboard.history_days
        db = self.p.journal_db
        hist = await self.p.db.run(lambda: queries.history(db, num, started - days * 86400, started, exclude=call_id))
        return _json(m.CallContext(
            call_id=call_id, caller_num=num, caller_name=str(rec.get("caller_name") or (live.caller_name if live else "")),
            queue=queue, path=list(rec.get("path") or []),
            entered_at=live.entered_at if live is not None else rec.get("entered_at"),
            campaign=self.p.live.campaign_of(call_id), customer=self.p.customer_of(call_id),
            history=[m.HistoryItem(**h) for h in hist], repeat_of=rec.get("repeat_of"), csat=rec.get("csat"),
            message=m.MessageInfo(**rec["message"]) if rec.get("message") else None))

    async def message_audio(self, req: web.Request) -> web.StreamResponse:
        """The message a caller left while waiting (features.messages): as a recording, team-scoped and audited."""
        call_id = req.match_info["call_id"]
        if not _CALL_ID.fullmatch(call_id):
            raise Fail(400, "bad_request", "a call id is 16 hex digits")
        p: policy.Principal = req[PRINCIPAL]
        ctx = await self.p.db.run(queries.call_context, self.p.journal_db, call_id)
        msg = (ctx or {}).get("message")
        if ctx is None or not isinstance(msg, dict) or msg.get("state") != "ready":
            raise Fail(404, "not_found", "no message for this call")
        agent = ctx.get("agent")
        d = policy.may(p, "recordings.read", self.cfg, agent=agent) if agent in self.cfg.agents else (
            policy.may(p, "admin", self.cfg))
        if not d.allowed:
            await self.p.access.audit(p, "messages.read", call_id, "denied", d.reason, req.remote or "")
            raise _refused(d)
        msg_id = str(msg["id"])
        base = Path(self.p.recording.dir).resolve()
        path = (base / "messages" / f"{msg_id}.wav").resolve()
        if not re.fullmatch(r"[0-9a-f]{16}", msg_id) or base not in path.parents or not path.is_file():
            raise Fail(404, "not_found", "no audio for this message")
        await self.p.access.audit(p, "messages.read", call_id, "done", "download", req.remote or "")
        return web.FileResponse(path, headers={"Content-Type": "audio/wav",
                                               "Content-Disposition": f'attachment; filename="{msg_id}.wav"'})

    async def intervals(self, req: web.Request) -> web.Response:
        size = _int(req.query.get("size", "15"), {15, 30, 60})
        hours = _int(req.query.get("hours", "24"), set(range(1, 169)))
        by = req.query.get("by", "queue")
        if by not in ("queue", "agent"):
            raise Fail(400, "bad_request", "by: queue or agent")
        rows = await self.p.db.run(queries.intervals, self.p.journal_db, size * 60, time.time() - hours * 3600, by)
        view = self._view(req[PRINCIPAL])
        rows = [r for r in rows if (view.sees(str(r["key"]), None) if by == "agent" else view.sees(None, str(r["key"])))]
        return _json(m.IntervalStats(size_min=size, by=by, intervals=[m.Interval(**r) for r in rows]))  # type: ignore[arg-type]

    async def audit(self, req: web.Request) -> web.Response:
        self._allow(req, "admin")
        limit = _int(req.query.get("limit", "200"), set(range(1, 1001)))
        rows = await self.p.access.audits(limit=limit)
        return _json(m.AuditList(audit=[m.AuditEntry(**r.as_dict()) for r in rows]))

    # ------------------------------------------------------------------ agents
    def _agent_op(self, op: str) -> Callable[[web.Request], Any]:
        async def handler(req: web.Request) -> web.Response:
            agent = req.match_info["agent"]
            reason = req[BODY].reason if op == "pause" else ""

            async def act(_: policy.Principal) -> web.Response:
                cfg = self.cfg
                if op == "pause" and reason != "break" and reason not in cfg.pause_reasons.values():
                    raise Fail(400, "bad_request", f"unknown pause reason {reason!r}")
                event = {"login": acd_model.Login(agent), "logout": acd_model.Logout(agent),
                         "pause": acd_model.Pause(agent, reason), "unpause": acd_model.Unpause(agent)}[op]
                cmds = self.p.acd.submit(event)
                if any(isinstance(c, acd_model.Rejected) for c in cmds):
                    raise Fail(409, "illegal_transition", f"{agent} cannot {op} now")
                return _json(m.AgentResult(agent=agent, state=str(self.p.acd.state.agents[agent].state)))

            return await self._audited(req, "agent.state", f"{op}:{agent}", agent, act)

        return handler

    # ------------------------------------------------------------------ supervision
    async def supervise(self, req: web.Request) -> web.Response:
        body: m.SpyRequest = req[BODY]

        async def act(p: policy.Principal) -> web.Response:
            sv = self.cfg.supervisors.get(p.supervisor or "")
            if sv is None:
                raise Fail(403, "no_phone")
            res = await self.p.supervision.spy_from_api(p.supervisor, body.agent, body.mode, actor=p.name)
            if not res.allowed:
                status = {"agent_not_on_call": 409, "ami_error": 502, "not_an_agent": 404}.get(res.reason, 403)
                raise Fail(status, res.reason)
            return _json(m.SpyStarted(agent=body.agent, mode=body.mode, supervisor=p.supervisor or "",
                                      phone=sv.phone), 202)

        return await self._audited(req, "supervise", f"{body.mode}:{body.agent}", body.agent, act)

    # ------------------------------------------------------------------ calls
    async def disposition(self, req: web.Request) -> web.Response:
        body: m.DispositionRequest = req[BODY]

        async def act(_: policy.Principal) -> web.Response:
            d = self.p.dialer()
            name = await d.dispose(body.agent, body.code, time.time()) if d is not None else None
            if name is None:
                raise Fail(404, "not_found", "no dialler call of that agent, or an unknown code")
            return _json(m.DispositionResult(agent=body.agent, disposition=name))

        return await self._audited(req, "disposition", f"{body.code}:{body.agent}", body.agent, act)

    def _recording_op(self, paused: bool) -> Callable[[web.Request], Any]:
        async def handler(req: web.Request) -> web.Response:
            call_id = req.match_info["call_id"]
            if not _CALL_ID.fullmatch(call_id):
                raise Fail(400, "bad_request", "a call id is 16 hex digits")
            live = self.p.acd.state.calls.get(call_id)
            if live is None or live.agent is None:
                raise Fail(404, "not_found", "no call with an agent by that id")

            async def act(p: policy.Principal) -> web.Response:
                result, a = await self.p.recording.set_paused(call_id, paused, "api")  # who: the audit
                status = {"ok": 200, "already": 409, "not_recording": 404, "ami_error": 502}[result]
                if status != 200:
                    raise Fail(status, result)
                return _json(m.RecordingResult(call_id=call_id, result=result, paused=a.paused if a else None,
                                               rec_id=a.rec_id if a else None))

            return await self._audited(req, "recordings.pause", f"{'pause' if paused else 'resume'}:{call_id}",
                                       live.agent, act)

        return handler

    # ------------------------------------------------------------------ campaigns
    async def campaigns(self, req: web.Request) -> web.Response:
        return web.json_response({"campaigns": self.p.live.campaign_list(self._view(req[PRINCIPAL]))})

    def _campaign_op(self, op: str) -> Callable[[web.Request], Any]:
        async def handler(req: web.Request) -> web.Response:
            name = req.match_info["campaign"]

            async def act(_: policy.Principal) -> web.Response:
                from callcenter.features.dialer.store import IllegalCampaignTransition
                d = self.p.dialer()
                try:
                    cid = await self.p.db.run(d.store.campaign_id, name)
                    state = await self.p.db.run(d.store.change_campaign, cid, op)
                except KeyError:
                    raise Fail(404, "not_found", "no such campaign") from None
                except IllegalCampaignTransition as e:
                    raise Fail(409, "illegal_transition", str(e)) from None
                d.wake(refresh=True)
                return _json(m.CampaignResult(campaign=name, state=state))

            return await self._audited(req, "campaigns", f"{op}:{name}", None, act)

        return handler

    async def leads(self, req: web.Request) -> web.Response:
        name, text = req.match_info["campaign"], req[BODY]

        async def act(_: policy.Principal) -> web.Response:
            d = self.p.dialer()
            try:
                cid = await self.p.db.run(d.store.campaign_id, name)
                n, rejected = await self.p.db.run(d.store.import_csv, cid, io.StringIO(text))
            except KeyError:
                raise Fail(404, "not_found", "no such campaign") from None
            except ValueError as e:
                raise Fail(400, "bad_request", str(e)) from None
            d.wake(refresh=True)
            return _json(m.LeadImport(campaign=name, imported=n,
                                      rejected=[{"line": r.line, "reason": r.reason} for r in rejected[:1000]]))

        return await self._audited(req, "campaigns", f"leads:{name}", None, act)

    def _dnc_op(self, add: bool) -> Callable[[web.Request], Any]:
        async def handler(req: web.Request) -> web.Response:
            number = req.match_info["number"]
            if not _NUMBER.fullmatch(number):
                raise Fail(400, "bad_request", "a phone number: digits, optionally a leading +")

            async def act(p: policy.Principal) -> web.Response:
                d = self.p.dialer()
                region = self.cfg.site.country
                try:
                    if add:
                        e164 = await self.p.db.run(d.store.add_dnc, number, time.time(), f"api:{p.name}", region)
                    else:
                        await self.p.db.run(d.store.remove_dnc, number, region)
                        e164 = number
                except ValueError as e:
                    raise Fail(400, "bad_request", str(e)) from None
                return _json(m.DncResult(number=e164, listed=add))

            return await self._audited(req, "campaigns", f"dnc-{'add' if add else 'remove'}:{number}", None, act)

        return handler

    # ------------------------------------------------------------------ recordings
    async def recordings(self, req: web.Request) -> web.Response:
        agent = req.query.get("agent")
        if agent is not None and not _NAME.fullmatch(agent):
            raise Fail(400, "bad_request", "agent: a name")
        limit = _int(req.query.get("limit", "100"), set(range(1, 1001)))
        p = self._allow(req, "recordings.read", agent)
        store = self.p.recording.store
        rows = await self.p.db.run(lambda: store.recordings(agent=agent, limit=limit * 4)) if store else []
        visible = policy.visible_agents(p, self.cfg)
        rows = [r for r in rows if r.agent is None and "admin" in p.scopes or r.agent in visible][:limit]
        await self.p.access.audit(p, "recordings.read", f"list:{agent or '*'}", "done", "", req.remote or "")
        return _json(m.RecordingList(recordings=[_rec(r) for r in rows]))

    async def _one_recording(self, req: web.Request) -> tuple[policy.Principal, Any]:
        rec_id = req.match_info["rec_id"]
        if not _REC_ID.fullmatch(rec_id):
            raise Fail(400, "bad_request", "a recording id")
        store = self.p.recording.store
        row = await self.p.db.run(store.get, rec_id) if store else None
        if row is None:
            raise Fail(404, "not_found")
        p: policy.Principal = req[PRINCIPAL]
        d = policy.may(p, "recordings.read", self.cfg, agent=row.agent) if row.agent in self.cfg.agents else (
            policy.may(p, "admin", self.cfg))
        if not d.allowed:
            await self.p.access.audit(p, "recordings.read", rec_id, "denied", d.reason, req.remote or "")
            raise _refused(d)
        return p, row

    async def recording(self, req: web.Request) -> web.Response:
        p, row = await self._one_recording(req)
        await self.p.access.audit(p, "recordings.read", row.rec_id, "done", "metadata", req.remote or "")
        return _json(_rec(row))

    async def recording_audio(self, req: web.Request) -> web.StreamResponse:
        p, row = await self._one_recording(req)
        base = Path(self.p.recording.dir).resolve()
        path = (base / row.path).resolve() if row.path and row.status in ("complete", "repaired") else None
        if path is None or base not in path.parents or path.suffix != ".wav":
            raise Fail(404, "not_found", "no audio for this recording")
        await self.p.access.audit(p, "recordings.read", row.rec_id, "done", "download", req.remote or "")
        return web.FileResponse(path, headers={"Content-Type": "audio/wav",
                                               "Content-Disposition": f'attachment; filename="{row.rec_id}.wav"'})

    # ------------------------------------------------------------------ the live stream
    async def events(self, req: web.Request) -> web.StreamResponse:
        """The WebSocket: this handler only reads (close frames, pongs); :meth:`flush_loop` writes."""
        p: policy.Principal = req[PRINCIPAL]
        after = req.query.get("after")
        after_n = int(after) if after is not None and after.isascii() and after.isdigit() and len(after) < 19 else None
        if not self.p.access.csrf_ok(req, p):  # a cookie's WebSocket opened by another site's page
            raise Fail(403, "csrf", "a WebSocket from another origin")
        ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=4096)
        if not ws.can_prepare(req).ok:
            raise Fail(400, "bad_request", "a WebSocket upgrade")
        await ws.prepare(req)
        viewer = self.p.live.attach(self._view(p), after=after_n, stream=req.query.get("stream"),
                                    wake=self._dirty.set, conn=ws)
        self._dirty.set()
        try:
            async for msg in ws:  # what the browser sends is ignored; this ends when it closes
                if msg.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                    break
        finally:
            self.p.live.detach(viewer)
            if not ws.closed:
                await ws.close()
        return ws

    async def flush_loop(self) -> None:
        """Write what each viewer is due, in one frame per viewer per turn: messages separated by
        newlines, after a short coalescing pause. One writer for all streams — no task or wait
        per viewer and event; 200 viewers cost 200 writes per turn, not one per message each."""
        while True:
            await self._dirty.wait()
            await asyncio.sleep(FLUSH_S)  # gather what else arrives within the window
            self._dirty.clear()
            for v in list(self.p.live.viewers):
                ws = v.conn
                if ws is None or ws.closed:
                    continue
                if v.dropped:
                    self.p.live.detach(v)
                    await ws.close(code=4000, message=b"too slow: resume with after=<seq>&stream=<id>")
                    continue
                if not v.pending:
                    continue
                text = "\n".join(v.pending)
                v.pending.clear()
                try:
                    await ws.send_str(text)
                except (ConnectionResetError, RuntimeError):
                    self.p.live.detach(v)  # the browser went away mid-write: its handler ends on close

    async def close_streams(self) -> None:
        """Shutting down: every stream is closed (1001, going away) so the HTTP shutdown does not wait."""
        for v in list(self.p.live.viewers):
            self.p.live.detach(v)
            if v.conn is not None and not v.conn.closed:
                with contextlib.suppress(ConnectionResetError, RuntimeError):
                    await v.conn.close(code=1001, message=b"daemon stopping")

    # ------------------------------------------------------------------ the table
    def _routes(self) -> list[Route]:
        A = "/api/v1"
        agent_errors = (404, 409)
        r = [
            Route("POST", f"{A}/session", self.sign_in, "Sign in (a browser session cookie)", scope=None,
                  body=m.SignIn, out=m.SessionInfo, errors=(401, 403, 423)),
            Route("GET", f"{A}/session", self.session, "Who is signed in", out=m.SessionInfo),
            Route("DELETE", f"{A}/session", self.sign_out, "Sign out", ok=204),
            Route("GET", f"{A}/floor", self.floor, "The live floor: queues, agents, calls, campaigns", out=m.Floor),
            Route("GET", f"{A}/events", self.events, "Live events (WebSocket): a snapshot, then every event in "
                  "order with its sequence number; resume with after=<seq>&stream=<id>", websocket=True,
                  query=(Query("after", {"type": "string", "pattern": "^[0-9]{1,18}$"}),
                         Query("stream", {"type": "string", "pattern": "^[0-9a-f]{12}$"}),
                         Query("access_token", {"type": "string"}, "an API token, for clients that cannot send "
                               "headers on a WebSocket"))),
            Route("GET", f"{A}/queues", self.queues, "Queues with live figures", out=m.QueueList),
            Route("GET", f"{A}/agents", self.agents, "Agents with state and figures", out=m.AgentList),
            Route("GET", f"{A}/calls", self.calls, "Live calls", out=m.CallList),
            Route("GET", f"{A}/calls/{{call_id}}/context", self.context, "A call's screen pop: caller, IVR path, "
                  "queue, earlier calls from the number", out=m.CallContext, errors=(404,),
                  path_params={"call_id": CALL_ID}),
            Route("GET", f"{A}/calls/{{call_id}}/message", self.message_audio, "The message the caller left while "
                  "waiting, as WAV (team-scoped, audited)", scope="supervise", content="audio/wav", errors=(404,),
                  path_params={"call_id": CALL_ID}),
            Route("GET", f"{A}/callbacks", self.callbacks, "Callbacks waiting", out=m.CallbackList),
            Route("GET", f"{A}/stats/intervals", self.intervals, "Interval statistics per queue or agent",
                  out=m.IntervalStats, query=(Query("size", {"type": "integer", "enum": [15, 30, 60]}),
                                              Query("hours", {"type": "integer", "minimum": 1, "maximum": 168}),
                                              Query("by", {"type": "string", "enum": ["queue", "agent"]}))),
            Route("GET", f"{A}/audit", self.audit, "The audit trail of API writes", scope="admin", out=m.AuditList,
                  query=(Query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}),)),
            Route("POST", f"{A}/supervision", self.supervise, "Listen / whisper / barge: ring the supervisor's "
                  "desk phone and spy on the agent's call", scope="supervise", body=m.SpyRequest, ok=202,
                  out=m.SpyStarted, errors=(404, 409, 502)),
            Route("POST", f"{A}/dispositions", self.disposition, "An agent's disposition of their last dialler call",
                  scope="agent", body=m.DispositionRequest, out=m.DispositionResult, errors=(404,)),
            Route("GET", f"{A}/campaigns", self.campaigns, "Campaigns being dialled", out=m.CampaignList),
            Route("POST", f"{A}/campaigns/{{campaign}}/leads", self.leads, "Import leads (CSV with a phone column)",
                  scope="supervise", body=str, body_content="text/csv", out=m.LeadImport,  # type: ignore[arg-type]
                  errors=(404, 413)),
            Route("PUT", f"{A}/dnc/{{number}}", self._dnc_op(True), "Add a number to the do-not-call list",
                  scope="supervise", out=m.DncResult, path_params={"number": NUMBER}),
            Route("DELETE", f"{A}/dnc/{{number}}", self._dnc_op(False), "Remove a number from the do-not-call list",
                  scope="supervise", out=m.DncResult, path_params={"number": NUMBER}),
            Route("GET", f"{A}/recordings", self.recordings, "Recordings (team-scoped, audited)", scope="supervise",
                  out=m.RecordingList, errors=(404,), query=(Query("agent", {"type": "string", "pattern": m.NAME}),
                                              Query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}))),
            Route("GET", f"{A}/recordings/{{rec_id}}", self.recording, "A recording's metadata (audited)",
                  scope="supervise", out=m.Recording, errors=(404,), path_params={"rec_id": REC_ID}),
            Route("GET", f"{A}/recordings/{{rec_id}}/audio", self.recording_audio, "A recording's audio (audited)",
                  scope="supervise", content="audio/wav", errors=(404,), path_params={"rec_id": REC_ID}),
        ]
        for op in ("login", "logout", "unpause"):
            r.append(Route("POST", f"{A}/agents/{{agent}}/{op}", self._agent_op(op), f"Agent {op}", scope="agent",
                           out=m.AgentResult, errors=agent_errors))
        r.append(Route("POST", f"{A}/agents/{{agent}}/pause", self._agent_op("pause"), "Pause an agent with a reason",
                       scope="agent", body=m.PauseRequest, out=m.AgentResult, errors=agent_errors))
        for op, paused in (("pause", True), ("resume", False)):
            r.append(Route("POST", f"{A}/calls/{{call_id}}/recording/{op}", self._recording_op(paused),
                           f"Recording {op} (card numbers)", scope="agent", out=m.RecordingResult,
                           errors=(404, 409, 502), path_params={"call_id": CALL_ID}))
        for op in ("start", "pause", "stop"):
            r.append(Route("POST", f"{A}/campaigns/{{campaign}}/{op}", self._campaign_op(op), f"Campaign {op}",
                           scope="supervise", out=m.CampaignResult, errors=(404, 409)))
        return r


def _refused(d: policy.Decision) -> Fail:
    """A policy refusal as an answer: 404 for an agent that does not exist, else 403 naming why."""
    return Fail(404 if d.reason == "unknown_agent" else 403, d.reason)


def _action(r: Route) -> str:
    return f"{r.method} {r.path.removeprefix('/api/v1')}"


def _first_error(e: ValidationError) -> str:
    err = e.errors()[0]
    loc = ".".join(str(x) for x in err["loc"])
    return f"{loc}: {err['msg']}" if loc else err["msg"]


def _int(text: str, allowed: set[int]) -> int:
    if not (text.isascii() and text.isdigit()) or len(text) > 6 or int(text) not in allowed:
        raise Fail(400, "bad_request", f"{text[:20]!r} is not allowed here")
    return int(text)


def _rec(r: Any) -> m.Recording:
    return m.Recording(rec_id=r.rec_id, call_id=r.call_id, agent=r.agent, queue=r.queue, campaign=r.campaign,
                       started_at=r.started_at, ended_at=r.ended_at, duration_s=r.duration_s, status=str(r.status),
                       truncated=bool(r.truncated), sha256=r.sha256)
