"""The supervision service's FastAGI handler: ``spy`` (from ``cc-spy``)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from callcenter.asterisk import contract as C
from callcenter.asterisk.agi_server import AgiSession

if TYPE_CHECKING:
    from callcenter.features.supervision.service import SupervisionService

__all__ = ["agi_spy", "routes"]

EXTEN = re.compile(r"[0-9]{2,15}")
SPY_PIN_TIMEOUT_MS = 8000
SPY_PIN_MAX_DIGITS = 12


def routes(svc: SupervisionService) -> dict[str, Callable[[AgiSession], Awaitable[None]]]:
    """FastAGI script name -> handler."""

    async def spy(s: AgiSession) -> None:
        await agi_spy(svc, s)

    return {"spy": spy}


async def agi_spy(svc: SupervisionService, s: AgiSession) -> None:
    """``spy,<mode>,<agent extension>,<calling endpoint>``: PIN, decide and audit, and (only if
    allowed) ``CC_SPY=ok`` with ``CC_SPY_TARGET``/``CC_SPY_OPTIONS`` for ChanSpy; else an error
    sound and a hang-up."""
    args = s.env.args
    mode = args[0] if args else ""
    ext = args[1] if len(args) > 1 and EXTEN.fullmatch(args[1]) else ""
    endpoint = args[2] if len(args) > 2 and EXTEN.fullmatch(args[2]) else ""
    await s.cmd("ANSWER")
    r = await s.cmd("GET DATA", "agent-pass", SPY_PIN_TIMEOUT_MS, SPY_PIN_MAX_DIGITS)
    pin = r.result if r.result.isascii() and r.result.isdigit() else ""
    auth = await svc.authorize(mode, ext, endpoint, pin)
    if not auth.allowed:
        await s.cmd("STREAM FILE", "auth-incorrect" if auth.reason in ("bad_pin", "locked") else "beeperr", "")
        await s.cmd("HANGUP")
        return
    await s.set_var(C.SPY_TARGET, auth.target)
    await s.set_var(C.SPY_OPTIONS, auth.options)
    await s.set_var(C.SPY, "ok")
