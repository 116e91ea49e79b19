"""Cards on the real lab Asterisk (which has no chan_dahdi, as no test host has a card): the daemon asks
DAHDIShowStatus after login, Asterisk refuses the unknown action, and the daemon still syncs with the
spans reported unknown in /status and /metrics."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.asterisk.conftest import DaemonProc

pytestmark = pytest.mark.asterisk


def _get(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=3) as r:  # noqa: S310 - loopback
        return r.read().decode()


def test_cards_without_chan_dahdi_read_unknown_and_the_daemon_syncs(daemon_config: Callable[..., Path]) -> None:
    """Asterisk answers DAHDIShowStatus with an error; the resync completes, /healthz is 200, spans are unknown."""
    path = daemon_config(trunks__telco={"match": [], "dids": {"5559000": {"menu": "main"}}},
                         cards={"spans": {1: {"type": "e1", "trunk": "telco"}}})
    d = DaemonProc(path).start()
    try:
        refused = d.wait_for("card.status_unavailable", 20)
        assert "DAHDIShowStatus" in str(refused["error"])
        d.wait_for("ami.resynced", 10)
        port = d.cfg.http.port
        assert json.loads(_get(port, "/status"))["cards"]["1"]["state"] == "unknown"
        assert 'callcenter_card_span_up{span="1"} -1.0' in _get(port, "/metrics")
        assert _get(port, "/healthz")
    finally:
        d.stop()
