"""Dial strings for outbound calls on a trunk, SIP or card: the one place that knows both forms.

``PJSIP/<digits>@trunk-<name>`` for a SIP trunk with a host; ``DAHDI/g<group>/<digits>`` for a
trunk carried by telephony cards (the first free channel of its group). ``digits`` must already be
an allow-listed number (callback.numbers, the dialler's lead checks): this module only formats.
"""

from __future__ import annotations

import re
from typing import Any

from callcenter.asterisk import contract as C
from callcenter.features.cards.plan import Plan, plan
from callcenter.features.cards.schema import CardsConf

__all__ = ["dials_out", "trunk_dial"]

_cache: tuple[CardsConf, Any, Plan] | None = None


def _plan(cfg: Any) -> Plan:
    """The cards plan of ``cfg`` (computed once per config object: configs are frozen)."""
    global _cache
    if getattr(cfg, "cards", None) is None:  # a partial config (tests): no cards
        return Plan()
    if _cache is None or _cache[0] is not cfg.cards or _cache[1] is not cfg.trunks:
        _cache = (cfg.cards, cfg.trunks, plan(cfg.cards, {n: t.dids for n, t in cfg.trunks.items()})[0])
    return _cache[2]


def dials_out(cfg: Any, trunk: str) -> bool:
    """The trunk can place calls: a SIP host, or channels on a card."""
    t = cfg.trunks.get(trunk)
    return t is not None and (bool(t.host) or trunk in _plan(cfg).groups)


def trunk_dial(cfg: Any, trunk: str, digits: str) -> str:
    """The Dial()/Originate channel for ``digits`` on ``trunk``. A SIP host wins over a card when a
    trunk has both."""
    if not re.fullmatch(r"\+?[0-9]{1,20}", digits):
        raise ValueError("a dialled number is digits only")
    t = cfg.trunks[trunk]
    card = _plan(cfg).dial(trunk, digits)
    if t.host or card is None:
        return f"PJSIP/{digits}@{C.TRUNK_ENDPOINT_PREFIX}{trunk}"
    return card
