"""Simulated floor workers for the demo: one process per agent phone, a few caller processes.

pjsua2 as packaged on PyPI holds at most 4 calls per process, so the demo spreads its phones
over processes. Each worker behaves on its own until SIGTERM, SIGINT or SIGHUP; then it hangs its calls up,
shuts pjsua2 down and exits 0 (within a second or so):

- ``agent``: registers, dials the login feature code, auto-answers, talks a while, hangs up;
- ``callers``: dials the DID every few seconds (at most 3 calls at once), presses menu digits,
  waits, and gives up after its patience.
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import random
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from callcenter.lab.phones import CallHandle, Phones
from callcenter.lab.signals import stop_flag

MAX_CALLS = 3  # per process, below pjsua2's limit of 4


@dataclass
class _Caller:
    handle: CallHandle
    digits: list[str]
    patience_s: float
    next_digit_at: float = 0.0


HUNG_S = 30.0  # a main loop silent this long is stuck inside pjsua2
CLOSE_S = 5.0  # the most pjsua2's shutdown may take after a stop signal


def _watchdog(seconds: float) -> None:
    """Exit (status 1, the threads' tracebacks in the log) unless re-armed within ``seconds``.

    pjsua2 calls hold the GIL; if pj's thread waits for it inside a callback while holding a lock
    the main thread waits for, both hang and the Python signal handler never runs again. This
    watchdog is a C thread that needs no GIL: such a phone still ends, on its own."""
    faulthandler.dump_traceback_later(seconds, exit=True)


def _settle(phones: Phones, acc: object, stop: threading.Event) -> None:
    """Forget ended calls, free them on this thread, then sleep until a phone event (or 250 ms:
    the behaviour's time resolution, and the longest a stop signal waits to be seen)."""
    _watchdog(HUNG_S)
    acc.calls[:] = [c for c in acc.calls if not c.ended]
    phones.pump()
    phones.wait(stop.is_set, 0.25)


def _wait(phones: Phones, stop: threading.Event, predicate: Callable[[], bool], timeout: float) -> bool:
    """``phones.wait`` that also ends, within 250 ms, when a stop signal came."""
    deadline = time.monotonic() + timeout
    while not stop.is_set():
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        if phones.wait(lambda: predicate() or stop.is_set(), min(left, 0.25)):
            return predicate()
    return False


def run_agent(sip: str, ext: str, secret: str, login: str, talk: tuple[float, float], seed: int) -> int:
    stop = stop_flag()
    rng = random.Random(seed)
    _watchdog(HUNG_S + 60)  # registration and login
    phones = Phones(asterisk=sip)
    try:
        acc = phones.agent(ext, secret)
        if not _wait(phones, stop, lambda: acc.registered, 10):
            if stop.is_set():
                return 0
            print(f"agent {ext}: registration failed ({acc.reg_code})", file=sys.stderr)
            return 1
        for attempt in range(5):
            if stop.is_set():
                break
            h = acc.dial(f"sip:{login}@{sip}")
            _wait(phones, stop, lambda: h.ended, 10)
            if h.confirmed_at is not None or stop.is_set():
                break
            print(f"agent {ext}: login call not answered ({h.states}, {h.last_code}); retrying", file=sys.stderr)
            phones.wait(stop.is_set, 1.0 + attempt)
        hangup_at: dict[int, float] = {}
        while not stop.is_set():
            now = time.monotonic()
            for call in list(acc.calls):
                if call.state == "CONFIRMED" and call.call is not None:
                    due = hangup_at.setdefault(id(call), now + rng.uniform(*talk))
                    if now >= due:
                        call.hangup()
            _settle(phones, acc, stop)
        return 0
    finally:
        _watchdog(CLOSE_S)
        phones.close()
        faulthandler.cancel_dump_traceback_later()


def run_callers(sip: str, did: str, every: float, patience: tuple[float, float], seed: int) -> int:
    stop = stop_flag()
    rng = random.Random(seed)
    _watchdog(HUNG_S)
    phones = Phones(asterisk=sip)
    try:
        acc = phones.caller(f"555{rng.randrange(10**7):07d}", f"Caller {seed}")
        calls: list[_Caller] = []
        next_call = time.monotonic() + rng.uniform(0.5, every)
        while not stop.is_set():
            now = time.monotonic()
            if now >= next_call and len(calls) < MAX_CALLS:
                h = acc.dial(f"sip:{did}@{sip}")
                calls.append(_Caller(h, ["1"] if rng.random() < 0.7 else ["2", "1"], rng.uniform(*patience)))
                next_call = now + rng.expovariate(1.0 / every)
            for c in calls:
                h = c.handle
                if h.ended:
                    continue
                if h.media and c.digits and now >= c.next_digit_at:
                    if c.next_digit_at == 0.0:
                        c.next_digit_at = now + 1.2  # let the greeting start, as a person would
                    else:
                        with contextlib.suppress(RuntimeError):
                            h.dtmf(c.digits.pop(0))
                        c.next_digit_at = now + 2.5
                if now - h.started > c.patience_s:
                    h.hangup()
            calls = [c for c in calls if not c.handle.ended]
            _settle(phones, acc, stop)
        return 0
    finally:
        _watchdog(CLOSE_S)
        phones.close()
        faulthandler.cancel_dump_traceback_later()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m callcenter.lab.floor")
    sub = p.add_subparsers(dest="role", required=True)
    a = sub.add_parser("agent")
    a.add_argument("--sip", required=True)
    a.add_argument("--ext", required=True)
    a.add_argument("--secret", required=True)
    a.add_argument("--login", default="*61")
    a.add_argument("--seed", type=int, default=1)
    c = sub.add_parser("callers")
    c.add_argument("--sip", required=True)
    c.add_argument("--did", required=True)
    c.add_argument("--every", type=float, default=12.0)
    c.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    if args.role == "agent":
        return run_agent(args.sip, args.ext, args.secret, args.login, (5.0, 15.0), args.seed)
    return run_callers(args.sip, args.did, args.every, (25.0, 90.0), args.seed)


if __name__ == "__main__":
    raise SystemExit(main())
