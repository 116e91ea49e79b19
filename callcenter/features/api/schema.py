"""The wallboard's config schema: colour thresholds per queue and per agent state, pause limits,
and how much of the live stream a reconnecting browser can catch up on."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator
from pydantic.dataclasses import dataclass

from callcenter.confbase import STRICT

__all__ = ["QueueThresholds", "WallboardConf", "STATES"]

STATES = ("Ready", "Reserved", "Busy", "WrapUp", "Paused", "LoggedOut")


def _pair(v: tuple[float, float], *, lower_is_worse: bool = False) -> tuple[float, float]:
    warn, alarm = v
    if (alarm > warn) if lower_is_worse else (alarm < warn):
        raise ValueError(f"[warn, alarm] = {list(v)}: the alarm must be {'below' if lower_is_worse else 'above'}"
                         " the warning")
    return v


@dataclass(config=STRICT)
class QueueThresholds:
    """[warn, alarm] per figure; higher is worse, except the service level."""

    waiting: tuple[float, float] = (3, 6)
    longest_wait_s: tuple[float, float] = (30, 60)
    service_level: tuple[float, float] = (0.8, 0.6)
    abandon_rate: tuple[float, float] = (0.05, 0.1)

    @model_validator(mode="after")
    def _order(self) -> QueueThresholds:
        _pair(self.waiting)
        _pair(self.longest_wait_s)
        _pair(self.service_level, lower_is_worse=True)
        _pair(self.abandon_rate)
        return self


@dataclass(config=STRICT)
class WallboardConf:
    queue_defaults: QueueThresholds = Field(default_factory=QueueThresholds)
    queues: dict[str, QueueThresholds] = Field(default_factory=dict)  # per queue, instead of the defaults
    # time in state, [warn, alarm] seconds, by agent state
    state_thresholds_s: dict[str, tuple[float, float]] = Field(default_factory=lambda: {
        "Paused": (300.0, 900.0), "WrapUp": (60.0, 180.0), "Busy": (600.0, 1200.0), "Reserved": (15.0, 30.0)})
    pause_limits_s: dict[str, float] = Field(default_factory=dict)  # pause reason -> longest allowed pause
    history_days: int = Field(default=30, ge=1, le=3650)  # the screen pop's earlier calls from the number
    keep_events: int = Field(default=10000, ge=100, le=1_000_000)  # a reconnecting browser resumes within these
    floor_every_s: float = Field(default=1.0, ge=0.2, le=60)  # figures pushed to browsers this often

    @field_validator("state_thresholds_s")
    @classmethod
    def _states(cls, v: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
        for state, pair in v.items():
            if state not in STATES:
                raise ValueError(f"unknown agent state {state!r} (expected one of {', '.join(STATES)})")
            _pair(pair)
        return v

    def thresholds(self, queue: str) -> QueueThresholds:
        return self.queues.get(queue, self.queue_defaults)
