"""Rendering Asterisk's configuration files from the shipped config."""

from __future__ import annotations

import configparser
import copy
import re
from pathlib import Path

import pytest
import yaml

from callcenter.config import load, parse
from callcenter.asterisk import contract
from callcenter.asterisk.render import AMI_READ, AMI_WRITE, CHANNEL_VARS, render, write

ROOT = Path(__file__).resolve().parents[2]
CFG = load(ROOT / "config" / "callcenter.yaml")
OUT = render(CFG)


def sections(text: str) -> list[tuple[str, dict[str, list[str]]]]:
    """Asterisk .conf text as (section, {key: [values]}) in order; repeated section names stay separate."""
    out: list[tuple[str, dict[str, list[str]]]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith((";", "#include")):
            continue
        m = re.fullmatch(r"\[([^\]]+)\]", line)
        if m:
            out.append((m[1], {}))
            continue
        m = re.fullmatch(r"(exten|same)\s*=>\s*(.*)", line)
        if m:
            key, val = m[1], m[2]
        else:
            key, sep, val = line.split(";", 1)[0].partition("=")
            assert sep, f"not a key=value line: {raw!r}"
        out[-1][1].setdefault(key.strip(), []).append(val.strip())
    return out


def section(text: str, name: str, type_: str | None = None) -> dict[str, list[str]]:
    found = [kv for n, kv in sections(text) if n == name and (type_ is None or kv.get("type") == [type_])]
    assert len(found) == 1, (name, type_, len(found))
    return found[0]


def test_rendered_file_set():
    """render() produces exactly the Asterisk files the lab installs."""
    assert set(OUT) == {"pjsip.conf", "manager.conf", "extensions.conf", "callcenter-dialplan.conf",
                        "musiconhold.conf", "rtp.conf", "features.conf", "confbridge.conf"}
    assert all(text.endswith("\n") for text in OUT.values())


# --------------------------------------------------------------------------- manager.conf

def test_manager_user_write_is_least_privilege():
    """The AMI user's single write= line grants no system, command or config class."""
    user = section(OUT["manager.conf"], "callcenter")
    (write_line,) = user["write"]
    classes = set(write_line.split(","))
    assert classes == {"call", "originate", "reporting"} == set(AMI_WRITE.split(","))
    assert not classes & {"system", "command", "config", "all"}
    assert "write=" + write_line in OUT["manager.conf"].splitlines()
    assert [ln for ln in OUT["manager.conf"].splitlines() if ln.startswith("write=")] == [f"write={AMI_WRITE}"]


def test_manager_read_classes():
    """The AMI user reads exactly the event classes the daemon needs."""
    user = section(OUT["manager.conf"], "callcenter")
    assert user["read"] == [AMI_READ]
    assert "command" not in AMI_READ and "config" not in AMI_READ


def test_manager_sends_only_the_events_the_daemon_acts_on():
    """The AMI user gets an include filter by event name (hash-matched, no regex) for each event the
    daemon or the lab's witness reads, and no other filter: everything else stays in Asterisk."""
    lines = [ln for ln in OUT["manager.conf"].splitlines() if ln.startswith("eventfilter")]
    names = [re.fullmatch(r"eventfilter\(action\(include\),name\((\w+)\)\) =", ln) for ln in lines]
    assert all(names) and [m[1] for m in names] == list(contract.AMI_EVENTS), lines
    assert {"Hangup", "DialBegin", "DialEnd", "BridgeEnter", "OriginateResponse", "DeviceStateChange"} <= set(
        contract.AMI_EVENTS)
    assert not {"TestEvent", "RTCPSent", "Newstate", "VarSet", "Newexten"} & set(contract.AMI_EVENTS)


def test_manager_bound_to_loopback_only():
    """AMI listens on 127.0.0.1 and the user is denied everywhere except loopback."""
    general = section(OUT["manager.conf"], "general")
    assert general["bindaddr"] == ["127.0.0.1"]
    assert general["port"] == ["5038"]
    assert general["enabled"] == ["yes"]
    user = section(OUT["manager.conf"], "callcenter")
    assert user["deny"] == ["0.0.0.0/0.0.0.0"]
    assert user["permit"] == ["127.0.0.1/255.255.255.255"]
    assert user["secret"] == ["change-me-ami-secret"]


def test_manager_channelvars():
    """channelvars lists the CC_* variables the daemon reads from every channel event."""
    general = section(OUT["manager.conf"], "general")
    assert general["channelvars"] == [CHANNEL_VARS]
    assert set(CHANNEL_VARS.split(",")) >= {"CC_ROLE", "CC_CALL_ID", "CC_AGENT", "CC_QUEUE", "CC_ENTERED",
                                            "CC_REC_ID"}


def test_manager_parses_as_ini():
    """manager.conf is plain INI that a standard parser reads back with the same values."""
    cp = configparser.ConfigParser(interpolation=None)
    cp.read_string(OUT["manager.conf"])
    assert cp["callcenter"]["write"] == AMI_WRITE
    assert cp["general"]["bindaddr"] == "127.0.0.1"


def test_manager_username_from_config():
    """The AMI section is named after ami.username."""
    data = yaml.safe_load((ROOT / "config" / "callcenter.yaml").read_text())
    data = copy.deepcopy(data)
    data["ami"]["username"] = "acd"
    out = render(parse(data))
    assert section(out["manager.conf"], "acd")["write"] == [AMI_WRITE]
    assert "[callcenter]" not in out["manager.conf"]


# --------------------------------------------------------------------------- pjsip.conf

def test_pjsip_endpoint_auth_aor_per_phone():
    """Every phone gets an endpoint, an auth with its secret and an aor, all named by extension."""
    text = OUT["pjsip.conf"]
    for ext, ph in CFG.phones.items():
        ep = section(text, ext, "endpoint")
        assert ep["context"] == ["cc-phones"]
        assert ep["auth"] == [ext] and ep["aors"] == [ext]
        assert ep["callerid"] == [f'"{ph.name or ext}" <{ext}>']
        auth = section(text, ext, "auth")
        assert auth["username"] == [ext] and auth["password"] == [ph.secret]
        assert section(text, ext, "aor")["max_contacts"] == ["1"]
    endpoints = [n for n, kv in sections(text) if kv.get("type") == ["endpoint"]]
    assert sorted(endpoints) == sorted([*CFG.phones, *(f"trunk-{t}" for t in CFG.trunks)])


def test_pjsip_trunk_and_identify():
    """The trunk has its endpoint in its own context and an identify matching its source address."""
    text = OUT["pjsip.conf"]
    ep = section(text, "trunk-pstn", "endpoint")
    assert ep["context"] == ["cc-trunk-pstn"]
    assert "auth" not in ep
    ident = section(text, "trunk-pstn", "identify")
    assert ident["endpoint"] == ["trunk-pstn"]
    assert ident["match"] == ["127.0.0.2/32"]
    assert section(text, "trunk-pstn", "aor").get("contact") is None  # inbound only: no host


def test_pjsip_transport_and_identify_order():
    """The UDP transport binds the configured address and phones are identified by username first."""
    text = OUT["pjsip.conf"]
    assert section(text, "cc-udp")["bind"] == ["127.0.0.1:5060"]
    assert section(text, "global")["endpoint_identifier_order"] == ["username,ip,anonymous"]


def test_pjsip_trunk_with_host_and_cidr():
    """A trunk with a host gets a contact; CIDR matches are normalised networks."""
    data = copy.deepcopy(yaml.safe_load((ROOT / "config" / "callcenter.yaml").read_text()))
    data["trunks"]["pstn"].update(host="192.0.2.10", port=5080, match=["192.0.2.0/24", "198.51.100.7"])
    text = render(parse(data))["pjsip.conf"]
    assert section(text, "trunk-pstn", "aor")["contact"] == ["sip:192.0.2.10:5080"]
    assert section(text, "trunk-pstn", "identify")["match"] == ["192.0.2.0/24", "198.51.100.7/32"]


# --------------------------------------------------------------------------- extensions.conf

def _extens(context: str) -> list[str]:
    return [e.split(",", 1)[0] for e in section(OUT["extensions.conf"], context).get("exten", [])]


def test_feature_codes_in_phones_context():
    """The four feature codes (plus pause-with-reason) are extensions of cc-phones calling the agent AGI."""
    f = CFG.features
    ctx = section(OUT["extensions.conf"], "cc-phones")["exten"]
    assert f"{f.login},1,AGI(${{CC_AGI}}/agent,login,${{CHANNEL(endpoint)}})" in ctx
    assert f"{f.logout},1,AGI(${{CC_AGI}}/agent,logout,${{CHANNEL(endpoint)}})" in ctx
    assert f"{f.pause},1,AGI(${{CC_AGI}}/agent,pause,${{CHANNEL(endpoint)}})" in ctx
    assert f"{f.unpause},1,AGI(${{CC_AGI}}/agent,unpause,${{CHANNEL(endpoint)}})" in ctx
    for n in range(1, 5):
        assert f"_*63{'X' * n},1,AGI(${{CC_AGI}}/agent,pause,${{CHANNEL(endpoint)}},${{EXTEN:3}})" in ctx


def test_recording_codes_mid_call_are_an_applicationmap_on_the_agent_leg():
    """*65/*66/*67 pressed during a call run the daemon's record AGI on the agent's own leg; the
    cc-agent leg enables exactly these three dynamic features."""
    f = CFG.features
    amap = {k: [v.removeprefix("> ") for v in vs] for k, vs in section(OUT["features.conf"], "applicationmap").items()}
    assert amap == {"cc-rec-pause": [f"{f.record_pause},self,AGI(agi://127.0.0.1:4573/record,pause)"],
                    "cc-rec-resume": [f"{f.record_resume},self,AGI(agi://127.0.0.1:4573/record,resume)"],
                    "cc-rec-start": [f"{f.record_start},self,AGI(agi://127.0.0.1:4573/record,start)"],
                    "cc-conf-key": [f"{f.conference},self,AGI(agi://127.0.0.1:4573/conference)"]}  # conference
    assert section(OUT["features.conf"], "featuremap") == {}  # no builtin (transfer...) codes of ours
    assert "AGI(agi://10.0.0.5:4573/record,pause)" in render(CFG, agi_host="10.0.0.5")["features.conf"]
    agent = section(OUT["callcenter-dialplan.conf"], "cc-agent")["same"]
    assert "n,Set(DYNAMIC_FEATURES=cc-rec-pause#cc-rec-resume#cc-rec-start)" in agent  # a callback: no conference
    claim = section(OUT["callcenter-dialplan.conf"], "cc-claim")["same"]
    assert "n(ok),Set(DYNAMIC_FEATURES=cc-rec-pause#cc-rec-resume#cc-rec-start#cc-conf-key)" in claim


def test_supervision_codes_are_literal_per_agent_and_go_to_cc_spy():
    """*71/*72/*73 + each agent's extension (literals, no patterns) set the mode and target for cc-spy;
    the recording pause/resume codes dialled from a phone reach the record AGI with the endpoint."""
    f = CFG.features
    text = OUT["extensions.conf"]
    for ag in CFG.agents.values():
        for mode, code in (("listen", f.listen), ("whisper", f.whisper), ("barge", f.barge)):
            assert (f"exten => {code}{ag.phone},1,Set(CC_SPY_MODE={mode})\n same => n,Set(CC_SPY_EXT={ag.phone})\n"
                    " same => n,Goto(cc-spy,s,1)") in text
    ctx = section(text, "cc-phones")["exten"]
    assert f"{f.record_pause},1,AGI(${{CC_AGI}}/record,pause,${{CHANNEL(endpoint)}})" in ctx
    assert f"{f.record_resume},1,AGI(${{CC_AGI}}/record,resume,${{CHANNEL(endpoint)}})" in ctx
    spy = section(OUT["callcenter-dialplan.conf"], "cc-spy")
    assert spy["exten"] == ["s,1,Set(CC_SPY=)"]
    assert spy["same"] == ["n,AGI(${CC_AGI}/spy,${CC_SPY_MODE},${CC_SPY_EXT},${CHANNEL(endpoint)})",
                           'n,GotoIf($["${CC_SPY}" != "ok"]?done)', "n,ChanSpy(${CC_SPY_TARGET},${CC_SPY_OPTIONS})",
                           "n(done),Hangup()"]


def test_every_phone_is_a_literal_extension():
    """Each phone is dialable from cc-phones by its literal extension; an agent's through cc-consult."""
    ctx = section(OUT["extensions.conf"], "cc-phones")["exten"]
    agent_phones = {a.phone for a in CFG.agents.values()}
    for ext in CFG.phones:
        if ext in agent_phones:
            assert f"{ext},1,Set(CC_DEST={ext})" in ctx
        else:
            assert f"{ext},1,Dial(PJSIP/{ext},30)" in ctx


def test_every_did_is_a_literal_extension():
    """Every DID is a literal extension in its trunk context and in cc-phones, setting CC_DID."""
    dids = list(CFG.trunks["pstn"].dids)
    assert _extens("cc-trunk-pstn") == dids
    trunk = section(OUT["extensions.conf"], "cc-trunk-pstn")
    assert trunk["exten"] == [f"{d},1,Set(CC_DID={d})" for d in dids]
    assert trunk["same"] == ["n,Goto(cc-ivr,s,1)"] * len(dids)
    for d in dids:
        assert f"{d},1,Set(CC_DID={d})" in section(OUT["extensions.conf"], "cc-phones")["exten"]


def test_no_catch_all_patterns():
    """The only patterns are pause-with-reason, the one-key wait-loop digit and cc-xfer's transfer target
    (whose digits only the daemon's AGI reads, through FILTER); no '_X.'-style catch-alls that dial."""
    patterns = [e for _, kv in sections(OUT["extensions.conf"]) for e in kv.get("exten", [])
                if e.startswith("_")]
    assert [p.split(",", 1)[0] for p in patterns] == ["_*63X", "_*63XX", "_*63XXX", "_*63XXXX", "_*69X", "_*69XX"]
    text = OUT["extensions.conf"] + OUT["callcenter-dialplan.conf"]
    assert not re.search(r"exten\s*=>\s*_(?!\*63X{1,4},|\*69X{1,2},|\[0-9\*#\],|\[0-9\*\]!,)", text)
    xfer = section(OUT["callcenter-dialplan.conf"], "cc-xfer")["exten"]
    assert xfer[0] == "_[0-9*]!,1,Set(CC_NEXT=)"
    assert "AGI(${CC_AGI}/transfer,${FILTER(0-9*,${EXTEN})})" in " ".join(xfer + section(
        OUT["callcenter-dialplan.conf"], "cc-xfer").get("same", []))
    assert "_X." not in text and "_." not in text and "X." not in text


def test_dialplan_globals_and_include():
    """extensions.conf points CC_AGI at the daemon and includes the static dialplan."""
    text = OUT["extensions.conf"]
    assert section(text, "globals")["CC_AGI"] == ["agi://127.0.0.1:4573"]
    assert '#include "callcenter-dialplan.conf"' in text.splitlines()
    assert render(CFG, agi_host="10.0.0.5")["extensions.conf"].count("CC_AGI=agi://10.0.0.5:4573") == 1


def test_static_dialplan_has_the_contexts():
    """The bundled dialplan defines the contexts the daemon and rendered files refer to."""
    names = {n for n, _ in sections(OUT["callcenter-dialplan.conf"])}
    assert {"cc-ivr", "cc-next", "cc-wait", "cc-fallback", "cc-agent"} <= names


# --------------------------------------------------------------------------- media and writing

def test_rtp_and_moh():
    """rtp.conf carries the configured port range; every queue's MOH class exists."""
    assert OUT["rtp.conf"] == "[general]\nrtpstart=10000\nrtpend=10999\n"
    moh = {n for n, _ in sections(OUT["musiconhold.conf"])}
    assert moh == {q.moh_class for q in CFG.queues.values()} | {"default"}


def test_write_creates_files(tmp_path):
    """write() puts every rendered file in the directory, content intact, no temp files left."""
    paths = write(OUT, tmp_path / "asterisk")
    assert sorted(p.name for p in paths) == sorted(OUT)
    for p in paths:
        assert p.read_text() == OUT[p.name]
    assert not list((tmp_path / "asterisk").glob("*.tmp"))


@pytest.mark.parametrize("name", ["pjsip.conf", "manager.conf", "extensions.conf"])
def test_render_is_deterministic(name):
    """Rendering the same config twice gives identical text."""
    assert render(CFG)[name] == OUT[name]
