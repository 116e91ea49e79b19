"""The ACD service with a fake AMI peer: cancels, bounded maps, node-scoped resync, verdict expiry."""

from __future__ import annotations

import asyncio
import math
import copy

import yaml

from callcenter import config, events as ev
from callcenter.asterisk import contract as cc
from callcenter.features.acd import model as acd
from callcenter.features.acd.service import AcdService
from callcenter.features.amd.handlers import VERDICT_TTL_S, AmdHandlers
from callcenter.features.amd.server import Verdict
from callcenter.protocol.ami import Message
from callcenter.tasks import Supervisor

from .fakes import FakeAmi

BASE = yaml.safe_load(open("tests/asterisk/lab.yaml"))


def _service(clock=lambda: 1000.0):
    cfg = config.parse(copy.deepcopy(BASE))
    fatal: list[str] = []
    ami = FakeAmi()
    svc = AcdService(cfg, ev.Bus(), ami, Supervisor(lambda n, e: fatal.append(n)), clock=clock)
    svc.submit(acd.Resync(()))
    return svc, ami, fatal


def _event(*pairs: tuple[str, str], **headers: str) -> Message:
    return Message(tuple(headers.items()) + pairs)


def _vars(**v: str) -> tuple[tuple[str, str], ...]:
    return tuple(("ChanVariable", f"{k}={val}") for k, val in v.items())


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def _alice_offered_c1(svc: AcdService) -> None:
    """alice logs in and caller c1 (PJSIP/trunk-1) queues in sales: the core offers c1 to alice."""
    svc.submit(acd.Login("alice"))
    svc.submit(acd.CallQueued("c1", "sales", "PJSIP/trunk-1", "5550100", entered_at=1000.0))
    await _settle()


def _dial_begin(cid: str, caller: str, dest: str, dest_uid: str) -> Message:
    return _event(*_vars(CC_ROLE="caller", CC_CALL_ID=cid), Event="DialBegin", Channel=caller,
                  DestChannel=dest, DestUniqueid=dest_uid)


def _dial_end(cid: str, caller: str, dest: str, dest_uid: str, status: str) -> Message:
    return _event(*_vars(CC_ROLE="caller", CC_CALL_ID=cid), Event="DialEnd", Channel=caller,
                  DestChannel=dest, DestUniqueid=dest_uid, DialStatus=status)


async def test_an_offer_rings_the_agent_from_the_callers_own_dial() -> None:
    """An offer sets CC_OFFER (dial string | ring seconds | number | name) on the caller and redirects it into cc-offer:
    no Originate, no Bridge — no channel running dialplan is ever moved into a bridge."""
    svc, ami, _ = _service()
    await _alice_offered_c1(svc)
    names = [n for n, _ in ami.actions]
    assert names == ["Setvar", "Redirect"], names
    setvar, redirect = (h for _, h in ami.actions)
    ring_s = math.ceil(svc.cfg.queues["sales"].ring_timeout_s)
    assert (setvar["Channel"], setvar["Variables"], setvar["Value"]) == ("PJSIP/trunk-1", cc.OFFER, f"PJSIP/2001|{ring_s}|5550100|")
    assert (redirect["Channel"], redirect["Context"], redirect["Exten"]) == ("PJSIP/trunk-1", cc.CTX_OFFER, "s")


async def test_a_hostile_caller_id_reaches_the_offer_only_sanitised() -> None:
    """Caller text with the dialplan's separators (, | ^ parentheses), quotes, '$' and CR/LF never
    reaches CC_OFFER, whose fields cc-offer splits and hands to Dial() and its handlers."""
    svc, ami, _ = _service()
    svc.submit(acd.Login("alice"))
    svc.submit(acd.CallQueued("c1", "sales", "PJSIP/trunk-1", '55501|00^1,2', entered_at=1000.0,
                              caller_name='Eve "x", $(reboot)|y^z\r\nAction: Originate'))
    await _settle()
    value = next(h for n, h in ami.actions if n == "Setvar")["Value"]
    dial, ring_s, num, name = value.split("|")
    assert (dial, num) == ("PJSIP/2001", "555010012")  # digits only
    assert not set(name) & set(',|^()$"\r\n') and "reboot" in name, name


async def test_a_cancel_hangs_up_the_ringing_leg_its_dial_made() -> None:
    """Once DialBegin named the agent's leg, cancelling the offer hangs up exactly that channel."""
    svc, ami, _ = _service()
    await _alice_offered_c1(svc)
    svc.on_ami_event("local", _dial_begin("c1", "PJSIP/trunk-1", "PJSIP/2001-0000000a", "d-1"))
    await svc.cancel("c1", "alice")
    hangups = [h for n, h in ami.actions if n == "Hangup"]
    assert hangups and hangups[-1]["Channel"] == "PJSIP/2001-0000000a"


async def test_a_ring_that_was_not_answered_fails_the_offer_once() -> None:
    """DialEnd NOANSWER frees the agent (counted as a miss) and the caller waits on; a repeat changes nothing."""
    svc, ami, _ = _service()
    await _alice_offered_c1(svc)
    svc.on_ami_event("local", _dial_begin("c1", "PJSIP/trunk-1", "PJSIP/2001-0000000a", "d-1"))
    end = _dial_end("c1", "PJSIP/trunk-1", "PJSIP/2001-0000000a", "d-1", "NOANSWER")
    svc.on_ami_event("local", end)
    a, c = svc.state.agents["alice"], svc.state.calls["c1"]
    assert c.agent is None and c.answered_at is None and "alice" in c.tried
    assert a.call_id is None and a.no_answers == 1
    svc.on_ami_event("local", end)
    assert svc.state.agents["alice"].no_answers == 1 and not svc.legs


async def test_a_dial_end_of_a_phone_not_offered_that_call_changes_nothing() -> None:
    """A DialEnd naming another agent's phone (stale or forged) fails no offer."""
    svc, ami, _ = _service()
    await _alice_offered_c1(svc)
    svc.on_ami_event("local", _dial_begin("c1", "PJSIP/trunk-1", "PJSIP/2002-0000000b", "d-2"))
    svc.on_ami_event("local", _dial_end("c1", "PJSIP/trunk-1", "PJSIP/2002-0000000b", "d-2", "BUSY"))
    assert svc.state.calls["c1"].agent == "alice" and svc.state.agents["alice"].call_id == "c1"


async def test_ten_thousand_calls_leave_no_legs_behind() -> None:
    """Calls answered, unanswered, hung up while ringing and never answered at all: every map returns to empty."""
    now = [1000.0]
    svc, ami, fatal = _service(clock=lambda: now[0])
    svc.submit(acd.Login("alice"))
    for i in range(10_000):
        cid = f"{i:016x}"
        caller, leg, uid = f"PJSIP/trunk-{i}", f"PJSIP/2001-{i:08x}", f"d{i}"
        svc.submit(acd.CallQueued(cid, "sales", caller, "5550100", entered_at=now[0]))
        await _settle()
        kind = i % 4
        if kind != 3:
            svc.on_ami_event("local", _dial_begin(cid, caller, leg, uid))
        if kind == 0:  # answered and claimed, talked, the agent hangs up
            svc.submit(acd.OfferAnswered(cid, "alice"))
            svc.on_ami_event("local", _dial_end(cid, caller, leg, uid, "ANSWER"))
            svc.on_ami_event("local", _event(*_vars(CC_ROLE="agent", CC_CALL_ID=cid, CC_AGENT="alice"),
                                             Event="Hangup", Channel=leg, Uniqueid=uid))
        elif kind == 1:  # the phone did not answer; then the caller gives up
            svc.on_ami_event("local", _dial_end(cid, caller, leg, uid, "NOANSWER"))
            svc.submit(acd.CallerLeft(cid))
        elif kind == 2:  # the caller hung up while the agent's phone rang
            svc.on_ami_event("local", _event(*_vars(CC_ROLE="caller", CC_CALL_ID=cid),
                                             Event="Hangup", Channel=caller, Uniqueid=f"u{i}"))
            svc.on_ami_event("local", _dial_end(cid, caller, leg, uid, "CANCEL"))
        else:  # the link was lost before DialBegin: nothing to follow
            svc.submit(acd.CallerLeft(cid))
        await _settle()
        now[0] += 3600  # wrap-up and retry windows over
        svc.submit(acd.Tick())
        if svc.state.agents["alice"].state == acd.AgentState.PAUSED:
            svc.submit(acd.Unpause("alice"))
        assert svc.state.agents["alice"].state == acd.AgentState.READY, (i, svc.state.agents["alice"])
    now[0] += 3600
    svc.sweep()
    assert (len(svc.legs), len(svc.by_action), len(svc.in_agi)) == (0, 0, 0)
    assert not svc.state.calls and fatal == []


async def test_resync_of_one_node_keeps_another_nodes_legs() -> None:
    """Legs are keyed by node: a snapshot of node A forgets A's vanished legs and never touches B's."""
    svc, _, _ = _service()
    from callcenter.features.acd.service import Leg
    svc.legs[("a", "leg-a")] = Leg("c1", "alice", "x1", 9e9)
    svc.legs[("b", "leg-b")] = Leg("c2", "bob", "x2", 9e9)
    svc.by_action[("a", "x1")] = "leg-a"
    svc.by_action[("b", "x2")] = "leg-b"
    svc.resync("a", [], [])
    assert list(svc.legs) == [("b", "leg-b")] and list(svc.by_action) == [("b", "x2")]


def test_verdicts_nobody_read_expire() -> None:
    """An AMD verdict whose call hung up before the dialplan read it is forgotten after its TTL."""
    t = [0.0]
    h = AmdHandlers(lambda: None, ev.Bus(), lambda: None, clock=lambda: t[0])
    for i in range(10_000):
        h.on_final(f"uuid-{i}", Verdict("HUMAN", 700))
    assert len(h.verdicts) == 10_000
    t[0] = VERDICT_TTL_S + 1
    assert h.expire() == 10_000 and len(h.verdicts) == 0


def test_contract_roles_are_what_the_service_matches() -> None:
    """The service reads roles through the contract (a renamed role would break here, not live)."""
    assert (cc.ROLE, cc.ROLE_CALLER, cc.ROLE_AGENT) == ("CC_ROLE", "caller", "agent")


def test_a_snapshot_of_one_node_never_touches_another_nodes_callers() -> None:
    """Resync of node a with no channels ends a's waiting caller; b's caller waits on untouched."""
    cfg = config.parse(copy.deepcopy(BASE))
    state, _ = acd.step(cfg, acd.initial_state(cfg), acd.Resync((), node="a"), 0.0)
    state, _ = acd.step(cfg, state, acd.CallQueued("ca", "sales", "PJSIP/t-1", entered_at=1.0, node="a"), 1.0)
    state, _ = acd.step(cfg, state, acd.CallQueued("cb", "sales", "PJSIP/t-2", entered_at=2.0, node="b"), 2.0)
    state, cmds = acd.step(cfg, state, acd.Resync((), node="a"), 3.0)
    assert set(state.calls) == {"cb"} and state.calls["cb"].node == "b"
    assert [c.call_id for c in cmds if isinstance(c, acd.CallEnded)] == ["ca"]


async def _talking(svc: AcdService, ami: FakeAmi) -> str:
    """alice answers c1 and claims it: returns the agent leg's Uniqueid."""
    svc.submit(acd.Login("alice"))
    svc.submit(acd.CallQueued("c1", "sales", "PJSIP/trunk-0001", "5550100", entered_at=1000.0))
    await _settle()
    svc.on_ami_event("local", _dial_begin("c1", "PJSIP/trunk-0001", "PJSIP/2001-0000000a", "d-1"))
    svc.submit(acd.OfferAnswered("c1", "alice"))
    svc.on_ami_event("local", _dial_end("c1", "PJSIP/trunk-0001", "PJSIP/2001-0000000a", "d-1", "ANSWER"))
    return "d-1"


async def test_the_hangup_of_a_stand_in_copy_never_ends_the_call() -> None:
    """A Surrogate/ (or <ZOMBIE>) copy of the agent leg hanging up is not the agent hanging up."""
    svc, ami, _ = _service()
    leg = await _talking(svc, ami)
    for name in ("Surrogate/PJSIP/2001-0000000a", "PJSIP/2001-0000000a<ZOMBIE>"):
        svc.on_ami_event("local", _event(*_vars(CC_ROLE="agent", CC_CALL_ID="c1", CC_AGENT="alice"),
                                         Event="Hangup", Channel=name, Uniqueid=leg))
    assert svc.state.calls["c1"].answered_at is not None and svc.state.agents["alice"].call_id == "c1"


def test_a_surrogate_left_in_the_wait_loop_is_never_adopted_as_a_caller() -> None:
    """At resync a Surrogate/ channel with CC_ROLE=caller in cc-wait is not a waiting caller."""
    svc, _, _ = _service()
    chans = [_event(*_vars(CC_ROLE="caller", CC_CALL_ID="0123456789abcdef", CC_QUEUE="sales",
                           CC_ENTERED="1000.0"),
                    Event="CoreShowChannel", Channel="Surrogate/PJSIP/trunk-00000001", Uniqueid="u-s",
                    Context="cc-wait", ChannelState="0")]
    svc.resync("local", chans, [])
    assert "0123456789abcdef" not in svc.state.calls


async def test_a_ring_decided_inside_the_callers_agi_is_handed_to_that_session_not_redirected() -> None:
    """While the caller is inside one of our AGI sessions, its ring sends no AMI action: the session
    gets CC_OFFER's value at its end (the dialplan goes to cc-offer itself); afterwards rings redirect."""
    svc, ami, _ = _service()
    svc.submit(acd.Login("alice"))
    svc.agi_begin("c1")
    svc.submit(acd.CallQueued("c1", "sales", "PJSIP/trunk-1", "5550100", entered_at=1000.0))
    await _settle()
    assert not ami.actions and svc.state.calls["c1"].agent == "alice"
    ring = svc.agi_end("c1")
    assert ring is not None and ring.startswith("PJSIP/2001|") and not svc.in_agi
    svc.on_ami_event("local", _dial_begin("c1", "PJSIP/trunk-1", "PJSIP/2001-1", "d-1"))
    svc.on_ami_event("local", _dial_end("c1", "PJSIP/trunk-1", "PJSIP/2001-1", "d-1", "NOANSWER"))
    svc.submit(acd.Login("bob"))
    await _settle()
    assert [n for n, _ in ami.actions] == ["Setvar", "Redirect"]  # bob rung the usual way


async def test_an_agi_session_with_no_ring_meanwhile_hands_over_nothing() -> None:
    """agi_end with no ring decided returns None and forgets the call (the map stays bounded)."""
    svc, ami, _ = _service()
    svc.agi_begin("c9")
    assert svc.agi_end("c9") is None and not svc.in_agi and not ami.actions
