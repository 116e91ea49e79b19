"""Trim a recorded message's leading and trailing silence (numpy over 20 ms frames; blocking: run it
on a worker thread). Asterisk's Record() writes 16-bit mono WAV; the trimmed file replaces it
atomically, keeping its owner and mode (Asterisk plays it to the agent later)."""

from __future__ import annotations

import contextlib
import os
import wave
from pathlib import Path
from typing import NamedTuple

import numpy as np

__all__ = ["trim_silence", "Trimmed", "SILENCE_DBFS"]

SILENCE_DBFS = -45.0  # a 20 ms frame below this (re a full-scale sine) is silence
FRAME_S = 0.02
PAD_S = 0.2  # kept around the speech so the first and last syllables are not clipped


class Trimmed(NamedTuple):
    raw_s: float  # the recording as Asterisk wrote it
    kept_s: float  # what is left (0.0: silence only, the file left as it was)


def _frame_db(x: np.ndarray, n: int) -> np.ndarray:
    frames = x[: len(x) // n * n].reshape(-1, n)
    rms = np.sqrt(np.mean(frames ** 2, axis=1))
    return 20 * np.log10(np.maximum(rms / np.sqrt(0.5), 1e-9))


def trim_silence(path: str | Path, *, threshold_dbfs: float = SILENCE_DBFS, pad_s: float = PAD_S) -> Trimmed:
    """Cut the silence before the first and after the last non-silent frame of the WAV at ``path``
    (``pad_s`` kept each side); returns its length before and after (after: 0.0 when it held
    silence only; the file is then left as it was). ValueError for a file that is not 16-bit PCM WAV."""
    path = Path(path)
    with wave.open(str(path), "rb") as w:
        params = w.getparams()
        if params.sampwidth != 2:
            raise ValueError(f"{path.name}: {8 * params.sampwidth}-bit audio, expected 16-bit PCM")
        raw = w.readframes(params.nframes)
    ch, fs = params.nchannels, params.framerate
    pcm = np.frombuffer(raw, dtype="<i2").reshape(-1, ch)
    mono = pcm.astype(np.float64).mean(axis=1) / 32768.0
    n = max(1, int(fs * FRAME_S))
    loud = np.flatnonzero(_frame_db(mono, n) > threshold_dbfs)
    raw_s = len(pcm) / fs
    if len(loud) == 0:
        return Trimmed(raw_s, 0.0)
    pad = int(pad_s * fs)
    start = max(0, loud[0] * n - pad)
    end = min(len(pcm), (loud[-1] + 1) * n + pad)
    if start == 0 and end == len(pcm):
        return Trimmed(raw_s, raw_s)
    st = path.stat()
    tmp = path.with_name(path.name + ".trim.tmp")
    with wave.open(str(tmp), "wb") as out:
        out.setnchannels(ch)
        out.setsampwidth(2)
        out.setframerate(fs)
        out.writeframes(pcm[start:end].tobytes())
    os.chmod(tmp, st.st_mode & 0o7777)
    with contextlib.suppress(PermissionError):  # only root may give the file back to Asterisk's user
        os.chown(tmp, st.st_uid, st.st_gid)
    os.replace(tmp, path)
    return Trimmed(raw_s, (end - start) / fs)
