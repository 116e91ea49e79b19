"""``callcenter bench vs-app-queue``: on one real Asterisk, the time from an agent becoming free
to the next waiting caller being connected — this ACD vs Asterisk's app_queue, same agent phone,
same callers, measured in one run.

Each round: the agent talks to caller X while caller Y waits; the agent hangs up (t0, the
moment it frees up) and the time until its phone has answered the call that connects it to Y
(t1) is measured. X then calls in again to be the next one waiting. Both systems see the
same SIP phones (pjsua2), wrap-up 0, and a queue straight from the DID (no IVR).

The lab is taken down at the end (also on Ctrl-C, SIGTERM or SIGHUP) unless it was already up;
``$CALLCENTER_LAB_PORT_OFFSET`` moves every port, for a second lab.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from callcenter.cli.screen import wait_healthy
from callcenter.lab.asterisk import Lab, LabError, port_offset, shift_ports
from callcenter.lab.signals import interrupt_on_stop_signals, stop_children

AGENT_EXT, AGENT_SECRET = "2001", "bench-secret-2001"
OUR_DID, APPQ_DID = "5558000", "5559000"

CONFIG = {
    "ami": {"host": "127.0.0.1", "port": 5038, "username": "callcenter", "secret": "bench-ami-secret"},
    "agi": {"host": "127.0.0.1", "port": 4573},
    "http": {"host": "127.0.0.1", "port": 9183},
    "daemon": {"log_format": "json"},
    "phones": {AGENT_EXT: {"secret": AGENT_SECRET}},
    "agents": {"alice": {"phone": AGENT_EXT}},
    "queues": {"bench": {"members": ["alice"], "wrapup_s": 0, "ring_timeout_s": 15, "max_wait_s": 600,
                         "hook_interval_s": 60, "fallback": {"hangup": ["goodbye"]}}},
    "menus": {},
    "trunks": {"pstn": {"match": ["127.0.0.2"], "dids": {OUR_DID: {"queue": "bench"}}}},
}

# The same agent phone as a static app_queue member; app_queue's defaults otherwise (it re-checks
# waiting callers every second), wrap-up 0 like ours.
APP_QUEUE = {
    "queues.conf": f"[general]\n[appq]\nstrategy=leastrecent\ntimeout=15\nwrapuptime=0\nringinuse=no\n"
                   f"autofill=yes\nmember => PJSIP/{AGENT_EXT}\n",
    "extensions.conf": f"[cc-trunk-pstn]\nexten => {APPQ_DID},1,Answer()\n same => n,Queue(appq,,,,600)\n"
                       " same => n,Hangup()\n",
}


def _rounds(phones, agent, did: str, rounds: int) -> list[float]:  # noqa: ANN001 - pjsua2 objects
    callers = [phones.caller(f"55580{i:02d}", f"Bench {i}") for i in range(2)]

    def dial(i: int):  # noqa: ANN202
        h = callers[i].dial(f"sip:{did}@{phones.asterisk}")
        if not phones.wait(lambda: h.state == "CONFIRMED", 10):
            raise RuntimeError(f"caller {i} was not answered: {h.states}")
        return h

    def talking():  # noqa: ANN202
        return [h for h in agent.calls if h.state == "CONFIRMED" and h.call is not None]

    if talking():
        raise RuntimeError("the agent is already on a call")
    dial(0)
    if not phones.wait(lambda: len(talking()) == 1, 20):
        raise RuntimeError("the agent never got the first caller")
    waiting = 1
    dial(waiting)
    time.sleep(2.0)  # the second caller is in the queue now
    out = []
    for _ in range(rounds):
        now_talking = talking()
        if len(now_talking) != 1:
            raise RuntimeError(f"the agent has {len(now_talking)} calls at once")
        (current,) = now_talking
        before = set(map(id, agent.calls))
        t0 = time.monotonic()
        current.hangup()

        def connected() -> bool:
            return any(id(h) not in before and h.confirmed_at is not None for h in agent.calls)

        if not phones.wait(connected, 20):
            raise RuntimeError("the waiting caller was never connected")
        new = next(h for h in agent.calls if id(h) not in before and h.confirmed_at is not None)
        out.append((new.confirmed_at - t0) * 1000)
        phones.pump()
        agent.calls[:] = [h for h in agent.calls if not h.ended]
        for c in callers:
            c.calls[:] = [h for h in c.calls if not h.ended]
        # The caller just released calls in again and waits for the next round.
        waiting = 1 - waiting
        phones.wait(lambda: all(h.ended for h in callers[waiting].calls), 5)
        callers[waiting].calls[:] = []
        dial(waiting)
        time.sleep(2.0)
    _quiet(phones, [agent, *callers])
    return out


def _quiet(phones, accounts) -> None:  # noqa: ANN001
    """Hang up every call of these phones and wait until they are all gone."""
    for acc in accounts:
        for h in acc.calls:
            h.hangup()
    if not phones.wait(lambda: all(h.ended or h.call is None for a in accounts for h in a.calls), 10):
        raise RuntimeError("calls would not end between phases")
    phones.pump()
    for acc in accounts:
        acc.calls[:] = []


def run(rounds: int) -> dict[str, object]:
    tmp = Path(tempfile.mkdtemp(prefix="cc-bench-"))
    cfg = shift_ports(dict(CONFIG, daemon=dict(CONFIG["daemon"], database=str(tmp / "bench.sqlite3"))), port_offset())
    path = tmp / "bench.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with Lab.default().session(path, extra=APP_QUEUE) as info:
        appq, ours = _measure(path, tmp, rounds)
    med_ours, med_appq = statistics.median(ours), statistics.median(appq)
    return {
        "asterisk": info["asterisk"], "rounds": rounds,
        "ours_median_ms": round(med_ours, 1), "ours_p90_ms": round(_p90(ours), 1),
        "app_queue_median_ms": round(med_appq, 1), "app_queue_p90_ms": round(_p90(appq), 1),
        "ratio": round(med_ours / med_appq, 3),
        "ours_ms": [round(x, 1) for x in ours], "app_queue_ms": [round(x, 1) for x in appq],
    }


def _measure(path: Path, tmp: Path, rounds: int) -> tuple[list[float], list[float]]:
    from callcenter import config as config_mod
    from callcenter.lab.phones import Phones

    cfg = config_mod.load(path)
    sip = f"{cfg.sip.bind}:{cfg.sip.port}"
    phones = Phones(asterisk=sip)
    daemon = None
    try:
        agent = phones.agent(AGENT_EXT, AGENT_SECRET)
        if not phones.wait(lambda: agent.registered, 10):
            raise RuntimeError("agent phone did not register")
        # app_queue first, with no daemon running (the same phone must not be ours at the same time)
        appq = _rounds(phones, agent, APPQ_DID, rounds)
        time.sleep(1.0)  # a caller app_queue was about to connect may still arrive: let it, then clear
        _quiet(phones, [agent])
        daemon = subprocess.Popen([sys.executable, "-m", "callcenter", "run", "--config", str(path)],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=open(tmp / "daemon.log", "wb"), start_new_session=True)
        _wait_http(cfg.http.port, 20)
        login = agent.dial(f"sip:*61@{sip}")
        phones.wait(lambda: login.ended, 10)
        _quiet(phones, [agent])
        ours = _rounds(phones, agent, OUR_DID, rounds)
    finally:
        stop_children([daemon])
        phones.close()
    return appq, ours


def _p90(xs: list[float]) -> float:
    return sorted(xs)[max(0, int(round(0.9 * len(xs))) - 1)]


def _wait_http(port: int, timeout: float) -> None:
    if not wait_healthy("127.0.0.1", port, timeout):
        raise RuntimeError("the daemon did not sync with Asterisk")


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="callcenter bench vs-app-queue")
    ap.add_argument("--rounds", type=int, default=12)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    try:
        with interrupt_on_stop_signals():
            res = run(a.rounds)
    except (LabError, RuntimeError) as e:
        print(f"bench vs-app-queue: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:  # Ctrl-C, SIGTERM, SIGHUP: cleaned up on the way here
        print(f"bench vs-app-queue: stopped ({e or 'SIGINT'})", file=sys.stderr)
        return 130
    print(json.dumps(res) if a.json else "\n".join(f"{k}: {v}" for k, v in res.items()))
    return 0
