"""Telephony cards: the cards: schema and its checks, the rendered DAHDI/Asterisk files (golden files,
and Debian's dahdi_cfg parsing system.conf without a card), dial strings, span alarms from AMI bytes."""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest

from callcenter.asterisk import contract
from callcenter.asterisk.render import render
from callcenter.cli.screen import render_text
from callcenter.config import ConfigError, parse
from callcenter.features.cards.dial import dials_out, trunk_dial
from callcenter.features.cards.plan import plan, ranges
from callcenter.features.cards.render import chan_dahdi_conf, system_conf
from callcenter.features.cards.schema import CardsConf, ZONES
from callcenter.features.cards.service import CardsMonitor
from callcenter.protocol.ami import AmiParser

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden" / "cards"
BASE = yaml.safe_load((ROOT / "config" / "callcenter.yaml").read_text())
EXAMPLE = yaml.safe_load((ROOT / "hardware" / "cards.example.yaml").read_text())
SIP_PHONE = next(iter(BASE["phones"]))


# SIP trunks of the tests' own (the shipped config's may change): one inbound only, one with a host
SIP_TRUNKS = {"sip-in": {"match": ["127.0.0.50"], "dids": {"5557000": {"menu": "main"}}},
              "sip-out": {"match": ["127.0.0.51"], "host": "127.0.0.51", "dids": {}}}


def with_cards(overlay: dict | None = None, **spans: object) -> dict:
    """The shipped config plus the hardware example (or ``overlay``) and :data:`SIP_TRUNKS`, spans
    replaced by ``spans``."""
    data = copy.deepcopy(BASE)
    over = copy.deepcopy(EXAMPLE if overlay is None else overlay)
    data["trunks"].update(copy.deepcopy(SIP_TRUNKS))
    data["trunks"].update(over.get("trunks", {}))
    data["cards"] = over.get("cards", {})
    if spans:
        data["cards"]["spans"] = {int(k.removeprefix("s")): v for k, v in spans.items()}
        fed = {v.get("trunk") for v in spans.values() if isinstance(v, dict)} | {
            p.get("fxo") for v in spans.values() if isinstance(v, dict)
            for p in (v.get("ports") or {}).values() if isinstance(p, dict)}
        for name in set(over.get("trunks", {})) - fed:  # neither a SIP side nor a card: refused as such
            t = data["trunks"][name]
            if not t.get("match") and not t.get("host"):
                del data["trunks"][name]
    return data


def problems(data: dict) -> list[str]:
    try:
        parse(data)
    except ConfigError as e:
        return e.problems
    return []


CFG = parse(with_cards())
FILES = render(CFG)
PLAN, _ = plan(CFG.cards, {n: t.dids for n, t in CFG.trunks.items()})


# --------------------------------------------------------------------------- golden files

def _golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert text == path.read_text(), f"{name} differs from its golden file (UPDATE_GOLDEN=1 to accept)"


def test_system_conf_golden() -> None:
    """system.conf of the hardware example is the reviewed golden file."""
    _golden("system.conf", system_conf(PLAN))


def test_chan_dahdi_conf_golden() -> None:
    """chan_dahdi.conf of the hardware example is the reviewed golden file, and render() ships it."""
    _golden("chan_dahdi.conf", FILES["chan_dahdi.conf"])


def test_extensions_golden() -> None:
    """The dialplan lines the cards add (FXS extensions, FXO line contexts) are the golden ones."""
    ext = FILES["extensions.conf"]
    lines = [ln for ln in ext.splitlines() if "DAHDI/" in ln]
    blocks = [b for b in ext.split("\n[") if b.startswith("cc-line-")]  # the FXO lines' contexts
    _golden("extensions-cards.conf", "\n".join(lines) + "\n" + "".join("[" + b for b in blocks))


def test_no_cards_renders_nothing_new() -> None:
    """Without cards: no chan_dahdi.conf, and every trunk keeps its SIP endpoint."""
    cfg = parse(copy.deepcopy(BASE))
    out = render(cfg)
    assert "chan_dahdi.conf" not in out
    assert all(f"[trunk-{t}]" in out["pjsip.conf"] for t in cfg.trunks)


def test_card_only_trunks_have_no_sip_endpoint() -> None:
    """A trunk with neither match nor host gets no PJSIP endpoint; its context still routes its DIDs."""
    pj, ext = FILES["pjsip.conf"], FILES["extensions.conf"]
    assert "[trunk-telco]" not in pj and "[trunk-sip-in]" in pj and "[trunk-sip-out]" in pj
    ctx = ext.split("[cc-trunk-telco]", 1)[1].split("\n[", 1)[0]
    assert "exten => 5551000,1,Set(CC_DID=5551000)" in ctx


def test_fxo_line_reaches_its_did() -> None:
    """An FXO line's context sends its s extension to the trunk's context at the line's DID."""
    ctx = FILES["extensions.conf"].split("[cc-line-lines-5553000]", 1)[1].split("\n[", 1)[0]
    assert "exten => s,1,Goto(cc-trunk-lines,5553000,1)" in ctx
    assert "context=cc-line-lines-5553000" in FILES["chan_dahdi.conf"]


def test_every_block_sets_what_it_relies_on() -> None:
    """Options carry over in chan_dahdi.conf: every channel block sets signalling, context, group, callerid."""
    blocks = FILES["chan_dahdi.conf"].split("[channels]", 1)[1].split("\n\n")
    chan_blocks = [b for b in blocks if "channel =>" in b]
    assert len(chan_blocks) == 6
    for b in chan_blocks:
        keys = {ln.split("=", 1)[0] for ln in b.splitlines() if "=" in ln and not ln.startswith(";")}
        assert {"signalling", "context", "group", "callerid", "echocancel"} <= keys, b


# --------------------------------------------------------------------------- dahdi_cfg (Debian's dahdi)

def _dahdi_cfg(conf: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    """Debian's dahdi_cfg in test mode. It opens /dev/dahdi/ctl before reading the file (and then only
    ioctls it when applying), so it runs in a private mount namespace where that is an empty file."""
    exe = shutil.which("dahdi_cfg") or ("/usr/sbin/dahdi_cfg" if Path("/usr/sbin/dahdi_cfg").exists() else None)
    unshare = shutil.which("unshare")
    if exe is None or unshare is None:
        if os.environ.get("CI") == "true":
            pytest.fail("dahdi_cfg (Debian package dahdi) or unshare missing: `make sysdeps` installs them")
        pytest.skip("dahdi_cfg not installed (Debian package dahdi)")
    f = tmp / "system.conf"
    f.write_text(conf)
    script = "mount -t tmpfs tmpfs /dev && mkdir /dev/dahdi && : > /dev/dahdi/ctl && exec \"$0\" -t -vv -c \"$1\""
    r = subprocess.run([unshare, "--mount", "--propagation", "private", "sh", "-c", script, exe, str(f)],
                       capture_output=True, text=True, timeout=20)
    if "mount" in r.stderr and "ermission" in r.stderr and os.environ.get("CI") != "true":
        pytest.skip("no mount namespace here (unshare needs CAP_SYS_ADMIN)")
    return r


def _channel_map(out: str) -> dict[int, str]:
    return {int(m[1]): m[2] for m in re.finditer(r"^Channel (\d+): (.+?) \(", out, re.M)}


def test_dahdi_cfg_reads_the_rendered_system_conf(tmp_path: Path) -> None:
    """dahdi_cfg parses the example's system.conf without errors and sees each channel in its role."""
    r = _dahdi_cfg(system_conf(PLAN), tmp_path)
    errors = [ln for ln in r.stderr.splitlines() if re.match(r"line \d+:", ln) and "version information" not in ln]
    assert r.returncode == 0 and not errors, r.stderr
    chans = _channel_map(r.stdout)
    assert "SPAN 1: CCS/HDB3" in r.stdout and "SPAN 2: CCS/ AMI" in r.stdout
    assert chans[16] == chans[34] == "Hardware assisted D-channel"
    assert {chans[c] for c in [*range(1, 16), *range(17, 32), 32, 33]} == {"Clear channel"}
    assert chans[35] == chans[36] == "FXS Kewlstart"  # the telco lines: FXS signalling on FXO ports
    assert chans[37] == chans[38] == "FXO Kewlstart"  # the analog phones
    assert len(chans) == 38


def test_dahdi_cfg_refuses_what_it_must(tmp_path: Path) -> None:
    """The same dahdi_cfg run fails on a channel given two roles and on an unknown tone zone (the check can fail)."""
    bad = system_conf(PLAN).replace("fxoks=37-38", "fxoks=36-38").replace("defaultzone=us", "defaultzone=xx")
    r = _dahdi_cfg(bad, tmp_path)
    assert r.returncode != 0
    assert "Channel 36 already configured" in r.stderr and "No such tone zone known: xx" in r.stderr


@pytest.mark.parametrize("kind", ["t1", "bri-net", "every-zone"])
def test_dahdi_cfg_reads_other_layouts(kind: str, tmp_path: Path) -> None:
    """T1 (esf/b8zs, D on 24), a network-side BRI (timing 0) and every tone zone we accept parse in dahdi_cfg."""
    if kind == "every-zone":
        text = "".join(f"loadzone={z}\n" for z in ZONES) + "".join(f"defaultzone={z}\n" for z in ZONES)
        r = _dahdi_cfg(text, tmp_path)
        assert r.returncode == 0, r.stderr
        return
    spans = ({"s1": {"type": "t1", "trunk": "telco", "signalling": "pri_cpe", "framing": "d4", "coding": "ami"}}
             if kind == "t1" else {"s1": {"type": "bri", "trunk": "isdn", "signalling": "bri_net"}})
    cfg = parse(with_cards(**spans))
    p, errs = plan(cfg.cards)
    assert not errs
    text = system_conf(p)
    assert ("span=1,1,0,d4,ami" in text) if kind == "t1" else ("span=1,0,0,ccs,ami" in text)
    r = _dahdi_cfg(text, tmp_path)
    assert r.returncode == 0, r.stderr
    chans = _channel_map(r.stdout)
    assert chans[24 if kind == "t1" else 3] == "Hardware assisted D-channel"


# --------------------------------------------------------------------------- validation with key paths

E1 = {"type": "e1", "trunk": "telco"}


@pytest.mark.parametrize("spans, expected", [
    ({"s1": {"type": "analog", "channels": 2,
             "ports": {1: {"fxo": "lines", "did": "5553000", "signalling": "fxo_ks"}}}},
     "cards.spans.1.ports.1.signalling: fxo_ks is for FXS ports (phones); an FXO port (a line from the telco) is "
     "driven with FXS signalling"),
    ({"s1": {"type": "analog", "channels": 2, "ports": {2: {"fxs": "1299", "signalling": "fxs_ls"}}}},
     "cards.spans.1.ports.2.signalling: fxs_ls is for FXO ports (telco lines); an FXS port (an analog phone) is "
     "driven with FXO signalling"),
    ({"s1": {"type": "bri", "trunk": "isdn", "signalling": "pri_cpe"}},
     "cards.spans.1.signalling: 'pri_cpe' does not fit a BRI span: bri_cpe or bri_cpe_ptmp or bri_net "
     "(pri_cpe is for a PRI (E1/T1) span)"),
    ({"s1": {**E1, "signalling": "bri_cpe"}}, "cards.spans.1.signalling: 'bri_cpe' does not fit an E1 PRI span"),
    ({"s1": {**E1, "signalling": "fxs_ks"}}, "(analog signalling goes on the ports of an analog span)"),
    ({"s1": {**E1, "signalling": "mfcr2"}}, "(only ISDN PRI/BRI and analog lines are supported)"),
    ({"s1": {"type": "bri", "trunk": "isdn"}}, "cards.spans.1.signalling: required for a BRI span"),
    ({"s1": {"type": "bri", "trunk": "isdn", "signalling": "bri_net_ptmp"}}, "no point-to-multipoint on the network"),
    ({"s1": {"type": "t1", "trunk": "telco", "coding": "hdb3"}},
     "cards.spans.1.coding: 'hdb3' does not fit a T1 span: b8zs or ami"),
    ({"s1": {"type": "t1", "trunk": "telco", "crc4": True}}, "cards.spans.1.crc4: CRC-4 is an E1 option only"),
    ({"s1": {**E1, "framing": "cas"}}, "cards.spans.1.framing: 'cas' does not fit a E1 span: ccs (cas is E1 CAS/R2"),
    ({"s1": {**E1, "framing": "esf"}}, "cards.spans.1.framing: 'esf' does not fit a E1 span"),
    ({"s1": {"type": "bri", "trunk": "isdn", "signalling": "bri_cpe", "dchannel": "dchan"}},
     "cards.spans.1.dchannel: BRI spans (wcb4xxp and alike) need hardhdlc"),
    ({"s1": {**E1, "switchtype": "japan"}}, "cards.spans.1.switchtype: unknown switchtype 'japan'"),
    ({"s1": {**E1, "signalling": "pri_net", "timing": 1}}, "cards.spans.1.timing: a network-side span (pri_net)"),
    ({"s1": E1, "s2": {**E1, "timing": 1}}, "cards.spans.2.timing: span 1 already has clock priority 1"),
    ({"s1": {"type": "e1"}}, "cards.spans.1.trunk: required"),
    ({"s1": {**E1, "trunk": "nope"}}, "cards.spans.1.trunk: unknown trunk 'nope'"),
    ({"s1": {**E1, "ports": {1: {"fxs": "1299"}}}}, "cards.spans.1.ports: only for analog spans"),
    ({"s1": E1, "s3": E1}, "cards.spans.3.first_channel: required: span 2 is not configured"),
    ({"s1": E1, "s2": {**E1, "first_channel": 20}},
     "cards.spans.2.first_channel: channels 20-50 overlap span 1's 1-31"),
    ({"s1": {**E1, "first_channel": 1000}}, "cards.spans.1: channels 1000-1030 go past DAHDI's last channel 1023"),
    ({"s200": E1}, "cards.spans.200: span numbers are 1-127"),
    ({"s1": {"type": "analog", "ports": {1: {"fxs": "1299"}}}}, "cards.spans.1.channels: required for an analog span"),
    ({"s1": {"type": "analog", "channels": 4, "ports": {5: {"fxs": "1299"}}}},
     "cards.spans.1.ports.5: no such port: the span has ports 1-4"),
    ({"s1": {"type": "analog", "channels": 4, "ports": {1: {"fxs": "1299", "fxo": "lines"}}}},
     "cards.spans.1.ports.1: exactly one of fxo: TRUNK"),
    ({"s1": {"type": "analog", "channels": 4, "signalling": "fxs_ks"}},
     "cards.spans.1.signalling: not for an analog span (set fxo/fxs and signalling per port)"),
    ({"s1": {"type": "analog", "channels": 4, "ports": {1: {"fxo": "telco"}}}},
     "cards.spans.1.ports.1.did: required: which of trunk 'telco''s DIDs"),
    ({"s1": {"type": "analog", "channels": 4, "ports": {1: {"fxo": "lines", "did": "5559999"}}}},
     "cards.spans.1.ports.1.did: '5559999' is not one of trunk 'lines''s DIDs"),
    ({"s1": {"type": "analog", "channels": 4, "ports": {1: {"fxs": SIP_PHONE}}}},
     f"cards.spans.1.ports.1.fxs: extension {SIP_PHONE} is already a SIP phone (phones.{SIP_PHONE})"),
    ({"s1": {"type": "analog", "channels": 4, "ports": {1: {"fxs": "1299"}, 2: {"fxs": "1299"}}}},
     "cards.spans.1.ports.2.fxs: extension 1299 is already the phone on cards.spans.1.ports.1"),
    ({"s1": {"type": "analog", "channels": 4, "ports": {1: {"fxs": "12a"}}}},
     "cards.spans.1.ports.1.fxs: extension must be 2-15 digits"),
    ({"s1": {"type": "analog", "channels": 4, "ports": {1: {"fxo": "lines", "signalling": "wink"}}}},
     "cards.spans.1.ports.1.signalling: 'wink' is not analog signalling"),
    ({"s1": {**E1, "echocanceller": "best"}}, "cards.spans.1.echocanceller: unknown echo canceller 'best'"),
])
def test_mistakes_are_named_by_key_path(spans: dict, expected: str) -> None:
    """Each mistake fails loading with its dotted key path and a reason that says what would fit."""
    found = problems(with_cards(**spans))
    assert any(expected in p for p in found), found


def test_schema_level_values_fail_with_key_paths() -> None:
    """Unknown span types, zones and keys fail in pydantic, with the dotted path too."""
    data = with_cards(s1={"type": "j1", "trunk": "telco"})
    data["cards"]["zone"] = "mars"
    data["cards"]["spans"][1]["colour"] = "red"
    found = problems(data)
    assert any(p.startswith("cards.spans.1.type: unknown value 'j1'") for p in found), found
    assert any(p.startswith("cards.zone: unknown tone zone 'mars'") for p in found), found
    assert "cards.spans.1.colour: unknown key" in found


def test_single_did_line_needs_no_did() -> None:
    """An FXO line of a trunk with exactly one DID takes that DID."""
    spans = {"s1": {"type": "analog", "channels": 1, "ports": {1: {"fxo": "lines"}}}}
    cfg = parse(with_cards(**spans))
    p, errs = plan(cfg.cards, {n: t.dids for n, t in cfg.trunks.items()})
    assert not errs and p.spans[0].ports[0].did == "5553000"


def test_example_has_no_problems_and_defaults() -> None:
    """The shipped example loads; E1 defaults to ccs/hdb3/crc4, the BRI takes the second clock priority."""
    s1, s2, s3 = PLAN.spans
    assert (s1.framing, s1.coding, s1.crc4, s1.timing, s1.dchan) == ("ccs", "hdb3", True, 1, 16)
    assert (s2.first, s2.last, s2.timing, s2.dchan) == (32, 34, 2, 34)
    assert (s3.first, s3.last) == (35, 38)
    assert {g.trunk: g.number for g in PLAN.groups.values()} == {"telco": 1, "isdn": 2, "lines": 3}


LAYOUT = st.lists(st.sampled_from(["e1", "t1", "bri", "a1", "a4", "a8", "a24"]), min_size=1, max_size=12)


@settings(max_examples=80, deadline=None)
@given(LAYOUT)
def test_every_channel_has_exactly_one_role(layout: list[str]) -> None:
    """For any layout of spans, system.conf gives each channel of each span exactly one role, in its span's range."""
    spans = {}
    for i, t in enumerate(layout, start=1):
        if t.startswith("a"):
            n = int(t[1:])
            spans[i] = {"type": "analog", "channels": n,
                        "ports": {k: ({"fxo": "lines", "did": "5553000"} if k % 2 else {"fxs": f"{2000 + 100 * i + k}"})
                                  for k in range(1, n + 1)}}
        else:
            spans[i] = {"type": t, "trunk": "telco", **({"signalling": "bri_cpe"} if t == "bri" else {})}
    cfg = parse(with_cards(**{f"s{k}": v for k, v in spans.items()}))
    p, errs = plan(cfg.cards)
    assert not errs
    seen: dict[int, str] = {}
    for line in system_conf(p).splitlines():
        key, _, val = line.partition("=")
        if key in ("bchan", "hardhdlc", "dchan", "fxsks", "fxoks"):
            for part in val.split(","):
                a, _, b = part.partition("-")
                for c in range(int(a), int(b or a) + 1):
                    assert c not in seen, f"channel {c} has two roles"
                    seen[c] = key
    expected = {c for sp in p.spans for c in range(sp.first, sp.last + 1)}
    assert set(seen) == expected
    assert sorted(seen) == list(range(1, len(seen) + 1))  # numbered across spans without gaps


def test_ranges() -> None:
    """Channel lists are written as ranges."""
    assert ranges([1, 2, 3, 5, 7, 8]) == "1-3,5,7-8" and ranges([4]) == "4" and ranges([]) == ""


# --------------------------------------------------------------------------- outbound

def test_dial_strings() -> None:
    """A card trunk dials its DAHDI group; a SIP trunk its endpoint; digits only."""
    assert trunk_dial(CFG, "telco", "5550100") == "DAHDI/g1/5550100"
    assert trunk_dial(CFG, "lines", "5550100") == "DAHDI/g3/5550100"
    assert trunk_dial(CFG, "sip-out", "5550100") == "PJSIP/5550100@trunk-sip-out"
    assert dials_out(CFG, "telco") and dials_out(CFG, "sip-out") and not dials_out(CFG, "sip-in")
    with pytest.raises(ValueError):
        trunk_dial(CFG, "telco", "555&DAHDI/1")


def test_callback_goes_back_out_on_the_card_trunk_it_came_in_on() -> None:
    """A caller who came in on the E1 is called back on the E1 (the trunk of the DID can dial out)."""
    from callcenter.features.callback.handlers import CallbackHandlers
    h = CallbackHandlers(lambda: CFG, None, None, lookup_call=None, dial_back=lambda n, t: n)  # type: ignore[arg-type]
    assert h.trunk_of("5551000") == "telco" and h.trunk_of("5553000") == "lines"
    assert h.trunk_of("5557000") is None  # sip-in: inbound only, no card


def test_campaign_on_a_card_trunk_loads() -> None:
    """A campaign may dial out on a card trunk (no SIP host); on an inbound-only SIP trunk it may not."""
    data = with_cards()
    if not data.get("campaigns"):
        pytest.skip("the shipped config has no campaign to move")
    camp = next(iter(data["campaigns"]))
    data["campaigns"][camp]["trunk"] = "telco"
    assert not [p for p in problems(data) if "campaigns" in p]
    data["campaigns"][camp]["trunk"] = "sip-in"
    assert any(p.startswith(f"campaigns.{camp}.trunk: trunk 'sip-in' has no host") for p in problems(data))


# --------------------------------------------------------------------------- alarms from AMI bytes

def _ami(*events: dict[str, str]) -> bytes:
    """AMI bytes as chan_dahdi writes them (Event, Privilege, then its fields; CRLF)."""
    out = b"Asterisk Call Manager/9.0.0\r\n"
    for e in events:
        name = e.pop("Event")
        lines = [f"Event: {name}", "Privilege: system,all", *(f"{k}: {v}" for k, v in e.items())]
        out += ("\r\n".join(lines) + "\r\n\r\n").encode()
    return out


def _feed(mon: CardsMonitor, data: bytes, chunk: int = 7) -> None:
    p = AmiParser()
    for i in range(0, len(data), chunk):  # split anywhere, as TCP does
        for msg in p.feed(data[i:i + chunk]):
            mon.on_event(msg)


def _metric(reg: CollectorRegistry, name: str, span: int) -> float:
    text = generate_latest(reg).decode()
    m = re.search(rf'^{name}{{span="{span}"}} (\S+)$', text, re.M)
    assert m, text
    return float(m[1])


def test_span_alarm_to_metric_status_and_screen() -> None:
    """SpanAlarm / SpanAlarmClear bytes move the span's gauge, /status and the screen; alarms are counted."""
    reg = CollectorRegistry()
    now = [1000.0]
    mon = CardsMonitor(CFG.cards, reg, clock=lambda: now[0])
    assert _metric(reg, "callcenter_card_span_up", 1) == -1  # unknown before any event or snapshot
    _feed(mon, _ami(*[{"Event": "DAHDIShowStatus", "Span": str(n), "Alarms": "OK"} for n in (1, 2, 3)]))
    assert _metric(reg, "callcenter_card_span_up", 1) == -1  # list items of an action are not events
    mon.resynced([m for m in AmiParser().feed(_ami(*[{"Event": "DAHDIShowStatus", "Span": str(n), "Alarms": "OK"}
                                                     for n in (1, 2, 3)]))])
    assert [_metric(reg, "callcenter_card_span_up", n) for n in (1, 2, 3)] == [1, 1, 1]
    now[0] = 1010.0
    _feed(mon, _ami({"Event": "SpanAlarm", "Span": "1", "Alarm": "Red Alarm"},
                    *[{"Event": "Alarm", "DAHDIChannel": str(c), "Alarm": "Red Alarm"} for c in PLAN.spans[0].bchans]))
    assert _metric(reg, "callcenter_card_span_up", 1) == 0
    assert _metric(reg, "callcenter_card_channels_in_alarm", 1) == 30
    assert _metric(reg, "callcenter_card_span_alarms_total", 1) == 1
    st = mon.status()["1"]
    assert (st["state"], st["alarm"], st["since"], st["trunks"]) == ("alarm", "Red Alarm", 1010.0, ["telco"])
    screen = render_text({"cards": mon.status()})
    assert re.search(r"^1\s+e1\s+ALARM\s+1-31\s+telco\s+Red Alarm 30 channel\(s\) in alarm$", screen, re.M), screen
    _feed(mon, _ami({"Event": "SpanAlarmClear", "Span": "1"},
                    *[{"Event": "AlarmClear", "DAHDIChannel": str(c)} for c in PLAN.spans[0].bchans]))
    assert _metric(reg, "callcenter_card_span_up", 1) == 1
    assert _metric(reg, "callcenter_card_span_alarms_total", 1) == 1
    assert re.search(r"^1\s+e1\s+up\s+", render_text({"cards": mon.status()}), re.M)


def test_analog_port_alarm_and_unconfigured_spans() -> None:
    """An FXO line without battery (a channel Alarm) puts its analog span in alarm until its AlarmClear;
    events for unconfigured spans and channels leave the labels alone."""
    reg = CollectorRegistry()
    mon = CardsMonitor(CFG.cards, reg)
    mon.resynced(AmiParser().feed(_ami(*[{"Event": "DAHDIShowStatus", "Span": str(n), "Alarms": "OK"}
                                         for n in (1, 2, 3, 9)])))
    _feed(mon, _ami({"Event": "Alarm", "DAHDIChannel": "36", "Alarm": "Red Alarm"},
                    {"Event": "SpanAlarm", "Span": "9", "Alarm": "Red Alarm"},
                    {"Event": "Alarm", "DAHDIChannel": "500", "Alarm": "Red Alarm"},
                    {"Event": "SpanAlarm", "Span": "x", "Alarm": "Red Alarm"}))
    assert _metric(reg, "callcenter_card_span_up", 3) == 0 and _metric(reg, "callcenter_card_span_up", 1) == 1
    assert mon.status()["3"]["channels_in_alarm"] == [36]
    assert 'span="9"' not in generate_latest(reg).decode()
    _feed(mon, _ami({"Event": "AlarmClear", "DAHDIChannel": "36"}))
    assert _metric(reg, "callcenter_card_span_up", 3) == 1


def test_snapshot_alarms_and_ami_loss() -> None:
    """A snapshot names alarmed spans (YEL/RED), a span missing from it is unknown, and AMI down makes all unknown."""
    mon = CardsMonitor(CFG.cards)
    mon.resynced(AmiParser().feed(_ami({"Event": "DAHDIShowStatus", "Span": "1", "Alarms": "YEL/RED"},
                                       {"Event": "DAHDIShowStatus", "Span": "2", "Alarms": "OK"})))
    s = mon.status()
    assert (s["1"]["state"], s["1"]["alarm"], s["2"]["state"], s["3"]["state"]) == ("alarm", "YEL/RED", "up", "unknown")
    mon.resynced(None)  # Asterisk without chan_dahdi: the action failed
    assert {v["state"] for v in mon.status().values()} == {"unknown"}
    mon.resynced(AmiParser().feed(_ami({"Event": "DAHDIShowStatus", "Span": "1", "Alarms": "OK"})))
    mon.ami_down()
    assert mon.status()["1"]["state"] == "unknown"


def test_alarm_events_pass_the_ami_filter() -> None:
    """manager.conf lets the four chan_dahdi alarm events through to the daemon (class system is read)."""
    for e in ("Alarm", "AlarmClear", "SpanAlarm", "SpanAlarmClear"):
        assert e in contract.AMI_EVENTS
        assert f"eventfilter(action(include),name({e})) =" in FILES["manager.conf"]
    assert "system" in FILES["manager.conf"].split("read=", 1)[1].split("\n", 1)[0]
    assert "reportalarms=all" in FILES["chan_dahdi.conf"]


def test_reconfigure_keeps_known_spans() -> None:
    """A reload keeps the state of spans still configured and starts new ones unknown."""
    mon = CardsMonitor(CFG.cards)
    mon.resynced(AmiParser().feed(_ami({"Event": "DAHDIShowStatus", "Span": "1", "Alarms": "OK"})))
    data = with_cards()
    data["cards"]["spans"][4] = {"type": "analog", "channels": 1, "ports": {1: {"fxs": "1299"}}}
    mon.reconfigure(parse(data).cards)
    assert mon.status()["1"]["state"] == "up" and mon.status()["4"]["state"] == "unknown"
    mon.reconfigure(CardsConf())
    assert not mon.enabled and mon.status() == {}


def test_a_trunk_with_neither_sip_side_nor_card_is_refused() -> None:
    """A trunk without match/host/register is accepted only while a card carries it."""
    data = with_cards()
    data["trunks"]["orphan"] = {"match": [], "dids": {}}
    assert problems(data) == ["trunks.orphan.match: required (the carrier's addresses) unless the trunk "
                              "registers or a card carries it"]
