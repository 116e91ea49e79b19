"""The leave-a-message option's config schema (``queues.NAME.message``). Calling back needs the
queue's ``callback`` settings (trunk, ring time, attempts): the config refuses a message without them."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic.dataclasses import dataclass

from callcenter.confbase import DIGIT, STRICT, Prompt, check_prompts

__all__ = ["MessageConf"]


@dataclass(config=STRICT)
class MessageConf:
    """A waiting caller presses ``digit``, hears ``intro`` and a beep, speaks, and hangs up (or presses #)."""

    digit: str = Field(default="6", pattern=DIGIT)
    max_s: int = Field(default=60, ge=5, le=600)  # the longest message
    silence_s: int = Field(default=5, ge=0, le=60)  # this much silence ends the recording (0: never)
    intro: tuple[Prompt, ...] = ("vm-intro",)  # "please leave your message after the tone ..."
    prompt: tuple[Prompt, ...] = ()  # played at each hook while the option stands ("press 6 to leave a message")
    confirm: tuple[Prompt, ...] = ("auth-thankyou",)  # after the recording, before the daemon hangs up
    unavailable: tuple[Prompt, ...] = ("beeperr",)  # the caller's number cannot be called back: they stay queued
    announce: tuple[Prompt, ...] = ()  # played to the agent before the message (e.g. a beep)

    @field_validator("intro", "prompt", "confirm", "unavailable", "announce")
    @classmethod
    def _prompts(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        check_prompts(v)
        return v
