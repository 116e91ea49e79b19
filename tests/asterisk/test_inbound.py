"""Inbound calls end to end: pjsua2 callers and agent phones, the lab Asterisk, the daemon."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import threading

import pytest

from callcenter import config as config_mod

from tests.asterisk.conftest import LAB_CONFIG, DaemonProc, Floor, Witness

pytestmark = pytest.mark.asterisk


def _bridged_pair(chans: list[dict[str, str]], agent_ext: str) -> tuple[dict[str, str], dict[str, str]] | None:
    agent = [c for c in chans if c["Channel"].startswith(f"PJSIP/{agent_ext}-") and c.get("BridgeId")]
    caller = [c for c in chans if c["Channel"].startswith("PJSIP/trunk-pstn-") and c.get("BridgeId")]
    for a in agent:
        for c in caller:
            if a["BridgeId"] == c["BridgeId"]:
                return c, a
    return None


async def _queued(daemon: DaemonProc, mark: int, queue: str) -> str:
    ev = await daemon.until("call.queued", 15, after=mark, queue=queue)
    return str(ev["call_id"])


async def test_caller_reaches_agent_through_ivr_and_queue(daemon: DaemonProc, floor: Floor,
                                                          witness: Witness) -> None:
    """A caller dials the DID, presses 1, waits in sales and is bridged to the logged-in agent's phone."""
    alice = await floor.login(daemon, "alice")
    mark = daemon.mark()
    call = await floor.call_in("5550101", "Ann Caller")
    await floor.press(daemon, call, "1", "main", mark)
    call_id = await _queued(daemon, mark, "sales")
    await floor.wait(lambda: any(h.state == "CONFIRMED" for h in alice.calls[1:]), 10, "alice's phone to answer")
    await daemon.until("call.answered", 10, after=mark, call_id=call_id, agent="alice")
    await daemon.until("call.bridged", 10, after=mark, call_id=call_id, agent="alice")

    pair = _bridged_pair(await witness.channels(), "2001")
    assert pair is not None, "AMI shows no bridge holding both the caller and alice"
    caller_chan, agent_chan = pair
    assert caller_chan["CallerIDNum"] == "5550101"
    assert agent_chan["ConnectedLineName"] == "Ann Caller"  # what alice's phone shows

    call.hangup()
    await daemon.until("call.ended", 10, after=mark, call_id=call_id, outcome="completed")
    rec = daemon.call_record(call_id)
    assert json.loads(rec["ivr_path"]) == ["main", "1", "queue:sales"]
    assert rec["did"] == "5551000" and rec["caller_num"] == "5550101"
    assert rec["queue"] == "sales" and rec["agent"] == "alice" and rec["outcome"] == "completed"
    assert rec["started_at"] <= rec["entered_at"] <= rec["answered_at"] <= rec["ended_at"]
    # alice is in wrap-up, then Ready again
    await daemon.until("agent.state", 10, after=mark, agent="alice", state="Ready")


async def test_no_agent_waits_with_music_then_fallback(daemon: DaemonProc, floor: Floor, witness: Witness) -> None:
    """With nobody logged in, the caller hears music on hold until max wait, then the fallback."""
    mark = daemon.mark()
    call = await floor.call_in()
    await floor.press(daemon, call, "3", "main", mark)
    call_id = await _queued(daemon, mark, "empty")
    await asyncio.sleep(1.0)
    chans = [c for c in await witness.channels() if c["Channel"].startswith("PJSIP/trunk-pstn-")]
    assert chans and chans[0]["Context"] == "cc-wait" and chans[0]["Application"] == "WaitExten", chans
    fb = await daemon.until("call.fallback", 10, after=mark, call_id=call_id)
    await floor.wait(lambda: call.ended, 15, "the fallback to hang up")
    rec = daemon.call_record(call_id)
    assert rec["outcome"] == "fallback"
    waited = rec["ended_at"] - rec["entered_at"]
    assert 4.0 <= waited < 12.0, waited  # max_wait_s 4, then the vm-nobodyavail prompt
    assert json.loads(rec["ivr_path"])[-2:] == ["fallback:empty", "hangup"]
    assert fb["queue"] == "empty"


async def test_invalid_digit_then_no_input_ends_in_menu_failure(daemon: DaemonProc, floor: Floor) -> None:
    """An invalid digit replays the menu; a silent caller then exhausts the retries and is hung up."""
    mark = daemon.mark()
    call = await floor.call_in()
    ev = await daemon.until("call.started", 10, after=mark)
    await floor.press(daemon, call, "7", "main", mark)  # not an option of the main menu
    await floor.wait(lambda: call.ended, 20, "the IVR to give up")
    rec = daemon.call_record(str(ev["call_id"]))
    path = json.loads(rec["ivr_path"])
    assert path == ["main", "invalid", "timeout", "failure", "hangup"], path
    assert rec["outcome"] == "ivr-failure" and rec["queue"] is None


async def test_nested_menu_reaches_queue(daemon: DaemonProc, floor: Floor) -> None:
    """Digit 2 opens the sub-menu, whose digit 1 queues the caller in sales."""
    mark = daemon.mark()
    call = await floor.call_in()
    m2 = await floor.press(daemon, call, "2", "main", mark)
    await floor.press(daemon, call, "1", "sub", m2)
    call_id = await _queued(daemon, mark, "sales")
    assert json.loads(daemon.call_record(call_id)["ivr_path"]) == ["main", "2", "sub", "1", "queue:sales"]


async def test_unanswered_agent_is_skipped_and_paused(daemon: DaemonProc, floor: Floor, witness: Witness) -> None:
    """The longest-idle agent lets it ring: the next agent gets the call, the caller is never dropped."""
    alice = await floor.login(daemon, "alice", auto_answer=False)  # idle longest: offered first
    bob = await floor.login(daemon, "bob")
    mark = daemon.mark()
    call = await floor.call_in()
    await floor.press(daemon, call, "1", "main", mark)
    call_id = await _queued(daemon, mark, "sales")
    await daemon.until("offer.ring", 5, after=mark, call_id=call_id, agent="alice")
    await floor.wait(lambda: len(alice.calls) > 1 and alice.calls[-1].state in ("INCOMING", "EARLY"), 5,
                     "alice's phone to ring")
    await daemon.until("offer.failed", 15, after=mark, call_id=call_id, agent="alice")
    await daemon.until("agent.state", 5, after=mark, agent="alice", state="Paused", reason="no-answer")
    await daemon.until("call.bridged", 10, after=mark, call_id=call_id, agent="bob")
    assert not call.ended, "the caller was dropped"
    await floor.wait(lambda: any(h.state == "CONFIRMED" for h in bob.calls[1:]), 5, "bob talking")
    assert _bridged_pair(await witness.channels(), "2002") is not None
    assert daemon.call_record(call_id)["agent"] == "bob"


async def test_daemon_sigkill_while_caller_waits(daemon: DaemonProc, floor: Floor, daemon_config) -> None:
    """SIGKILL the daemon while a caller waits; the restarted daemon adopts the caller and connects an agent."""
    mark = daemon.mark()
    call = await floor.call_in("5550177")
    await floor.press(daemon, call, "1", "main", mark)
    call_id = await _queued(daemon, mark, "sales")
    daemon.kill(signal.SIGKILL)
    await asyncio.sleep(1.0)
    assert not call.ended
    again = DaemonProc(daemon.config_path).start()
    try:
        ev = await again.until("ami.resynced", 20)
        assert ev["waiting"] == 1
        alice = await floor.login(again, "alice")
        await again.until("call.answered", 10, call_id=call_id, agent="alice")
        await floor.wait(lambda: any(h.state == "CONFIRMED" for h in alice.calls[1:]), 5, "alice talking")
        assert not call.ended
        call.hangup()
        await again.until("call.ended", 10, call_id=call_id, outcome="completed")
        rec = again.call_record(call_id)
        assert rec["agent"] == "alice" and rec["caller_num"] == "5550177"
    finally:
        again.stop()


class _Proxy:
    """A TCP proxy in front of AMI whose connections the test can cut."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.accepted = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            u = socket.create_connection(self.target)
            self.conns += [c, u]
            self.accepted += 1
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        for s in self.conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.conns.clear()

    def close(self) -> None:
        self.cut()
        self.sock.close()


async def test_ami_cut_reconnects_resyncs_and_keeps_routing(daemon_config, floor: Floor) -> None:
    """The AMI connection drops while a caller waits: the daemon reconnects, resyncs and still connects the call."""
    proxy = _Proxy(("127.0.0.1", config_mod.load(LAB_CONFIG).ami.port))
    d = DaemonProc(daemon_config(ami__port=proxy.port)).start()
    try:
        await d.until("ami.resynced", 20)
        alice = await floor.login(d, "alice")
        await floor.feature(alice, "*63")  # paused: the caller has to wait
        mark = d.mark()
        call = await floor.call_in()
        await floor.press(d, call, "1", "main", mark)
        call_id = await _queued(d, mark, "sales")
        proxy.cut()
        await d.until("ami.disconnected", 10, after=mark)
        ev = await d.until("ami.resynced", 15, after=mark)
        assert ev["waiting"] == 1 and proxy.accepted == 2
        await floor.feature(alice, "*64")
        await d.until("call.answered", 10, after=mark, call_id=call_id, agent="alice")
        assert not call.ended
    finally:
        d.stop()
        proxy.close()


async def test_spanish_caller_reaches_the_spanish_speaking_agent(daemon: DaemonProc, floor: Floor,
                                                                 witness: Witness) -> None:
    """Choosing Spanish sales routes to the agent with the skill, though another agent idles longer."""
    await floor.login(daemon, "alice")  # idle longest, but no Spanish
    bob = await floor.login(daemon, "bob")
    mark = daemon.mark()
    call = await floor.call_in()
    await floor.press(daemon, call, "4", "main", mark)
    call_id = await _queued(daemon, mark, "sales")
    ring = await daemon.until("offer.ring", 5, after=mark, call_id=call_id)
    assert ring["agent"] == "bob", ring
    await daemon.until("call.bridged", 10, after=mark, call_id=call_id, agent="bob")
    await floor.wait(lambda: any(h.state == "CONFIRMED" for h in bob.calls[1:]), 5, "bob talking")
    assert _bridged_pair(await witness.channels(), "2002") is not None
    rec = daemon.call_record(call_id)
    assert rec["agent"] == "bob" and "agent=bob" in rec["route"] and "candidates=1" in rec["route"]


async def test_position_and_expected_wait_are_announced(daemon: DaemonProc, floor: Floor) -> None:
    """Waiting callers hear their place and the expected wait from live statistics at each hook."""
    alice = await floor.login(daemon, "alice")
    await floor.feature(alice, "*63")  # on a break: staffed, but nobody answers for now
    mark = daemon.mark()
    first = await floor.call_in("5550201")
    await floor.press(daemon, first, "1", "main", mark)
    c1 = await _queued(daemon, mark, "sales")
    mark2 = daemon.mark()
    second = await floor.call_in("5550202")
    await floor.press(daemon, second, "1", "main", mark2)
    c2 = await _queued(daemon, mark2, "sales")
    ev = await daemon.until("queue.position_announced", 15, after=mark2, call_id=c2)
    assert ev["ahead"] == 1 and ev["ok"] is True
    pos1 = await daemon.until("queue.position", 10, after=mark, call_id=c1)
    assert pos1["position"] == 1
    hold = await daemon.until("queue.holdtime", 10, after=mark2, call_id=c2)
    assert hold["position"] == 2 and hold["expected_wait_s"] > 0
    assert not first.ended and not second.ended


async def test_overflow_moves_the_caller_to_another_queue(daemon: DaemonProc, floor: Floor, witness: Witness) -> None:
    """A caller waiting in an unstaffed queue overflows after 2 s to sales and reaches its agent."""
    alice = await floor.login(daemon, "alice")
    mark = daemon.mark()
    call = await floor.call_in()
    await floor.press(daemon, call, "5", "main", mark)
    call_id = await _queued(daemon, mark, "spill")
    ev = await daemon.until("call.overflow", 10, after=mark, call_id=call_id)
    assert ev["queue"] == "sales" and ev["reason"] == "after"
    await daemon.until("call.bridged", 10, after=mark, call_id=call_id, agent="alice")
    await floor.wait(lambda: any(h.state == "CONFIRMED" for h in alice.calls[1:]), 5, "alice talking")
    chans = await witness.channels()
    caller = [c for c in chans if c["Channel"].startswith("PJSIP/trunk-pstn-")]
    assert caller and caller[0].get("BridgeId")
    rec = daemon.call_record(call_id)
    assert rec["queue"] == "sales" and rec["agent"] == "alice"
    assert json.loads(rec["ivr_path"])[-2:] == ["queue:spill", "overflow:sales"]


async def test_ringall_first_phone_to_answer_takes_the_call(daemon_config, floor: Floor, witness: Witness) -> None:
    """ringall: both agents' phones ring; the one that answers gets the caller, the other stops
    ringing without counting as a missed call."""
    d = DaemonProc(daemon_config(queues__sales__strategy="ringall")).start()
    try:
        await d.until("ami.resynced", 20)
        alice = await floor.login(d, "alice", auto_answer=False)  # rings, never answers
        bob = await floor.login(d, "bob")
        mark = d.mark()
        call = await floor.call_in()
        await floor.press(d, call, "1", "main", mark)
        call_id = await _queued(d, mark, "sales")
        rung = {(await d.until("offer.ring", 5, after=mark, call_id=call_id, agent=n))["agent"] for n in ("alice", "bob")}
        assert rung == {"alice", "bob"}
        await d.until("call.bridged", 10, after=mark, call_id=call_id, agent="bob")
        await floor.wait(lambda: len(alice.calls) > 1 and alice.calls[-1].ended, 5, "alice's phone to stop ringing")
        assert alice.calls[-1].confirmed_at is None
        await floor.wait(lambda: any(h.state == "CONFIRMED" for h in bob.calls[1:]), 5, "bob talking")
        assert not d.find("agent.state", agent="alice", state="Paused")  # max_no_answer is 1 in sales
        assert _bridged_pair(await witness.channels(), "2002") is not None
    finally:
        d.stop()
