"""Provisioning files per vendor: golden files, well-formed, and only key names the vendors document.

Where the key names come from (the vendors' administrator guides; Wazo's provd plugins use the same):
- Yealink "Auto Provisioning Guide" / "Administrator Guide for SIP-T2/T4/T5 phones": the
  ``#!version:1.0.0.1`` header, ``account.X.*`` (enable, label, display_name, auth_name, user_name, password,
  sip_server.Y.address/port, codec.<name>.enable/priority, dtmf.type, dtmf.dtmf_payload), ``local_time.*``
  (time_zone, summer_time, ntp_server1), ``linekey.X.type/line/value/label`` (type 13 speed dial, 15 line,
  16 BLF).
- Polycom "UC Software Administrator's Guide": the master file ``000000000000.cfg`` (``APPLICATION`` with
  APP_FILE_PATH, CONFIG_FILES ...), ``reg.X.*``, ``voice.codecPref.*``, ``tone.dtmf.*``,
  ``voIpProt.SIP.dtmfViaSignaling.rfc2976``, ``tcpIpApp.sntp.*``, ``feature.enhancedFeatureKeys.enabled``,
  ``efk.efklist.X.*`` (mname, status, label, action.string with ``$Tinvite$``), ``attendant.resourceList.X.*``,
  ``lineKey.reassignment.enabled``, ``lineKey.X.category/index``.
- Grandstream GXP "Configuration template" / "XML provisioning guide": ``gs_provision`` > ``mac`` + ``config``;
  P271 account active, P270 account name, P47 SIP server, P35 SIP user ID, P36 authenticate ID, P34
  password, P3 display name, P57-P62 vocoder choices, P2301/P2302/P2303 DTMF in audio / RFC 2833 / SIP
  INFO, P79 DTMF payload type, P64 time zone, P30 NTP server, P323-P329 MPK modes with P301-P321
  (account, name, value per key).
- Snom "settings" XML (``phone-settings`` with ``idx``/``perm``; ``functionKeys`` > ``fkey``): user_active,
  user_realname, user_name, user_pname, user_pass, user_host, user_dtmf_info, codec_priority_list,
  utc_offset, ntp_server; fkey values ``speed <number>`` and ``blf <sip:ext@host>``.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from callcenter.features.provisioning.model import device_of, route, site_of
from callcenter.features.provisioning.render import render
from tests.unit.provisioning_conf import config

GOLDEN = Path(__file__).parent / "golden" / "provisioning"
POSIX_PARIS = "CET-1CEST,M3.5.0,M10.5.0/3"  # what read_posix_tz reads from tzdata: fixed here (no I/O)
FILES = {  # file -> extension it belongs to (None: a common file)
    "y000000000000.cfg": None, "805ec0000001.cfg": "2001", "000000000000.cfg": None,
    "0004f2000002-phone.cfg": "2002", "cfg000b82000003.xml": "2003", "000413000004.xml": "2004",
}

YEALINK_KEYS = [
    r"account\.1\.(enable|label|display_name|auth_name|user_name|password)",
    r"account\.1\.sip_server\.1\.(address|port)",
    r"account\.1\.codec\.(pcmu|pcma|g722|g729|opus)\.(enable|priority)",
    r"account\.1\.dtmf\.(type|dtmf_payload)",
    r"local_time\.(time_zone|summer_time|ntp_server1)",
    r"linekey\.[0-9]+\.(type|line|value|label)",
]
POLYCOM_KEYS = {
    "reg": r"reg\.1\.(address|label|displayName|auth\.userId|auth\.password|server\.1\.(address|port|transport))",
    "voice": r"voice\.codecPref\.(G711_Mu|G711_A|G722)",
    "tone": r"tone\.dtmf\.(viaRtp|rfc2833Control|rfc2833Payload)",
    "voIpProt": r"voIpProt\.SIP\.dtmfViaSignaling\.rfc2976",
    "tcpIpApp": r"tcpIpApp\.sntp\.(gmtOffset|daylightSavings\.enable|address|address\.overrideDHCP)",
    "feature": r"feature\.enhancedFeatureKeys\.enabled",
    "efk": r"efk\.efklist\.[0-9]+\.(mname|status|label|action\.string)",
    "attendant": r"attendant\.resourceList\.[0-9]+\.(address|label|type)",
    "lineKey": r"lineKey\.(reassignment\.enabled|[0-9]+\.(category|index))",
}
POLYCOM_MASTER = {"APP_FILE_PATH", "CONFIG_FILES", "MISC_FILES", "LOG_FILE_DIRECTORY", "OVERRIDES_DIRECTORY",
                  "CONTACTS_DIRECTORY", "LICENSE_DIRECTORY"}
GRANDSTREAM_P = {"P271", "P270", "P47", "P35", "P36", "P34", "P3", "P2301", "P2302", "P2303", "P79", "P64", "P30",
                 *(f"P{n}" for n in range(57, 63)), *(f"P{n}" for n in range(323, 330)),
                 *(f"P{n}" for n in range(301, 322))}
SNOM_SETTINGS = {"user_active", "user_realname", "user_name", "user_pname", "user_pass", "user_host",
                 "user_dtmf_info", "codec_priority_list", "utc_offset", "ntp_server"}


def _render(name: str) -> bytes:
    cfg = config()
    ext = FILES[name]
    r = route(name)
    assert r is not None
    return render(r, site_of(cfg, POSIX_PARIS), device_of(cfg, ext) if ext else None)


@pytest.mark.parametrize("name", sorted(FILES))
def test_golden(name: str) -> None:
    """Each vendor's files render byte for byte as the reviewed golden file (CALLCENTER_UPDATE_GOLDEN=1 rewrites)."""
    body = _render(name)
    path = GOLDEN / name
    if os.environ.get("CALLCENTER_UPDATE_GOLDEN") == "1":
        path.write_bytes(body)
    assert body == path.read_bytes()


def _yealink_pairs(body: bytes) -> dict[str, str]:
    lines = body.decode().splitlines()
    assert lines[0] == "#!version:1.0.0.1"  # Yealink refuses a file without it on the first line
    pairs = {}
    for line in lines[1:]:
        if line.startswith("#"):
            continue
        key, sep, value = line.partition(" = ")
        assert sep, line
        pairs[key] = value
    return pairs


@pytest.mark.parametrize("name", ["y000000000000.cfg", "805ec0000001.cfg"])
def test_yealink_keys_are_documented(name: str) -> None:
    """Every Yealink line is ``key = value`` with a documented key."""
    for key in _yealink_pairs(_render(name)):
        assert any(re.fullmatch(p, key) for p in YEALINK_KEYS), key


def test_polycom_keys_are_documented() -> None:
    """The Polycom master file and per-phone file parse as XML and use only documented parameters."""
    master = ET.fromstring(_render("000000000000.cfg"))
    assert master.tag == "APPLICATION" and set(master.attrib) <= POLYCOM_MASTER
    assert master.attrib["CONFIG_FILES"] == "[PHONE_MAC_ADDRESS]-phone.cfg"
    root = ET.fromstring(_render("0004f2000002-phone.cfg"))
    assert root.tag == "polycomConfig"
    for el in root:
        for attr in el.attrib:
            assert re.fullmatch(POLYCOM_KEYS[el.tag], attr), attr


def test_grandstream_keys_are_documented() -> None:
    """The Grandstream file parses, names its MAC, and sets only documented P-values."""
    root = ET.fromstring(_render("cfg000b82000003.xml"))
    assert root.tag == "gs_provision" and root.findtext("mac") == "000b82000003"
    values = {el.tag: el.text for el in root.find("config")}  # type: ignore[union-attr]
    assert set(values) <= GRANDSTREAM_P, set(values) - GRANDSTREAM_P
    assert values["P47"] == "10.0.0.5" and values["P35"] == "2003" and values["P34"] == "s3cret-2003"
    assert values["P2302"] == "1" and values["P2303"] == "0"  # RFC 2833, as Asterisk's dtmf_mode=rfc4733


def test_snom_keys_are_documented() -> None:
    """The Snom file parses; settings and function keys are the documented ones."""
    root = ET.fromstring(_render("000413000004.xml"))
    ps = root.find("phone-settings")
    assert ps is not None and {el.tag for el in ps} <= SNOM_SETTINGS
    fkeys = root.find("functionKeys")
    assert fkeys is not None
    for fk in fkeys:
        assert fk.tag == "fkey" and re.fullmatch(r"(speed \*[0-9]+|blf <sip:[0-9]+@10\.0\.0\.5>)", fk.text or "")


def test_keys_for_feature_codes_and_other_agents() -> None:
    """An agent's phone gets log in/out, pause, unpause, then a BLF key per other agent, never its own."""
    d = device_of(config(), "2001")
    assert [(k.kind, k.value) for k in d.keys] == [
        ("speed", "*61"), ("speed", "*62"), ("speed", "*63"), ("speed", "*64"),
        ("blf", "2002"), ("blf", "2003"), ("blf", "2004")]


def test_keys_follow_the_configured_codes_and_the_model_size() -> None:
    """Changed feature codes show up on the keys; a model with seven keys gets seven."""
    from callcenter import config as config_mod
    from tests.unit.provisioning_conf import data
    d = data()
    d["features"] = {"login": "*81", "pause": "*83"}
    d["agents"].update({f"x{i}": {"phone": f"30{i:02d}"} for i in range(10)})
    d["phones"].update({f"30{i:02d}": {"secret": f"secret-30{i:02d}"} for i in range(10)})
    cfg = config_mod.parse(d)
    yealink = device_of(cfg, "2001")
    assert yealink.keys[0].value == "*81" and yealink.keys[2].value == "*83"
    assert len(device_of(cfg, "2003").keys) == 7  # grandstream-gxp2170: P323-P329
    assert len(yealink.keys) == 15  # yealink-t46u: 15 keys for 4 codes and 13 other agents


def test_parking_slots_get_blf_keys_after_the_agents() -> None:
    """With parking on, every phone gets a BLF key per slot (lit while a call is parked there), after the agents'."""
    from callcenter import config as config_mod
    from tests.unit.provisioning_conf import data
    d = data()
    d["parking"] = {"enabled": True, "first": 701, "slots": 2}
    cfg = config_mod.parse(d)
    keys = [(k.kind, k.value, k.label) for k in device_of(cfg, "2001").keys]
    assert keys[-3:] == [("blf", "2004", keys[-3][2]), ("blf", "701", "Park 701"), ("blf", "702", "Park 702")]
    body = _yealink_pairs(render(route("805ec0000001.cfg"), site_of(cfg, POSIX_PARIS), device_of(cfg, "2001")))
    assert "701" in body.values() and "Park 701" in body.values()


def test_xml_escapes_what_the_secret_may_hold() -> None:
    """A secret with & < > stays one well-formed value (XML) and one line (Yealink)."""
    from callcenter import config as config_mod
    from tests.unit.provisioning_conf import data
    d = data()
    d["phones"]["2004"]["secret"] = "a&b<c>!e"
    cfg = config_mod.parse(d)
    body = render(route("000413000004.xml"), site_of(cfg, POSIX_PARIS), device_of(cfg, "2004"))  # type: ignore[arg-type]
    assert ET.fromstring(body).find("phone-settings/user_pass").text == "a&b<c>!e"  # type: ignore[union-attr]
    assert _yealink_pairs(_render("805ec0000001.cfg"))["account.1.password"] == "s3cret-2001&<x>"


def test_common_files_hold_no_secret() -> None:
    """The public common files (Yealink, Polycom) carry no SIP secret of any phone."""
    cfg = config()
    for name in ("y000000000000.cfg", "000000000000.cfg"):
        body = _render(name).decode()
        assert not any(ph.secret in body for ph in cfg.phones.values())
