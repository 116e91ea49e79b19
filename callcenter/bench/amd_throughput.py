"""``callcenter bench amd-throughput``: AMD channel-frames per second on one core.

The vectorised :func:`callcenter.features.amd.detector.step` (all channels in one numpy pass) against the
same detector as a per-channel Python loop (:mod:`callcenter.bench.amd_reference`), measured in
the same run on the same audio. Load is steady: every slot carries a call; when a call's
detector is done (verdict, and beep or give-up for machines) the slot starts a new call at
once, as a dialer would. Audio is a pool of recordings from the AMD corpus generator (or, when
``tests/`` is not importable, synthetic tones, noise and pulses) that every slot reads from its
own offset. Only the detector is timed (not the gathering of input frames); the two run
interleaved in blocks of 25 ticks so that both see the same machine load.

``identical`` compares every verdict event (tick, slot, verdict, decision time, beep time) of
the loop's channels with the vectorised run's events for the same slots.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import numpy as np

from callcenter.features.amd import detector as amd
from callcenter.bench import amd_reference

_FRAMES_PER_S = 1000 // amd.FRAME_MS


def _pool(seed: int) -> tuple[np.ndarray, str]:
    """[P, 160] int16 frames of call audio."""
    try:
        from callcenter.bench.amd_corpus import _corpus_module
        corpus = _corpus_module()
        items = corpus.generate(seed, 16, "train")
        return np.concatenate([amd.frames_of(a) for _, a in items]), "corpus"
    except Exception:  # noqa: BLE001 - any failure falls back to synthetic audio
        rng = np.random.default_rng(seed)
        t = np.arange(8000 * 60) / 8000.0
        env = (np.sin(2 * np.pi * 0.7 * t) > 0) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t))
        sig = env * np.sin(2 * np.pi * 150 * t + 3 * np.sin(2 * np.pi * 5 * t)) * 3000
        sig[::97 * 160] += 0
        sig += rng.standard_normal(len(t)) * 50
        return amd.frames_of(np.clip(sig, -32768, 32767).astype(np.int16)), "synthetic"


class _Runner:
    """One implementation under steady load; ``run(t0, t1)`` advances it and times the detector."""

    def __init__(self, impl: str, pool: np.ndarray, offsets: np.ndarray,
                 params: amd.AmdParams) -> None:
        self.impl = impl
        self.pool = pool
        self.offsets = offsets
        self.busy = 0.0
        self.events: list[tuple[int, int, int, int, int]] = []
        n = len(offsets)
        if impl == "vectorised":
            self.st: Any = amd.new_state(n, params)
            amd.reset_channels(self.st, np.arange(n))
        else:
            self.st = amd_reference.new_state(n, params)
            for _ in range(n):
                self.st.add_channel()

    def run(self, t_from: int, t_to: int) -> None:
        P = len(self.pool)
        vec = self.impl == "vectorised"
        step = amd.step if vec else amd_reference.step
        st = self.st
        for t in range(t_from, t_to):
            frames = self.pool[(self.offsets + t) % P]
            t0 = time.perf_counter()
            st, verdicts = step(st, frames, None, t * amd.FRAME_MS)
            self.busy += time.perf_counter() - t0
            for i in np.flatnonzero(verdicts):
                if vec:
                    dec, beep = int(st.decided_ms[i]), int(st.beep_ms[i])
                else:
                    dec, beep = st.channels[i].decided_ms, st.channels[i].beep_ms
                self.events.append((t, int(i), int(verdicts[i]), dec, beep))
            t0 = time.perf_counter()
            if vec:
                done = np.flatnonzero(st.phase == amd.DONE)
                if len(done):
                    amd.reset_channels(st, done)
            else:
                for i, c in enumerate(st.channels):
                    if c.phase == amd.DONE:
                        st.remove_channel(i)
                        st.add_channel()
            self.busy += time.perf_counter() - t0
        self.st = st


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="callcenter bench amd-throughput",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true", help="print JSON")
    ap.add_argument("--channels", type=int, default=2000, help="concurrent calls (vectorised)")
    ap.add_argument("--seconds", type=float, default=10.0, help="seconds of audio per channel")
    ap.add_argument("--loop-channels", type=int, default=100,
                    help="channels run by the per-channel loop (the first N slots)")
    ap.add_argument("--seed", type=int, default=7)
    try:
        a = ap.parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    if a.channels < 1 or a.seconds <= 0 or a.loop_channels < 1:
        print("callcenter bench amd-throughput: --channels, --seconds and --loop-channels "
              "must be positive", file=sys.stderr)
        return 2
    pool, source = _pool(a.seed)
    ticks = max(1, int(a.seconds * _FRAMES_PER_S))
    offsets = np.random.default_rng(a.seed).integers(0, len(pool), a.channels)
    loop_n = min(a.loop_channels, a.channels)
    params = amd.AmdParams()

    vec = _Runner("vectorised", pool, offsets, params)
    loop = _Runner("loop", pool, offsets[:loop_n], params)
    # Interleaved in blocks so both see the same machine load.
    block = 25
    for t in range(0, ticks, block):
        vec.run(t, min(ticks, t + block))
        loop.run(t, min(ticks, t + block))
    vec_s, vec_events = vec.busy, vec.events
    loop_s, loop_events = loop.busy, loop.events

    vec_cf = a.channels * ticks / vec_s
    loop_cf = loop_n * ticks / loop_s
    identical = [e for e in vec_events if e[1] < loop_n] == loop_events
    out = {
        "vectorised_channel_frames_per_s": round(vec_cf),
        "loop_channel_frames_per_s": round(loop_cf),
        "speedup": round(vec_cf / loop_cf, 1),
        "channels": a.channels,
        "loop_channels": loop_n,
        "seconds_of_audio": ticks / _FRAMES_PER_S,
        "verdicts": len(vec_events),
        "identical": identical,
        "audio": source,
    }
    if a.json:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print(f"{k}: {v}")
    return 0 if identical else 1
