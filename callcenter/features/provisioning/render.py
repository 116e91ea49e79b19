"""Provisioning files per vendor: (route, site, device) in, bytes out, no I/O.

Key names are the vendors' own (tests/unit/test_provisioning_render.py lists where each is
documented). The common files carry no secret; every per-MAC file does (the SIP password).

- Yealink: ``y000000000000.cfg`` (codecs, DTMF, time) and ``<mac>.cfg`` (account, line keys);
  ``#!version:1.0.0.1`` must be the first line of both.
- Polycom (UC Software): ``000000000000.cfg``, the default master file, names
  ``[PHONE_MAC_ADDRESS]-phone.cfg``, which holds everything (registration, codecs, DTMF, time,
  enhanced feature keys for the codes, attendant resource list for BLF, line key layout).
- Grandstream (GXP): ``cfg<mac>.xml`` with P-values (account P271/P270/P47/P35/P36/P34/P3, vocoders
  P57-, DTMF P2301-P2303/P79, time P64/P30, multi-purpose keys P323-P329 with P301-P321).
- Snom: ``<mac>.xml`` settings (``user_*`` with ``idx="1"``, ``fkey`` function keys).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from callcenter.features.provisioning.model import Device, Route, Site

__all__ = ["render"]

_YEALINK_KEY = {"speed": 13, "blf": 16}  # DSS key types: 13 speed dial, 16 BLF (15 is the line itself)
_GS_KEY = {"speed": 0, "blf": 1}  # MPK modes: 0 speed dial, 1 BLF
_GS_CODEC = {"pcmu": 0, "pcma": 8, "g722": 9}  # RTP payload types, as the vocoder P-values take them
_POLYCOM_CODEC = {"pcmu": "G711_Mu", "pcma": "G711_A", "g722": "G722"}
_RFC4733_PT = 101


def render(r: Route, site: Site, device: Device | None) -> bytes:
    if r.kind == "common":
        return _COMMON[r.vendor](site)
    if device is None:
        raise ValueError("a per-MAC file needs its device")
    return _DEVICE[r.vendor](site, device)


def _offset_hours(seconds: int) -> str:
    sign = "+" if seconds >= 0 else "-"
    h, m = divmod(abs(seconds) // 60, 60)
    return f"{sign}{h}" + (f":{m:02d}" if m else "")


def _lines(pairs: list[tuple[str, object]], title: str) -> bytes:
    out = ["#!version:1.0.0.1", f"## {title}"]
    out += [f"{k} = {v}" for k, v in pairs]
    return ("\n".join(out) + "\n").encode("utf-8")


def _xml(root: ET.Element, declaration: str = '<?xml version="1.0" encoding="UTF-8"?>') -> bytes:
    ET.indent(root, "  ")
    return (declaration + "\n" + ET.tostring(root, encoding="unicode") + "\n").encode("utf-8")


# --------------------------------------------------------------------------- Yealink

def _yealink_common(site: Site) -> bytes:
    p: list[tuple[str, object]] = []
    for i, codec in enumerate(site.codecs, 1):
        p += [(f"account.1.codec.{codec}.enable", 1), (f"account.1.codec.{codec}.priority", i)]
    p += [(f"account.1.codec.{c}.enable", 0) for c in ("g722", "g729", "opus") if c not in site.codecs]
    p += [("account.1.dtmf.type", 1), ("account.1.dtmf.dtmf_payload", _RFC4733_PT)]  # 1: RFC 2833
    p += [("local_time.time_zone", _offset_hours(site.utc_offset_s)),
          ("local_time.summer_time", 2 if site.dst else 0)]  # 2: automatic
    if site.ntp_server:
        p.append(("local_time.ntp_server1", site.ntp_server))
    return _lines(p, "callcenter: settings every Yealink phone shares (no secrets)")


def _yealink_device(site: Site, d: Device) -> bytes:
    p: list[tuple[str, object]] = [
        ("account.1.enable", 1), ("account.1.label", d.ext), ("account.1.display_name", d.name),
        ("account.1.auth_name", d.ext), ("account.1.user_name", d.ext), ("account.1.password", d.secret),
        ("account.1.sip_server.1.address", site.sip_host), ("account.1.sip_server.1.port", site.sip_port),
        ("linekey.1.type", 15), ("linekey.1.line", 1), ("linekey.1.label", d.ext),
    ]
    for n, k in enumerate(d.keys, 2):
        p += [(f"linekey.{n}.type", _YEALINK_KEY[k.kind]), (f"linekey.{n}.line", 1),
              (f"linekey.{n}.value", k.value), (f"linekey.{n}.label", k.label)]
    return _lines(p, f"callcenter: {d.model} {d.mac}, extension {d.ext}")


# --------------------------------------------------------------------------- Polycom

def _polycom_common(site: Site) -> bytes:
    app = ET.Element("APPLICATION", {
        "APP_FILE_PATH": "sip.ld", "CONFIG_FILES": "[PHONE_MAC_ADDRESS]-phone.cfg", "MISC_FILES": "",
        "LOG_FILE_DIRECTORY": "", "OVERRIDES_DIRECTORY": "", "CONTACTS_DIRECTORY": "", "LICENSE_DIRECTORY": "",
    })
    return _xml(app, '<?xml version="1.0" standalone="yes"?>')


def _polycom_device(site: Site, d: Device) -> bytes:
    root = ET.Element("polycomConfig")
    ET.SubElement(root, "reg", {
        "reg.1.address": d.ext, "reg.1.label": d.ext, "reg.1.displayName": d.name,
        "reg.1.auth.userId": d.ext, "reg.1.auth.password": d.secret,
        "reg.1.server.1.address": site.sip_host, "reg.1.server.1.port": str(site.sip_port),
        "reg.1.server.1.transport": "UDPOnly",
    })
    voice = {f"voice.codecPref.{_POLYCOM_CODEC[c]}": str(i) for i, c in enumerate(site.codecs, 1)}
    voice.update({f"voice.codecPref.{v}": "" for c, v in _POLYCOM_CODEC.items() if c not in site.codecs})
    ET.SubElement(root, "voice", voice)
    ET.SubElement(root, "tone", {"tone.dtmf.viaRtp": "1", "tone.dtmf.rfc2833Control": "1",
                                 "tone.dtmf.rfc2833Payload": str(_RFC4733_PT)})
    ET.SubElement(root, "voIpProt", {"voIpProt.SIP.dtmfViaSignaling.rfc2976": "0"})
    sntp = {"tcpIpApp.sntp.gmtOffset": str(site.utc_offset_s),
            "tcpIpApp.sntp.daylightSavings.enable": "1" if site.dst else "0"}
    if site.ntp_server:
        sntp.update({"tcpIpApp.sntp.address": site.ntp_server, "tcpIpApp.sntp.address.overrideDHCP": "1"})
    ET.SubElement(root, "tcpIpApp", sntp)
    speed = [k for k in d.keys if k.kind == "speed"]
    blf = [k for k in d.keys if k.kind == "blf"]
    ET.SubElement(root, "feature", {"feature.enhancedFeatureKeys.enabled": "1" if speed else "0"})
    efk: dict[str, str] = {}
    for i, k in enumerate(speed, 1):
        efk.update({f"efk.efklist.{i}.mname": f"cc{i}", f"efk.efklist.{i}.status": "1",
                    f"efk.efklist.{i}.label": k.label, f"efk.efklist.{i}.action.string": f"{k.value}$Tinvite$"})
    if efk:
        ET.SubElement(root, "efk", efk)
    att: dict[str, str] = {}
    for i, k in enumerate(blf, 1):
        att.update({f"attendant.resourceList.{i}.address": k.value, f"attendant.resourceList.{i}.label": k.label,
                    f"attendant.resourceList.{i}.type": "normal"})
    if att:
        ET.SubElement(root, "attendant", att)
    keys = {"lineKey.reassignment.enabled": "1", "lineKey.1.category": "Line", "lineKey.1.index": "1"}
    index = {"speed": 0, "blf": 0}
    for n, k in enumerate(d.keys, 2):
        index[k.kind] += 1
        keys.update({f"lineKey.{n}.category": "EFK" if k.kind == "speed" else "BLF",
                     f"lineKey.{n}.index": str(index[k.kind])})
    ET.SubElement(root, "lineKey", keys)
    return _xml(root, '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>')


# --------------------------------------------------------------------------- Grandstream

def _grandstream_device(site: Site, d: Device) -> bytes:
    root = ET.Element("gs_provision", {"version": "1"})
    ET.SubElement(root, "mac").text = d.mac
    cfg = ET.SubElement(root, "config", {"version": "1"})
    server = site.sip_host if site.sip_port == 5060 else f"{site.sip_host}:{site.sip_port}"
    values: list[tuple[str, object]] = [
        ("P271", 1), ("P270", d.ext), ("P47", server), ("P35", d.ext), ("P36", d.ext), ("P34", d.secret),
        ("P3", d.name),
    ]
    for i, codec in enumerate(site.codecs):  # vocoder choices 1.. are P57, P58 ...
        values.append((f"P{57 + i}", _GS_CODEC[codec]))
    values += [("P2301", 0), ("P2302", 1), ("P2303", 0), ("P79", _RFC4733_PT)]  # DTMF: RFC 2833 only
    values.append(("P64", site.posix_tz))
    if site.ntp_server:
        values.append(("P30", site.ntp_server))
    for i, k in enumerate(d.keys[:7]):  # MPK i+1: mode P323+i, account/name/value P301+3i ..
        values += [(f"P{323 + i}", _GS_KEY[k.kind]), (f"P{301 + 3 * i}", 0), (f"P{302 + 3 * i}", k.label),
                   (f"P{303 + 3 * i}", k.value)]
    for name, value in values:
        ET.SubElement(cfg, name).text = str(value)
    return _xml(root)


# --------------------------------------------------------------------------- Snom

def _snom_device(site: Site, d: Device) -> bytes:
    root = ET.Element("settings")
    ps = ET.SubElement(root, "phone-settings", {"e": "2"})

    def s(name: str, value: object, idx: str | None = "1") -> None:
        attrs = {"idx": idx, "perm": "R"} if idx else {"perm": "R"}
        ET.SubElement(ps, name, attrs).text = str(value)

    s("user_active", "on")
    s("user_realname", d.name)
    s("user_name", d.ext)
    s("user_pname", d.ext)
    s("user_pass", d.secret)
    s("user_host", f"{site.sip_host}:{site.sip_port}")
    s("user_dtmf_info", "off")  # off: RFC 2833 in RTP
    s("codec_priority_list", ",".join((*site.codecs, "telephone-event")))
    s("utc_offset", site.utc_offset_s, None)
    if site.ntp_server:
        s("ntp_server", site.ntp_server, None)
    fk = ET.SubElement(root, "functionKeys", {"e": "2"})
    for i, k in enumerate(d.keys):
        value = f"speed {k.value}" if k.kind == "speed" else f"blf <sip:{k.value}@{site.sip_host}>"
        ET.SubElement(fk, "fkey", {"idx": str(i), "context": "active", "label": k.label, "perm": "R"}).text = value
    return _xml(root)


def _no_common(site: Site) -> bytes:
    raise ValueError("this vendor has no common file here")


_COMMON = {"yealink": _yealink_common, "polycom": _polycom_common, "grandstream": _no_common, "snom": _no_common}
_DEVICE = {"yealink": _yealink_device, "polycom": _polycom_device, "grandstream": _grandstream_device,
           "snom": _snom_device}

