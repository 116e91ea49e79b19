"""``callcenter bench amd-vs-app-amd``: the held-out TEST corpus through our detector and through
Asterisk's own ``AMD()`` (default settings) in the lab Asterisk, in one run.

Ours runs the same streaming code as the live path, fed 20 ms at a time. For app_amd every
recording is copied into Asterisk's sounds, played by one half of a Local channel while the
other half runs ``AMD()`` (several at a time); the verdict and the time from answer to verdict
come back as a UserEvent over AMI. Both columns use the same metrics
(:func:`callcenter.bench.amd_corpus.evaluate`).

The lab is taken down at the end (also on Ctrl-C, SIGTERM or SIGHUP) unless it was already up;
``$CALLCENTER_LAB_PORT_OFFSET`` moves every port, for a second lab.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import yaml

from callcenter.asterisk.ami_client import AmiClient
from callcenter.features.amd.detector import AmdParams, Result, classify
from callcenter.lab.asterisk import Lab, LabError, port_offset, shift_ports
from callcenter.lab.signals import interrupt_on_stop_signals
from callcenter.protocol.ami import Message
from callcenter.bench.amd_corpus import _corpus_module, evaluate

SECRET = "bench-ami-secret"
CONFIG = {
    "ami": {"host": "127.0.0.1", "port": 5038, "username": "callcenter", "secret": SECRET},
    "daemon": {"log_format": "json"},
    "phones": {}, "agents": {}, "queues": {}, "menus": {},
    "trunks": {"pstn": {"match": ["127.0.0.2"], "dids": {}}},
}
# silence after the recording: a real line stays open, AMD must be able to hear the pause
DIALPLAN = {"extensions.conf": """
[cc-amd-bench]
exten => play,1,Answer()
 same => n,Playback(cc-corpus/${FILE}&silence/10)
 same => n,Hangup()
exten => appamd,1,Answer()
 same => n,Set(T0=${STRFTIME(,,%s.%3q)})
 same => n,AMD()
 same => n,UserEvent(CCAmdBench,File: ${FILE},Status: ${AMDSTATUS},Cause: ${AMDCAUSE},T0: ${T0},T1: ${STRFTIME(,,%s.%3q)})
 same => n,Hangup()
"""}


async def _app_amd(ami_port: int, names: list[str], parallel: int, timeout_s: float) -> dict[str, Result]:
    events: dict[str, Message] = {}
    got = asyncio.Event()

    def on_event(m: Message) -> None:
        if m.event == "UserEvent" and m.get("UserEvent") == "CCAmdBench":
            events[m.get("File")] = m
            got.set()

    up = asyncio.Event()

    async def on_up() -> None:
        up.set()

    ami = AmiClient("127.0.0.1", ami_port, "callcenter", SECRET, on_event=on_event, on_up=on_up, on_down=lambda: None)
    task = asyncio.create_task(ami.run())
    try:
        await asyncio.wait_for(up.wait(), 20)
        pending = list(names)
        in_flight: dict[str, float] = {}
        while pending or in_flight:
            while pending and len(in_flight) < parallel:
                name = pending.pop(0)
                await ami.action("Originate", [("Channel", "Local/play@cc-amd-bench/n"), ("Context", "cc-amd-bench"),
                                               ("Exten", "appamd"), ("Priority", "1"), ("Async", "true"),
                                               ("Variable", f"_FILE={name}")])
                in_flight[name] = time.monotonic()
            got.clear()
            for name in [n for n in in_flight if n in events]:
                del in_flight[name]
            late = [n for n, t in in_flight.items() if time.monotonic() - t > timeout_s]
            for name in late:  # never answered by AMD in time: NOTSURE
                del in_flight[name]
            if in_flight and not any(n in events for n in in_flight):
                try:
                    await asyncio.wait_for(got.wait(), 1.0)
                except asyncio.TimeoutError:
                    pass
    finally:
        ami.stop()
        await task
    out = {}
    for name in names:
        m = events.get(name)
        if m is None:
            out[name] = Result("NOTSURE", int(timeout_s * 1000))
            continue
        status = m.get("Status")
        verdict = status if status in ("HUMAN", "MACHINE") else "NOTSURE"
        try:
            ms = int(round((float(m.get("T1")) - float(m.get("T0"))) * 1000))
        except ValueError:
            ms = 0
        out[name] = Result(verdict, ms)
    return out


def run(count: int, seed: int | None, parallel: int) -> dict[str, Any]:
    corpus = _corpus_module()
    seed = corpus.TEST_SEED if seed is None else seed
    generated = corpus.generate(seed, count, "test")
    items = [it for it, _ in generated]
    audio = [x for _, x in generated]

    ours = evaluate(items, classify(audio, AmdParams()))

    tmp = Path(tempfile.mkdtemp(prefix="cc-amd-bench-"))
    cfg = shift_ports(dict(CONFIG, daemon={"database": str(tmp / "x.sqlite3"), "log_format": "json"}),
                      port_offset())
    (tmp / "bench.yaml").write_text(yaml.safe_dump(cfg))
    lab = Lab.default()
    try:
        with lab.session(tmp / "bench.yaml", extra=DIALPLAN) as info:
            sounds = lab.root / "usr/share/asterisk/sounds/cc-corpus"
            sounds.mkdir(parents=True, exist_ok=True)
            try:
                for it, x in generated:
                    sf.write(sounds / f"{it.name}.wav", x.astype(np.int16), 8000, subtype="PCM_16")
                t0 = time.monotonic()
                res = asyncio.run(_app_amd(cfg["ami"]["port"], [it.name for it in items], parallel, 20.0))
                app_s = time.monotonic() - t0
            finally:
                shutil.rmtree(sounds, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    app = evaluate(items, [res[it.name] for it in items])
    app["run_s"] = round(app_s, 1)
    keys = ("accuracy", "humans_classified_machine_rate", "decision_ms_median", "decision_ms_p90",
            "human_delay_after_utterance_ms_median", "human_delay_after_utterance_ms_p90")
    return {"split": "test", "seed": seed, "count": count, "asterisk": info["asterisk"],
            "summary": {k: {"ours": ours[k], "app_amd": app[k]} for k in keys},
            "ours": ours, "app_amd": app}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="callcenter bench amd-vs-app-amd")
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--parallel", type=int, default=10)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    try:
        with interrupt_on_stop_signals():
            res = run(a.count, a.seed, a.parallel)
    except (LabError, OSError) as e:
        print(f"bench amd-vs-app-amd: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:  # Ctrl-C, SIGTERM, SIGHUP: cleaned up on the way here
        print(f"bench amd-vs-app-amd: stopped ({e or 'SIGINT'})", file=sys.stderr)
        return 130
    print(json.dumps(res, indent=1) if a.json else json.dumps(res["summary"], indent=1))
    return 0
