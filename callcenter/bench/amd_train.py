"""``python -m callcenter.bench.amd_train``: fit the AMD model on the TRAIN voices, choose its
operating points by grouped cross-validation (leave one language out), print the constants to ship.

The model is a logistic regression over the first utterance's FEATURES at the moment the
detector would have to decide after a silence (``long_silence_ms`` of silence, the
"wait-always" snapshot). Nothing from the ``test`` voices or languages is read here.

Steps: (1) run the TRAIN corpus with the model switched off (every utterance waits for the long
silence) and take the decision-time features; (2) for each language, fit on the other languages
and score the held-out one (out-of-fold scores); (3) choose ``wait_score`` (below it, HUMAN after
``after_silence_ms``) and the curve ``max_live_hangups -> machine_score`` by running the detector
on every fold with its out-of-fold model; (4) fit on all TRAIN data and print MODEL.
"""

from __future__ import annotations

import argparse
import json
import math
import pickle
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from callcenter.features.amd import detector as amd


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0, weight_pos: float = 1.0) -> tuple[np.ndarray, float]:
    """Newton-Raphson logistic regression on standardised features; weights in raw units."""
    mu = x.mean(axis=0)
    sd = x.std(axis=0)
    sd[sd == 0] = 1.0
    z = (x - mu) / sd
    a = np.hstack([z, np.ones((len(z), 1))])
    w = np.zeros(a.shape[1])
    sw = np.where(y > 0, weight_pos, 1.0)
    reg = np.full(a.shape[1], l2)
    reg[-1] = 0.0
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-(a @ w)))
        g = a.T @ (sw * (p - y)) + reg * w
        h = (a * (sw * p * (1 - p))[:, None]).T @ a + np.diag(reg + 1e-9)
        step = np.linalg.solve(h, g)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    raw = w[:-1] / sd
    bias = float(w[-1] - (w[:-1] * mu / sd).sum())
    return raw, bias


def with_model(weights: Any, bias: float, wait_score: float, curve: Any) -> None:
    amd.MODEL.update(weights=tuple(float(v) for v in weights), bias=float(bias), wait_score=float(wait_score),
                     curve=tuple((float(a), float(b)) for a, b in curve))


def snapshots(audio: list[np.ndarray], params: amd.AmdParams) -> list[amd.Result]:
    """Results with the model off, decided at the first ``after_silence_ms`` of silence: the
    features at the moment the model has to choose between HUMAN now and waiting."""
    saved = dict(amd.MODEL)
    try:
        with_model((0.0,) * len(amd.FEATURES), 0.0, -np.inf, ((0.0, np.inf),))
        return amd.classify(audio, replace(params, long_silence_ms=params.after_silence_ms))
    finally:
        amd.MODEL.clear()
        amd.MODEL.update(saved)


def training_rows(items: list[Any], res: list[amd.Result]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows, ys, idx = [], [], []
    for i, (it, r) in enumerate(zip(items, res)):
        if r.rule == "silence_after_ambiguous_utterance":
            rows.append([v for _, v in r.features])
            ys.append(1.0 if it.label == "machine" else 0.0)
            idx.append(i)
    return np.array(rows), np.array(ys), np.array(idx)


WAIT_SCORE = -1.0          # chosen on TRAIN (see README): HUMAN after after_silence_ms below it
SCORE_GRID = (math.inf, 4.0, 3.0, 2.5, 2.0, 1.5, 1.0, 0.5, 0.0)


def _load(split: str, seed: int, count: int, cache: Path | None, jobs: int) -> list[Any]:
    corpus = _broad()
    path = cache / f"{split}-{seed}-{count}.pkl" if cache else None
    if path is not None and path.exists():
        with path.open("rb") as f:
            return pickle.load(f)
    data = corpus.generate_parallel(seed, count, split, jobs)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as f:
            pickle.dump(data, f)
    return data


def _broad() -> Any:
    try:
        from tests import amd_broad
    except ImportError:
        sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
        from tests import amd_broad
    return amd_broad


def grouped_curve(items: list[Any], audio: list[np.ndarray], params: amd.AmdParams, group: str = "language") -> list[dict[str, Any]]:
    """Leave-one-group-out over TRAIN: per MACHINE threshold, people called MACHINE and machines
    that would reach an agent (HUMAN or NOTSURE), each fold scored by a model fitted without it."""
    res = snapshots(audio, params)
    x, y, idx = training_rows(items, res)
    groups = np.array([getattr(it, group) for it in items])
    totals = {th: [0, 0, 0, 0] for th in SCORE_GRID}  # humans, humans->M, machines, machines->agent
    saved = dict(amd.MODEL)
    try:
        for g in sorted(set(groups)):
            rows = groups[idx] != g
            w, b = fit_logistic(x[rows], y[rows])
            sel = [i for i in range(len(items)) if groups[i] == g]
            for th in SCORE_GRID:
                with_model(w, b, WAIT_SCORE, ((0.0, th),))
                out = amd.classify([audio[i] for i in sel], replace(params, max_live_hangups=0.0))
                for i, r in zip(sel, out):
                    t = totals[th]
                    if items[i].label == "human":
                        t[0] += 1
                        t[1] += r.verdict == "MACHINE"
                    else:
                        t[2] += 1
                        t[3] += r.verdict != "MACHINE"
    finally:
        amd.MODEL.clear()
        amd.MODEL.update(saved)
    return [{"machine_score": th, "humans_classified_machine": t[1] / max(t[0], 1),
             "machines_to_agents": t[3] / max(t[2], 1)} for th, t in totals.items()]


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m callcenter.bench.amd_train", description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=1200)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--cache", type=Path, default=None, help="keep the generated corpus here (pickle)")
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args(argv)
    data = _load("train", a.seed, a.count, a.cache, a.jobs)
    items = [it for it, _ in data]
    audio = [x for _, x in data]
    params = amd.AmdParams()
    res = snapshots(audio, params)
    x, y, _ = training_rows(items, res)
    w, b = fit_logistic(x, y)
    curve = grouped_curve(items, audio, params)
    # The curve is monotone in the threshold; keep, per rate, the lowest threshold reaching it.
    pts = sorted({(round(c["humans_classified_machine"], 4), c["machine_score"]) for c in curve})
    model = {"weights": tuple(round(float(v), 5) for v in w), "bias": round(b, 5), "wait_score": WAIT_SCORE,
             "curve": tuple(pts)}
    print(json.dumps({"rows": len(y), "machines": int(y.sum()), "curve": curve}, indent=1))
    print("MODEL =", repr(model))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
