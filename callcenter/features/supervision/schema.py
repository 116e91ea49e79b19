"""The supervision config schema: who may listen to, whisper to and barge in on which teams."""

from __future__ import annotations

from pydantic import Field
from pydantic.dataclasses import dataclass

from callcenter.confbase import EXTEN, STRICT

__all__ = ["SupervisorConf"]


@dataclass(config=STRICT)
class SupervisorConf:
    phone: str = Field(pattern=EXTEN)
    pin: str = Field(pattern=r"^[0-9]{4,12}$")
    teams: tuple[str, ...] = ()
    name: str = ""
