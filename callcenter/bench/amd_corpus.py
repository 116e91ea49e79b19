"""``callcenter bench amd-corpus``: our AMD on the held-out TEST corpus (never tuned on).

Generates the TEST split of ``tests/amd_corpus.py`` (a different seed and disjoint voices,
phrases and prompts from the TRAIN split the parameters were tuned on), runs every recording
through the streaming detector (all channels in one vectorised pass) and reports, per
detector column: accuracy (NOTSURE counts as wrong), humans classified MACHINE, NOTSURE rate,
decision time after answer (median, p90), the HUMAN verdict's delay after the end of the
person's first utterance (median, p90), and for machines with a beep the beep detection rate and
beep time error. Columns are functions ``recordings -> [Result]``; ``app_amd`` (Asterisk's
AMD() through the lab) is meant to be added to :data:`DETECTORS` later.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from callcenter.features.amd.detector import AmdParams, Result, classify


def _corpus_module() -> Any:
    try:
        from tests import amd_corpus
    except ImportError:
        root = Path(__file__).resolve().parents[2]
        if not (root / "tests" / "amd_corpus.py").exists():
            raise
        sys.path.insert(0, str(root))
        from tests import amd_corpus
    return amd_corpus


def ours(recordings: list[np.ndarray]) -> list[Result]:
    """The vectorised numpy detector with its default (TRAIN-tuned) parameters."""
    return classify(recordings, AmdParams())


DETECTORS: dict[str, Callable[[list[np.ndarray]], list[Result]]] = {"ours": ours}


def _pct(values: list[float], q: float) -> float | None:
    return None if not values else float(np.percentile(np.asarray(values, dtype=float), q))


def evaluate(items: list[Any], results: list[Result]) -> dict[str, Any]:
    """Metrics of one detector's results against the corpus labels."""
    n = len(items)
    correct = 0
    humans = machines = human_as_machine = notsure = 0
    decide: list[float] = []
    human_delay: list[float] = []
    beeps = beeps_found = 0
    beep_err: list[float] = []
    errors = []
    for item, r in zip(items, results):
        want = item.label.upper()
        if r.verdict == want:
            correct += 1
        elif len(errors) < 20:
            errors.append({"name": item.name, "label": item.label, "verdict": r.verdict,
                           "decided_at_ms": r.decided_at_ms})
        notsure += r.verdict == "NOTSURE"
        decide.append(r.decided_at_ms)
        if item.label == "human":
            humans += 1
            human_as_machine += r.verdict == "MACHINE"
            if r.verdict == "HUMAN":
                human_delay.append(r.decided_at_ms - item.first_utterance_end_ms)
        else:
            machines += 1
            if item.beep_ms is not None:
                beeps += 1
                if r.beep_ms is not None and abs(r.beep_ms - item.beep_ms) <= 300:
                    beeps_found += 1
                    beep_err.append(abs(r.beep_ms - item.beep_ms))
    return {
        "files": n, "humans": humans, "machines": machines,
        "accuracy": correct / n if n else None,
        "humans_classified_machine_rate": human_as_machine / humans if humans else None,
        "notsure_rate": notsure / n if n else None,
        "decision_ms_median": _pct(decide, 50), "decision_ms_p90": _pct(decide, 90),
        "human_delay_after_utterance_ms_median": _pct(human_delay, 50),
        "human_delay_after_utterance_ms_p90": _pct(human_delay, 90),
        "machines_with_beep": beeps,
        "beep_detection_rate": beeps_found / beeps if beeps else None,
        "beep_error_ms_median": _pct(beep_err, 50), "beep_error_ms_p90": _pct(beep_err, 90),
        "errors": errors,
    }


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="callcenter bench amd-corpus", description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true", help="print JSON")
    ap.add_argument("--count", type=int, default=200, help="recordings (half humans)")
    ap.add_argument("--split", choices=["train", "test"], default="test",
                    help="test (default, held out) or train (what the defaults were tuned on)")
    ap.add_argument("--seed", type=int, default=None)
    try:
        a = ap.parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    if a.count < 2:
        print("callcenter bench amd-corpus: --count must be >= 2", file=sys.stderr)
        return 2
    corpus = _corpus_module()
    seed = a.seed if a.seed is not None else (corpus.TEST_SEED if a.split == "test" else corpus.TRAIN_SEED)
    t0 = time.perf_counter()
    generated = corpus.generate(seed, a.count, a.split)
    gen_s = time.perf_counter() - t0
    items = [it for it, _ in generated]
    audio = [x for _, x in generated]
    out: dict[str, Any] = {"split": a.split, "seed": seed, "count": a.count,
                           "asterisk_prompts": corpus._allison_available(),
                           "generate_s": round(gen_s, 2), "detectors": {}}
    for name, fn in DETECTORS.items():
        t0 = time.perf_counter()
        res = fn(audio)
        m = evaluate(items, res)
        m["run_s"] = round(time.perf_counter() - t0, 3)
        out["detectors"][name] = m
    if a.json:
        print(json.dumps(out, indent=1))
    else:
        for name, m in out["detectors"].items():
            print(f"{name}: " + ", ".join(f"{k}={v}" for k, v in m.items() if k != "errors"))
    return 0
