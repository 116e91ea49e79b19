"""Playing prompts over FastAGI, shared by every feature's handlers."""

from __future__ import annotations

from collections.abc import Callable

from callcenter.asterisk.agi_server import AgiSession

__all__ = ["DTMF_ESCAPES", "play"]

DTMF_ESCAPES = "0123456789*#"


async def play(s: AgiSession, prompts: tuple[str, ...], escape: str = DTMF_ESCAPES,
               stop: Callable[[], bool] | None = None) -> str | None:
    """Play prompts in turn; the digit that interrupted them, or None. ``stop`` is checked before each."""
    for p in prompts:
        if stop is not None and stop():
            return None
        r = await s.cmd("STREAM FILE", p, escape)
        if r.value > 0:
            return chr(r.value)
    return None
