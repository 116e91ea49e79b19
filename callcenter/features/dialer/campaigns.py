"""A campaign's settings as the database holds them (the one store), and the YAML's upsert into it.

The store's columns hold what the store itself uses (region, window, attempts, abandon limit);
the ``settings`` JSON holds the rest of :class:`callcenter.features.dialer.schema.CampaignConf` (queue, trunk, mode,
ring time, AMD, messages, dispositions ...). YAML campaigns are upserted at start and on every
reload (the YAML wins for what it defines; state and leads are kept); campaigns the YAML no
longer defines are marked ``removed``; CLI campaigns carry their own settings.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter, ValidationError

from callcenter.features.cards.dial import dials_out
from callcenter.features.dialer.schema import CampaignConf

if TYPE_CHECKING:
    from callcenter.config import Config
    from callcenter.features.dialer.store import CampaignRow, LeadStore

__all__ = ["conf_of", "not_dialable", "settings_of", "sync_yaml"]

_ADAPTER: TypeAdapter[CampaignConf] = TypeAdapter(CampaignConf)
STORE_KEYS = ("region", "window", "max_attempts", "max_abandon_rate")  # columns of the store


def settings_of(c: CampaignConf) -> dict[str, Any]:
    """The settings JSON of a campaign (what the store's columns do not hold)."""
    d: dict[str, Any] = json.loads(_ADAPTER.dump_json(c))
    for k in STORE_KEYS:
        d.pop(k, None)
    return d


def conf_of(row: CampaignRow) -> CampaignConf:
    """The campaign's settings, validated; ValueError names what is missing or wrong."""
    data = {**row.settings, "region": row.default_region, "window": row.window,
            "max_attempts": row.max_attempts, "max_abandon_rate": row.max_abandon_rate}
    try:
        return _ADAPTER.validate_json(json.dumps(data))
    except ValidationError as e:
        raise ValueError("; ".join(f"{'.'.join(map(str, x['loc'])) or '<campaign>'}: {x['msg']}"
                                   for x in e.errors())) from None


def not_dialable(c: CampaignConf, cfg: Config) -> str | None:
    """Why this campaign cannot be dialled with this config (None: it can)."""
    if c.queue not in cfg.queues:
        return f"queue: no queue {c.queue!r} in the config"
    trunk = cfg.trunks.get(c.trunk)
    if trunk is None:
        return f"trunk: no trunk {c.trunk!r} in the config"
    if not dials_out(cfg, c.trunk):
        return f"trunk: trunk {c.trunk!r} has no host (inbound only)"
    return None


def sync_yaml(store: LeadStore, cfg: Config) -> list[str]:
    """Upsert every YAML campaign, retire the ones the YAML dropped; the problems (by campaign)."""
    problems = []
    for name, c in cfg.campaigns.items():
        start, _, end = c.window.partition("-")
        try:
            store.upsert_campaign(name, c.region, window_start=start, window_end=end, max_attempts=c.max_attempts,
                                  max_abandon_rate=c.max_abandon_rate, settings=settings_of(c))
        except ValueError as e:
            problems.append(f"campaigns.{name}: {e}")
    store.retire_yaml_campaigns(cfg.campaigns)
    return problems
