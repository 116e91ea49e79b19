"""``callcenter amd classify FILE ... [--json]``: answering-machine detection on recordings.

Each file is read (any format libsndfile reads), mixed to mono, resampled to 8 kHz and fed to
the streaming detector (:func:`callcenter.features.amd.detector.step`) 20 ms at a time, exactly as a live
call would be; the verdict is the one the live detector would give, at the same moment. After a
``MACHINE`` verdict the file is read on to find the beep. Output: one line per file; with
``--json`` one JSON object per line: ``file``, ``verdict`` (HUMAN, MACHINE, NOTSURE),
``decided_at_ms`` (after the start of the file = the answer), ``beep_ms`` when a beep was found.
``--explain`` adds the decision trace: the rule that decided, the model's score against its
thresholds (``wait_score``: below it a short utterance is HUMAN after ``after_silence_ms``;
``machine_score``: at or above it MACHINE after ``long_silence_ms``, from ``max_live_hangups``)
and the first utterance's features at that moment.

Exit status: 0, 1 when a file could not be read (reported on stderr, the others are still
classified), 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import numpy as np

from callcenter.features.amd.detector import AmdConfigError, AmdParams, Derived, classify

RATE = 8000


class UnreadableAudio(Exception):
    """The file is missing or not audio that libsndfile can decode."""


def resample(x: np.ndarray, rate: int, target: int = RATE) -> np.ndarray:
    """Band-limited resampling of a whole float signal (FFT method)."""
    if rate == target or len(x) == 0:
        return x
    n_out = max(1, round(len(x) * target / rate))
    spec = np.fft.rfft(x)
    keep = n_out // 2 + 1
    out_spec = np.zeros(keep, dtype=complex)
    m = min(keep, len(spec))
    out_spec[:m] = spec[:m]
    return np.fft.irfft(out_spec, n=n_out) * (n_out / len(x))


def load(path: str) -> np.ndarray:
    """The file as 8 kHz mono int16."""
    import soundfile as sf
    try:
        data, rate = sf.read(path, dtype="float64", always_2d=True)
    except (OSError, RuntimeError, ValueError, sf.LibsndfileError) as e:
        raise UnreadableAudio(f"{path}: cannot read audio ({e})") from e
    mono = data.mean(axis=1) * 32768.0
    mono = resample(mono, int(rate))
    return np.clip(np.round(mono), -32768, 32767).astype(np.int16)


def _params(pairs: list[str]) -> AmdParams:
    mapping: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise AmdConfigError(f"--set {pair!r}: expected KEY=VALUE")
        try:
            mapping[key.strip()] = float(value) if "." in value or "e" in value.lower() else int(value)
        except ValueError:
            raise AmdConfigError(f"amd.{key.strip()}: must be a number") from None
    return AmdParams.from_mapping(mapping)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="callcenter amd", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="action", required=True)
    c = sub.add_parser("classify", help="classify recordings as HUMAN / MACHINE / NOTSURE")
    c.add_argument("files", nargs="+", metavar="FILE")
    c.add_argument("--json", action="store_true", help="one JSON object per line")
    c.add_argument("--explain", action="store_true", help="add the decision trace (rule, score, features)")
    c.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a detector parameter (amd.KEY), e.g. after_silence_ms=800")
    try:
        a = ap.parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    try:
        params = _params(a.set)
    except AmdConfigError as e:
        print(f"callcenter amd: {e}", file=sys.stderr)
        return 2
    status = 0
    for path in a.files:
        try:
            pcm = load(path)
        except UnreadableAudio as e:
            print(f"callcenter amd: {e}", file=sys.stderr)
            status = 1
            continue
        r = classify([pcm], params)[0]
        out: dict[str, Any] = {"file": path, "verdict": r.verdict, "decided_at_ms": r.decided_at_ms}
        if r.beep_ms is not None:
            out["beep_ms"] = r.beep_ms
        if a.explain:
            d = Derived.of(params)
            out["trace"] = {**r.explain(), "wait_score": d.wait_score,
                            "machine_score": d.machine_score if d.machine_score != float("inf") else None}
        if a.json:
            print(json.dumps(out), flush=True)
        else:
            beep = f" beep at {r.beep_ms} ms" if r.beep_ms is not None else ""
            print(f"{path}: {r.verdict} at {r.decided_at_ms} ms{beep}", flush=True)
            if a.explain:
                t = out["trace"]
                score = "-" if t["score"] is None else f"{t['score']:.2f}"
                print(f"  rule: {t['rule']}; score {score} (wait at >= {t['wait_score']}, "
                      f"machine at >= {t['machine_score']})", flush=True)
                print("  features: " + ", ".join(f"{k}={v}" for k, v in t["features"].items()), flush=True)
    return status
