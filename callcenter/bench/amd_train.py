"""``python -m callcenter.bench.amd_train``: fit the AMD model on the TRAIN voices, choose its
operating points by grouped cross-validation (leave one language out), print the constants to ship.

The model is a small ensemble of gradient-boosted depth-2 trees (logistic loss) over the first
utterance's FEATURES at the moment the detector would have to decide after a silence (the
"wait-always" snapshot). Trees rather than one linear score because the evidence is not
monotone: a first utterance of 1.5-3 s is more machine-like than both a one-word answer and a
4 s business greeting. Nothing from the ``test`` or ``fresh`` voices or languages is read here.

Steps: (1) run the TRAIN corpus with the model switched off (every utterance decided at the
first ``after_silence_ms`` of silence) and take the decision-time features; (2) for each
language, fit on the other languages (out-of-fold models); (3) run the detector on every fold
with its out-of-fold model at each MACHINE threshold: the curve ``max_live_hangups ->
machine_score``; (4) fit on all TRAIN data and print MODEL.
"""

from __future__ import annotations

import argparse
import json
import math
import pickle
import sys
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from callcenter.features.amd import detector as amd

Tree = tuple[float, ...]


def _best_split(x: np.ndarray, g: np.ndarray, h: np.ndarray, rows: np.ndarray, cuts: list[np.ndarray],
                min_leaf: int, l2: float) -> tuple[int, float] | None:
    """The (feature, threshold) with the largest second-order gain on ``rows``, or None."""
    best, arg = 0.0, None
    gs, hs = g[rows].sum(), h[rows].sum()
    parent = gs * gs / (hs + l2)
    for k, ths in enumerate(cuts):
        xv = x[rows, k]
        left = xv[:, None] <= ths[None, :]                     # [rows, cuts]
        n_left = left.sum(axis=0)
        gl = g[rows] @ left
        hl = h[rows] @ left
        gain = gl * gl / (hl + l2) + (gs - gl) ** 2 / (hs - hl + l2) - parent
        gain[(n_left < min_leaf) | (len(rows) - n_left < min_leaf)] = -np.inf
        j = int(np.argmax(gain))
        if gain[j] > best:
            best, arg = float(gain[j]), (k, float(ths[j]))
    return arg


def _leaf(g: np.ndarray, h: np.ndarray, rows: np.ndarray, lr: float, l2: float) -> float:
    return float(-g[rows].sum() / (h[rows].sum() + l2) * lr)


def fit_trees(x: np.ndarray, y: np.ndarray, n_trees: int = 60, lr: float = 0.15, min_leaf: int = 15,
              n_cuts: int = 24, l2: float = 1.0) -> tuple[float, tuple[Tree, ...]]:
    """Gradient boosting of depth-2 trees on the logistic loss; (bias, trees) in raw feature units,
    each tree ``(k, t, kl, tl, a, b, kr, tr, c, e)`` as :func:`detector.model_score` reads it."""
    rate = min(max(float(y.mean()), 1e-3), 1 - 1e-3)
    bias = math.log(rate / (1 - rate))
    cuts = [np.unique(np.round(np.quantile(x[:, k], np.linspace(0.03, 0.97, n_cuts)), 5))
            for k in range(x.shape[1])]
    f = np.full(len(y), bias)
    trees: list[Tree] = []
    for _ in range(n_trees):
        p = 1.0 / (1.0 + np.exp(-f))
        g, h = p - y, p * (1 - p)
        rows = np.arange(len(y))
        root = _best_split(x, g, h, rows, cuts, min_leaf, l2)
        if root is None:
            break
        k, t = root
        node: list[float] = [k, t]
        for side in (rows[x[rows, k] <= t], rows[x[rows, k] > t]):
            sub = _best_split(x, g, h, side, cuts, min_leaf, l2)
            if sub is None:
                v = _leaf(g, h, side, lr, l2)
                node += [0, math.inf, round(v, 5), round(v, 5)]
            else:
                k2, t2 = sub
                node += [k2, t2, round(_leaf(g, h, side[x[side, k2] <= t2], lr, l2), 5),
                         round(_leaf(g, h, side[x[side, k2] > t2], lr, l2), 5)]
        tree = tuple(float(v) for v in node)
        trees.append(tree)
        f = f + scores((0.0, (tree,)), x)
    return round(bias, 5), tuple(trees)


def scores(model: tuple[float, tuple[Tree, ...]], x: np.ndarray) -> np.ndarray:
    """The shipped model's score for rows of features (the detector's own function)."""
    bias, trees = model
    return amd.model_score(x, SimpleNamespace(bias=bias, trees=trees))


def with_model(bias: float, trees: Any, wait_score: float, curve: Any) -> None:
    amd.MODEL.update(bias=float(bias), trees=tuple(tuple(float(v) for v in t) for t in trees),
                     wait_score=float(wait_score), curve=tuple((float(a), float(b)) for a, b in curve))


def snapshots(audio: list[np.ndarray], params: amd.AmdParams) -> list[amd.Result]:
    """Results with the model off, decided at the first ``after_silence_ms`` of silence: the
    features at the moment the model has to choose between HUMAN now and waiting."""
    saved = dict(amd.MODEL)
    try:
        with_model(0.0, (), -np.inf, ((0.0, np.inf),))
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
SCORE_GRID = (math.inf, 3.0, 2.5, 2.0, 1.75, 1.5, 1.25, 1.0, 0.75, 0.5, 0.25, 0.0)


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


def grouped_curve(items: list[Any], audio: list[np.ndarray], params: amd.AmdParams, group: str = "language",
                  wait_score: float = WAIT_SCORE, **fit: Any) -> list[dict[str, Any]]:
    """Leave-one-group-out over TRAIN: per MACHINE threshold, people called MACHINE, machines
    that would reach an agent (HUMAN or NOTSURE) and the HUMAN verdict's delay (p90), each fold
    run through the detector with a model fitted without it."""
    res = snapshots(audio, params)
    x, y, idx = training_rows(items, res)
    groups = np.array([getattr(it, group) for it in items])
    totals: dict[float, list[Any]] = {th: [0, 0, 0, 0, []] for th in SCORE_GRID}
    saved = dict(amd.MODEL)
    try:
        for g in sorted(set(groups)):
            rows = groups[idx] != g
            bias, trees = fit_trees(x[rows], y[rows], **fit)
            sel = [i for i in range(len(items)) if groups[i] == g]
            for th in SCORE_GRID:
                with_model(bias, trees, wait_score, ((0.0, th),))
                out = amd.classify([audio[i] for i in sel], replace(params, max_live_hangups=0.0))
                for i, r in zip(sel, out):
                    t = totals[th]
                    if items[i].label == "human":
                        t[0] += 1
                        t[1] += r.verdict == "MACHINE"
                        if r.verdict == "HUMAN":
                            t[4].append(r.decided_at_ms - items[i].first_utterance_end_ms)
                    else:
                        t[2] += 1
                        t[3] += r.verdict != "MACHINE"
    finally:
        amd.MODEL.clear()
        amd.MODEL.update(saved)
    return [{"machine_score": th, "humans_classified_machine": t[1] / max(t[0], 1),
             "machines_to_agents": t[3] / max(t[2], 1),
             "accuracy": 1 - (t[1] + t[3]) / max(t[0] + t[2], 1),
             "human_delay_p90_ms": float(np.percentile(t[4], 90)) if t[4] else None}
            for th, t in totals.items()]


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m callcenter.bench.amd_train", description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=1200)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--cache", type=Path, default=None, help="keep the generated corpus here (pickle)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--wait-score", type=float, default=WAIT_SCORE)
    ap.add_argument("--trees", type=int, default=60)
    a = ap.parse_args(argv)
    data = _load("train", a.seed, a.count, a.cache, a.jobs)
    items = [it for it, _ in data]
    audio = [x for _, x in data]
    params = amd.AmdParams()
    res = snapshots(audio, params)
    x, y, _ = training_rows(items, res)
    bias, trees = fit_trees(x, y, n_trees=a.trees)
    curve = grouped_curve(items, audio, params, wait_score=a.wait_score, n_trees=a.trees)
    # The curve is monotone in the threshold; keep, per rate, the lowest threshold reaching it.
    pts = sorted({(round(c["humans_classified_machine"], 4), c["machine_score"]) for c in curve
                  if c["machine_score"] != math.inf})
    model = {"bias": bias, "trees": trees, "wait_score": a.wait_score, "curve": tuple(pts)}
    print(json.dumps({"rows": len(y), "machines": int(y.sum()), "curve": curve}, indent=1))
    print("MODEL =", repr(model))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
