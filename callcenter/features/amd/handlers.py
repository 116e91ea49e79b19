"""AMD's FastAGI side: choose the detector profile before the AudioSocket stream, and hand the final
verdict to the dialplan after it. Verdicts wait here only until the dialplan reads them; one whose
call hung up before that expires (bounded map)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import structlog

from callcenter import events as ev
from callcenter.asterisk import contract as cc
from callcenter.asterisk.agi_server import AgiSession
from callcenter.features.amd.server import AmdServer, Verdict

__all__ = ["AmdHandlers", "VERDICT_TTL_S"]

log = structlog.get_logger("callcenter.amd")
VERDICT_TTL_S = 60.0  # the dialplan reads a verdict within milliseconds of it; older ones are orphans


class AmdHandlers:
    def __init__(self, server: Callable[[], AmdServer], bus: ev.Bus, dialer: Callable[[], Any],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._server = server
        self.bus = bus
        self._dialer = dialer
        self.clock = clock
        self.verdicts: OrderedDict[str, tuple[float, Verdict]] = OrderedDict()  # AudioSocket UUID -> verdict

    def routes(self) -> dict[str, Callable[[AgiSession], object]]:
        return {"amd-start": self.agi_amd_start, "amd-result": self.agi_amd_result}

    def on_final(self, call_uuid: str, v: Verdict) -> None:
        """The detector's final verdict for a stream (the AudioSocket server calls this)."""
        self.expire()
        self.verdicts[call_uuid] = (self.clock(), v)
        self.bus.publish(ev.AmdVerdict(v.verdict, v.decided_ms, v.beep_ms))
        log.info("amd.verdict", uuid=call_uuid, verdict=v.verdict, decided_ms=v.decided_ms, beep_ms=v.beep_ms,
                 rule=v.rule, score=v.score, features=dict(v.features))

    def expire(self) -> int:
        """Drop verdicts no dialplan came for (the call hung up first)."""
        cutoff, n = self.clock() - VERDICT_TTL_S, 0
        while self.verdicts and next(iter(self.verdicts.values()))[0] < cutoff:
            self.verdicts.popitem(last=False)
            n += 1
        return n

    async def agi_amd_start(self, s: AgiSession) -> None:
        """Before the stream: which detector profile (campaign) this call uses, from CC_AMD_PROFILE."""
        key = s.env.args[0] if s.env.args else ""
        profile = await s.get_var(cc.AMD_PROFILE)
        if profile and not self._server().expect(key, profile):
            log.warning("amd.unknown_profile", profile=profile[:32])
        log.info("amd.start", uuid=key[:40], profile=profile or "default")

    async def agi_amd_result(self, s: AgiSession) -> None:
        """After AudioSocket() returns: hand the verdict to the dialplan (NOTSURE if none)."""
        key = s.env.args[0] if s.env.args else ""
        hit = self.verdicts.pop(key, None)
        v = hit[1] if hit else Verdict("NOTSURE", 0)
        dialer = self._dialer()
        if dialer is not None:
            dialer.on_verdict(await s.get_var(cc.DIAL_ID), v.verdict)
        await s.set_var(cc.AMD, v.verdict)
        await s.set_var(cc.AMD_MS, str(v.decided_ms))
        await s.set_var(cc.AMD_BEEP_MS, "" if v.beep_ms is None else str(v.beep_ms))
        await s.set_var(cc.AMD_TRACE, v.trace() if v.rule else "")
        log.info("amd.result_delivered", uuid=key[:40], verdict=v.verdict)
