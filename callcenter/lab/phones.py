"""Real SIP phones (pjsua2) for the demo and the tests: agents that register and auto-answer,
callers that dial the DID from the "PSTN" side (127.0.0.2) and press digits.

pjsua2 runs its own worker thread. Rules that keep it alive (see shared/guide/lab.md):
call pj functions only from the thread that created the library (or from inside its
callbacks); never let a Python exception escape a callback; drop every Call before
``libDestroy``. State changes are published through a condition variable, so waiting for
one never polls.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pjsua2 as pj

__all__ = ["Phones", "Softphone", "CallHandle"]

CONFIRMED = "CONFIRMED"
DISCONNECTED = "DISCONNECTED"


def _pj(fn: Callable[[], object], attempts: int = 8) -> object:
    """Call into pj from the main thread. pybind keeps the GIL during the call while pj's worker
    may hold the call lock and wait for the GIL inside a callback: pj then gives up with
    PJ_ETIMEDOUT. Sleeping briefly releases the GIL so the callback can finish; then retry."""
    for i in range(attempts):
        try:
            return fn()
        except RuntimeError as e:
            if "PJ_ETIMEDOUT" not in str(e) or i == attempts - 1:
                raise
            time.sleep(0.02 * (i + 1))
    return None


def _libpjsua() -> ctypes.CDLL | None:
    """pjsua's C library as bundled with the pjsua2 wheel (the copy already loaded), if found."""
    libs = Path(pj.__file__).resolve().parent / "pjsua2_pybind11.libs"
    found = sorted(libs.glob("libpjsua-*.so*"))
    if not found:
        return None
    try:
        lib = ctypes.CDLL(str(found[0]))
        lib.pjsua_acc_set_registration.argtypes = [ctypes.c_int, ctypes.c_int]
        lib.pjsua_acc_set_registration.restype = ctypes.c_int
        return lib
    except (OSError, AttributeError):
        return None


_PJSUA = _libpjsua()


def _register(acc: pj.Account) -> None:
    """``acc.setRegistration(True)`` with the GIL released (a ctypes call releases it)."""
    if _PJSUA is None:
        acc.setRegistration(True)
        return
    status = _PJSUA.pjsua_acc_set_registration(acc.id, 1)
    if status != 0:
        raise RuntimeError(f"pjsua_acc_set_registration: status {status}")


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """Point file descriptor 1 at /dev/null for a moment (C code writing there directly)."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def _state_name(st: object) -> str:
    return str(st).rsplit(".", 1)[-1].replace("PJSIP_INV_STATE_", "")


@dataclass
class CallHandle:
    """One call as the test sees it: its state history and the pj Call (dropped when it ends)."""

    phone: Softphone
    call: pj.Call | None = None
    states: list[str] = field(default_factory=list)
    remote: str = ""
    local: str = ""  # our side's URI (for an incoming call: whom the caller dialled)
    last_code: int = 0
    started: float = field(default_factory=time.monotonic)
    confirmed_at: float | None = None
    media: bool = False  # RTP session up: DTMF (RFC 4733) can be sent

    @property
    def state(self) -> str:
        return self.states[-1] if self.states else "NULL"

    @property
    def ended(self) -> bool:
        return self.state == DISCONNECTED

    def dtmf(self, digits: str) -> None:
        if self.call is not None and not self.ended:
            call = self.call
            _pj(lambda: call.dialDtmf(digits))

    def hangup(self) -> None:
        if self.call is not None and not self.ended:
            op = pj.CallOpParam()
            op.statusCode = pj.StatusCode.DECLINE
            call = self.call
            try:
                _pj(lambda: call.hangup(op))
            except Exception:  # noqa: BLE001 - already gone on the pj side
                pass


class _Call(pj.Call):
    def __init__(self, handle: CallHandle, acc: pj.Account, call_id: int | None = None):
        if call_id is None:
            super().__init__(acc)
        else:
            super().__init__(acc, call_id)
        self.handle = handle

    def onCallState(self, prm: pj.OnCallStateParam) -> None:  # noqa: N802 - pj API
        try:
            ci = self.info
            st = _state_name(ci.state)
            h = self.handle
            with h.phone.phones.cond:
                h.states.append(st)
                h.remote = ci.remoteUri
                h.local = ci.localUri
                h.last_code = int(getattr(ci.lastStatusCode, "value", 0) or 0) if not isinstance(
                    ci.lastStatusCode, int) else ci.lastStatusCode
                if st == CONFIRMED and h.confirmed_at is None:
                    h.confirmed_at = time.monotonic()
                if st == DISCONNECTED:
                    h.phone.phones.dead.append(self)  # freed later on the main thread
                    h.call = None
                h.phone.phones.cond.notify_all()
        except Exception:  # noqa: BLE001 - an exception here would abort the process
            traceback.print_exc()


    def onCallTransferStatus(self, prm: pj.OnCallTransferStatusParam) -> None:  # noqa: N802 - pj API
        """We transferred this call (REFER): once the far end reports success, hang up as a desk phone
        does (RFC 5589; Asterisk waits for the transferor's BYE)."""
        try:
            code = int(getattr(prm.statusCode, "value", prm.statusCode))
            if prm.finalNotify and 200 <= code < 300:
                prm.cont = False
                op = pj.CallOpParam()
                op.statusCode = pj.StatusCode.OK
                self.hangup(op)
        except Exception:  # noqa: BLE001 - an exception here would abort the process
            traceback.print_exc()

    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:  # noqa: N802 - pj API
        try:
            # Feed the (null) capture device into the call: a stream nobody transmits to is not
            # clocked, and then RFC 4733 DTMF sends its first packet but never the end packets.
            phones = self.handle.phone.phones
            phones.ep.audDevManager.captureDevMedia.startTransmit(self.getAudioMedia(-1))
            with self.handle.phone.phones.cond:
                self.handle.media = True
                self.handle.phone.phones.cond.notify_all()
        except Exception:  # noqa: BLE001
            traceback.print_exc()


class Softphone(pj.Account):
    """A SIP account: an agent's desk phone (registers) or a caller on the trunk (does not)."""

    def __init__(self, phones: Phones, ext: str, *, auto_answer: bool):
        super().__init__()
        self.phones = phones
        self.ext = ext
        self.auto_answer = auto_answer
        self.calls: list[CallHandle] = []
        self.registered = False
        self.reg_code = 0

    def onRegState(self, prm: pj.OnRegStateParam) -> None:  # noqa: N802
        try:
            with self.phones.cond:
                self.reg_code = int(getattr(prm.code, "value", prm.code))
                self.registered = self.reg_code == 200 and prm.expiration > 0
                self.phones.cond.notify_all()
        except Exception:  # noqa: BLE001
            traceback.print_exc()

    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:  # noqa: N802
        try:
            h = CallHandle(self)
            c = _Call(h, self, prm.callId)
            h.call = c
            with self.phones.cond:
                self.calls.append(h)
                self.phones.cond.notify_all()
            op = pj.CallOpParam()
            op.statusCode = pj.StatusCode.OK if self.auto_answer else pj.StatusCode.RINGING
            c.answer(op)
        except Exception:  # noqa: BLE001
            traceback.print_exc()

    def _answer(self, h: CallHandle) -> None:
        if h.call is not None and not h.ended:
            op = pj.CallOpParam()
            op.statusCode = pj.StatusCode.OK
            call = h.call
            _pj(lambda: call.answer(op))

    def dial(self, uri: str) -> CallHandle:
        """Place a call (main thread only)."""
        h = CallHandle(self)
        c = _Call(h, self)
        h.call = c
        with self.phones.cond:
            self.calls.append(h)
        op = pj.CallOpParam(True)
        _pj(lambda: c.makeCall(uri, op))
        return h

    def answer_ringing(self) -> bool:
        """Answer the newest ringing incoming call by hand (for phones without auto-answer)."""
        for h in reversed(self.calls):
            if h.call is not None and h.state in ("INCOMING", "EARLY"):
                self._answer(h)
                return True
        return False


class Phones:
    """The pjsua2 library for this process, with a transport per side of the lab."""

    def __init__(self, asterisk: str = "127.0.0.1:5060", agent_addr: str = "127.0.0.1",
                 caller_addr: str = "127.0.0.2", log_level: int = 0, caller_port: int = 0):
        self.asterisk = asterisk
        self.cond = threading.Condition()
        self.dead: list[_Call] = []
        self.accounts: list[Softphone] = []
        self.ep = pj.Endpoint()
        with _quiet_stdout():  # pjlib prints a banner to stdout before its log level applies
            self.ep.libCreate()
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 1
        cfg.uaConfig.mainThreadOnly = False
        cfg.uaConfig.maxCalls = 64
        cfg.logConfig.level = log_level
        cfg.logConfig.consoleLevel = log_level
        cfg.medConfig.noVad = True
        self.ep.libInit(cfg)
        self.tp_agents = self._transport(agent_addr)
        # A fixed port for the callers' side lets the trunk dial back to them (callbacks).
        self.tp_callers = self._transport(caller_addr, caller_port)
        self.ep.audDevManager.setNullDev()
        self.ep.libStart()

    def _transport(self, addr: str, port: int = 0) -> int:
        tc = pj.TransportConfig()
        tc.boundAddress = addr
        tc.port = port
        return self.ep.transportCreate(pj.TransportType.UDP, tc)

    def pump(self) -> None:
        """Free ended calls (main thread: a pj Call must not die inside its own callback)."""
        with self.cond:
            self.dead.clear()

    def agent(self, ext: str, secret: str, *, auto_answer: bool = True) -> Softphone:
        acc = Softphone(self, ext, auto_answer=auto_answer)
        ac = pj.AccountConfig()
        ac.idUri = f"sip:{ext}@{self.asterisk}"
        ac.regConfig.registrarUri = f"sip:{self.asterisk}"
        ac.regConfig.retryIntervalSec = 2
        ac.sipConfig.transportId = self.tp_agents
        cred = pj.AuthCredInfo()
        cred.scheme, cred.realm, cred.username, cred.data, cred.dataType = "digest", "*", ext, secret, 0
        ac.sipConfig.authCreds.append(cred)
        # Register in a second step, without the GIL: pjsua takes its lock again after sending
        # the REGISTER; if the answer is already in, pj's thread holds that lock inside onRegState
        # waiting for the GIL, which a pybind call never releases: both threads hang for good
        # (seen in the demo, where such a phone then ignored SIGTERM as well).
        ac.regConfig.registerOnAdd = False
        acc.create(ac)
        self.accounts.append(acc)
        _register(acc)
        return acc

    def caller(self, number: str, name: str = "") -> Softphone:
        acc = Softphone(self, number, auto_answer=False)
        ac = pj.AccountConfig()
        host = self.asterisk.split(":")[0]
        quoted = name.replace("\\", "\\\\").replace('"', '\\"')
        ac.idUri = (f'"{quoted}" ' if name else "") + f"<sip:{number}@{host}>"
        ac.regConfig.registrarUri = ""
        ac.sipConfig.transportId = self.tp_callers
        acc.create(ac)
        self.accounts.append(acc)
        return acc

    def drop(self, acc: Softphone) -> None:
        """Delete an account whose calls have ended (pjsua holds only a few accounts)."""
        if acc in self.accounts:
            self.accounts.remove(acc)
            acc.calls.clear()
            with contextlib.suppress(Exception):
                acc.shutdown()

    def wait(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Block until ``predicate()`` (checked on every state change) or the timeout."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
        return True

    def close(self) -> None:
        try:
            self.ep.hangupAllCalls()
        except Exception:  # noqa: BLE001
            pass
        self.wait(lambda: all(h.call is None for a in self.accounts for h in a.calls), 3)
        for a in self.accounts:
            for h in a.calls:
                h.call = None
            a.calls.clear()
        with self.cond:
            self.dead.clear()
        for a in self.accounts:
            try:
                a.shutdown()
            except Exception:  # noqa: BLE001
                pass
        self.accounts.clear()
        self.ep.libDestroy()
