"""The transfers config schema: which codes send a caller to a queue, and which trunk outside
numbers go out on (each number checked against that trunk's allow-list, as for callbacks)."""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field
from pydantic.dataclasses import dataclass

from callcenter.confbase import STRICT

__all__ = ["TransferConf", "CODE", "problems"]

CODE = r"^[0-9]{2,8}$"


@dataclass(config=STRICT)
class TransferConf:
    # transfer code -> queue: an agent transfers to the code (blind or from the API) and the caller
    # waits in that queue, keeping their seniority (their first entry time)
    queues: dict[str, str] = Field(default_factory=dict)
    # outside numbers go out through this trunk, if its dial_allow (else site.dial_allow) admits them;
    # none: no transfers to outside numbers
    trunk: str | None = None


def problems(cfg: Any) -> list[str]:
    """Cross-references of ``transfers`` (called by the config loader)."""
    out: list[str] = []
    t = cfg.transfers
    for code, queue in t.queues.items():
        if not re.fullmatch(CODE, code):
            out.append(f"transfers.queues.{code}: a transfer code is 2-8 digits")
        elif code in cfg.phones:
            out.append(f"transfers.queues.{code}: also a phone extension")
        if queue not in cfg.queues:
            out.append(f"transfers.queues.{code}: unknown queue {queue!r}")
    if t.trunk is not None and t.trunk not in cfg.trunks:
        out.append(f"transfers.trunk: unknown trunk {t.trunk!r}")
    elif t.trunk is not None and cfg.trunks[t.trunk].host is None:
        out.append(f"transfers.trunk: trunk {t.trunk!r} has no host to dial out to")
    return out
