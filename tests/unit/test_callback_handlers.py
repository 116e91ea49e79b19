"""The callback key over FastAGI: a caller ID the trunk's allow-list refuses is never dialled, the
caller hears that a callback is not possible and keeps waiting; an allowed one becomes a callback."""

from __future__ import annotations

import copy
import time

import yaml

from callcenter import config, events as ev
from callcenter.features.acd import model as acd
from callcenter.features.acd.service import AcdService
from callcenter.features.callback.handlers import CallbackHandlers
from callcenter.features.callback.numbers import dial_back_number
from callcenter.tasks import Supervisor

from .fakes import FakeAmi, FakeSession

BASE = yaml.safe_load(open("tests/asterisk/lab.yaml"))


def _setup(caller_num: str, dial_allow: list[str] | None = None, caller_id: str = ""):
    d = copy.deepcopy(BASE)
    if dial_allow is not None:
        d["trunks"]["pstn"]["dial_allow"] = dial_allow
    d["trunks"]["pstn"]["caller_id"] = caller_id
    cfg = config.parse(d)
    bus = ev.Bus()
    svc = AcdService(cfg, bus, FakeAmi(), Supervisor(lambda n, e: None))
    svc.submit(acd.Resync(()))
    svc.submit(acd.CallQueued("c1", "sales", "PJSIP/trunk-1", caller_num, entered_at=time.time() - 60))
    published: list[object] = []
    bus.subscribe(None, published.append)

    async def lookup(call_id: str) -> None:
        return None

    h = CallbackHandlers(lambda: cfg, svc, bus, lookup_call=lookup,
                         dial_back=lambda n, t: dial_back_number(n, cfg.trunks[t], cfg.site))
    return cfg, svc, h, published


async def test_a_premium_rate_caller_id_is_never_dialled_back() -> None:
    """+1 900 … (premium rate) is refused: the caller hears 'unavailable' and stays queued, no callback."""
    cfg, svc, h, published = _setup("+19005550123", dial_allow=["national"])
    s = FakeSession(("5",), {"CC_CALL_ID": "c1"})
    await h.agi_queue_digit(s)
    assert not svc.state.calls["c1"].callback and "c1" in svc.state.calls
    assert ("STREAM FILE", cfg.queues["sales"].callback.unavailable[0], "") in s.commands
    assert ("HANGUP",) not in s.commands
    assert not any(isinstance(e, ev.CallOutcome) for e in published)


async def test_dial_string_syntax_in_a_caller_id_is_refused() -> None:
    """A caller ID carrying dial-string syntax never becomes a callback number."""
    _, svc, h, _ = _setup("500&PJSIP/evil")
    await h.agi_queue_digit(FakeSession(("5",), {"CC_CALL_ID": "c1"}))
    assert not svc.state.calls["c1"].callback


async def test_an_allowed_number_becomes_a_callback_and_the_caller_hangs_up() -> None:
    """A number the list admits (the lab's _555XXXX) takes the callback: confirmed, hung up, place kept."""
    _, svc, h, published = _setup("5550301")
    s = FakeSession(("5",), {"CC_CALL_ID": "c1"})
    await h.agi_queue_digit(s)
    assert svc.state.calls["c1"].callback == "5550301"
    assert s.commands[-1] == ("HANGUP",)
    assert any(isinstance(e, ev.CallOutcome) and e.outcome == "callback" for e in published)


async def test_a_callback_without_a_did_presents_the_trunks_caller_id() -> None:
    """The journal knows no DID the customer called: the dial-back presents trunks.pstn.caller_id."""
    _, svc, h, _ = _setup("5550301", caller_id="+12125551999")
    await h.agi_queue_digit(FakeSession(("5",), {"CC_CALL_ID": "c1"}))
    s = FakeSession((), {})
    await h.dial(s, svc.state.calls["c1"])
    assert s.vars["CALLERID(num)"] == "+12125551999" and s.vars["CC_DIAL"] == "PJSIP/5550301@trunk-pstn"
