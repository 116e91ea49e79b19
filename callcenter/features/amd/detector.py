"""Answering-machine detection, streaming and vectorised across channels (numpy, no I/O).

One :class:`AmdState` holds the detector state of up to ``capacity`` channels as numpy
arrays; :func:`step` consumes one 20 ms frame (160 samples of 8 kHz int16) for every channel in
a single numpy pass — there is no per-channel Python loop in the hot path.
``callcenter.bench.amd_reference`` is the same detector written as a per-channel Python loop; both
give identical verdicts (every feature is computed exactly: sums of int16 products are integers
that float64 represents exactly, and the rest is element-wise IEEE arithmetic).

Per frame (``x`` = 160 samples):

- ``r0, r1, r2`` — autocorrelation at lags 0, 1, 2. ``r0`` is the frame energy; order-2 linear
  prediction (Levinson) gives ``k1 = r1/r0`` (spectral tilt: ~1 for low-frequency sound, ~0 for
  white noise) and the normalised prediction residual ``resid = e2/r0`` (~0 for a pure tone,
  ~0.05-0.5 for voiced speech, ~1 for white noise: a cheap spectral-flatness measure).
- An adaptive noise floor tracks the energy of non-speech frames (fast down, slower up,
  creeping while someone speaks). A frame is *speech* when its energy exceeds both
  ``min_speech_rms`` and the floor by ``speech_snr_db``, and it is not flat noise
  (``resid < speech_max_resid``).
- *Words*: runs of speech of >= ``min_word_ms`` separated by >= ``word_gap_ms`` of silence.
- *Beep*: a cheap pre-filter — loud enough, ``resid < beep_max_resid`` (narrow-band), ``k1`` in
  the ``beep_min_hz``-``beep_max_hz`` range, and so for two frames in a row with ``k1`` moving
  less than ``beep_k1_step`` and the level less than 3 dB — picks the few candidate frames
  (~5% of call audio) that get a Hann-windowed FFT: the peak bin and its two neighbours must
  hold >= ``beep_min_peak_ratio`` of the energy (a voice spreads it over its harmonics). A run
  of such frames, steady in frequency (peak bin moves <= 1 bin = 50 Hz) and level, lasting
  >= ``beep_min_ms`` is a beep; its start is reported.

Speech energy is pre-emphasised (``x[n] - a x[n-1]``, so rumble does not count) and, with
``vad_smooth``, the mean of the last three frames; once the first words are heard, frames
``silence_below_db`` under the speaker's mean level are silence.

The first utterance's FEATURES (length, voiced share, words, pauses, level spread, mean LPC
residual and tilt, start time, level drop, word rate) are kept as running sums and scored by
sixty depth-2 trees (MODEL: gradient-boosted offline on the TRAIN voices of ``tests/amd_broad.py``).

Decisions (times are after the answer, counted in frames received; the first rule that holds
is the one the trace names, see RULES):

- ``MACHINE``: the first utterance grew longer than ``max_human_utterance_ms``, or had
  ``machine_words`` words.
- ``HUMAN``: ``after_silence_ms`` of silence after it and a score below ``wait_score`` — a
  person said "hello?" and waits.
- after ``long_silence_ms`` of silence (an ambiguous utterance: a machine's beep would have
  come by now): ``MACHINE`` if the score reaches ``machine_score`` (the campaign's operating
  point, from ``max_live_hangups``), else ``HUMAN``.
- ``MACHINE``: a beep.
- ``NOTSURE``: no decision by ``total_analysis_ms``.

After ``MACHINE`` the channel keeps listening for the beep until ``beep_wait_ms``; when found,
``step`` reports ``BEEP`` for that channel (the time to start leaving a message).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

__all__ = [
    "BEEP",
    "FRAME",
    "FRAME_MS",
    "HUMAN",
    "MACHINE",
    "NONE",
    "NOTSURE",
    "VERDICT_NAMES",
    "AmdConfigError",
    "AmdParams",
    "AmdState",
    "Result",
    "add_channel",
    "classify",
    "frames_of",
    "new_state",
    "remove_channel",
    "reset_channels",
    "step",
]

FRAME = 160
FRAME_MS = 20

NONE, HUMAN, MACHINE, NOTSURE, BEEP = 0, 1, 2, 3, 4
VERDICT_NAMES = {HUMAN: "HUMAN", MACHINE: "MACHINE", NOTSURE: "NOTSURE", BEEP: "BEEP"}

# Phases of a channel.
WAITING, SPEAKING, AWAIT_BEEP, DONE = 0, 1, 2, 3


class AmdConfigError(ValueError):
    """An invalid AMD parameter; the message names the dotted key."""


@dataclass(frozen=True)
class AmdParams:
    """Detector parameters (milliseconds, decibels, ratios). Tuned on the TRAIN corpus only."""

    max_human_utterance_ms: int = 5500  # a longer first utterance is a machine's greeting
    after_silence_ms: int = 700         # silence that ends a clearly short first utterance (then HUMAN)
    long_silence_ms: int = 1100         # silence that ends an ambiguous one (a beep would have come;
                                        # never shorter than after_silence_ms)
    pause_ms: int = 200                 # a silence this long inside the utterance is a pause
    max_live_hangups: float = 0.02      # operating point: share of people the model may call MACHINE
    total_analysis_ms: int = 8000       # NOTSURE if undecided by then
    machine_words: int = 30             # this many words in the first utterance: MACHINE
    min_word_ms: int = 100              # shortest speech run counted as a word
    word_gap_ms: int = 60               # silence that separates words
    min_speech_rms: float = 120.0       # absolute speech threshold (RMS of a frame)
    speech_snr_db: float = 6.0          # speech is this far above the noise floor
    speech_max_resid: float = 0.6       # flatter frames than this are noise, not speech
    preemphasis: float = 0.9            # speech energy is measured on x[n] - a*x[n-1]
    vad_smooth: int = 1                 # 1: speech energy is the mean of the last three frames
    silence_below_db: float = 15.0      # after the first words, frames this far below their mean level are silence
    noise_init_max_rms: float = 300.0   # the noise floor starts at min(first frame, this)
    noise_min_rms: float = 5.0          # the noise floor never goes below this
    beep_min_ms: int = 140              # shortest beep
    beep_max_resid: float = 0.2         # beep pre-filter: order-2 prediction residual
    beep_min_peak_ratio: float = 0.95   # share of the energy in the FFT peak's 3 bins
    beep_k1_step: float = 0.03          # beep pre-filter: frame-to-frame change of k1
    beep_min_hz: float = 350.0
    beep_max_hz: float = 2100.0
    beep_min_rms: float = 300.0         # quieter tones are not beeps
    beep_wait_ms: int = 30000           # after MACHINE, listen for the beep until then

    _POSITIVE = ("max_human_utterance_ms", "after_silence_ms", "long_silence_ms", "pause_ms",
                 "total_analysis_ms",
                 "machine_words", "min_word_ms", "word_gap_ms", "min_speech_rms",
                 "noise_init_max_rms", "noise_min_rms", "beep_min_ms", "beep_max_resid",
                 "beep_min_peak_ratio", "beep_k1_step", "beep_min_hz", "beep_max_hz",
                 "beep_min_rms", "beep_wait_ms", "speech_max_resid", "silence_below_db")

    def __post_init__(self) -> None:
        self.validate()

    def validate(self, prefix: str = "amd") -> None:
        """Raise :class:`AmdConfigError` naming the first bad key."""
        for name in self._POSITIVE:
            if not getattr(self, name) > 0:
                raise AmdConfigError(f"{prefix}.{name}: must be > 0")
        if self.speech_snr_db < 0:
            raise AmdConfigError(f"{prefix}.speech_snr_db: must be >= 0")
        if not self.beep_min_hz < self.beep_max_hz <= 4000:
            raise AmdConfigError(f"{prefix}.beep_max_hz: must be > beep_min_hz and <= 4000")
        if self.beep_min_peak_ratio >= 1:
            raise AmdConfigError(f"{prefix}.beep_min_peak_ratio: must be < 1")
        if self.total_analysis_ms <= max(self.long_silence_ms, self.after_silence_ms):
            raise AmdConfigError(f"{prefix}.total_analysis_ms: must be > after_silence_ms and long_silence_ms")
        if not 0 <= self.preemphasis < 1:
            raise AmdConfigError(f"{prefix}.preemphasis: must be >= 0 and < 1")
        if not 0 <= self.max_live_hangups <= 1:
            raise AmdConfigError(f"{prefix}.max_live_hangups: must be between 0 and 1")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None, prefix: str = "amd") -> AmdParams:
        """Build from a YAML mapping; unknown keys, wrong types and bad values name the key."""
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise AmdConfigError(f"{prefix}: must be a mapping")
        known = {f.name: f for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key not in known:
                raise AmdConfigError(f"{prefix}.{key}: unknown key")
            want = known[key].type
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise AmdConfigError(f"{prefix}.{key}: must be a number")
            if want in ("int", int):
                if isinstance(value, float) and not value.is_integer():
                    raise AmdConfigError(f"{prefix}.{key}: must be an integer")
                value = int(value)
            else:
                value = float(value)
                if not math.isfinite(value):
                    raise AmdConfigError(f"{prefix}.{key}: must be finite")
            kwargs[key] = value
        obj = cls.__new__(cls)
        defaults = cls()
        for name in known:
            object.__setattr__(obj, name, kwargs.get(name, getattr(defaults, name)))
        obj.validate(prefix)
        return obj


@dataclass(frozen=True)
class Derived:
    """Constants derived once from :class:`AmdParams` (shared by both implementations)."""

    min_speech_energy: float
    snr_ratio: float
    noise_init_max: float
    noise_min: float
    k1_min: float
    k1_max: float
    beep_min_energy: float
    beep_frames: int
    bin_min: int
    bin_max: int
    rel_drop: float              # silence_below_db in log2 energy units
    pe_a: float                  # pre-emphasised energy = r0 * pe_a + r1 * pe_b
    pe_b: float
    trees: tuple[tuple[float, ...], ...]  # the model's depth-2 trees over FEATURES (raw units)
    bias: float
    long_silence: int            # max(long_silence_ms, after_silence_ms)
    wait_score: float            # a score at or above this waits for long_silence_ms
    machine_score: float         # at long_silence_ms, a score at or above this is MACHINE

    @classmethod
    def of(cls, p: AmdParams) -> Derived:
        n = float(FRAME)
        return cls(
            min_speech_energy=p.min_speech_rms * p.min_speech_rms * n,
            snr_ratio=10.0 ** (p.speech_snr_db / 10.0),
            noise_init_max=p.noise_init_max_rms * p.noise_init_max_rms * n,
            noise_min=p.noise_min_rms * p.noise_min_rms * n,
            # k1 ~ cos(2*pi*f/8000): high frequency -> small k1.
            k1_min=math.cos(2 * math.pi * p.beep_max_hz / 8000.0),
            k1_max=math.cos(2 * math.pi * p.beep_min_hz / 8000.0),
            beep_min_energy=p.beep_min_rms * p.beep_min_rms * n,
            beep_frames=-(-p.beep_min_ms // FRAME_MS),
            bin_min=max(1, math.ceil(p.beep_min_hz / BIN_HZ)),
            bin_max=min(FRAME // 2 - 1, math.floor(p.beep_max_hz / BIN_HZ)),
            rel_drop=p.silence_below_db / (10.0 * math.log10(2.0)),
            pe_a=1.0 + p.preemphasis * p.preemphasis,
            pe_b=-2.0 * p.preemphasis,
            trees=tuple(tuple(float(v) for v in t) for t in MODEL["trees"]),
            bias=float(MODEL["bias"]),
            long_silence=max(p.long_silence_ms, p.after_silence_ms),
            wait_score=float(MODEL["wait_score"]),
            machine_score=machine_score_for(p.max_live_hangups),
        )


# The first utterance's features, evaluated on every frame (a tree's feature indices refer to this order).
FEATURES = ("utt_s", "voiced_frac", "words", "pauses", "level_sd", "resid_mean", "k1_mean", "start_s",
            "level_drop", "words_per_s")
# Rules that decide (the trace names the one that did).
RULES = {0: "", 1: "short_utterance_then_silence", 2: "silence_after_ambiguous_utterance",
         3: "long_utterance", 4: "many_words", 5: "beep", 6: "score_after_silence", 7: "timeout"}

# Gradient-boosted depth-2 trees over FEATURES (score = log-odds, > 0: machine more likely),
# trained offline on the TRAIN voices of tests/amd_broad.py by ``python -m
# callcenter.bench.amd_train`` and shipped as numbers (see model_score for a tree's layout).
# ``curve``: (max_live_hangups, machine_score) pairs measured on grouped cross-validation folds.
MODEL: dict[str, Any] = {
    "bias": -0.68296,
    "trees": (
        (0, 1.41018, 1, 0.30892, 0.07185, -0.14001, 7, 1.2, 0.20408, -0.15271),
        (0, 1.41018, 5, 0.20156, -0.0624, -0.15174, 7, 1.2, 0.16336, -0.13952),
        (0, 1.41018, 1, 0.75604, -0.05917, -0.15198, 7, 1.2, 0.13441, -0.12801),
        (0, 1.41018, 5, 0.1562, -0.01961, -0.12098, 7, 1.2, 0.11244, -0.11775),
        (0, 1.64, 5, 0.20156, -0.02144, -0.11656, 0, 3.3, 0.17935, 0.02286),
        (0, 1.41018, 1, 0.75604, -0.0276, -0.12805, 7, 1.2, 0.08392, -0.11084),
        (0, 1.41018, 1, 0.75604, -0.02392, -0.11803, 0, 3.3, 0.11229, 0.01001),
        (0, 1.64, 5, 0.20156, -0.00135, -0.098, 0, 3.3, 0.12785, 0.00854),
        (2, 2.0, 4, 1.04688, 0.01102, -0.09282, 2, 6.0, 0.08654, -0.00872),
        (0, 0.62945, 4, 0.6882, 0.02575, -0.13535, 7, 1.2, 0.04323, -0.13055),
        (0, 2.04, 5, 0.20156, 0.01972, -0.08505, 0, 2.63067, 0.16349, 0.01021),
        (0, 0.62945, 4, 0.6882, 0.0298, -0.12491, 5, 0.20156, 0.0763, -0.02228),
        (1, 0.81097, 5, 0.20156, 0.08115, -0.0198, 4, 0.41918, 0.04663, -0.10224),
        (0, 1.64, 4, 1.04688, 0.02095, -0.06602, 0, 3.3, 0.08973, -0.00476),
        (7, 1.2, 0, 0.56, -0.07316, 0.02971, 7, 1.52, -0.13532, 0.07744),
        (0, 4.96, 0, 4.58, 0.00152, -0.15123, 0, math.inf, 0.13977, 0.13977),
        (5, 0.20156, 1, 0.78693, 0.07744, -0.03859, 0, 4.39116, -0.0479, 0.07586),
        (7, 1.2, 5, 0.20156, 0.04809, -0.01885, 4, 1.04688, 0.02568, -0.15052),
        (1, 0.75604, 5, 0.10505, 0.1662, 0.00406, 5, 0.1562, 0.00081, -0.08701),
        (2, 2.0, 8, 1.74893, 0.02727, -0.06483, 2, 6.0, 0.0559, -0.02244),
        (7, 1.2, 8, 4.03884, -0.00841, 0.06454, 7, 1.52, -0.12028, 0.06748),
        (1, 0.75604, 5, 0.10505, 0.14394, 0.0035, 4, 0.80552, 0.02887, -0.06374),
        (0, 4.96, 0, 4.58, 0.00284, -0.13932, 0, math.inf, 0.11521, 0.11521),
        (7, 0.02, 6, 0.786, -0.14726, 0.0966, 4, 1.04688, 0.06971, -0.00787),
        (0, 0.62945, 4, 0.41918, 0.04427, -0.08945, 7, 0.08, -0.07815, 0.02546),
        (7, 1.2, 0, 0.56, -0.05563, 0.02004, 4, 1.04688, 0.01724, -0.13846),
        (6, 0.66264, 5, 0.37199, 0.15666, -0.02073, 5, 0.20156, 0.02139, -0.03049),
        (0, 4.96, 0, 4.58, 0.00243, -0.12431, 0, math.inf, 0.1036, 0.1036),
        (0, 1.64, 1, 0.30892, 0.12667, -0.03375, 3, 1.0, 0.07214, -0.01681),
        (1, 0.81097, 7, 0.08, -0.06678, 0.02232, 4, 0.41918, 0.05235, -0.0733),
        (7, 1.2, 5, 0.20156, 0.03493, -0.0141, 4, 1.04688, 0.01673, -0.13194),
        (6, 0.66264, 4, 1.66978, 0.12395, -0.03498, 0, 0.82, -0.04673, 0.00853),
        (0, 4.96, 0, 4.58, 0.00258, -0.11406, 0, math.inf, 0.09163, 0.09163),
        (4, 2.17417, 0, 4.96, 0.00164, 0.15837, 9, 1.74268, -0.13443, 0.00813),
        (8, 4.03884, 8, 3.62726, -0.00082, -0.08442, 6, 0.74803, 0.1265, -0.00803),
        (5, 0.20156, 0, 4.58, 0.0369, -0.11331, 6, 0.75843, 0.01282, -0.07073),
        (1, 0.81097, 7, 0.08, -0.059, 0.01965, 4, 0.41918, 0.0427, -0.06686),
        (7, 1.2, 1, 0.9179, 0.014, -0.05685, 7, 1.52, -0.1013, 0.04964),
        (5, 0.10505, 1, 0.66128, 0.15414, -0.00856, 9, 0.77447, 0.06976, -0.01338),
        (5, 0.37199, 4, 1.04688, 0.05975, -0.0094, 4, 1.21417, -0.10537, 0.02802),
        (0, 1.64, 1, 0.30892, 0.09886, -0.02795, 3, 2.0, 0.04721, -0.04256),
        (6, 0.66264, 5, 0.37199, 0.11493, -0.02153, 0, 0.56, -0.05408, 0.00457),
        (7, 0.02, 5, 0.27558, 0.07032, -0.15283, 4, 1.04688, 0.06065, -0.00855),
        (7, 1.2, 8, 4.03884, -0.00625, 0.04426, 4, 1.04688, 0.01085, -0.12013),
        (4, 2.17417, 0, 4.96, 0.00146, 0.14775, 2, 6.0, 0.01, -0.12022),
        (6, 0.68488, 4, 1.857, 0.08025, -0.01251, 5, 0.20156, 0.01738, -0.02616),
        (0, 2.04, 5, 0.22729, 0.01222, -0.04836, 0, 2.63067, 0.11581, -0.00803),
        (1, 0.75604, 5, 0.10505, 0.0991, 0.00193, 5, 0.1562, 0.01152, -0.0619),
        (9, 0.77447, 5, 0.34657, 0.10919, -0.08232, 2, 1.0, -0.05197, 0.00681),
        (6, 0.68488, 4, 1.857, 0.07786, -0.01007, 0, 0.62945, -0.04708, 0.00327),
        (8, 1.74893, 5, 0.171, 0.09596, -0.0139, 8, 2.37077, -0.06432, 0.00472),
        (4, 2.17417, 0, 4.96, 0.00124, 0.13823, 9, 1.74268, -0.12034, 0.0143),
        (3, 2.0, 0, 1.64, -0.01642, 0.039, 1, 0.61538, 0.00121, -0.18191),
        (7, 0.02, 5, 0.27558, 0.06145, -0.13941, 4, 1.04688, 0.05417, -0.0083),
        (7, 1.2, 3, 4.0, 0.00953, -0.08482, 7, 1.52, -0.08914, 0.03945),
        (6, 0.68488, 5, 0.32802, 0.08099, -0.00037, 0, 0.62945, -0.04605, 0.00311),
        (5, 0.37199, 9, 0.77447, 0.08793, -0.00262, 4, 1.21417, -0.09065, 0.03102),
        (4, 2.17417, 0, 4.96, 0.00094, 0.1286, 9, 1.74268, -0.10759, 0.01152),
        (7, 0.02, 5, 0.27558, 0.05115, -0.13076, 4, 1.04688, 0.04876, -0.00744),
        (8, 4.03884, 8, 3.62726, 0.0007, -0.07243, 6, 0.74803, 0.10996, -0.01386),
    ),
    "wait_score": -1.0,
    "curve": ((0.015, 2.5), (0.015, 3.0), (0.02, 2.0), (0.0233, 1.75), (0.03, 1.5), (0.0383, 1.25), (0.0467, 1.0), (0.0683, 0.75), (0.0917, 0.5), (0.1433, 0.25), (0.1933, 0.0)),
}


def machine_score_for(max_live_hangups: float) -> float:
    """The lowest MACHINE threshold whose people-called-MACHINE rate stays <= the target."""
    best = math.inf
    for rate, score in MODEL["curve"]:
        if rate <= max_live_hangups:
            best = min(best, float(score))
    return best


BIN_HZ = 8000.0 / FRAME
WINDOW = np.hanning(FRAME)


def tone_peaks(x: np.ndarray, bin_min: int, bin_max: int, min_ratio: float) -> np.ndarray:
    """Per row of float frames: the spectral peak bin when the frame is a narrow-band tone.

    Hann-windowed FFT; a tone puts almost all its energy in the peak bin and its two
    neighbours. Returns the bin, or -1 when the peak is outside ``[bin_min, bin_max]`` or holds
    less than ``min_ratio`` of the energy.
    """
    spec = np.fft.rfft(x * WINDOW, axis=1)
    power = spec.real ** 2 + spec.imag ** 2
    total = power.sum(axis=1)
    peak = power.argmax(axis=1)
    c = np.clip(peak, 1, FRAME // 2 - 1)
    rows = np.arange(len(peak))
    band = power[rows, c - 1] + power[rows, c] + power[rows, c + 1]
    ok = (peak >= bin_min) & (peak <= bin_max) & (band > total * min_ratio)
    return np.where(ok, peak, -1)


# Noise-floor smoothing (fixed; not worth a knob).
FLOOR_DOWN = 0.8
FLOOR_TRACK = 0.9
FLOOR_CREEP = 1.002


@dataclass
class AmdState:
    """Per-channel detector state as arrays of length ``capacity`` (mutated in place by step)."""

    params: AmdParams
    derived: Derived
    in_use: np.ndarray        # bool: slot holds a channel
    phase: np.ndarray         # int8: WAITING, SPEAKING, AWAIT_BEEP, DONE
    frames: np.ndarray        # int32: frames received since the answer
    floor: np.ndarray         # float64: noise-floor energy
    utt_start: np.ndarray     # int32 ms
    last_speech: np.ndarray   # int32 ms: end of the last speech frame
    sil_run: np.ndarray       # int32 ms of silence since the last speech frame
    seg_voiced: np.ndarray    # int32 ms of speech since the last word boundary
    words: np.ndarray         # int32
    prev_peak: np.ndarray     # int16: last frame's tone bin (-1: not a tone)
    prev_r0: np.ndarray       # float64
    prev_pre: np.ndarray      # bool: last frame passed the tone pre-filter
    prev_k1: np.ndarray       # float64
    tone_run: np.ndarray      # int32 frames
    prev_e: np.ndarray        # float64 last frame's pre-emphasised energy
    prev_e2: np.ndarray       # float64 the one before
    voiced_ms: np.ndarray     # int32 ms of speech in the first utterance
    pauses: np.ndarray        # int32 pauses >= pause_ms inside it
    lsum: np.ndarray          # float64 sum of log2 frame energy over its speech frames
    lsq: np.ndarray           # float64 sum of squares of the same
    rsum: np.ndarray          # float64 sum of the prediction residual
    ksum: np.ndarray          # float64 sum of k1
    lpeak: np.ndarray         # float64 loudest speech frame (log2 energy)
    lema: np.ndarray          # float64 recent speech level (log2, moving average)
    score: np.ndarray         # float64 the model's score at the last frame
    rule: np.ndarray          # int8 the rule that decided (RULES)
    feats: np.ndarray         # float64 [capacity, len(FEATURES)] at the decision
    verdict: np.ndarray       # int8: the channel's decision (NONE until decided)
    decided_ms: np.ndarray    # int32 ms after the answer (-1: not yet)
    beep_ms: np.ndarray       # int32 ms after the answer where the beep starts (-1: none)
    t_ms: int = 0             # the last tick's time

    @property
    def capacity(self) -> int:
        return int(self.in_use.shape[0])


_ARRAYS = {
    "in_use": (np.bool_, False), "phase": (np.int8, WAITING), "frames": (np.int32, 0),
    "floor": (np.float64, 0.0), "utt_start": (np.int32, 0), "last_speech": (np.int32, 0),
    "sil_run": (np.int32, 0), "seg_voiced": (np.int32, 0), "words": (np.int32, 0),
    "prev_peak": (np.int16, -1), "prev_r0": (np.float64, 0.0),
    "prev_pre": (np.bool_, False), "prev_k1": (np.float64, 0.0),
    "tone_run": (np.int32, 0), "prev_e": (np.float64, 0.0), "prev_e2": (np.float64, 0.0), "voiced_ms": (np.int32, 0), "pauses": (np.int32, 0),
    "lsum": (np.float64, 0.0), "lsq": (np.float64, 0.0), "rsum": (np.float64, 0.0), "ksum": (np.float64, 0.0),
    "lpeak": (np.float64, 0.0), "lema": (np.float64, 0.0), "score": (np.float64, 0.0), "rule": (np.int8, 0),
    "feats": (np.float64, 0.0), "verdict": (np.int8, NONE), "decided_ms": (np.int32, -1),
    "beep_ms": (np.int32, -1),
}


def _alloc(k: str, n: int) -> np.ndarray:
    t, v = _ARRAYS[k]
    return np.full((n, len(FEATURES)) if k == "feats" else n, v, dtype=t)


def new_state(capacity: int, params: AmdParams | None = None) -> AmdState:
    """An empty state with ``capacity`` free slots."""
    p = params or AmdParams()
    arrays = {k: _alloc(k, capacity) for k in _ARRAYS}
    return AmdState(params=p, derived=Derived.of(p), **arrays)


def add_channel(state: AmdState) -> int:
    """Take a free slot for a newly answered call (growing the arrays if full); its index."""
    free = np.flatnonzero(~state.in_use)
    if len(free) == 0:
        old = state.capacity
        new = max(8, old * 2)
        for k in _ARRAYS:
            arr = _alloc(k, new)
            arr[:old] = getattr(state, k)
            setattr(state, k, arr)
        slot = old
    else:
        slot = int(free[0])
    for k, (_, v) in _ARRAYS.items():
        getattr(state, k)[slot] = v
    state.in_use[slot] = True
    return slot


def reset_channels(state: AmdState, slots: np.ndarray) -> None:
    """Start fresh calls in the given slots at once (each slot now in use)."""
    for k, (_, v) in _ARRAYS.items():
        getattr(state, k)[slots] = v
    state.in_use[slots] = True


def remove_channel(state: AmdState, slot: int) -> None:
    """Free a slot (the call ended or was handed on)."""
    state.in_use[slot] = False
    state.phase[slot] = DONE


def step(state: AmdState, frames: np.ndarray, active_mask: np.ndarray | None,
         t_ms: int) -> tuple[AmdState, np.ndarray]:
    """Consume one 20 ms frame for every channel; return (state, verdicts).

    Args:
        state: from :func:`new_state`; updated in place and returned.
        frames: int16 array ``[capacity, 160]`` (rows of inactive slots are ignored).
        active_mask: bool ``[capacity]``: which slots received a frame this tick (None: all
            slots in use).
        t_ms: the tick's time (kept for the caller; decisions count each channel's own frames,
            so a late or lost frame does not shift them).

    Returns:
        ``verdicts``: int8 ``[capacity]`` — ``NONE`` or the verdict reached at this frame
        (``HUMAN``, ``MACHINE``, ``NOTSURE``, or ``BEEP`` after an earlier ``MACHINE``).
        ``state.decided_ms`` and ``state.beep_ms`` hold the times.
    """
    p = state.params
    d = state.derived
    live = state.in_use & (state.phase != DONE)
    if active_mask is not None:
        live &= active_mask
    state.t_ms = t_ms
    verdicts = np.zeros(state.capacity, dtype=np.int8)
    if not live.any():
        return state, verdicts
    # Every row is computed (no gathers); only live rows are written back. Rows of idle slots
    # may hold anything: every expression below stays finite.
    x = frames.astype(np.float64)
    # Exact integer-valued sums (|x| <= 32768, 160 terms: far below 2**53).
    r0 = np.vecdot(x, x)
    r1 = np.vecdot(x[:, 1:], x[:, :-1])
    r2 = np.vecdot(x[:, 2:], x[:, :-2])

    pos = r0 > 0.0
    r0s = np.where(pos, r0, 1.0)
    k1 = r1 / r0s
    k1r1 = k1 * r1
    e1 = r0 - k1r1
    e1pos = e1 > 0.0
    k2 = (r2 - k1r1) / np.where(e1pos, e1, 1.0)
    e2 = e1 * (1.0 - k2 * k2)
    resid = np.where(pos, np.where(e1pos, e2 / r0s, 0.0), 1.0)
    k1 = np.where(pos, k1, 0.0)

    phase = state.phase
    nfr = state.frames + 1
    el = nfr * FRAME_MS

    # Adaptive noise floor, on the pre-emphasised energy (low-frequency rumble does not count).
    e1f = r0 * d.pe_a + r1 * d.pe_b
    # Smoothed over the last three frames: babble's short peaks are not syllables.
    e = (e1f + state.prev_e + state.prev_e2) * (1.0 / 3.0) if p.vad_smooth else e1f
    e = np.where(nfr <= 2, e1f, e)
    old = state.floor
    below = e < old
    near = e < old * d.snr_ratio
    floor = np.where(below, old * FLOOR_DOWN + e * (1.0 - FLOOR_DOWN),
                     np.where(near, old * FLOOR_TRACK + e * (1.0 - FLOOR_TRACK),
                              old * FLOOR_CREEP))
    floor = np.where(nfr == 1, np.minimum(e, d.noise_init_max), floor)
    np.maximum(floor, d.noise_min, out=floor)
    thr = np.maximum(floor * d.snr_ratio, d.min_speech_energy)
    speech = (e > thr) & (resid < p.speech_max_resid)
    # Once someone has spoken, a frame far below their mean level is not their speech (noise
    # and babble after the words count as the silence that ends the utterance).
    mant, expo = np.frexp(np.maximum(e, 1.0))
    lvl = (expo - 1) + (mant * 2.0 - 1.0)
    heard = (phase == SPEAKING) & (state.voiced_ms > 0)
    mean_lvl = state.lsum / np.maximum(state.voiced_ms * (1.0 / FRAME_MS), 1.0)
    speech = speech & (~heard | (lvl > mean_lvl - d.rel_drop))
    quiet = ~speech

    # Segmentation: utterance start, silence run, words, pauses.
    waiting = phase == WAITING
    undecided0 = waiting | (phase == SPEAKING)
    start_now = speech & waiting
    utt_start = np.where(start_now, el - FRAME_MS, state.utt_start)
    last_speech = np.where(speech, el, state.last_speech)
    resumed = speech & (phase == SPEAKING) & (state.sil_run >= p.pause_ms)
    pauses = state.pauses + resumed
    sil_run = np.where(speech, 0, state.sil_run + FRAME_MS)
    seg_voiced = state.seg_voiced + speech * FRAME_MS
    boundary = quiet & (sil_run == p.word_gap_ms)
    words = state.words + (boundary & (seg_voiced >= p.min_word_ms))
    seg_voiced[boundary] = 0
    # A word still being spoken counts once it is long enough.
    words_now = words + (seg_voiced >= p.min_word_ms)
    phase = np.where(start_now, SPEAKING, phase)

    # The first utterance's level and spectral shape (speech frames while undecided). The level
    # is a piecewise-linear log2 from frexp: exact, so both implementations agree to the bit.
    acc = speech & undecided0
    voiced_ms = state.voiced_ms + acc * FRAME_MS
    lsum = np.where(acc, state.lsum + lvl, state.lsum)
    lsq = np.where(acc, state.lsq + lvl * lvl, state.lsq)
    rsum = np.where(acc, state.rsum + resid, state.rsum)
    ksum = np.where(acc, state.ksum + k1, state.ksum)
    lpeak = np.where(acc & (lvl > state.lpeak), lvl, state.lpeak)
    lema = np.where(acc, np.where(state.voiced_ms == 0, lvl, state.lema * 0.9 + lvl * 0.1), state.lema)
    feats = features(utt_start, last_speech, voiced_ms, words_now, pauses, lsum, lsq, rsum, ksum, lpeak, lema)
    score = model_score(feats, d)

    # Beep: a steady narrow-band tone (FFT only for the few candidate frames).
    pre = (r0 > d.beep_min_energy) & (resid < p.beep_max_resid) & (k1 > d.k1_min) & (k1 < d.k1_max)
    # A tone needs two such frames in a row at a steady level before the FFT looks at it.
    cand = (live & pre & state.prev_pre & (np.abs(k1 - state.prev_k1) < p.beep_k1_step)
            & (r0 < state.prev_r0 * 2.0) & (r0 * 2.0 > state.prev_r0))
    peak = np.full(state.capacity, -1, dtype=np.int16)
    ci = np.flatnonzero(cand)
    if len(ci):
        peak[ci] = tone_peaks(x[ci], d.bin_min, d.bin_max, p.beep_min_peak_ratio)
    tonal = peak >= 0
    prev_peak = state.prev_peak
    prev_r0 = state.prev_r0
    steady = (tonal & (prev_peak >= 0) & (np.abs(peak - prev_peak) <= 1)
              & (r0 < prev_r0 * 2.0) & (r0 * 2.0 > prev_r0))
    tone_run = np.where(steady, state.tone_run + 1, tonal.astype(np.int32))
    # The run's first frame was a candidate too (checked by the pre-filter only): count it.
    tone_start = el - (tone_run + 1) * FRAME_MS
    beep = tone_run >= d.beep_frames

    # Decisions (the first rule that holds, in this order, names the trace's rule).
    speaking = phase == SPEAKING
    long_utt = speaking & (last_speech - utt_start > p.max_human_utterance_ms)
    many_words = speaking & ~long_utt & (words_now >= p.machine_words)
    machine0 = long_utt | many_words
    short_done = speaking & ~machine0 & (sil_run >= p.after_silence_ms) & (score < d.wait_score)
    long_done = speaking & ~machine0 & ~short_done & (sil_run >= d.long_silence)
    by_score = long_done & (score >= d.machine_score)
    human = short_done | (long_done & ~by_score)
    undecided = waiting | speaking
    beep_m = beep & undecided & ~machine0 & ~human & ~by_score
    machine = machine0 | by_score | beep_m
    notsure = undecided & ~machine & ~human & (el >= p.total_analysis_ms)
    awaiting = phase == AWAIT_BEEP
    decided = human | machine | notsure
    rule = (long_utt * np.int8(3) + many_words * np.int8(4) + short_done * np.int8(1)
            + (long_done & ~by_score) * np.int8(2) + by_score * np.int8(6) + beep_m * np.int8(5)
            + notsure * np.int8(7))

    v = human * np.int8(HUMAN) + machine * np.int8(MACHINE) + notsure * np.int8(NOTSURE) \
        + (beep & awaiting) * np.int8(BEEP)
    new_phase = np.where(human | notsure | beep | (awaiting & (el >= p.beep_wait_ms)), DONE,
                         np.where(machine, AWAIT_BEEP, phase))

    w = live
    np.copyto(state.phase, new_phase, where=w, casting="unsafe")
    np.copyto(state.frames, nfr, where=w)
    np.copyto(state.floor, floor, where=w)
    np.copyto(state.utt_start, utt_start, where=w)
    np.copyto(state.last_speech, last_speech, where=w)
    np.copyto(state.sil_run, sil_run, where=w)
    np.copyto(state.seg_voiced, seg_voiced, where=w)
    np.copyto(state.words, words, where=w, casting="unsafe")
    np.copyto(state.pauses, pauses, where=w, casting="unsafe")
    np.copyto(state.prev_e2, state.prev_e, where=w)
    np.copyto(state.prev_e, e1f, where=w)
    np.copyto(state.voiced_ms, voiced_ms, where=w)
    np.copyto(state.lsum, lsum, where=w)
    np.copyto(state.lsq, lsq, where=w)
    np.copyto(state.rsum, rsum, where=w)
    np.copyto(state.ksum, ksum, where=w)
    np.copyto(state.lpeak, lpeak, where=w)
    np.copyto(state.lema, lema, where=w)
    np.copyto(state.prev_peak, peak, where=w)
    np.copyto(state.prev_r0, r0, where=w)
    np.copyto(state.prev_pre, pre, where=w)
    np.copyto(state.prev_k1, k1, where=w)
    np.copyto(state.tone_run, tone_run, where=w)
    dw = w & decided
    np.copyto(state.score, score, where=w & undecided)
    np.copyto(state.rule, rule, where=dw)
    np.copyto(state.feats, feats, where=dw[:, None])
    np.copyto(state.verdict, v, where=dw, casting="unsafe")
    np.copyto(state.decided_ms, el, where=dw)
    np.copyto(state.beep_ms, tone_start, where=w & beep)
    np.copyto(verdicts, v, where=w, casting="unsafe")
    return state, verdicts


def features(utt_start: Any, last_speech: Any, voiced_ms: Any, words: Any, pauses: Any, lsum: Any,
             lsq: Any, rsum: Any, ksum: Any, lpeak: Any, lema: Any) -> np.ndarray:
    """The FEATURES of the first utterance so far, one row per channel (arrays or scalars).

    Only element-wise IEEE arithmetic (no reductions, no transcendental functions): the
    vectorised step and the per-channel reference compute the same bits.
    """
    utt_ms = np.asarray(last_speech - utt_start, dtype=np.float64)
    n = np.maximum(np.asarray(voiced_ms, dtype=np.float64) / FRAME_MS, 1.0)
    mean = lsum / n
    var = np.maximum(lsq / n - mean * mean, 0.0)
    dur = np.maximum(utt_ms, float(FRAME_MS))
    words_f = np.asarray(words, dtype=np.float64)
    cols = (utt_ms / 1000.0, np.asarray(voiced_ms, dtype=np.float64) / dur, words_f,
            np.asarray(pauses, dtype=np.float64), np.sqrt(var), rsum / n, ksum / n,
            np.asarray(utt_start, dtype=np.float64) / 1000.0, lpeak - lema, words_f / (dur / 1000.0))
    return np.stack(np.broadcast_arrays(*cols), axis=-1)


def model_score(feats: np.ndarray, d: Derived) -> np.ndarray:
    """The model's score per row: the bias plus each depth-2 tree's leaf, summed tree by tree
    in order (comparisons and additions only: both implementations agree to the bit).

    A tree is ``(k, t, kl, tl, a, b, kr, tr, c, e)``: feature ``k`` <= ``t`` goes left, where
    feature ``kl`` <= ``tl`` gives ``a`` else ``b``; right: feature ``kr`` <= ``tr`` gives ``c``
    else ``e``.
    """
    z = np.full(feats.shape[:-1], d.bias)
    for k, t, kl, tl, a, b, kr, tr, c, e in d.trees:
        left = np.where(feats[..., int(kl)] <= tl, a, b)
        right = np.where(feats[..., int(kr)] <= tr, c, e)
        z = z + np.where(feats[..., int(k)] <= t, left, right)
    return z


@dataclass(frozen=True)
class Result:
    """One recording's outcome."""

    verdict: str                 # HUMAN | MACHINE | NOTSURE
    decided_at_ms: int
    beep_ms: int | None = None
    rule: str = ""               # the rule that decided (RULES)
    score: float | None = None   # the model's score when it decided
    features: tuple[tuple[str, float], ...] = ()  # FEATURES when it decided

    def explain(self) -> dict[str, Any]:
        """The decision trace: rule, score, thresholds and features (JSON-ready)."""
        return {"rule": self.rule, "score": self.score,
                "features": {k: round(v, 4) for k, v in self.features}}


def frames_of(pcm: np.ndarray) -> np.ndarray:
    """Cut int16 audio into ``[n, 160]`` frames (a short last frame is zero-padded)."""
    pcm = np.asarray(pcm, dtype=np.int16)
    n = -(-len(pcm) // FRAME)
    out = np.zeros((n, FRAME), dtype=np.int16)
    out.reshape(-1)[: len(pcm)] = pcm
    return out


def classify(recordings: list[np.ndarray], params: AmdParams | None = None,
             step_fn: Any = None, new_state_fn: Any = None) -> list[Result]:
    """Run recordings (int16 8 kHz) through the streaming detector, all channels at once.

    Each recording is fed 20 ms at a time; a channel whose audio ended before a verdict gets
    ``NOTSURE`` at its end. ``step_fn``/``new_state_fn`` select another implementation with
    the same interface (the reference loop).
    """
    step_fn = step_fn or step
    new_state_fn = new_state_fn or new_state
    n = len(recordings)
    chunks = [frames_of(r) for r in recordings]
    lengths = np.array([len(c) for c in chunks], dtype=np.int64)
    total = int(lengths.max(initial=0))
    st = new_state_fn(n, params)
    for _ in range(n):
        add_channel_any(st)
    flat = np.concatenate(chunks + [np.zeros((1, FRAME), dtype=np.int16)])
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    for t in range(total):
        active = lengths > t
        buf = flat[np.where(active, starts + t, len(flat) - 1)]
        st, _ = step_fn(st, buf, active, t * FRAME_MS)
        if not np.any(active & (np.asarray(_phase(st)) != DONE)):
            break
    out = []
    verdict, decided, beep, rule, score, feats = _results(st)
    for i in range(n):
        v = int(verdict[i])
        b = None if beep[i] < 0 else int(beep[i])
        if v == NONE:
            out.append(Result("NOTSURE", int(lengths[i]) * FRAME_MS, b, "audio_ended", float(score[i])))
        else:
            out.append(Result(VERDICT_NAMES[v], int(decided[i]), b, RULES[int(rule[i])], float(score[i]),
                              tuple(zip(FEATURES, (float(f) for f in feats[i])))))
    return out


def add_channel_any(st: Any) -> int:
    """``add_channel`` for either implementation's state."""
    if isinstance(st, AmdState):
        return add_channel(st)
    return int(st.add_channel())


def _phase(st: Any) -> Any:
    return st.phase if isinstance(st, AmdState) else [c.phase for c in st.channels]


def _results(st: Any) -> tuple[Any, ...]:
    if isinstance(st, AmdState):
        return st.verdict, st.decided_ms, st.beep_ms, st.rule, st.score, st.feats
    cs = st.channels
    return ([c.verdict for c in cs], [c.decided_ms for c in cs], [c.beep_ms for c in cs],
            [c.rule for c in cs], [c.score for c in cs], [c.feats for c in cs])
