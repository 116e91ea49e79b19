"""Which numbers may be dialled back: a caller ID is only a claim (it can be spoofed to a premium-rate
or foreign number, or carry dial-string syntax), so a callback dials it only if it matches the
allow-list of the trunk it goes out on.

An allow-list (``trunks.NAME.dial_allow``, default ``site.dial_allow``, itself ``[national]``) is a
list of patterns; a number is allowed if any pattern admits it:

``national``
    an ordinary number (fixed line, mobile, toll-free, VoIP) of the site's country (``site.country``)
``mobile``
    a mobile number of the site's country (where mobiles cannot be told from fixed lines, as in
    the US, any ordinary number)
``international``
    an ordinary number of any other country
``+DIGITS``
    an ordinary number whose E.164 form starts with these digits, e.g. ``+4420`` (London)
``_PATTERN``
    the caller ID exactly as received, as an Asterisk-style pattern of fixed length: ``X`` any
    digit, ``Z`` 1-9, ``N`` 2-9, ``[1-4]`` a set, anything else literal digits; e.g. ``_555XXXX``
    for a private network whose numbers are not public ones
``premium``
    not a scope of its own: lets the other patterns admit special-rate numbers too (premium rate,
    shared cost, personal numbers, UAN, pagers, voicemail access). Without it they are never dialled.

Pure functions, no I/O; the config checks patterns with :func:`check_pattern` when it loads.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING, Protocol

import phonenumbers
from phonenumbers import PhoneNumberType as T

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["KEYWORDS", "DEFAULT_ALLOW", "check_pattern", "check_country", "allowed", "dial_back_number"]

KEYWORDS = ("national", "mobile", "international", "premium")
DEFAULT_ALLOW = ("national",)
# What a caller ID may look like at all before it is even parsed: it ends up in a dial string.
RAW = re.compile(r"\+?[0-9]{3,15}")
ORDINARY = frozenset({T.FIXED_LINE, T.MOBILE, T.FIXED_LINE_OR_MOBILE, T.TOLL_FREE, T.VOIP})
MOBILE = frozenset({T.MOBILE, T.FIXED_LINE_OR_MOBILE})
_PREFIX = re.compile(r"\+[1-9][0-9]{0,14}")
_LOCAL = re.compile(r"_(?:[0-9XZN]|\[(?:[0-9](?:-[0-9])?)+\]){3,15}")


class _Trunk(Protocol):
    @property
    def dial_allow(self) -> Sequence[str] | None: ...


class _Site(Protocol):
    @property
    def country(self) -> str: ...

    @property
    def dial_allow(self) -> Sequence[str]: ...


def check_pattern(p: str) -> str:
    """``p`` if it is a valid allow-list pattern, else ValueError saying what one looks like."""
    if p in KEYWORDS or _PREFIX.fullmatch(p) or _LOCAL.fullmatch(p):
        return p
    raise ValueError(f"bad dial pattern {p!r} (one of {', '.join(KEYWORDS)}, an E.164 prefix like '+4420', "
                     "or an Asterisk-style pattern like '_555XXXX')")


def check_country(c: str) -> str:
    if c not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"unknown country {c!r} (an ISO 3166 code such as US, GB, FR)")
    return c


@lru_cache(maxsize=256)
def _local_regex(p: str) -> re.Pattern[str]:
    body = p[1:].replace("X", "[0-9]").replace("Z", "[1-9]").replace("N", "[2-9]")
    return re.compile(body)


def allowed(number: str, patterns: Sequence[str], country: str) -> bool:
    """Whether ``number`` (a caller ID as received) matches ``patterns`` for a site in ``country``."""
    if not RAW.fullmatch(number):
        return False
    try:
        parsed = phonenumbers.parse(number, country)
    except phonenumbers.NumberParseException:
        parsed = None
    valid = parsed is not None and phonenumbers.is_valid_number(parsed)
    if valid:
        assert parsed is not None
        kind = phonenumbers.number_type(parsed)
        if kind not in ORDINARY and "premium" not in patterns:
            return False  # special-rate, wherever it is and whatever else would admit it
        region = phonenumbers.region_code_for_number(parsed)
        e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    for p in patterns:
        if p.startswith("_"):
            if _local_regex(p).fullmatch(number):
                return True
        elif not valid:
            continue
        elif p == "national" and region == country:
            return True
        elif p == "mobile" and region == country and kind in MOBILE:
            return True
        elif p == "international" and region != country:
            return True
        elif p.startswith("+") and e164.startswith(p):
            return True
    return False


def dial_back_number(caller_num: str, trunk_conf: _Trunk, site: _Site) -> str | None:
    """The digits to dial to call ``caller_num`` back through the trunk ``trunk_conf``, or None when its
    allow-list (``trunk_conf.dial_allow``, else ``site.dial_allow``) does not admit the number.

    The number is dialled as it was received (the trunk's own format, a leading ``+`` kept), so the
    result is ``caller_num`` itself and calling this again on it gives the same answer: check once
    when the callback is requested and again at dial time (the config may have changed)."""
    patterns = trunk_conf.dial_allow if trunk_conf.dial_allow is not None else site.dial_allow
    return caller_num if allowed(caller_num, patterns, site.country) else None
