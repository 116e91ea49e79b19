"""Carrier trunks: config validation (dotted key paths), the rendered PJSIP objects and dialplan, and
the registration state fed by AMI (model, status, metrics)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest

from callcenter.asterisk.render import render
from callcenter.config import ConfigError, load, parse
from callcenter.features.trunks.registrations import STATES, Reg, Registrations, apply, status_lines
from callcenter.features.trunks.render import dialplan_lines, pjsip_lines
from callcenter.features.trunks.schema import outbound_caller_id
from callcenter.protocol.ami import Message
from tests.unit.test_render import section, sections

ROOT = Path(__file__).resolve().parents[2]
LAB_RAW = yaml.safe_load((ROOT / "tests" / "asterisk" / "lab.yaml").read_text())
LAB = load(ROOT / "tests" / "asterisk" / "lab.yaml")


def problems_of(**trunk: object) -> list[str]:
    data = copy.deepcopy(LAB_RAW)
    data["trunks"]["x"] = {"dids": {}, **trunk}
    with pytest.raises(ConfigError) as ei:
        parse(data)
    return ei.value.problems


def cfg_with(**trunk: object):  # type: ignore[no-untyped-def]
    data = copy.deepcopy(LAB_RAW)
    data["trunks"]["x"] = {"dids": {}, **trunk}
    return parse(data)


AUTH = {"username": "acct-9", "secret": "s3cret-pass"}


# --------------------------------------------------------------------------- config

def test_lab_carrier_trunk_loads():
    """The lab's carrier trunk reads its auth, registration and outbound identity."""
    t = LAB.trunks["carrier"]
    assert t.auth is not None and t.auth.username == "cc-acct1"
    assert t.register is not None and t.register.expiry_s == 120 and t.register.random_delay_s == 0
    assert t.from_user == "cc-acct1" and t.from_domain == "carrier.lab" and t.caller_id == "+12125551500"
    assert t.match == () and t.did_from == "to" and t.codecs == ("ulaw", "alaw")


@pytest.mark.parametrize("trunk, expected", [
    ({"host": "sip.example.net", "register": {}}, "trunks.x.register: needs trunks.x.auth (the carrier's credentials)"),
    ({"host": "sip.example.net"}, "trunks.x.match: required (the carrier's addresses) unless the trunk registers "
                                 "or a card carries it"),
    ({"register": {}, "auth": AUTH}, "trunks.x.register.server: required when the trunk has no host"),
    ({"match": ["10.0.0.1"], "codecs": ["ulaw", "h264"]}, "trunks.x.codecs.1: unknown codec 'h264'"),
    ({"match": ["10.0.0.1"], "codecs": []}, "trunks.x.codecs: at least one codec"),
    ({"match": ["10.0.0.1"], "host": "bad host;x=1"}, "trunks.x.host: 'bad host;x=1' is not a host name or IP address"),
    ({"match": ["10.0.0.1"], "from_domain": "a\nb"}, "trunks.x.from_domain: 'a\\nb' is not a host name or IP address"),
    ({"match": ["10.0.0.1"], "auth": {"username": "a", "secret": "short"}}, "trunks.x.auth.secret: a secret is 8-128"),
    ({"match": ["10.0.0.1"], "auth": {"username": "a", "secret": "new\nline=1x"}}, "trunks.x.auth.secret: a secret"),
    ({"match": ["10.0.0.1"], "auth": {"username": "a;b", "secret": "s3cret-pass"}}, "trunks.x.auth.username: "),
    ({"match": ["10.0.0.1"], "from_user": "x y"}, "trunks.x.from_user: "),
    ({"match": ["10.0.0.1"], "caller_id": "12ab"}, "trunks.x.caller_id: "),
    ({"match": ["10.0.0.1"], "did_from": "from"}, "trunks.x.did_from: unknown value 'from'"),
    ({"host": "127.0.0.4", "port": 5066, "auth": {"username": "cc-acct1", "secret": "s3cret-pass"}, "register": {}},
     "trunks.x.register: trunk 'carrier' registers the same account to the same server"),
    ({"match": ["10.0.0.1"], "register": {"expiry_s": 10}, "auth": AUTH, "host": "h"},
     "trunks.x.register.expiry_s: input should be greater than or equal to 60"),
])
def test_bad_trunk_settings_name_their_key(trunk: dict[str, object], expected: str) -> None:
    """Each bad carrier setting fails at start-up with its dotted key path."""
    problems = problems_of(**trunk)
    assert any(p.startswith(expected) for p in problems), problems


def test_registration_alone_identifies_a_trunk() -> None:
    """A trunk that registers needs no source addresses (the carrier's calls come to its contact)."""
    cfg = cfg_with(host="sip.example.net", auth=AUTH, register={})
    assert cfg.trunks["x"].match == ()


# --------------------------------------------------------------------------- pjsip.conf

def test_registering_trunk_renders_auth_registration_and_identity() -> None:
    """Endpoint with outbound_auth, From user/domain, PAI and codecs; auth; registration with line=yes."""
    pj = render(LAB)["pjsip.conf"]
    ep = section(pj, "trunk-carrier", "endpoint")
    assert ep["outbound_auth"] == ["trunk-carrier"] and ep["from_user"] == ["cc-acct1"]
    assert ep["from_domain"] == ["carrier.lab"] and ep["send_pai"] == ["yes"] and ep["trust_id_outbound"] == ["yes"]
    assert ep["allow"] == ["ulaw,alaw"] and ep["transport"] == ["cc-udp"] and ep["context"] == ["cc-trunk-carrier"]
    auth = section(pj, "trunk-carrier", "auth")
    assert auth["username"] == ["cc-acct1"] and auth["password"] == ["carrier-secret-1"] and "realm" not in auth
    reg = section(pj, "trunk-carrier", "registration")
    assert reg["server_uri"] == ["sip:127.0.0.4:5066"] and reg["client_uri"] == ["sip:cc-acct1@127.0.0.4:5066"]
    assert reg["line"] == ["yes"] and reg["endpoint"] == ["trunk-carrier"] and reg["outbound_auth"] == ["trunk-carrier"]
    assert reg["expiration"] == ["120"] and reg["retry_interval"] == ["5"]
    assert reg["forbidden_retry_interval"] == ["600"] and reg["max_random_initial_delay"] == ["0"]
    assert reg["transport"] == ["cc-udp"] and reg["contact_user"] == ["cc-acct1"]
    assert not [n for n, kv in sections(pj) if n == "trunk-carrier" and kv.get("type") == ["identify"]]


def test_address_trunk_renders_as_before() -> None:
    """A trunk without carrier settings: endpoint, aor and identify only (no auth, no registration, no PAI)."""
    pj = render(LAB)["pjsip.conf"]
    kinds = [kv["type"][0] for n, kv in sections(pj) if n == "trunk-pstn"]
    assert kinds == ["endpoint", "aor", "identify"]
    ep = section(pj, "trunk-pstn", "endpoint")
    assert "outbound_auth" not in ep and "from_user" not in ep and "send_pai" not in ep
    assert section(pj, "trunk-pstn", "identify")["match"] == ["127.0.0.2/32"]


def test_trunk_golden() -> None:
    """Every line of one carrier trunk, in order (realm, IPv6 host, own codecs, explicit registrar)."""
    cfg = cfg_with(host="2001:db8::5", port=5080, auth={**AUTH, "realm": "sip.example.net"}, match=["2001:db8::/64"],
                   register={"server": "reg.example.net", "port": 5090, "contact_user": "line1", "expiry_s": 600},
                   codecs=["alaw", "g722"], send_pai=False, from_user="acct-9")
    lines = pjsip_lines({"x": cfg.trunks["x"]})
    assert lines == [
        "[trunk-x]", "type=endpoint", "context=cc-trunk-x", "disallow=all", "allow=alaw,g722", "direct_media=no",
        "rtp_symmetric=yes", "dtmf_mode=rfc4733", "aors=trunk-x", "transport=cc-udp", "outbound_auth=trunk-x",
        "from_user=acct-9", "",
        "[trunk-x]", "type=auth", "auth_type=userpass", "username=acct-9", "password=s3cret-pass",
        "realm=sip.example.net", "",
        "[trunk-x]", "type=aor", "contact=sip:[2001:db8::5]:5080", "",
        "[trunk-x]", "type=identify", "endpoint=trunk-x", "match=2001:db8::/64", "",
        "[trunk-x]", "type=registration", "transport=cc-udp", "outbound_auth=trunk-x",
        "server_uri=sip:reg.example.net:5090", "client_uri=sip:acct-9@reg.example.net:5090", "contact_user=line1",
        "expiration=600", "retry_interval=60", "forbidden_retry_interval=300", "max_retries=10000",
        "max_random_initial_delay=10", "auth_rejection_permanent=yes", "line=yes", "endpoint=trunk-x", "",
    ]


# --------------------------------------------------------------------------- dialplan

def test_did_from_to_reads_the_to_header_filtered() -> None:
    """did_from: to sends every number to cc-dids-NAME at the To user, digits and + only; the DIDs live there."""
    ext = render(LAB)["extensions.conf"]
    entry = section(ext, "cc-trunk-carrier")
    assert len(entry["exten"]) == 3
    for e in entry["exten"][:2]:
        assert e.endswith(",1,Goto(cc-dids-carrier,${FILTER(+0123456789,"
                          "${PJSIP_PARSE_URI(${PJSIP_HEADER(read,To)},user)})},1)")
    assert entry["exten"][2] == "h,1,NoOp()"
    dids = section(ext, "cc-dids-carrier")
    assert dids["exten"] == ["5551500,1,Set(CC_DID=5551500)"] and dids["same"] == ["n,Goto(cc-ivr,s,1)"]


def test_did_from_request_uri_keeps_one_extension_per_did() -> None:
    """The default: the Request-URI's user is the extension, one per DID, no cc-dids context."""
    d = dialplan_lines({"pstn": LAB.trunks["pstn"]})
    assert d[0] == "[cc-trunk-pstn]" and "exten => 5551000,1,Set(CC_DID=5551000)" in d
    assert not any("cc-dids" in line for line in d)


# --------------------------------------------------------------------------- caller ID

def test_outbound_caller_id_prefers_the_call_then_the_trunk() -> None:
    """A campaign's (click-to-call's, callback's DID) number wins; else the trunk's; else none."""
    t = LAB.trunks["carrier"]
    assert outbound_caller_id(t, "5551000") == "5551000"
    assert outbound_caller_id(t, "") == "+12125551500"
    assert outbound_caller_id(LAB.trunks["pstn"], "") == ""
    assert outbound_caller_id(None, "") == ""


# --------------------------------------------------------------------------- registration state

def registry(status: str, user: str = "sip:cc-acct1@127.0.0.4:5066") -> Message:
    return Message((("Event", "Registry"), ("ChannelType", "PJSIP"), ("Username", user),
                    ("Domain", "sip:127.0.0.4:5066"), ("Status", status)))


def detail(name: str, status: str) -> Message:
    return Message((("Event", "OutboundRegistrationDetail"), ("ObjectName", name), ("Status", status)))


def test_registry_events_drive_state_status_and_metrics() -> None:
    """Registered then Rejected: status says rejected with a hint; the gauge drops to 0, the counter counts."""
    now = [1000.0]
    regs = Registrations(lambda: LAB.trunks, lambda: now[0])
    r = CollectorRegistry()
    r.register(regs)
    regs.on_event(registry("Registered"))
    st = regs.status()
    assert st["carrier"]["state"] == "registered" and st["carrier"]["identify"] == ["registration"]
    assert st["pstn"] == {"identify": ["address"], "outbound": True}  # no registration, no state
    assert 'callcenter_trunk_registered{trunk="carrier"} 1.0' in generate_latest(r).decode()
    now[0] = 1010.0
    regs.on_event(registry("Rejected"))
    regs.on_event(registry("Rejected"))
    st = regs.status()["carrier"]
    assert st["state"] == "rejected" and st["failures"] == 2 and "auth" in str(st["hint"]) and st["for_s"] == 0.0
    text = generate_latest(r).decode()
    assert 'callcenter_trunk_registered{trunk="carrier"} 0.0' in text
    assert 'callcenter_trunk_registration_failures_total{trunk="carrier"} 2.0' in text
    assert 'callcenter_trunk_registered{trunk="carrier-bad"} 0.0' in text  # unknown yet: not up


def test_resync_reads_the_snapshot_and_counts_a_standing_rejection_once() -> None:
    """PJSIPShowRegistrationsOutbound after each login: a rejection seen again is not a new failure."""
    regs = Registrations(lambda: LAB.trunks, lambda: 5.0)
    snap = [detail("trunk-carrier", "Registered"), detail("trunk-carrier-bad", "Rejected"),
            Message((("Event", "AuthDetail"), ("ObjectName", "trunk-carrier"), ("Password", "x")))]
    regs.resynced(snap)
    regs.resynced(snap)
    assert regs.regs["carrier"].state == "registered"
    assert regs.regs["carrier-bad"] == Reg("rejected", 5.0, 1, None)
    regs.resynced(None)  # the action failed: states kept
    assert regs.regs["carrier-bad"].state == "rejected"


def test_foreign_and_unknown_reports_are_ignored() -> None:
    """A Registry event of another registration (or channel driver) changes nothing."""
    regs = Registrations(lambda: LAB.trunks, lambda: 1.0)
    regs.on_event(registry("Registered", user="sip:someone@127.0.0.4:5066"))
    regs.on_event(Message((("Event", "Registry"), ("ChannelType", "IAX2"), ("Username", "sip:cc-acct1@127.0.0.4:5066"),
                           ("Domain", "sip:127.0.0.4:5066"), ("Status", "Registered"))))
    assert regs.regs == {}


@given(st.lists(st.sampled_from(["Registered", "Rejected", "Unregistered", "Stopped", "Stopping", "garbage", ""]),
                max_size=30))
def test_failures_count_rejections_and_state_is_named(reports: list[str]) -> None:
    """Whatever Asterisk reports, the state is one we name, and failures count exactly the rejections."""
    reg = Reg()
    for i, s in enumerate(reports):
        reg = apply(reg, s, float(i))
        assert reg.state in {*STATES.values(), "unknown"}
    assert reg.failures == reports.count("Rejected")


def test_status_lines_show_a_rejected_trunk() -> None:
    """`callcenter status` prints a TRUNKS block: the rejected trunk in capitals with its hint."""
    regs = Registrations(lambda: LAB.trunks, lambda: 1.0)
    regs.on_event(registry("Rejected", user="sip:cc-acct2@127.0.0.4:5066"))
    text = "\n".join(status_lines(regs.status()))
    line = next(x for x in text.splitlines() if x.startswith("carrier-bad "))
    assert "REJECTED" in line and "wrong trunks.carrier-bad.auth" in line
    assert next(x for x in text.splitlines() if x.startswith("pstn ")).split()[1] == "address"
