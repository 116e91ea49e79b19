"""The parking config schema: the park code, the slots, how long a call may stay parked."""

from __future__ import annotations

from typing import Any

from pydantic import Field
from pydantic.dataclasses import dataclass

from callcenter.confbase import STRICT

__all__ = ["ParkingConf", "problems"]


@dataclass(config=STRICT)
class ParkingConf:
    enabled: bool = False
    # transfer (blind, or the API) to ``code``: parked in the first free slot; to a slot: parked there
    code: str = Field(default="700", pattern=r"^[0-9]{2,8}$")
    first: int = Field(default=701, ge=1, le=99_999_999)   # first slot's extension
    slots: int = Field(default=20, ge=1, le=100)
    # a call parked this long comes back (to the agent who parked it if Ready, else to its queue)
    timeout_s: int = Field(default=60, ge=2, le=3600)

    def slot_codes(self) -> list[str]:
        return [str(self.first + i) for i in range(self.slots)] if self.enabled else []


def problems(cfg: Any) -> list[str]:
    """Cross-references of ``parking`` (called by the config loader)."""
    p = cfg.parking
    if not p.enabled:
        return []
    out: list[str] = []
    taken = {**{ext: "a phone extension" for ext in cfg.phones},
             **{code: "a transfer code" for code in cfg.transfers.queues}}
    for code in [p.code, *p.slot_codes()]:
        if code in taken:
            out.append(f"parking: {code} is also {taken[code]}")
    if p.code in p.slot_codes():
        out.append(f"parking.code: {p.code} is one of the slots")
    return out
