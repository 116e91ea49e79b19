"""Which calls are recorded: the policy of a call (campaign, queue, default) and the sample decision.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from callcenter import config as config_mod
from callcenter.features.recording.schema import RecordingConf

__all__ = ["policy_for", "should_record"]


def policy_for(cfg: config_mod.Config, queue: str | None = None, campaign: str | None = None,
               campaign_conf: Any = None) -> RecordingConf:
    """The recording policy of a call: its campaign's, else its queue's, else ``recordings.default``.
    ``campaign_conf``: the campaign's settings from the dialler's store (a campaign made with the
    CLI is in no YAML); else the YAML's."""
    c = campaign_conf if campaign_conf is not None else (cfg.campaigns.get(campaign) if campaign is not None else None)
    if c is not None and c.recording is not None:
        return c.recording
    q = cfg.queues.get(queue) if queue is not None else None
    if q is not None and q.recording is not None:
        return q.recording
    return cfg.recordings.default


def should_record(policy: RecordingConf, call_id: str) -> bool | Literal["on_demand"]:
    """Record this call from the start? ``"on_demand"``: only if the agent asks (feature code).

    ``sample`` is decided by a hash of ``call_id``, so every process and every restart agrees, and
    ``sample_percent`` of calls are recorded on average.
    """
    if policy.mode == "all":
        return True
    if policy.mode == "none":
        return False
    if policy.mode == "on_demand":
        return "on_demand"
    if policy.sample_percent >= 100 or policy.sample_percent <= 0:
        return policy.sample_percent >= 100
    h = int.from_bytes(hashlib.sha256(call_id.encode("utf-8", "surrogatepass")).digest()[:8], "big")
    return h * 100.0 / 2**64 < policy.sample_percent
