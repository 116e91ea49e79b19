"""The ``cards:`` config schema: DAHDI spans (E1/T1 PRI, BRI, analog) and their ports.

Only shapes and single values are checked here; what depends on the span's type (signalling that
fits the card, channel numbers, overlaps) and on other sections (trunks, DIDs, phones) is checked
by :func:`callcenter.features.cards.plan.check`, each problem with its dotted key path.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator
from pydantic.dataclasses import dataclass

from callcenter.confbase import STRICT, check_display

__all__ = ["CardsConf", "PortConf", "SpanConf", "fed_trunks", "ECHO_CANCELLERS", "SWITCHTYPES", "ZONES"]

ECHO_CANCELLERS = ("mg2", "oslec", "kb1", "sec2", "sec", "hwec", "none")
SWITCHTYPES = ("euroisdn", "national", "ni1", "dms100", "4ess", "5ess", "qsig")
# libtonezone's zones (zonedata.c): loadzone/defaultzone in system.conf, tonezone in chan_dahdi.conf
ZONES = ("us", "au", "fr", "nl", "uk", "fi", "es", "jp", "no", "at", "nz", "it", "us-old", "gr", "tw", "cl", "se",
         "be", "sg", "il", "br", "hu", "lt", "pl", "za", "pt", "ee", "mx", "in", "de", "ch", "dk", "cz", "cn", "ar",
         "my", "th", "bg", "ve", "ph", "ru", "tr", "pa", "mo", "cr", "ae")


@dataclass(config=STRICT)
class PortConf:
    """One analog port: ``{fxo: TRUNK, did: NUMBER}`` (a line from the telco, on an FXO module) or
    ``{fxs: EXTENSION, name: ...}`` (an analog phone, on an FXS module)."""

    fxo: str | None = None  # the trunk this line belongs to
    did: str | None = None  # which of the trunk's DIDs a call on this line is (analog lines send none)
    fxs: str | None = None  # the extension of the analog phone on this port
    name: str = ""  # the phone's display name (FXS)
    # ks (kewlstart, the default), ls (loopstart) or gs (groundstart); FXO ports take fxs_* and
    # FXS ports fxo_* (the signalling is named after the far end) — `signalling: fxs_ls` or `ls`
    signalling: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_display(v)


@dataclass(config=STRICT)
class SpanConf:
    """One DAHDI span, numbered as the card driver registers it (``dahdi_scan`` / ``lsdahdi``)."""

    type: Literal["e1", "t1", "bri", "analog"]
    trunk: str | None = None  # PRI/BRI: the trunks: entry whose DIDs and dial_allow apply
    signalling: str | None = None  # e1/t1: pri_cpe | pri_net; bri: bri_cpe | bri_cpe_ptmp | bri_net
    switchtype: str | None = None  # euroisdn (E1, BRI) | national (T1) | ni1 | dms100 | 4ess | 5ess | qsig
    framing: str | None = None  # e1: ccs; t1: esf | d4; bri: ccs
    coding: str | None = None  # e1: hdb3 | ami; t1: b8zs | ami; bri: ami
    crc4: bool | None = None  # E1 only (default on)
    timing: int | None = Field(default=None, ge=0, le=255)  # 0: never our clock source; 1 first choice...
    lbo: int = Field(default=0, ge=0, le=7)  # line build-out (T1 only; 0 elsewhere)
    dchannel: Literal["hardhdlc", "dchan"] = "hardhdlc"  # dchan only for old cards (TE110P, T1 on TE12x)
    first_channel: int | None = Field(default=None, ge=1, le=1023)  # default: after the span before
    channels: int | None = Field(default=None, ge=1, le=64)  # analog: how many ports the span has
    ports: dict[int, PortConf] = Field(default_factory=dict)  # analog: port number (1-based) -> use
    echocanceller: str | None = None  # overrides cards.echocanceller for this span


@dataclass(config=STRICT)
class CardsConf:
    """Telephony cards: rendered to /etc/dahdi/system.conf and chan_dahdi.conf."""

    spans: dict[int, SpanConf] = Field(default_factory=dict)
    zone: str = "us"  # tone zone (dial tone, ringback) of the analog ports: us, uk, de, fr ...
    echocanceller: str = "mg2"  # mg2 | oslec | kb1 | sec2 | sec | hwec (the card's own) | none

    @field_validator("zone")
    @classmethod
    def _zone(cls, v: str) -> str:
        if v not in ZONES:
            raise ValueError(f"unknown tone zone {v!r} (one of {', '.join(ZONES)})")
        return v

    @field_validator("echocanceller")
    @classmethod
    def _ec(cls, v: str) -> str:
        if v not in ECHO_CANCELLERS:
            raise ValueError(f"unknown echo canceller {v!r} (one of {', '.join(ECHO_CANCELLERS)})")
        return v


def fed_trunks(cards: CardsConf) -> frozenset[str]:
    """The trunks that telephony cards carry calls for (PRI/BRI spans, FXO lines)."""
    return frozenset({sp.trunk for sp in cards.spans.values() if sp.trunk}
                     | {p.fxo for sp in cards.spans.values() for p in sp.ports.values() if p.fxo})
