"""The IVR's config schema: actions (where a caller goes next), menus, business-hours schedules."""

from __future__ import annotations

import re
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator
from pydantic.dataclasses import dataclass, rebuild_dataclass

from callcenter.confbase import DIGIT, EXTEN, STRICT, Prompt, check_level, check_prompt, check_prompts

__all__ = ["Action", "Hours", "Menu", "HolidayConf", "Schedule", "ACTION_KINDS"]

ACTION_KINDS = ("menu", "queue", "hangup", "dial", "hours")


@dataclass(config=STRICT)
class Hours:
    schedule: str
    open: Action
    closed: Action


@dataclass(config=STRICT)
class Action:
    """Where a caller goes next: exactly one of the fields is set."""

    menu: str | None = None
    queue: str | None = None
    hangup: tuple[Prompt, ...] | None = None  # prompts played before hanging up
    dial: str | None = Field(default=None, pattern=EXTEN)  # ring one phone extension
    hours: Hours | None = None
    # With `queue` only: what this caller needs (skill -> minimum level) and their priority.
    skills: dict[str, int] | None = None
    priority: int | None = Field(default=None, ge=0, le=100)

    @model_validator(mode="after")
    def _exactly_one(self) -> Action:
        set_ = [k for k in ACTION_KINDS if getattr(self, k) is not None]
        if len(set_) != 1:
            raise ValueError("an action needs exactly one of menu, queue, hangup, dial, hours"
                             + (f" (got {', '.join(set_)})" if set_ else ""))
        if self.queue is None and (self.skills is not None or self.priority is not None):
            raise ValueError("skills and priority go with a queue action only")
        for skill, level in (self.skills or {}).items():
            check_level(skill, level)
        return self

    @field_validator("hangup")
    @classmethod
    def _prompts(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return check_prompts(v)

    @property
    def kind(self) -> str:
        return next(k for k in ACTION_KINDS if getattr(self, k) is not None)


@dataclass(config=STRICT)
class Menu:
    prompt: tuple[Prompt, ...]
    options: dict[str, Action]
    timeout_s: float = Field(default=5.0, gt=0, le=60)
    max_retries: int = Field(default=3, ge=0, le=10)
    invalid_prompt: Prompt = "pm-invalid-option"
    timeout_prompt: Prompt | None = None
    on_failure: Action = Field(default_factory=lambda: Action(hangup=("goodbye",)))

    @field_validator("prompt")
    @classmethod
    def _prompts(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for p in v:
            check_prompt(p)
        return v

    @field_validator("invalid_prompt", "timeout_prompt")
    @classmethod
    def _prompt(cls, v: str | None) -> str | None:
        return None if v is None else check_prompt(v)

    @field_validator("options")
    @classmethod
    def _digits(cls, v: dict[str, Action]) -> dict[str, Action]:
        for d in v:
            if not re.fullmatch(DIGIT, d):
                raise ValueError(f"option key {d!r} must be one DTMF digit (0-9, *, #)")
        return v


@dataclass(config=STRICT)
class HolidayConf:
    country: str | None = None
    subdiv: str | None = None
    dates: tuple[str, ...] = ()

    @field_validator("dates")
    @classmethod
    def _dates(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for d in v:
            if not re.fullmatch(r"^\d{4}-\d{2}-\d{2}$", d):
                raise ValueError(f"date {d!r} is not YYYY-MM-DD")
        return v


@dataclass(config=STRICT)
class Schedule:
    timezone: str = "UTC"
    weekly: dict[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"], tuple[str, ...]] = Field(
        default_factory=dict)
    holidays: HolidayConf = Field(default_factory=HolidayConf)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}") from None
        return v

    @field_validator("weekly")
    @classmethod
    def _ranges(cls, v: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        for day, ranges in v.items():
            for r in ranges:
                m = re.fullmatch(r"^([01]\d|2[0-4]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$", r)
                if not m or r[:5] >= r[6:]:
                    raise ValueError(f"{day}: bad time range {r!r} (HH:MM-HH:MM, start before end)")
        return v


rebuild_dataclass(Hours)
rebuild_dataclass(Menu)
