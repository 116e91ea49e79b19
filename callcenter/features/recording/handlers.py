"""The recording service's FastAGI handler: ``record`` (the agent's ``*65``/``*66``/``*67`` codes)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import structlog

from callcenter.asterisk import contract as C
from callcenter.asterisk.agi_server import AgiSession
from callcenter.asterisk.render_features import FEATURES

if TYPE_CHECKING:
    from callcenter.features.recording.service import RecordingService

__all__ = ["agi_record", "routes"]

log = structlog.get_logger("callcenter")


def routes(svc: RecordingService) -> dict[str, Callable[[AgiSession], Awaitable[None]]]:
    """FastAGI script name -> handler."""

    async def record(s: AgiSession) -> None:
        await agi_record(svc, s)

    return {"record": record}


async def agi_record(svc: RecordingService, s: AgiSession) -> None:
    """The agent's recording codes: ``record,<op>`` mid-call on the agent leg (features.conf), or
    ``record,<op>,<endpoint>`` dialled from the desk phone (a second line, the caller on hold)."""
    args = s.env.args
    op = args[0] if args else ""
    in_call = len(args) < 2
    if in_call:  # on the agent leg the daemon originated: its variables are the daemon's own
        call_id, agent = await s.get_var(C.CALL_ID), await s.get_var(C.AGENT)
    else:
        agent = svc.cfg.agent_by_phone(args[1]) or ""
        call_id = svc.call_of_agent(agent)
        await s.cmd("ANSWER")
    endpoint = await s.get_var("CHANNEL(endpoint)")
    ag = svc.cfg.agents.get(agent)
    result = "denied"
    if ag is None or ag.phone != endpoint or op not in FEATURES:
        log.warning("recording.feature_denied", op=op[:10], endpoint=endpoint[:20], agent=agent[:32] or None)
    elif op == "start":
        result = await svc.start_on_demand(s, call_id, agent, in_call)
    elif call_id:
        result, _ = await svc.set_paused(call_id, op == "pause", "phone")
    else:
        result = "not_recording"
    ok = result in ("ok", "already")
    if not ok:
        log.info("recording.feature_refused", op=op, agent=agent or None, call_id=call_id or None, result=result)
    await s.cmd("STREAM FILE", "beep" if ok else "beeperr", "")
    if not in_call:
        await s.cmd("HANGUP")
