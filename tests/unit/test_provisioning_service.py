"""The provisioning listener over real HTTP on loopback, fetched with aiohttp's own digest client
(an implementation independent of ours): secrets only behind the device's credentials."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from callcenter.features.provisioning.service import ProvisioningServer
from tests.unit.provisioning_conf import PASSWORDS, config

SECRETS = ("s3cret-2001", "s3cret-2002", "s3cret-2003", "s3cret-2004")


@pytest.fixture
async def server() -> AsyncIterator[ProvisioningServer]:
    cfg = config()
    s = ProvisioningServer(lambda: cfg, CollectorRegistry())
    await s.start(port=0)
    yield s
    await s.close()


async def _get(s: ProvisioningServer, name: str, auth: tuple[str, str] | None = None) -> tuple[int, str, Any]:
    mw = (aiohttp.DigestAuthMiddleware(*auth, preemptive=False),) if auth else ()
    async with aiohttp.ClientSession(middlewares=mw) as http:
        async with http.get(f"http://127.0.0.1:{s.port}/{name}") as r:
            return r.status, await r.text(), r.headers


def _no_secret(text: str) -> None:
    assert not any(sec in text for sec in SECRETS), text[:200]


async def test_common_files_are_public(server: ProvisioningServer) -> None:
    """Yealink's and Polycom's common files come without authentication, and hold no secret."""
    for name in ("y000000000000.cfg", "000000000000.cfg"):
        status, body, _ = await _get(server, name)
        assert status == 200
        _no_secret(body)


async def test_a_fetch_without_authentication_gets_no_secret(server: ProvisioningServer) -> None:
    """Every vendor's per-MAC file answers 401 with a digest challenge and no secret to a bare GET."""
    for name in ("805ec0000001.cfg", "0004f2000002-phone.cfg", "cfg000b82000003.xml", "000413000004.xml"):
        status, body, headers = await _get(server, name)
        assert status == 401 and headers["WWW-Authenticate"].startswith("Digest realm=")
        assert 'qop="auth"' in headers["WWW-Authenticate"]
        _no_secret(body)


async def test_the_device_credentials_fetch_its_file(server: ProvisioningServer) -> None:
    """With its own MAC and password a phone gets its file (with its secret); the fetch is logged
    with MAC, model, source and outcome, and no log line holds a secret or password."""
    with capture_logs() as logs:
        status, body, headers = await _get(server, "805ec0000001.cfg", ("805ec0000001", PASSWORDS["805ec0000001"]))
        status2, body2, _ = await _get(server, "cfg000b82000003.xml", ("000b82000003", PASSWORDS["000b82000003"]))
    assert status == 200 and "account.1.password = s3cret-2001" in body
    assert headers["Cache-Control"] == "no-store"
    assert status2 == 200 and "<P34>s3cret-2003</P34>" in body2
    served = [e for e in logs if e["event"] == "provisioning.fetch" and e["outcome"] == "served"]
    assert {(e["mac"], e["model"], e["source"], e["extension"]) for e in served} == {
        ("805ec0000001", "yealink-t46u", "127.0.0.1", "2001"), ("000b82000003", "grandstream-gxp2170", "127.0.0.1", "2003")}
    everything = repr(logs)
    _no_secret(everything)
    assert not any(pw in everything for pw in PASSWORDS.values())


async def test_unknown_and_known_macs_answer_alike_without_credentials(server: ProvisioningServer) -> None:
    """Without credentials an unknown MAC's file and a known one's both answer 401 (no enumeration)."""
    known = await _get(server, "805ec0000001.cfg")
    unknown = await _get(server, "805ec0000099.cfg")
    assert known[0] == unknown[0] == 401 and known[1] == unknown[1]


async def test_one_device_cannot_fetch_another(server: ProvisioningServer) -> None:
    """The Yealink's credentials do not open the Snom's file; a wrong password opens nothing."""
    status, body, _ = await _get(server, "000413000004.xml", ("805ec0000001", PASSWORDS["805ec0000001"]))
    assert status == 401
    _no_secret(body)
    status, body, _ = await _get(server, "805ec0000001.cfg", ("805ec0000001", "not-the-password"))
    assert status == 401
    _no_secret(body)


async def test_five_unknown_macs_block_the_source(server: ProvisioningServer) -> None:
    """A source asking for five unknown MACs is refused (even common files) and the block is logged."""
    with capture_logs() as logs:
        for i in range(4):
            assert (await _get(server, f"0000000000a{i}.cfg"))[0] == 401  # as a known MAC without credentials
        assert (await _get(server, "y000000000000.cfg"))[0] == 200
        assert (await _get(server, "0000000000a9.cfg"))[0] == 401
        assert (await _get(server, "y000000000000.cfg"))[0] == 403
        status, body, _ = await _get(server, "805ec0000001.cfg", ("805ec0000001", PASSWORDS["805ec0000001"]))
    assert status == 403
    _no_secret(body)
    assert [e["source"] for e in logs if e["event"] == "provisioning.source_blocked"] == ["127.0.0.1"]
    assert [e["outcome"] for e in logs if e["event"] == "provisioning.fetch"][-2:] == ["blocked", "blocked"]
    assert server.fetches.labels("yealink", "blocked")._value.get() == 2
    assert server.fetches.labels("yealink", "unknown-mac")._value.get() == 5


async def test_wrong_passwords_count_as_strikes(server: ProvisioningServer) -> None:
    """Guessing a known phone's password five times blocks the source too."""
    for i in range(5):
        assert (await _get(server, "805ec0000001.cfg", ("805ec0000001", f"guess-{i}")))[0] == 401
    assert (await _get(server, "805ec0000001.cfg", ("805ec0000001", PASSWORDS["805ec0000001"])))[0] == 403


async def test_a_polycom_asking_for_its_mac_cfg_falls_back(server: ProvisioningServer) -> None:
    """A Polycom first asks <mac>.cfg (a Yealink name): 401 like any per-MAC name, then with its
    credentials 404, so it reads 000000000000.cfg; none of it is a strike."""
    auth = ("0004f2000002", PASSWORDS["0004f2000002"])
    for _ in range(6):
        assert (await _get(server, "0004f2000002.cfg"))[0] == 401
        assert (await _get(server, "0004f2000002.cfg", auth))[0] == 404
    status, body, _ = await _get(server, "0004f2000002-phone.cfg", auth)
    assert status == 200 and 'reg.1.auth.password="s3cret-2002"' in body


async def test_a_phone_without_credentials_is_never_served() -> None:
    """A phone with a MAC but no provisioning_ha1 gets challenged for ever, whatever it sends."""
    from callcenter import config as config_mod
    from tests.unit.provisioning_conf import data
    d = data()
    del d["phones"]["2004"]["provisioning_ha1"]
    cfg = config_mod.parse(d)
    s = ProvisioningServer(lambda: cfg, CollectorRegistry())
    await s.start(port=0)
    try:
        status, body, _ = await _get(s, "000413000004.xml", ("000413000004", PASSWORDS["000413000004"]))
        assert status == 401
        _no_secret(body)
    finally:
        await s.close()


async def test_https_with_the_configured_certificate(tmp_path: Any) -> None:
    """With tls_cert/tls_key the listener speaks HTTPS only; a phone trusting that certificate fetches its file."""
    import ssl
    import subprocess
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True, timeout=30)
    cfg = config(tls_cert=str(cert), tls_key=str(key))
    s = ProvisioningServer(lambda: cfg, CollectorRegistry())
    await s.start(port=0)
    try:
        trust = ssl.create_default_context(cafile=str(cert))
        mw = (aiohttp.DigestAuthMiddleware("805ec0000001", PASSWORDS["805ec0000001"], preemptive=False),)
        async with aiohttp.ClientSession(middlewares=mw) as http:
            async with http.get(f"https://127.0.0.1:{s.port}/805ec0000001.cfg", ssl=trust) as r:
                assert r.status == 200 and "account.1.password = s3cret-2001" in await r.text()
            with pytest.raises(aiohttp.ClientError):
                async with http.get(f"http://127.0.0.1:{s.port}/y000000000000.cfg") as r:
                    await r.text()
    finally:
        await s.close()
