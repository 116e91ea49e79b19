"""Webhook messages from domain events (one correlation id per call, ordering keys) and their signatures,
checked against the Standard Webhooks test vector and recomputed without the library."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sqlite3

import pytest

from callcenter import events as ev
from callcenter.features.acd.model import Call
from callcenter.features.webhooks.payloads import Payloads, iso
from callcenter.features.webhooks.schema import EVENT_TYPES, check_events, check_url, check_whsec, matches
from callcenter.features.webhooks.service import new_id, signed_headers
from callcenter.journal import JOURNALLED, Journal
from standardwebhooks import Webhook

CID = "0123456789abcdef"


def _verify(secret: str, headers: dict[str, str], body: str) -> bool:
    """The receiver's check, from the specification alone: HMAC-SHA256 of id.timestamp.body, base64."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.{body}".encode()
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(s.split(",", 1) == ["v1", expected] for s in headers["webhook-signature"].split(" "))


def test_signature_matches_the_specifications_test_vector() -> None:
    """The spec's example (secret, msg id, timestamp 1614265330, body) signs to its published signature."""
    h = signed_headers(Webhook("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), "msg_p5jXN8AQM9LWM0D4loKWxJek",
                       '{"test": 2432232314}', 1614265330.7)
    assert h["webhook-timestamp"] == "1614265330"
    assert h["webhook-signature"] == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_signature_verifies_independently_and_fails_on_a_changed_body() -> None:
    """Our headers pass a hand-written HMAC check; one changed byte of the body does not."""
    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    body = json.dumps({"type": "call.ended", "data": {"call_id": CID}})
    h = signed_headers(Webhook(secret), new_id(1.0), body, 1700000000.0)
    assert _verify(secret, h, body)
    assert not _verify(secret, h, body.replace("ended", "endeD"))


def _call_events() -> list[ev.DomainEvent]:
    return [ev.CallStarted(CID, "1.1", "PJSIP/trunk-1", "+15551234", "Ann", "5552000", 100.0),
            ev.CallPath(CID, ("main", "1")),
            ev.CallQueued(CID, "sales", 101.0),
            ev.CallOffered(CID, "alice", "sales", "longest-idle", 104.0),
            ev.CallAnswered(CID, "alice", 106.0),
            ev.RecordingEvent("started", "rec42", CID, "alice"),
            ev.CallEnded(CID, "answered", 160.0, "alice")]


def test_a_calls_messages_carry_its_id_and_what_integrators_need() -> None:
    """entered (caller, DID, IVR path, queue), offered (agent, wait), answered, ended (duration, recording)."""
    p = Payloads()
    msgs = [m for e in _call_events() if (m := p.message(e, 0.0)) is not None]
    assert [m.type for m in msgs] == ["call.entered", "call.offered", "call.answered", "call.ended"]
    assert {m.key for m in msgs} == {CID} and all(m.data["call_id"] == CID for m in msgs)
    entered, offered, answered, ended = (m.data for m in msgs)
    assert entered == {"call_id": CID, "caller_num": "+15551234", "caller_name": "Ann", "did": "5552000",
                       "ivr_path": ["main", "1"], "queue": "sales", "customer": None}
    assert offered["agent"] == "alice" and offered["wait_s"] == 3.0
    assert answered["wait_s"] == 5.0
    assert ended["duration_s"] == 60.0 and ended["talk_s"] == 54.0 and ended["recording_id"] == "rec42"
    assert msgs[-1].body()["timestamp"] == iso(160.0) == "1970-01-01T00:02:40.000Z"
    assert p.calls == {}  # forgotten once ended


def test_agents_leads_and_callbacks_have_their_own_ordering_keys() -> None:
    """agent.state per agent; lead.outcome per lead; a disposition with a call id follows that call."""
    p = Payloads()
    a = p.message(ev.AgentStateChanged("bob", "Paused", "", 1.0, None, True, "lunch", 5.0), 0)
    lead = p.message(ev.DialerOutcome("spring", "human", 7), 9.0)
    disp = p.message(ev.DispositionSet("bob", "spring", 7, "sale", 10.0, CID), 0)
    cb = p.message(ev.CallbackStored(Call(CID, "sales", "", 1.0, callback="5551234"), 3.0), 0)
    assert a and a.key == "agent:bob" and a.data["reason"] == "lunch"
    assert lead and lead.key == "lead:spring:7" and lead.data == {"campaign": "spring", "lead_id": 7,
                                                                   "outcome": "human"}
    assert disp and disp.key == CID and disp.data["disposition"] == "sale"
    assert cb and cb.type == "callback.stored" and cb.data["number"] == "5551234"
    assert {a.type, lead.type, disp.type, cb.type} <= set(EVENT_TYPES)


def test_event_patterns_and_secrets_are_checked() -> None:
    """callback.* matches both callback types; unknown types and short secrets are refused."""
    assert matches("callback.*", "callback.done") and not matches("callback.*", "call.ended")
    assert check_events(("*",)) == ("*",)
    with pytest.raises(ValueError):
        check_events(("call.foo",))
    for url in ("http://crm/\udc00", "http://crm:99999/", "ftp://crm/", "http:///x", "http://crm/a b"):
        with pytest.raises(ValueError):
            check_url(url)
    assert check_url("https://crm.example.com:8443/hooks?x=1") == "https://crm.example.com:8443/hooks?x=1"
    with pytest.raises(ValueError):
        check_whsec("whsec_" + base64.b64encode(b"short").decode())


def test_the_journal_set_matches_what_it_subscribes() -> None:
    """JOURNALLED names exactly the event types the journal writes (the others need their own transaction)."""
    bus = ev.Bus()

    class Posts:
        def post(self, *a: object) -> None:
            pass

    Journal(sqlite3.connect(":memory:")).subscribe(bus, Posts())  # type: ignore[arg-type]
    assert set(bus._subs) == set(JOURNALLED)


def test_an_events_journal_write_and_its_outbox_rows_share_one_transaction() -> None:
    """A failing outbox writer rolls the journal's row back too; a working one commits both."""
    db = sqlite3.connect(":memory:", isolation_level=None)
    j = Journal(db)
    bus = ev.Bus()
    posted: list[tuple] = []

    class Posts:
        def post(self, fn, *a) -> None:  # type: ignore[no-untyped-def]
            posted.append((fn, a))

    def broken(_db: sqlite3.Connection) -> None:
        raise sqlite3.OperationalError("disk full")

    hooks = iter([broken, lambda d: d.execute("CREATE TABLE marker(x)")])
    j.add_outbox(lambda e: next(hooks) if isinstance(e, ev.CallStarted) else None)
    j.subscribe(bus, Posts())  # type: ignore[arg-type]
    bus.publish(ev.CallStarted(CID, "1.1", "c", "", "", "", 1.0))
    fn, a = posted.pop()
    with pytest.raises(sqlite3.OperationalError):
        fn(*a)
    assert j.call(CID) is None  # rolled back with the outbox rows
    bus.publish(ev.CallStarted(CID, "1.1", "c", "", "", "", 1.0))
    fn, a = posted.pop()
    fn(*a)
    assert j.call(CID) is not None and db.execute("SELECT COUNT(*) FROM marker").fetchone() == (0,)


def test_calls_whose_end_is_never_seen_do_not_grow_the_context_for_ever(monkeypatch) -> None:
    """Beyond MAX_CALLS remembered calls, the oldest is forgotten."""
    from callcenter.features.webhooks import payloads
    monkeypatch.setattr(payloads, "MAX_CALLS", 3)
    p = Payloads()
    for i in range(5):
        p.message(ev.CallStarted(f"{i:016x}", "u", "c", "", "", "", 1.0), 0)
    assert list(p.calls) == [f"{i:016x}" for i in (2, 3, 4)]


def test_a_known_customer_rides_along_on_the_calls_messages() -> None:
    """After CustomerIdentified (the CRM lookup), entered/offered/answered/ended carry the public record."""
    from callcenter.features.crm.model import CustomerIdentified
    p = Payloads()
    evs = _call_events()
    evs.insert(2, CustomerIdentified(CID, "+15551234", {"name": "Ann", "vip": True}, 100.5))
    msgs = [m for e in evs if (m := p.message(e, 0.0)) is not None]
    assert [m.data["customer"] for m in msgs] == [{"name": "Ann", "vip": True}] * 4


def test_a_transfer_and_a_late_rating_have_their_own_messages() -> None:
    """call.transferred rides the call's id and queue; call.rated comes after call.ended and keeps no context."""
    p = Payloads()
    p.message(ev.CallQueued(CID, "sales", 10.0), 10.0)
    m = p.message(ev.CallTransferred(CID, "blind", "alice", "agent", "bob", "ringing", 20.0), 20.0)
    assert m is not None and (m.type, m.key) == ("call.transferred", CID)
    assert m.data == {"call_id": CID, "kind": "blind", "from_agent": "alice", "to_kind": "agent", "target": "bob",
                      "result": "ringing", "queue": "sales"}
    p.message(ev.CallEnded(CID, "completed", 30.0, agent="bob"), 30.0)
    r = p.message(ev.CsatRated(CID, "sales", "bob", 4, 35.0), 35.0)
    assert r is not None and r.type == "call.rated" and r.data["rating"] == 4 and CID not in p.calls
    assert {"call.transferred", "call.rated"} <= set(EVENT_TYPES) and matches("call.*", "call.rated")
