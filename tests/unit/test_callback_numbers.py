"""Callback numbers must match the trunk's allow-list (issue 12, fault 8): a spoofed caller ID is never dialled."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from callcenter.config import ConfigError, Site, Trunk, parse
from callcenter.features.callback.numbers import allowed, dial_back_number

ROOT = Path(__file__).resolve().parents[2]
RAW = yaml.safe_load((ROOT / "config" / "callcenter.yaml").read_text())
US = Site(country="US")


def trunk(allow: list[str] | None = None) -> Trunk:
    return Trunk(match=("127.0.0.2",), dids={}, host="127.0.0.2", dial_allow=None if allow is None else tuple(allow))


@pytest.mark.parametrize("spoofed", [
    "+442079460000",     # London: international
    "011442079460000",   # the same, dialled from the US with its international prefix
    "+33612345678",      # a French mobile
    "+19005550123",      # US premium rate (1-900)
    "9005550123",        # ... written nationally
    "+15551234567",      # not a real US number (555 area code)
    "500&PJSIP/x",       # dial-string injection
    "2125550123,1",      # trailing dial options
    "anonymous", "", "+", "12", "1234567890123456",  # garbage, too short, too long
])
def test_default_refuses_spoofed_caller_ids(spoofed):
    """With the default allow-list (national numbers of the site's country), these are never dialled."""
    assert dial_back_number(spoofed, trunk(), US) is None


@pytest.mark.parametrize("number", ["2125550123", "+12125550123", "+16502530000", "8005550199"])
def test_national_number_passes_as_received(number):
    """An ordinary US number (fixed, mobile, toll-free) is dialled back exactly as it came in."""
    assert dial_back_number(number, trunk(), US) == number
    assert dial_back_number(dial_back_number(number, trunk(), US) or "", trunk(), US) == number  # idempotent


def test_explicit_international_prefix_passes():
    """An allowed E.164 prefix admits that area only, on that trunk only; other foreign numbers stay refused."""
    london = trunk(["national", "+4420"])
    assert dial_back_number("+442079460000", london, US) == "+442079460000"
    assert dial_back_number("011442079460000", london, US) == "011442079460000"
    assert dial_back_number("+441612345678", london, US) is None  # Manchester
    assert dial_back_number("+33612345678", london, US) is None
    assert dial_back_number("+442079460000", trunk(), US) is None  # the default trunk still refuses it
    assert dial_back_number("2125550123", london, US) == "2125550123"


def test_international_keyword_still_refuses_premium_abroad():
    """`international` admits ordinary foreign numbers, not foreign premium or personal numbers."""
    world = trunk(["international"])
    assert dial_back_number("+33612345678", world, US) == "+33612345678"
    assert dial_back_number("+447011234567", world, US) is None  # UK personal number (070)
    assert dial_back_number("+44", world, US) is None
    assert dial_back_number("2125550123", world, US) is None  # national is not in this list


def test_premium_only_when_allowed_explicitly():
    """A 1-900 number needs `premium` too, even under an E.164 prefix that covers it."""
    assert dial_back_number("+19005550123", trunk(["+1900"]), US) is None
    assert dial_back_number("+19005550123", trunk(["national", "premium"]), US) == "+19005550123"
    assert dial_back_number("+19005550123", trunk(["premium"]), US) is None  # premium is no scope on its own


def test_mobile_only():
    """`mobile` admits mobiles of the site's country, not fixed lines (GB tells them apart)."""
    gb = Site(country="GB")
    assert dial_back_number("07400123456", trunk(["mobile"]), gb) == "07400123456"
    assert dial_back_number("02079460000", trunk(["mobile"]), gb) is None
    assert dial_back_number("02079460000", trunk(), gb) == "02079460000"  # national, read as a GB number
    assert dial_back_number("09098790000", trunk(), gb) is None  # GB premium rate


def test_site_default_and_trunk_override():
    """A trunk without dial_allow takes site.dial_allow; a trunk's own list replaces it."""
    site = Site(country="US", dial_allow=("national", "+33"))
    assert dial_back_number("+33612345678", trunk(), site) == "+33612345678"
    assert dial_back_number("+33612345678", trunk(["national"]), site) is None
    assert dial_back_number("2125550123", trunk([]), site) is None  # an empty list dials nothing


def test_asterisk_style_pattern_for_private_numbers():
    """`_555XXXX` admits exactly seven digits starting 555 as received (the lab's callers), nothing else."""
    lab = trunk(["_555XXXX"])
    assert dial_back_number("5550301", lab, US) == "5550301"
    assert dial_back_number("55503011", lab, US) is None
    assert dial_back_number("+5550301", lab, US) is None
    assert allowed("5532111", ["_55[0-4]NXZX"], "US") and not allowed("5552111", ["_55[0-4]NXZX"], "US")
    assert not allowed("9005550123", ["_900XXXXXXX"], "US")  # a premium number stays premium


@pytest.mark.parametrize("where, value, expected", [
    (("trunks", "pstn", "dial_allow"), ["national", "anything"], "trunks.pstn.dial_allow: bad dial pattern 'anything'"),
    (("trunks", "pstn", "dial_allow"), ["+0"], "trunks.pstn.dial_allow: bad dial pattern '+0'"),
    (("trunks", "pstn", "dial_allow"), ["_55.X"], "trunks.pstn.dial_allow: bad dial pattern '_55.X'"),
    (("site", "dial_allow"), ["premium-rate"], "site.dial_allow: bad dial pattern 'premium-rate'"),
    (("site", "country"), "XX", "site.country: unknown country 'XX'"),
    (("site", "region"), "US", "site.region: unknown key"),
    (("queues", "sales", "callback"), {"unavailable": ["../x"]}, "queues.sales.callback.unavailable: bad prompt name"),
])
def test_bad_allow_list_config_names_its_key_path(where, value, expected):
    """A bad pattern or country is refused at load, at its dotted key path."""
    data = copy.deepcopy(RAW)
    node = data
    for k in where[:-1]:
        node = node.setdefault(k, {})
    node[where[-1]] = value
    with pytest.raises(ConfigError) as ei:
        parse(data)
    (p,) = ei.value.problems
    assert p.startswith(expected)


def test_shipped_config_has_a_site_and_frozen_lists():
    """The shipped config names its site; allow-lists are tuples of a frozen config."""
    cfg = parse(copy.deepcopy(RAW))
    assert cfg.site.country == "US" and cfg.site.dial_allow == ("national",)
    assert isinstance(cfg.trunks["sim"].dial_allow, (tuple, type(None)))
    with pytest.raises(AttributeError):
        cfg.site.country = "GB"  # type: ignore[misc]
