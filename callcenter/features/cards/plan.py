"""The cards' plan: every span resolved (defaults by type, DAHDI channel numbers, the DAHDI group of
each trunk) and every problem named by its dotted key path. Pure: config in, plan or problems out.

DAHDI numbers channels across all spans in span order: span 1 (an E1: 31 timeslots) is channels
1-31, span 2 starts at 32, and an analog span has one channel per port. A span's ``first_channel``
overrides that (spans pinned with ``dahdi_span_assignments``); ranges must then not overlap.

Signalling is named after the far end, which is the classic mistake: an FXO port (a line from the
telco, plugged into an FXO module) is driven with **FXS** signalling (``fxs_ks``) and an FXS port (an
analog phone) with **FXO** signalling (``fxo_ks``). The checks say so in the error.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from callcenter.confbase import EXTEN
from callcenter.features.cards.schema import ECHO_CANCELLERS, SWITCHTYPES, CardsConf, PortConf, SpanConf

__all__ = ["Group", "Plan", "PlannedPort", "PlannedSpan", "check", "plan", "ranges", "MAX_CHANNEL", "MAX_SPAN",
           "SIZES"]

MAX_SPAN = 127  # DAHDI_MAX_SPANS - 1
MAX_CHANNEL = 1023  # DAHDI_MAX_CHANNELS - 1 (dahdi_cfg refuses more)
SIZES = {"e1": 31, "t1": 24, "bri": 3}  # channels (timeslots) per digital span
DCHAN = {"e1": 16, "t1": 24, "bri": 3}  # the D-channel's timeslot
PRI = ("pri_cpe", "pri_net")
BRI = ("bri_cpe", "bri_cpe_ptmp", "bri_net")
FRAMING = {"e1": ("ccs",), "t1": ("esf", "d4"), "bri": ("ccs",)}
CODING = {"e1": ("hdb3", "ami"), "t1": ("b8zs", "ami"), "bri": ("ami",)}
STARTS = ("ks", "ls", "gs")  # kewlstart, loopstart, groundstart
ANALOG_SIG = {f"{side}_{s}" for side in ("fxs", "fxo") for s in STARTS}


@dataclass(frozen=True)
class PlannedPort:
    port: int
    channel: int
    kind: str  # fxo | fxs
    signalling: str  # chan_dahdi: fxs_ks (on an FXO port) ...
    trunk: str | None = None
    did: str | None = None
    extension: str | None = None
    name: str = ""


@dataclass(frozen=True)
class PlannedSpan:
    span: int
    type: str
    first: int  # first DAHDI channel
    size: int
    echocanceller: str
    trunk: str | None = None
    signalling: str | None = None
    switchtype: str | None = None
    framing: str | None = None
    coding: str | None = None
    crc4: bool = False
    timing: int = 0
    lbo: int = 0
    dchannel: str = "hardhdlc"
    ports: tuple[PlannedPort, ...] = ()

    @property
    def last(self) -> int:
        return self.first + self.size - 1

    @property
    def dchan(self) -> int | None:
        """The D-channel's DAHDI channel number (digital spans)."""
        return self.first + DCHAN[self.type] - 1 if self.type in DCHAN else None

    @property
    def bchans(self) -> list[int]:
        """The bearer channels of a digital span."""
        return [c for c in range(self.first, self.last + 1) if c != self.dchan]


@dataclass(frozen=True)
class Group:
    """A DAHDI group: the channels of one trunk, dialled out as ``DAHDI/g<number>/<digits>``."""

    number: int
    trunk: str
    channels: tuple[int, ...]


@dataclass(frozen=True)
class Plan:
    spans: tuple[PlannedSpan, ...] = ()
    groups: Mapping[str, Group] = field(default_factory=dict)  # by trunk name
    zone: str = "us"

    def span_of(self, channel: int) -> int | None:
        return next((s.span for s in self.spans if s.first <= channel <= s.last), None)

    def dial(self, trunk: str, digits: str) -> str | None:
        """The dial string of an outbound call on a card trunk; None if the trunk has no card channels."""
        g = self.groups.get(trunk)
        return f"DAHDI/g{g.number}/{digits}" if g is not None else None


def ranges(channels: list[int] | tuple[int, ...]) -> str:
    """``[1, 2, 3, 5]`` -> ``1-3,5`` (the channel list syntax of system.conf and chan_dahdi.conf)."""
    out: list[str] = []
    chans = sorted(channels)
    i = 0
    while i < len(chans):
        j = i
        while j + 1 < len(chans) and chans[j + 1] == chans[j] + 1:
            j += 1
        out.append(str(chans[i]) if i == j else f"{chans[i]}-{chans[j]}")
        i = j + 1
    return ",".join(out)


def _port_signalling(path: str, kind: str, given: str | None, problems: list[str]) -> str:
    want = "fxs" if kind == "fxo" else "fxo"  # named after the far end
    if given is None:
        return f"{want}_ks"
    sig = f"{want}_{given}" if given in STARTS else given
    if sig in ANALOG_SIG and not sig.startswith(want):
        if kind == "fxo":
            problems.append(f"{path}.signalling: {sig} is for FXS ports (phones); an FXO port (a line from the "
                            f"telco) is driven with FXS signalling: fxs_ks, fxs_ls or fxs_gs")
        else:
            problems.append(f"{path}.signalling: {sig} is for FXO ports (telco lines); an FXS port (an analog "
                            f"phone) is driven with FXO signalling: fxo_ks, fxo_ls or fxo_gs")
    elif sig not in ANALOG_SIG:
        problems.append(f"{path}.signalling: {given!r} is not analog signalling ({want}_ks, {want}_ls or {want}_gs;"
                        f" or ks, ls, gs)")
    return sig


def _digital(path: str, n: int, s: SpanConf, problems: list[str]) -> dict[str, Any]:
    """Resolve and check a PRI/BRI span's line and signalling settings."""
    t = s.type
    allowed = PRI if t in ("e1", "t1") else BRI
    sig = s.signalling or ("pri_cpe" if t != "bri" else None)
    if sig is None:
        problems.append(f"{path}.signalling: required for a BRI span: bri_cpe (point-to-point, a DID range) or "
                        f"bri_cpe_ptmp (point-to-multipoint, MSNs); bri_net to feed ISDN phones — ask the carrier")
    elif sig not in allowed:
        kind = {"e1": "an E1 PRI", "t1": "a T1 PRI", "bri": "a BRI"}[t]
        why = ""
        if sig in ANALOG_SIG:
            why = " (analog signalling goes on the ports of an analog span)"
        elif sig == "bri_net_ptmp":
            why = " (libpri has no point-to-multipoint on the network side)"
        elif sig in PRI + BRI:
            why = f" ({sig} is for {'a PRI (E1/T1)' if sig in PRI else 'a BRI'} span)"
        elif sig in ("mfcr2", "ss7") or sig.startswith(("em", "featd", "sf", "fgc", "e911")):
            why = " (only ISDN PRI/BRI and analog lines are supported)"
        problems.append(f"{path}.signalling: {sig!r} does not fit {kind} span: {' or '.join(allowed)}{why}")
    switchtype = s.switchtype or ("national" if t == "t1" else "euroisdn")
    if switchtype not in SWITCHTYPES:
        problems.append(f"{path}.switchtype: unknown switchtype {switchtype!r} (one of {', '.join(SWITCHTYPES)})")
    framing = s.framing or FRAMING[t][0]
    if framing not in FRAMING[t]:
        extra = " (cas is E1 CAS/R2 signalling, not supported)" if framing == "cas" else ""
        problems.append(f"{path}.framing: {framing!r} does not fit a {t.upper()} span: "
                        f"{' or '.join(FRAMING[t])}{extra}")
    coding = s.coding or CODING[t][0]
    if coding not in CODING[t]:
        problems.append(f"{path}.coding: {coding!r} does not fit a {t.upper()} span: {' or '.join(CODING[t])}")
    if s.crc4 is not None and t != "e1" and s.crc4:
        problems.append(f"{path}.crc4: CRC-4 is an E1 option only")
    if s.lbo and t != "t1":
        problems.append(f"{path}.lbo: line build-out is a T1 setting; use 0 on {t.upper()}")
    if t == "bri" and s.dchannel != "hardhdlc":
        problems.append(f"{path}.dchannel: BRI spans (wcb4xxp and alike) need hardhdlc")
    net = sig is not None and sig.endswith("_net")
    if s.timing is not None and s.timing > 0 and net:
        problems.append(f"{path}.timing: a network-side span ({sig}) gives the clock, it never takes it: use 0")
    if s.ports or s.channels is not None:
        key = "ports" if s.ports else "channels"
        problems.append(f"{path}.{key}: only for analog spans (a {t.upper()} span has {SIZES[t]} channels)")
    if s.trunk is None:
        problems.append(f"{path}.trunk: required: the trunks: entry whose DIDs calls on span {n} are routed by")
    return {"signalling": sig, "switchtype": switchtype, "framing": framing, "coding": coding,
            "crc4": bool(t == "e1" and (s.crc4 is None or s.crc4)), "net": net}


def _analog(path: str, s: SpanConf, first: int, problems: list[str]) -> tuple[PlannedPort, ...]:
    for key in ("trunk", "signalling", "switchtype", "framing", "coding", "crc4", "timing"):
        if getattr(s, key) is not None:
            problems.append(f"{path}.{key}: not for an analog span (set fxo/fxs and signalling per port)")
    if s.lbo:
        problems.append(f"{path}.lbo: not for an analog span")
    if s.channels is None:
        problems.append(f"{path}.channels: required for an analog span: how many ports the card has "
                        f"(lsdahdi lists them), so that the spans after it are numbered right")
    out: list[PlannedPort] = []
    size = s.channels or 0
    for port, pc in sorted(s.ports.items()):
        p = f"{path}.ports.{port}"
        if not 1 <= port <= size and s.channels is not None:
            problems.append(f"{p}: no such port: the span has ports 1-{size}")
        if (pc.fxo is None) == (pc.fxs is None):
            problems.append(f"{p}: exactly one of fxo: TRUNK (a telco line) or fxs: EXTENSION (an analog phone)")
            continue
        kind = "fxo" if pc.fxo is not None else "fxs"
        _port_keys(p, kind, pc, problems)
        sig = _port_signalling(p, kind, pc.signalling, problems)
        out.append(PlannedPort(port, first + port - 1, kind, sig, trunk=pc.fxo, did=pc.did, extension=pc.fxs,
                               name=pc.name))
    return tuple(out)


def _port_keys(p: str, kind: str, pc: PortConf, problems: list[str]) -> None:
    if kind == "fxo" and pc.name:
        problems.append(f"{p}.name: for FXS ports (phones) only; the line's calls show the caller's ID")
    if kind == "fxs" and pc.did is not None:
        problems.append(f"{p}.did: for FXO ports (telco lines) only")
    if kind == "fxs" and not re.fullmatch(EXTEN, pc.fxs or ""):
        problems.append(f"{p}.fxs: extension must be 2-15 digits")


def plan(cards: CardsConf, trunk_dids: Mapping[str, Any] | None = None) -> tuple[Plan, list[str]]:
    """Resolve ``cards`` into a :class:`Plan`; the list holds every problem (empty: valid).

    ``trunk_dids`` (trunk name -> its DIDs) completes an FXO port's DID when its trunk has one only."""
    problems: list[str] = []
    spans: list[PlannedSpan] = []
    nxt: int | None = 1
    prev: int = 0
    timing_rank = 0
    for n, s in sorted(cards.spans.items()):
        path = f"cards.spans.{n}"
        if not 1 <= n <= MAX_SPAN:
            problems.append(f"{path}: span numbers are 1-{MAX_SPAN}")
            continue
        if s.first_channel is not None:
            first = s.first_channel
        elif nxt is not None and n == prev + 1:
            first = nxt
        else:
            problems.append(f"{path}.first_channel: required: span {n - 1} is not configured, so where span {n}'s "
                            f"channels start is not known (see lsdahdi)")
            first = 0
        prev = n
        ec = s.echocanceller or cards.echocanceller
        if ec not in ECHO_CANCELLERS:
            problems.append(f"{path}.echocanceller: unknown echo canceller {ec!r} "
                            f"(one of {', '.join(ECHO_CANCELLERS)})")
        if s.type == "analog":
            ports = _analog(path, s, first, problems)
            size = s.channels or max((p.port for p in ports), default=1)
            sp = PlannedSpan(n, "analog", first, size, ec, ports=ports)
        else:
            d = _digital(path, n, s, problems)
            timing = s.timing
            if timing is None:
                timing = 0 if d["net"] else (timing_rank := timing_rank + 1)
            sp = PlannedSpan(n, s.type, first, SIZES[s.type], ec, trunk=s.trunk, signalling=d["signalling"],
                             switchtype=d["switchtype"], framing=d["framing"], coding=d["coding"], crc4=d["crc4"],
                             timing=timing, lbo=s.lbo, dchannel=s.dchannel)
        if first and sp.last > MAX_CHANNEL:
            problems.append(f"{path}: channels {sp.first}-{sp.last} go past DAHDI's last channel {MAX_CHANNEL}")
        nxt = sp.last + 1 if first else None
        spans.append(sp)
    problems += _overlaps(spans)
    timings = [(s.timing, s.span) for s in spans if s.type != "analog" and s.timing > 0]
    seen: dict[int, int] = {}
    for t, n in timings:
        if t in seen:
            problems.append(f"cards.spans.{n}.timing: span {seen[t]} already has clock priority {t}; "
                            f"give each span its own (1 first choice, 2 second ...)")
        seen.setdefault(t, n)
    spans = [_with_did(sp, trunk_dids) for sp in spans]
    return Plan(tuple(spans), _groups(spans), cards.zone), problems


def _with_did(sp: PlannedSpan, trunk_dids: Mapping[str, Any] | None) -> PlannedSpan:
    if not sp.ports or trunk_dids is None:
        return sp
    ports = []
    for p in sp.ports:
        dids = list(trunk_dids.get(p.trunk or "", ()))
        if p.kind == "fxo" and p.did is None and len(dids) == 1:
            p = dataclasses.replace(p, did=dids[0])
        ports.append(p)
    return dataclasses.replace(sp, ports=tuple(ports))


def _overlaps(spans: list[PlannedSpan]) -> list[str]:
    out = []
    live = [s for s in spans if s.first]
    for i, a in enumerate(live):
        for b in live[i + 1:]:
            if a.first <= b.last and b.first <= a.last:
                out.append(f"cards.spans.{b.span}.first_channel: channels {b.first}-{b.last} overlap span {a.span}'s "
                           f"{a.first}-{a.last}")
    return out


def _groups(spans: list[PlannedSpan]) -> dict[str, Group]:
    """One DAHDI group per trunk, numbered 1, 2 ... in order of the first span that carries it."""
    chans: dict[str, list[int]] = {}
    for sp in spans:
        if sp.trunk is not None:
            chans.setdefault(sp.trunk, []).extend(sp.bchans)
        for p in sp.ports:
            if p.kind == "fxo" and p.trunk is not None:
                chans.setdefault(p.trunk, []).append(p.channel)
    return {t: Group(i, t, tuple(c)) for i, (t, c) in enumerate(chans.items(), start=1)}


def check(cards: CardsConf, trunks: Mapping[str, Any], phones: Mapping[str, Any]) -> list[str]:
    """Every problem of ``cards`` against the rest of the config (trunks and their DIDs, phones)."""
    p, problems = plan(cards, {n: t.dids for n, t in trunks.items()})
    fxs_seen: dict[str, str] = {}
    for sp in p.spans:
        path = f"cards.spans.{sp.span}"
        if sp.trunk is not None and sp.trunk not in trunks:
            problems.append(f"{path}.trunk: unknown trunk {sp.trunk!r}")
        for port in sp.ports:
            pp = f"{path}.ports.{port.port}"
            if port.kind == "fxo":
                if port.trunk not in trunks:
                    problems.append(f"{pp}.fxo: unknown trunk {port.trunk!r}")
                    continue
                dids = trunks[port.trunk].dids
                if port.did is None:
                    problems.append(f"{pp}.did: required: which of trunk {port.trunk!r}'s DIDs a call on this line "
                                    f"is (an analog line delivers no number)" if dids else
                                    f"{pp}.fxo: trunk {port.trunk!r} has no DIDs: calls on this line would be refused")
                elif port.did not in dids:
                    problems.append(f"{pp}.did: {port.did!r} is not one of trunk {port.trunk!r}'s DIDs")
            else:
                ext = port.extension or ""
                if ext in phones:
                    problems.append(f"{pp}.fxs: extension {ext} is already a SIP phone (phones.{ext})")
                elif ext in fxs_seen:
                    problems.append(f"{pp}.fxs: extension {ext} is already the phone on {fxs_seen[ext]}")
                fxs_seen.setdefault(ext, pp)
    return problems
