"""The callback offer's config schema (``queues.NAME.callback``).

Which numbers may be dialled back is a property of the trunk (``trunks.NAME.dial_allow``, default
``site.dial_allow``): see :mod:`callcenter.features.callback.numbers`."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic.dataclasses import dataclass

from callcenter.confbase import DIGIT, STRICT, Prompt, check_prompts

__all__ = ["CallbackConf"]


@dataclass(config=STRICT)
class CallbackConf:
    """A waiting caller may press `digit`, hang up, and be called back when their turn comes."""

    digit: str = Field(default="5", pattern=DIGIT)
    offer_after_s: float = Field(default=0, ge=0)  # offer (prompt) only after waiting this long
    prompt: tuple[Prompt, ...] = ()  # played at each hook while the offer stands
    confirm: tuple[Prompt, ...] = ("auth-thankyou",)  # played after the digit, before hanging up
    # played after the digit when the caller's number may not be dialled back (the trunk's dial_allow);
    # the caller stays in the queue
    unavailable: tuple[Prompt, ...] = ("beeperr",)
    schedule: str | None = None  # dial back only while this schedule is open (business hours)
    trunk: str | None = None  # dial back through this trunk (default: the one the call came in on)
    ring_s: float = Field(default=30, ge=15, le=120)
    max_attempts: int = Field(default=2, ge=1, le=10)
    retry_s: float = Field(default=120, ge=0)

    @field_validator("prompt", "confirm", "unavailable")
    @classmethod
    def _prompts(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        check_prompts(v)
        return v
