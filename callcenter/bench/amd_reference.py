"""The AMD detector of :mod:`callcenter.features.amd.detector`, written as a per-channel Python loop.

It exists as the plain reading of the algorithm, as the throughput baseline of
``callcenter bench amd-throughput`` and as the oracle the vectorised :func:`~callcenter.features.amd.detector.step`
is checked against (identical verdicts and times). Keep the two in step: every expression here
mirrors one there, in the same order, so the floating-point results are bit-identical.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from callcenter.features.amd.detector import (
    AWAIT_BEEP,
    BEEP,
    DONE,
    FLOOR_CREEP,
    FLOOR_DOWN,
    FLOOR_TRACK,
    FRAME_MS,
    HUMAN,
    MACHINE,
    NONE,
    NOTSURE,
    SPEAKING,
    WAITING,
    FEATURES,
    AmdParams,
    Derived,
    features,
    model_score,
    tone_peaks,
)

__all__ = ["Channel", "RefState", "new_state", "step"]


@dataclass
class Channel:
    """One channel's detector state."""

    in_use: bool = False
    phase: int = WAITING
    frames: int = 0
    floor: float = 0.0
    utt_start: int = 0
    last_speech: int = 0
    sil_run: int = 0
    seg_voiced: int = 0
    words: int = 0
    prev_peak: int = -1
    prev_r0: float = 0.0
    prev_pre: bool = False
    prev_k1: float = 0.0
    tone_run: int = 0
    prev_e: float = 0.0
    prev_e2: float = 0.0
    voiced_ms: int = 0
    pauses: int = 0
    lsum: float = 0.0
    lsq: float = 0.0
    rsum: float = 0.0
    ksum: float = 0.0
    lpeak: float = 0.0
    lema: float = 0.0
    score: float = 0.0
    rule: int = 0
    feats: tuple[float, ...] = (0.0,) * len(FEATURES)
    verdict: int = NONE
    decided_ms: int = -1
    beep_ms: int = -1


@dataclass
class RefState:
    """A list of channels plus the parameters."""

    params: AmdParams
    derived: Derived
    channels: list[Channel] = field(default_factory=list)
    t_ms: int = 0

    def add_channel(self) -> int:
        for i, c in enumerate(self.channels):
            if not c.in_use:
                self.channels[i] = Channel(in_use=True)
                return i
        self.channels.append(Channel(in_use=True))
        return len(self.channels) - 1

    def remove_channel(self, slot: int) -> None:
        self.channels[slot].in_use = False
        self.channels[slot].phase = DONE


def new_state(capacity: int, params: AmdParams | None = None) -> RefState:
    """An empty state (``capacity`` is only a hint here)."""
    p = params or AmdParams()
    return RefState(params=p, derived=Derived.of(p),
                    channels=[Channel() for _ in range(capacity)])


def step(state: RefState, frames: np.ndarray, active_mask: np.ndarray | None,
         t_ms: int) -> tuple[RefState, np.ndarray]:
    """Same contract as :func:`callcenter.features.amd.detector.step`, one channel at a time."""
    state.t_ms = t_ms
    verdicts = np.zeros(len(state.channels), dtype=np.int8)
    for i, c in enumerate(state.channels):
        if not c.in_use or c.phase == DONE:
            continue
        if active_mask is not None and not active_mask[i]:
            continue
        verdicts[i] = _frame(state.params, state.derived, c, frames[i])
    return state, verdicts


def _frame(p: AmdParams, d: Derived, c: Channel, frame: np.ndarray) -> int:
    x = frame.astype(np.float64)
    r0 = float(np.dot(x, x))
    r1 = float(np.dot(x[1:], x[:-1]))
    r2 = float(np.dot(x[2:], x[:-2]))

    if r0 > 0.0:
        k1 = r1 / r0
        e1 = r0 - k1 * r1
        if e1 > 0.0:
            k2 = (r2 - k1 * r1) / e1
            e2 = e1 * (1.0 - k2 * k2)
            resid = e2 / r0
        else:
            resid = 0.0
    else:
        k1 = 0.0
        resid = 1.0

    c.frames += 1
    el = c.frames * FRAME_MS
    e1f = r0 * d.pe_a + r1 * d.pe_b
    e = (e1f + c.prev_e + c.prev_e2) * (1.0 / 3.0) if p.vad_smooth and c.frames > 2 else e1f
    c.prev_e2, c.prev_e = c.prev_e, e1f

    # Adaptive noise floor.
    if c.frames == 1:
        c.floor = min(e, d.noise_init_max)
    elif e < c.floor:
        c.floor = c.floor * FLOOR_DOWN + e * (1.0 - FLOOR_DOWN)
    elif e < c.floor * d.snr_ratio:
        c.floor = c.floor * FLOOR_TRACK + e * (1.0 - FLOOR_TRACK)
    else:
        c.floor = c.floor * FLOOR_CREEP
    c.floor = max(c.floor, d.noise_min)
    thr = max(c.floor * d.snr_ratio, d.min_speech_energy)
    speech = e > thr and resid < p.speech_max_resid
    mant, expo = np.frexp(max(e, 1.0))
    lvl = (int(expo) - 1) + (float(mant) * 2.0 - 1.0)
    if c.phase == SPEAKING and c.voiced_ms > 0:
        mean_lvl = c.lsum / max(c.voiced_ms * (1.0 / FRAME_MS), 1.0)
        speech = speech and lvl > mean_lvl - d.rel_drop

    # Segmentation.
    undecided0 = c.phase in (WAITING, SPEAKING)
    if speech:
        if c.phase == WAITING:
            c.phase = SPEAKING
            c.utt_start = el - FRAME_MS
        elif c.phase == SPEAKING and c.sil_run >= p.pause_ms:
            c.pauses += 1
        c.last_speech = el
        c.sil_run = 0
        c.seg_voiced += FRAME_MS
    else:
        c.sil_run += FRAME_MS
        if c.sil_run == p.word_gap_ms:
            if c.seg_voiced >= p.min_word_ms:
                c.words += 1
            c.seg_voiced = 0
    words_now = c.words + (1 if c.seg_voiced >= p.min_word_ms else 0)

    # The first utterance's level and spectral shape.
    if speech and undecided0:
        c.lema = lvl if c.voiced_ms == 0 else c.lema * 0.9 + lvl * 0.1
        c.voiced_ms += FRAME_MS
        c.lsum += lvl
        c.lsq += lvl * lvl
        c.rsum += resid
        c.ksum += k1
        if lvl > c.lpeak:
            c.lpeak = lvl
    f = features(c.utt_start, c.last_speech, c.voiced_ms, words_now, c.pauses, c.lsum, c.lsq, c.rsum,
                 c.ksum, c.lpeak, c.lema)
    score = float(model_score(f, d))

    # Beep.
    peak = -1
    pre = r0 > d.beep_min_energy and resid < p.beep_max_resid and d.k1_min < k1 < d.k1_max
    if (pre and c.prev_pre and abs(k1 - c.prev_k1) < p.beep_k1_step
            and r0 < c.prev_r0 * 2.0 and r0 * 2.0 > c.prev_r0):
        peak = int(tone_peaks(x[None, :], d.bin_min, d.bin_max, p.beep_min_peak_ratio)[0])
    tonal = peak >= 0
    if (tonal and c.prev_peak >= 0 and abs(peak - c.prev_peak) <= 1
            and r0 < c.prev_r0 * 2.0 and r0 * 2.0 > c.prev_r0):
        c.tone_run += 1
    else:
        c.tone_run = 1 if tonal else 0
    c.prev_peak, c.prev_r0, c.prev_pre, c.prev_k1 = peak, r0, pre, k1
    beep = c.tone_run >= d.beep_frames

    # Decisions, in the vectorised step's order of rules.
    verdict = NONE
    if c.phase in (WAITING, SPEAKING):
        c.score = score
        rule = 0
        if c.phase == SPEAKING and c.last_speech - c.utt_start > p.max_human_utterance_ms:
            verdict, rule = MACHINE, 3
        elif c.phase == SPEAKING and words_now >= p.machine_words:
            verdict, rule = MACHINE, 4
        elif c.phase == SPEAKING and c.sil_run >= p.after_silence_ms and score < d.wait_score:
            verdict, rule = HUMAN, 1
        elif c.phase == SPEAKING and c.sil_run >= d.long_silence:
            verdict, rule = (MACHINE, 6) if score >= d.machine_score else (HUMAN, 2)
        elif beep:
            verdict, rule = MACHINE, 5
        elif el >= p.total_analysis_ms:
            verdict, rule = NOTSURE, 7
        if verdict != NONE:
            c.phase = AWAIT_BEEP if verdict == MACHINE else DONE
            c.verdict = verdict
            c.decided_ms = el
            c.rule = rule
            c.feats = tuple(float(v) for v in f)
    elif c.phase == AWAIT_BEEP:
        if beep:
            verdict = BEEP
        elif el >= p.beep_wait_ms:
            c.phase = DONE
    if beep:
        c.beep_ms = el - (c.tone_run + 1) * FRAME_MS
        c.phase = DONE
    return verdict
