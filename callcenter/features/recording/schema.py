"""The recording policy's config schema: which calls are recorded, where files go, how long they stay."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator
from pydantic.dataclasses import dataclass

from callcenter.confbase import STRICT

__all__ = ["RecordingConf", "Recordings"]


@dataclass(config=STRICT)
class RecordingConf:
    """Which calls are recorded: all, none, on demand (agent feature code / API) or a sample."""

    mode: Literal["all", "none", "on_demand", "sample"] = "all"
    sample_percent: float = Field(default=100, ge=0, le=100)  # with mode "sample"


@dataclass(config=STRICT)
class Recordings:
    dir: str = "recordings"  # relative to the daemon's working directory
    retention_days: float = Field(default=90, gt=0)
    default: RecordingConf = Field(default_factory=RecordingConf)
    # The same directory as Asterisk sees it, when that differs (Asterisk in a chroot or a
    # container); None: Asterisk sees `dir` itself. It goes into MixMonitor's arguments, so:
    # an absolute path of letters, digits and _ . / - only, without `..`.
    asterisk_dir: str | None = None

    @field_validator("asterisk_dir")
    @classmethod
    def _asterisk_dir(cls, v: str | None) -> str | None:
        if v is not None and (not re.fullmatch(r"/[A-Za-z0-9_./-]*", v) or ".." in v.split("/")):
            raise ValueError(f"{v!r} must be an absolute path of letters, digits, _ . / - (no '..')")
        return v
