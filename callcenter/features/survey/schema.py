"""The after-call survey's config schema (``queues.NAME.survey``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic.dataclasses import dataclass

from callcenter.confbase import STRICT, Prompt, check_prompts

__all__ = ["SurveyConf"]


@dataclass(config=STRICT)
class SurveyConf:
    """After the agent hangs up the caller stays on the line, hears ``prompt`` and presses a digit
    from ``lowest`` to ``highest``."""

    prompt: tuple[Prompt, ...] = ("beep",)  # e.g. your "please rate this call from 1 to 5"
    thanks: tuple[Prompt, ...] = ("auth-thankyou",)
    invalid: tuple[Prompt, ...] = ("pm-invalid-option",)  # a key outside the range (then asked again)
    lowest: int = Field(default=1, ge=0, le=9)
    highest: int = Field(default=5, ge=1, le=9)
    timeout_s: float = Field(default=6, gt=0, le=60)  # waiting for the key after the prompt
    retries: int = Field(default=1, ge=0, le=3)  # a wrong key or none: asked again this many times
    when: Literal["after"] = "after"  # after the agent hangs up (the caller's leg stays up)

    @field_validator("prompt", "thanks", "invalid")
    @classmethod
    def _prompts(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        check_prompts(v)
        return v

    @model_validator(mode="after")
    def _range(self) -> SurveyConf:
        if self.lowest >= self.highest:
            raise ValueError(f"lowest ({self.lowest}) must be below highest ({self.highest})")
        return self
