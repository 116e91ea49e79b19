"""Simulated floor workers for the demo: one process per agent phone, a few caller processes.

pjsua2 as packaged on PyPI holds at most 4 calls per process, so the demo spreads its phones
over processes. Each worker behaves on its own until SIGTERM/SIGINT:

- ``agent``: registers, dials the login feature code, auto-answers, talks a while, hangs up;
- ``callers``: dials the DID every few seconds (at most 3 calls at once), presses menu digits,
  waits, and gives up after its patience.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import signal
import sys
import time
from dataclasses import dataclass

from callcenter.lab.phones import CallHandle, Phones

MAX_CALLS = 3  # per process, below pjsua2's limit of 4


@dataclass
class _Caller:
    handle: CallHandle
    digits: list[str]
    patience_s: float
    next_digit_at: float = 0.0


def _stopper() -> list[bool]:
    flag = [False]

    def on_signal(*_: object) -> None:
        flag[0] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return flag


def _settle(phones: Phones, acc: object, stop: list[bool]) -> None:
    """Forget ended calls, free them on this thread, then sleep until a phone event (or 250 ms:
    the behaviour's time resolution)."""
    acc.calls[:] = [c for c in acc.calls if not c.ended]
    phones.pump()
    phones.wait(lambda: stop[0], 0.25)


def run_agent(sip: str, ext: str, secret: str, login: str, talk: tuple[float, float], seed: int) -> int:
    stop = _stopper()
    rng = random.Random(seed)
    phones = Phones(asterisk=sip)
    try:
        acc = phones.agent(ext, secret)
        if not phones.wait(lambda: acc.registered, 10):
            print(f"agent {ext}: registration failed ({acc.reg_code})", file=sys.stderr)
            return 1
        for attempt in range(5):
            h = acc.dial(f"sip:{login}@{sip}")
            phones.wait(lambda: h.ended, 10)
            if h.confirmed_at is not None:
                break
            print(f"agent {ext}: login call not answered ({h.states}, {h.last_code}); retrying", file=sys.stderr)
            phones.wait(lambda: stop[0], 1.0 + attempt)
        hangup_at: dict[int, float] = {}
        while not stop[0]:
            now = time.monotonic()
            for call in list(acc.calls):
                if call.state == "CONFIRMED" and call.call is not None:
                    due = hangup_at.setdefault(id(call), now + rng.uniform(*talk))
                    if now >= due:
                        call.hangup()
            _settle(phones, acc, stop)
        return 0
    finally:
        phones.close()


def run_callers(sip: str, did: str, every: float, patience: tuple[float, float], seed: int) -> int:
    stop = _stopper()
    rng = random.Random(seed)
    phones = Phones(asterisk=sip)
    try:
        acc = phones.caller(f"555{rng.randrange(10**7):07d}", f"Caller {seed}")
        calls: list[_Caller] = []
        next_call = time.monotonic() + rng.uniform(0.5, every)
        while not stop[0]:
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
        phones.close()


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
