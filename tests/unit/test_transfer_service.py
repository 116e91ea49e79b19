"""The transfers adapter with a fake AMI peer: AMI transfer events (as Asterisk writes them) in, core events
out; the API's transfer sends one BlindTransfer of the agent's own channel into cc-xfer."""

from __future__ import annotations

import asyncio
import copy

import yaml

from callcenter import config, events as ev
from callcenter.features.acd import model as acd
from callcenter.features.acd import transfer as xfer
from callcenter.features.acd.agents import AgentState
from callcenter.features.acd.service import AcdService
from callcenter.features.transfer.service import TransferService
from callcenter.protocol.ami import AmiParser
from callcenter.tasks import Supervisor

from .fakes import FakeAmi

BASE = yaml.safe_load(open("tests/asterisk/lab.yaml"))
S = AgentState
CID = "c531951c553a488f"
VARS = ("CC_QUEUE=", "CC_ENTERED=", "CC_SKILLS=", "CC_PRIORITY=")


def _talking() -> tuple[AcdService, TransferService, FakeAmi]:
    """alice talks with the caller of CID (sales); bob is Ready."""
    cfg = config.parse(copy.deepcopy(BASE))
    ami = FakeAmi()
    svc = AcdService(cfg, ev.Bus(), ami, Supervisor(lambda n, e: None), clock=lambda: 1000.0)
    svc.submit(acd.Resync(()))
    channels = {"alice": "PJSIP/2001-00000003"}
    t = TransferService(lambda: cfg, svc, ami, agent_channel=channels.get)
    svc.submit(acd.Login("alice"))
    svc.submit(acd.CallQueued(CID, "sales", "PJSIP/trunk-pstn-00000002", "5550141", entered_at=990.0))
    svc.submit(acd.OfferAnswered(CID, "alice"))
    svc.submit(acd.Login("bob"))
    return svc, t, ami


def _event(text: str) -> object:
    msgs = AmiParser().feed(b"Asterisk Call Manager/9.0.0\r\n" + text.replace("\n", "\r\n").encode() + b"\r\n\r\n")
    return msgs[-1]


def _leg(prefix: str, channel: str, role: str = "", call_id: str = "", agent: str = "") -> str:
    lines = [f"{prefix}Channel: {channel}"]
    lines += [f"{prefix}ChanVariable: {v}" for v in (f"CC_ROLE={role}", f"CC_CALL_ID={call_id}", f"CC_AGENT={agent}",
                                                    *VARS)]
    return "\n".join(lines)


BLIND = "\n".join(["Event: BlindTransfer", "Privilege: call,all", "Result: Success",
                   _leg("Transferer", "PJSIP/2001-00000003", "agent", CID, "alice"),
                   _leg("Transferee", "PJSIP/trunk-pstn-00000002", "caller", CID),
                   "IsExternal: No", "Context: cc-xfer", "Extension: 2002"])


async def test_blind_transfer_event_puts_the_agent_in_wrap_up_and_holds_the_call():
    """AMI BlindTransfer of alice's leg: alice wraps up at once, the call is held for its target."""
    svc, t, _ = _talking()
    t.on_ami_event(_event(BLIND))
    assert svc.state.agents["alice"].state is S.WRAPUP
    assert svc.state.calls[CID].pending == "blind"


async def test_blind_transfer_of_a_failed_or_foreign_leg_changes_nothing():
    """A failed transfer, or one of a channel that is no agent leg of ours, is ignored."""
    svc, t, _ = _talking()
    t.on_ami_event(_event(BLIND.replace("Result: Success", "Result: Fail")))
    t.on_ami_event(_event(BLIND.replace("TransfererChanVariable: CC_ROLE=agent", "TransfererChanVariable: CC_ROLE=")))
    assert svc.state.agents["alice"].state is S.BUSY and not svc.state.calls[CID].pending


async def test_a_forged_variable_in_a_transfer_event_reads_as_absent():
    """A caller-sent header that repeats CC_CALL_ID makes the transferer's call id unreadable: ignored."""
    svc, t, _ = _talking()
    t.on_ami_event(_event(BLIND + f"\nTransfererChanVariable: CC_CALL_ID={CID}"))
    assert svc.state.agents["alice"].state is S.BUSY


async def test_attended_transfer_event_hands_the_call_to_the_consulted_colleague():
    """AMI AttendedTransfer after bob answered alice's consult: the call is bob's, alice wraps up."""
    svc, t, _ = _talking()
    svc.submit(xfer.ConsultAnswered(CID, "bob"))
    assert svc.state.agents["bob"].state is S.BUSY
    text = "\n".join(["Event: AttendedTransfer", "Result: Success",
                      _leg("OrigTransferer", "PJSIP/2001-00000003", "agent", CID, "alice"),
                      _leg("SecondTransferer", "PJSIP/2001-00000005"),
                      _leg("Transferee", "PJSIP/trunk-pstn-00000002", "caller", CID),
                      _leg("TransferTarget", "PJSIP/2002-00000006", "agent", CID, "bob"),
                      "IsExternal: No", "DestType: Bridge"])
    t.on_ami_event(_event(text))
    assert svc.state.calls[CID].agent == "bob" and svc.state.agents["bob"].call_id == CID
    assert svc.state.agents["alice"].state is S.WRAPUP


async def test_attended_transfer_to_a_phone_of_no_agent_ends_the_record_transferred():
    """AttendedTransfer to a desk phone that is no agent's: the call leaves the ACD."""
    svc, t, _ = _talking()
    cmds: list = []
    svc.bus.subscribe(ev.CallEnded, cmds.append)
    done: list = []
    svc.bus.subscribe(ev.CallTransferred, done.append)
    text = "\n".join(["Event: AttendedTransfer", "Result: Success",
                      _leg("OrigTransferer", "PJSIP/2001-00000003", "agent", CID, "alice"),
                      _leg("SecondTransferer", "PJSIP/2001-00000005"),
                      _leg("Transferee", "PJSIP/trunk-pstn-00000002", "caller", CID),
                      _leg("TransferTarget", "PJSIP/2004-00000006")])
    t.on_ami_event(_event(text))
    assert CID not in svc.state.calls and [e.outcome for e in cmds] == ["transferred"]
    assert [(e.kind, e.to_kind, e.target) for e in done] == [("attended", "out", "2004")]  # not alice's own phone


async def test_api_transfer_sends_one_blind_transfer_of_the_agents_channel():
    """The API's transfer: one AMI BlindTransfer of alice's channel into cc-xfer; bad targets send nothing."""
    svc, t, ami = _talking()
    assert await t.transfer(CID, "4999") == "bad_target"
    assert await t.transfer(CID, "2001") == "bad_target"  # to the agent holding it
    assert await t.transfer("0" * 16, "2002") == "no_call"
    assert ami.actions[-1][0] != "BlindTransfer"
    assert await t.transfer(CID, "803") == "ok"
    name, headers = ami.actions[-1]
    assert name == "BlindTransfer"
    assert (headers["Channel"], headers["Context"], headers["Exten"]) == ("PJSIP/2001-00000003", "cc-xfer", "803")
    await asyncio.sleep(0)


async def test_supervision_follows_the_agent_who_now_holds_the_call(tmp_path):
    """After an attended transfer's AMI events, a supervisor's whisper on bob spies on bob's leg (the
    consult leg now talking with the caller); alice, gone from the call, can no longer be spied on."""
    from callcenter.events import Bus
    from callcenter.features.supervision.handlers import agi_spy
    from callcenter.features.supervision.service import SupervisionService
    from callcenter.persistence import DbThread
    from tests.unit.media_fakes import FakeSession, event, lab_cfg

    db = DbThread("test-db")
    svc = SupervisionService(lab_cfg(tmp_path), db=db, bus=Bus())
    await svc.start()
    try:
        alice, bob = "PJSIP/2001-00000003", "PJSIP/2002-00000006"
        svc.on_event(event("BridgeEnter", alice, CC_ROLE="agent", CC_AGENT="alice", CC_CALL_ID=CID))
        svc.on_event(event("BridgeEnter", bob, CC_ROLE="agent", CC_AGENT="bob", CC_CALL_ID=CID))  # the consult
        svc.on_event(event("Hangup", alice, CC_ROLE="agent", CC_AGENT="alice", CC_CALL_ID=CID))  # transferred
        svc.on_event(event("BridgeEnter", bob, CC_ROLE="agent", CC_AGENT="bob", CC_CALL_ID=CID))  # with the caller
        s = FakeSession(("whisper", "2002", "2004"), pin="4321")
        await agi_spy(svc, s)  # type: ignore[arg-type]
        assert s.vars["CC_SPY"] == "ok" and s.vars["CC_SPY_TARGET"] == bob
        s = FakeSession(("listen", "2001", "2004"), pin="4321")
        await agi_spy(svc, s)  # type: ignore[arg-type]
        assert s.vars.get("CC_SPY") != "ok"
    finally:
        await svc.close()
        db.close()


async def test_transfers_are_counted_by_kind_target_kind_and_result():
    """callcenter_transfers_total counts transfers with fixed label values only (never a call id or number)."""
    from prometheus_client import generate_latest

    from callcenter.telemetry import Metrics
    svc, t, _ = _talking()
    m = Metrics()
    m.subscribe(svc.bus)
    t.on_ami_event(_event(BLIND))
    svc.submit(xfer.TransferTarget(CID, "queue", "empty"))
    text = generate_latest(m.registry).decode()
    assert 'callcenter_transfers_total{kind="blind",result="queued",to="queue"} 1.0' in text
    assert CID not in text
