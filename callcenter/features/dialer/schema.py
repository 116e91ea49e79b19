"""The outbound dialer's config schema: campaigns (leads and their state live in the database)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic.dataclasses import dataclass

from callcenter.confbase import STRICT, Prompt
from callcenter.features.recording.schema import RecordingConf

__all__ = ["CampaignConf"]


@dataclass(config=STRICT)
class CampaignConf:
    """An outbound campaign. Leads come by `callcenter campaign import`; state lives in SQLite."""

    queue: str  # live answers join this queue (at `priority`) to reach an agent
    trunk: str
    mode: Literal["preview", "progressive", "predictive"] = "predictive"
    region: str = Field(default="US", pattern=r"^[A-Z]{2}$")  # for numbers without a country code
    window: str = Field(default="08:00-21:00", pattern=r"^[0-2][0-9]:[0-5][0-9]-[0-2][0-9]:[0-5][0-9]$")
    caller_id: str = Field(default="", pattern=r"^(\+?[0-9]{2,15})?$")
    max_abandon_rate: float = Field(default=0.03, gt=0, le=0.2)
    max_attempts: int = Field(default=5, ge=1, le=50)
    ring_s: float = Field(default=25, ge=15, le=120)  # rules: ring at least 15 s before giving up
    # predictive: a line that has rung this long may be given up when its answer would find no
    # agent (rules: >= 15 s); at or above ring_s, lines always ring the full ring_s
    release_after_s: float = Field(default=15, ge=15, le=120)
    priority: int = Field(default=10, ge=0, le=100)
    amd: bool = True
    amd_profile: str | None = None
    machine_message: Prompt | None = None  # left after the beep; None: hang up on machines
    compliance_message: Prompt = "silence/1"  # heard by a live answer no agent takes within 2 s
    recording: RecordingConf | None = None
    dispositions: dict[str, str] = Field(default_factory=lambda: {"1": "sale", "2": "callback", "3": "not_interested",
                                                                  "4": "wrong_number", "5": "dnc"})
