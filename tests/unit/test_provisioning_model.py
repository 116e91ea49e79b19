"""Provisioning's pure parts: file routes, the source guard, digest verification, config checks."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callcenter import config as config_mod
from callcenter.features.provisioning import digest
from callcenter.features.provisioning.model import Route, SourceGuard, route, tz_offsets
from tests.unit.provisioning_conf import PASSWORDS, REALM, data

KEY = b"k" * 32


def test_routes_per_vendor() -> None:
    """Each vendor's file names map to vendor, kind and MAC; anything else is no route."""
    assert route("y000000000000.cfg") == Route("yealink", "common")
    assert route("805EC0000001.cfg") == Route("yealink", "device", "805ec0000001")
    assert route("000000000000.cfg") == Route("polycom", "common")
    assert route("0004f2000002-phone.cfg") == Route("polycom", "device", "0004f2000002")
    assert route("cfg000b82000003.xml") == Route("grandstream", "device", "000b82000003")
    assert route("000413000004.xml") == Route("snom", "device", "000413000004")
    for bad in ("../etc/passwd", "805ec0000001.cfg.bak", "cfg000000000000.xml", "x.cfg", "", "805ec000000g.cfg"):
        assert route(bad) is None, bad


@given(st.text(max_size=60))
def test_route_never_yields_a_path(name: str) -> None:
    """Whatever is asked for, a route's MAC is 12 hex digits (nothing else reaches a lookup)."""
    r = route(name)
    assert r is None or r.mac is None or (len(r.mac) == 12 and all(c in "0123456789abcdef" for c in r.mac))


def test_five_unknown_macs_in_a_minute_block_the_source() -> None:
    """The fifth distinct unknown MAC within 60 s blocks the source for block_s; others are unaffected."""
    g = SourceGuard(limit=5, window_s=60, block_s=600)
    assert not any(g.strike("10.0.0.9", f"mac:{i}", 100 + i) for i in range(4))
    assert not g.blocked("10.0.0.9", 104)
    assert g.strike("10.0.0.9", "mac:4", 105)
    assert g.blocked("10.0.0.9", 106) and g.blocked("10.0.0.9", 704)
    assert not g.blocked("10.0.0.8", 106)
    assert not g.blocked("10.0.0.9", 705.1)


def test_the_same_mac_again_or_slow_strikes_do_not_block() -> None:
    """One MAC asked for many times is one strike; five spread over more than a minute do not block."""
    g = SourceGuard(limit=5, window_s=60, block_s=600)
    assert not any(g.strike("s", "mac:1", t) for t in range(50))
    assert not any(g.strike("s", f"mac:{i}", 1000 + 20 * i) for i in range(10))


@settings(max_examples=60)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 6), st.floats(0, 5)), max_size=60))
def test_guard_blocks_only_after_limit_strikes_in_window(events: list[tuple[int, int, float]]) -> None:
    """Invariant: a source is blocked only if it had `limit` distinct strikes within the window before."""
    g = SourceGuard(limit=3, window_s=10, block_s=30, max_sources=2)
    now = 0.0
    hist: dict[str, list[tuple[float, str]]] = {}
    for src, what, dt_ in events:
        now += dt_
        s = f"s{src}"
        if g.blocked(s, now):
            continue
        hist.setdefault(s, []).append((now, f"m{what}"))
        if g.strike(s, f"m{what}", now):
            recent = {w for t, w in hist[s] if t > now - 10}
            assert len(recent) >= 3
    assert len(g._strikes) <= 2


def _creds(mac: str, password: str, nonce: str, uri: str, *, nc: str = "00000001", method: str = "GET",
           algorithm: str = "MD5") -> digest.Credentials:
    """What a client computes, straight from RFC 7616 section 3.4.1 (independently of digest.response)."""
    h = hashlib.md5 if algorithm == "MD5" else hashlib.sha256

    def hx(s: str) -> str:
        return h(s.encode()).hexdigest()

    resp = hx(f"{hx(f'{mac}:{REALM}:{password}')}:{nonce}:{nc}:c0ffee:auth:{hx(f'{method}:{uri}')}")
    return digest.Credentials(mac, REALM, nonce, uri, resp, algorithm, "auth", nc, "c0ffee")


def _verify(c: digest.Credentials, ha1: str, now: float, counts: digest.NonceCounts | None = None,
            algorithm: str = "MD5") -> str:
    return digest.verify(c, method="GET", uri=c.uri, realm=REALM, algorithm=algorithm, ha1_hex=ha1, key=KEY,
                         now=now, ttl_s=300, counts=digest.NonceCounts() if counts is None else counts)


def test_digest_accepts_the_right_password_only() -> None:
    """The device's password passes; a wrong one, another URI, a forged nonce or a replayed nc do not."""
    mac, pw = "805ec0000001", PASSWORDS["805ec0000001"]
    ha1 = digest.ha1(mac, REALM, pw)
    nonce = digest.make_nonce(KEY, 1000)
    counts = digest.NonceCounts()
    assert _verify(_creds(mac, pw, nonce, "/805ec0000001.cfg"), ha1, 1010, counts) == "ok"
    assert _verify(_creds(mac, pw, nonce, "/805ec0000001.cfg"), ha1, 1011, counts) == "stale"  # nc replayed
    assert _verify(_creds(mac, pw, nonce, "/805ec0000001.cfg", nc="00000002"), ha1, 1012, counts) == "ok"
    assert _verify(_creds(mac, "guess", nonce, "/805ec0000001.cfg"), ha1, 1010) == "bad"
    forged = digest.make_nonce(b"x" * 32, 1000)
    assert _verify(_creds(mac, pw, forged, "/805ec0000001.cfg"), ha1, 1010) == "bad"
    c = _creds(mac, pw, nonce, "/805ec0000001.cfg")
    assert digest.verify(c, method="GET", uri="/other.cfg", realm=REALM, algorithm="MD5", ha1_hex=ha1, key=KEY,
                         now=1010, ttl_s=300, counts=digest.NonceCounts()) == "bad"


def test_nonces_differ_even_within_one_second() -> None:
    """Two challenges in the same second get different nonces (each client's nc starts at 1)."""
    a, b = digest.make_nonce(KEY, 1000), digest.make_nonce(KEY, 1000)
    assert a != b and digest.nonce_age(KEY, a, 1001) == 1 and digest.nonce_age(KEY, b, 1001) == 1
    assert digest.nonce_age(KEY, a.replace(a.split(".")[1], "0" * 12), 1001) is None


def test_digest_expired_nonce_is_stale_and_sha256_works() -> None:
    """A right answer to an old nonce is 'stale' (retry silently); SHA-256 HA1s verify too."""
    mac, pw = "805ec0000001", "pw-123456"
    nonce = digest.make_nonce(KEY, 1000)
    assert _verify(_creds(mac, pw, nonce, "/a.cfg"), digest.ha1(mac, REALM, pw), 1400) == "stale"
    ha1 = digest.ha1(mac, REALM, pw, "SHA-256")
    assert _verify(_creds(mac, pw, nonce, "/a.cfg", algorithm="SHA-256"), ha1, 1001, algorithm="SHA-256") == "ok"


def test_parse_authorization_header() -> None:
    """A client's header parses (quoted and bare values, escapes); other schemes and junk do not."""
    h = ('Digest username="805ec0000001", realm="callcenter-provisioning", nonce="5f.x", uri="/a.cfg", '
         'response="ABC", qop=auth, nc=00000001, cnonce="c\\"n", algorithm=MD5, opaque="o"')
    c = digest.parse_authorization(h)
    assert c is not None and c.username == "805ec0000001" and c.qop == "auth" and c.cnonce == 'c"n'
    assert c.response == "abc" and c.opaque == "o"
    assert digest.parse_authorization("Basic Zm9vOmJhcg==") is None
    assert digest.parse_authorization('Digest username="x"') is None
    assert digest.parse_authorization("Digest ,,,==") is None


@given(st.text(max_size=300))
def test_parse_authorization_never_raises(h: str) -> None:
    """Any header text parses or is refused, without an exception."""
    digest.parse_authorization("Digest " + h)


def test_config_errors_name_the_key() -> None:
    """Bad MAC, unknown model, duplicate MAC, MAC without model and a wrong-length HA1 fail with their paths."""
    d = data(algorithm="SHA-256")
    d["phones"]["2005"].update(mac="80:5e:c0:00:00:01", model="yealink-t46u")
    d["phones"]["2002"]["model"] = "cisco-7941"
    d["phones"]["2003"]["mac"] = "zz"
    del d["phones"]["2004"]["model"]
    with pytest.raises(config_mod.ConfigError) as e:
        config_mod.parse(d)
    text = str(e.value)
    assert "phones.2002.model: unknown model" in text and "phones.2003.mac: a MAC address" in text
    d = data(algorithm="SHA-256")
    d["phones"]["2005"].update(mac="80:5e:c0:00:00:01", model="yealink-t46u")
    del d["phones"]["2004"]["model"]
    with pytest.raises(config_mod.ConfigError) as e:
        config_mod.parse(d)
    text = str(e.value)
    assert "phones.2005.mac: 805ec0000001 already belongs to phone '2001'" in text
    assert "phones.2004.model: required with a mac" in text
    assert "phones.2001.provisioning_ha1: not a SHA-256 HA1" in text
    with pytest.raises(config_mod.ConfigError, match="provisioning.timezone: unknown time zone"):
        config_mod.parse(data(timezone="Mars/Olympus"))


def test_time_zone_offsets() -> None:
    """Standard offset and DST per zone, southern hemisphere included."""
    assert tz_offsets("Europe/Paris") == (3600, True)
    assert tz_offsets("Australia/Sydney") == (36000, True)
    assert tz_offsets("Asia/Kolkata") == (19800, False)
    assert tz_offsets("UTC") == (0, False)


def test_posix_rule_read_from_tzdata() -> None:
    """The zone's rule comes from its TZif footer (the golden files' Paris rule is that one)."""
    from callcenter.features.provisioning.schema import read_posix_tz
    from tests.unit.test_provisioning_render import POSIX_PARIS
    assert read_posix_tz("Europe/Paris") == POSIX_PARIS
    assert read_posix_tz("No/Such_Zone") is None
