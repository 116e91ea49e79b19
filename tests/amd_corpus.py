"""A labelled answering-machine-detection corpus, generated deterministically from a seed.

Each item is 8 kHz mono int16 audio of what an outbound call hears after the answer:

- ``human``: 0-2 s of silence, a short greeting ("Hello?", "Yeah, hello", ...; sometimes a
  longer one such as "Good morning, Smith residence"), silence, and often a second "hello?"
  2-3 s later, as people do when nobody speaks.
- ``machine``: 0-2 s of silence, a 3-12 s greeting of phrases joined by short pauses, then
  (usually) a beep of 200-500 ms at 1000 Hz or 440-1400 Hz, then silence.

Speech comes from Asterisk's recorded prompts (``en_US_f_Allison``, real speech) and from
espeak-ng voices (resampled to 8 kHz and band-passed 300-3400 Hz by sox). Noise, gain, answer
delay, speaker and phrases vary. Labels are measured on the audio as placed (before noise):
``first_utterance_end_ms`` is where the first run of speech ends (the first silence of
>= 500 ms ends it); ``beep_ms`` is where the beep starts (null when none).

Two splits: ``train`` (the detector's parameters were tuned on it) and ``test`` — a different
seed *and* disjoint espeak voices, phrases and recorded prompts, so it was not tuned on.

Run: ``python -m tests.amd_corpus OUTDIR --seed N --count N [--split train|test]`` writes
``*.wav`` and ``manifest.json`` (never commit the audio).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

RATE = 8000
FRAME = 160
ALLISON = Path(os.environ.get("CALLCENTER_CACHE", str(Path.home() / ".cache" / "callcenter"))) \
    / "asterisk-root/usr/share/asterisk/sounds/en_US_f_Allison"
CACHE = Path(tempfile.gettempdir()) / "callcenter-amd-corpus-cache"

TRAIN_SEED = 1001
TEST_SEED = 2002

# Disjoint material per split.
_VOICES = {
    "train": ["en+m3", "en+f2", "en-us+m1", "en-gb+f3", "en+m5", "en-us+f1"],
    "test": ["en-us+m7", "en+f4", "en-gb-scotland+m2", "en-029+f5", "en-gb-x-rp+m4", "en-us+klatt"],
}
_HUMAN_SHORT = {
    "train": ["Hello?", "Yeah, hello", "Hi this is Bob", "Hello, who is this?", "Yes?", "Hello"],
    "test": ["Hi", "Hello, speaking", "Yeah?", "This is Anna", "Hello there", "Mm, hello?"],
}
_HUMAN_LONG = {
    "train": ["Good morning, Smith residence", "Hello, Miller speaking, how can I help"],
    "test": ["Good afternoon, Jones residence", "Hi, Carla here, who's calling"],
}
_HELLO_AGAIN = {"train": ["Hello?", "Hello? Anyone there?"], "test": ["Hello?", "Who is it?"]}
_MACHINE = {
    "train": [
        "Hi, you have reached the Miller family.",
        "We can't come to the phone right now.",
        "Please leave a message after the tone and we will call you back.",
        "Thank you for calling.",
        "You have reached the voicemail of Peter Brown.",
        "I am away from my desk at the moment.",
        "Leave your name and number and I will get back to you as soon as possible.",
    ],
    "test": [
        "Hello, this is Sarah, sorry I missed your call.",
        "Nobody is available to take your call.",
        "Please record your message at the beep.",
        "The person you are calling is not available.",
        "Hey, it's Mike. I'm probably driving or in a meeting.",
        "Text me or leave a short message, thanks.",
        "Our office hours are nine to five, Monday to Friday.",
    ],
}
_ALLISON_HUMAN = {"train": ["hello"], "test": ["hello"]}
_ALLISON_MACHINE_FIXED = {
    "train": ["vm-intro", "vm-nobodyavail"],
    "test": ["vm-isunavail", "vm-leavemsg", "vm-theperson"],
}


@dataclass(frozen=True)
class Item:
    """One labelled recording."""

    name: str
    label: str  # "human" | "machine"
    first_utterance_end_ms: int
    speech_start_ms: int
    beep_ms: int | None
    source: str  # "allison" | "espeak"
    duration_ms: int


def _allison_available() -> bool:
    return (ALLISON / "hello.wav").exists()


def _read_wav(path: Path) -> np.ndarray:
    import soundfile as sf
    data, rate = sf.read(str(path), dtype="int16", always_2d=True)
    if rate != RATE:
        raise ValueError(f"{path}: {rate} Hz, expected {RATE}")
    return data[:, 0].astype(np.float64)


def _trim(x: np.ndarray) -> np.ndarray:
    """Cut leading/trailing near-silence (frames below 2% of the loudest frame)."""
    n = len(x) // FRAME
    if n == 0:
        return x
    rms = np.sqrt((x[: n * FRAME].reshape(n, FRAME) ** 2).mean(axis=1))
    on = np.nonzero(rms > 0.02 * rms.max())[0]
    if len(on) == 0:
        return x
    return x[on[0] * FRAME: (on[-1] + 1) * FRAME]


def _espeak(text: str, voice: str, speed: int, dither: bool = True) -> np.ndarray:
    """espeak-ng -> sox (8 kHz mono 16-bit, band-pass 300-3400 Hz), cached on disk. sox's dither
    is random, so a clip made anew differs slightly from the cached one; ``dither=False`` (sox -D,
    its own cache entries) makes the same clip on every machine."""
    key = hashlib.sha1(f"{voice}|{speed}|{text}".encode()).hexdigest()[:16]
    CACHE.mkdir(parents=True, exist_ok=True)
    pre = "es" if dither else "esd"
    out = CACHE / f"{pre}-{key}.wav"
    if not out.exists():
        raw = CACHE / f"{pre}-{key}.{os.getpid()}.raw.wav"  # per process: parallel generators
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(raw), text],
                       check=True, capture_output=True)
        tmp = CACHE / f"{pre}-{key}.{os.getpid()}.wav"
        subprocess.run(["sox", *([] if dither else ["-D"]), str(raw), "-r", str(RATE), "-c", "1", "-b", "16",
                        str(tmp), "sinc", "300-3400"], check=True, capture_output=True)
        os.replace(tmp, out)
        raw.unlink(missing_ok=True)
    return _trim(_read_wav(out))


def _allison(name: str) -> np.ndarray:
    return _trim(_read_wav(ALLISON / f"{name}.wav"))


def _allison_machine_prompts(split: str) -> list[str]:
    """Recorded prompts of 1.2-6 s, split by a stable hash so train and test are disjoint."""
    if not _allison_available():
        return []
    import soundfile as sf
    names = []
    for p in sorted(ALLISON.glob("*.wav")):
        n = p.stem
        if "beep" in n or "tone" in n or n.startswith(("tt-", "demo-", "conf-adminmenu")):
            continue
        d = sf.info(str(p)).duration
        if 1.2 <= d <= 6.0:
            names.append(n)
    fixed_all = set(_ALLISON_MACHINE_FIXED["train"]) | set(_ALLISON_MACHINE_FIXED["test"])
    want = 0 if split == "train" else 1
    pool = [n for n in names if n not in fixed_all and zlib.crc32(n.encode()) % 2 == want]
    return [n for n in _ALLISON_MACHINE_FIXED[split] if n in names] + pool


def _active_frames(x: np.ndarray) -> np.ndarray:
    n = len(x) // FRAME
    rms = np.sqrt((x[: n * FRAME].reshape(n, FRAME) ** 2).mean(axis=1))
    return rms > max(60.0, 0.03 * float(rms.max(initial=0.0)))


def _first_utterance(clean: np.ndarray, gap_ms: int = 500) -> tuple[int, int]:
    """(start_ms, end_ms) of the first run of speech; a silence of >= gap_ms ends it."""
    act = _active_frames(clean)
    idx = np.nonzero(act)[0]
    if len(idx) == 0:
        return 0, 0
    start = int(idx[0])
    end = start
    gap = gap_ms // 20
    for i in idx[1:]:
        if i - end > gap:
            break
        end = int(i)
    return start * 20, (end + 1) * 20


def _beep(rng: np.random.Generator) -> np.ndarray:
    freq = 1000.0 if rng.random() < 0.4 else float(rng.uniform(440, 1400))
    dur = float(rng.uniform(0.2, 0.5))
    t = np.arange(int(dur * RATE)) / RATE
    tone = np.sin(2 * np.pi * freq * t)
    ramp = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.005)
    return tone * ramp * float(rng.uniform(3000, 9000))


def _silence(ms: float) -> np.ndarray:
    return np.zeros(int(ms * RATE / 1000))


def _speech(rng: np.random.Generator, split: str, kind: str, use_allison: bool) -> np.ndarray:
    voice = _VOICES[split][int(rng.integers(len(_VOICES[split])))]
    speed = int(rng.integers(140, 190))
    if kind == "short":
        if use_allison:
            return _allison(_ALLISON_HUMAN[split][int(rng.integers(len(_ALLISON_HUMAN[split])))])
        phrases = _HUMAN_SHORT[split]
    elif kind == "long":
        phrases = _HUMAN_LONG[split]
    else:
        phrases = _HELLO_AGAIN[split]
    return _espeak(phrases[int(rng.integers(len(phrases)))], voice, speed)


def _normalise(x: np.ndarray, rms_target: float) -> np.ndarray:
    act = _active_frames(x)
    n = len(act)
    frames = x[: n * FRAME].reshape(n, FRAME)
    rms = float(np.sqrt((frames[act] ** 2).mean())) if act.any() else 1.0
    return x * (rms_target / max(rms, 1e-9))


def _make(rng: np.random.Generator, split: str, label: str, allison: bool) -> tuple[np.ndarray, int | None, str]:
    """(clean signal, beep start sample or None, source)."""
    level = float(rng.uniform(800, 4000))
    parts: list[np.ndarray] = [_silence(rng.uniform(0, 2000))]
    use_allison = allison and rng.random() < 0.35
    beep_at = None
    if label == "human":
        kind = "long" if rng.random() < 0.15 else "short"
        use_allison = use_allison and kind == "short"
        parts.append(_normalise(_speech(rng, split, kind, use_allison), level))
        parts.append(_silence(rng.uniform(2000, 3000)))
        if rng.random() < 0.6:
            parts.append(_normalise(_speech(rng, split, "again", False), level))
            parts.append(_silence(rng.uniform(500, 1500)))
    else:
        target = float(rng.uniform(3.0, 12.0)) * RATE
        prompts = _allison_machine_prompts(split) if use_allison else []
        voice = _VOICES[split][int(rng.integers(len(_VOICES[split])))]
        speed = int(rng.integers(150, 200))
        pieces: list[np.ndarray] = []
        total = 0
        while total < target:
            if prompts:
                seg = _allison(prompts[int(rng.integers(len(prompts)))])
            else:
                phr = _MACHINE[split]
                seg = _espeak(phr[int(rng.integers(len(phr)))], voice, speed)
            if pieces:
                gap = _silence(rng.uniform(120, 450))
                pieces.append(gap)
                total += len(gap)
            pieces.append(seg)
            total += len(seg)
        greeting = _normalise(np.concatenate(pieces), level)
        parts.append(greeting)
        if rng.random() < 0.7:
            parts.append(_silence(rng.uniform(200, 1000)))
            beep_at = sum(len(p) for p in parts)
            parts.append(_beep(rng))
        parts.append(_silence(rng.uniform(1500, 3000)))
    return np.concatenate(parts), beep_at, "allison" if use_allison else "espeak"


def _noise(rng: np.random.Generator, n: int) -> np.ndarray:
    """Stationary line noise: white, or low-passed ('pink-ish'), at 0-250 rms."""
    level = float(rng.choice([0.0, rng.uniform(5, 60), rng.uniform(60, 250)]))
    w = rng.standard_normal(n + 1)
    if rng.random() < 0.5:
        w = w[1:] + 0.9 * w[:-1]
        w /= np.sqrt(1 + 0.81)
    else:
        w = w[1:]
    return w * level


def generate(seed: int, count: int, split: str = "train") -> list[tuple[Item, np.ndarray]]:
    """``count`` labelled recordings (about half humans), deterministic from ``seed``."""
    if split not in _VOICES:
        raise ValueError(f"split must be train or test, not {split!r}")
    allison = _allison_available()
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        label = "human" if i % 2 == 0 else "machine"
        clean, beep_at, source = _make(rng, split, label, allison)
        noisy = clean + _noise(rng, len(clean))
        audio = np.clip(np.round(noisy), -32768, 32767).astype(np.int16)
        speech_only = clean.copy()
        if beep_at is not None:
            speech_only[beep_at:] = 0.0
        start, end = _first_utterance(speech_only)
        item = Item(name=f"{split}-{seed}-{i:04d}-{label}", label=label,
                    first_utterance_end_ms=end, speech_start_ms=start,
                    beep_ms=None if beep_at is None else round(beep_at * 1000 / RATE),
                    source=source, duration_ms=int(len(audio) * 1000 / RATE))
        out.append((item, audio))
    return out


def write(outdir: Path, items: list[tuple[Item, np.ndarray]]) -> Path:
    """Write ``NAME.wav`` files and ``manifest.json``; return the manifest's path."""
    import soundfile as sf
    outdir.mkdir(parents=True, exist_ok=True)
    manifest = []
    for item, audio in items:
        sf.write(str(outdir / f"{item.name}.wav"), audio, RATE, subtype="PCM_16")
        manifest.append({"file": f"{item.name}.wav", **asdict(item)})
    path = outdir / "manifest.json"
    path.write_text(json.dumps({"allison": _allison_available(), "items": manifest}, indent=1))
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.amd_corpus", description=__doc__.split("\n")[0])
    p.add_argument("outdir")
    p.add_argument("--seed", type=int, default=TRAIN_SEED)
    p.add_argument("--count", type=int, default=200)
    p.add_argument("--split", choices=["train", "test"], default="train")
    a = p.parse_args(argv)
    if not _allison_available():
        print(f"amd_corpus: {ALLISON} missing; espeak-only corpus", file=sys.stderr)
    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        print("amd_corpus: espeak-ng and sox are required", file=sys.stderr)
        return 2
    path = write(Path(a.outdir), generate(a.seed, a.count, a.split))
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


# Small public helpers for tests that build their own recordings.
def allison_available() -> bool:
    """Whether Asterisk's recorded prompts are on this host."""
    return _allison_available()


def recorded(name: str) -> np.ndarray:
    """An Asterisk prompt (8 kHz float samples, leading/trailing silence trimmed)."""
    return _allison(name)


def synth(text: str, voice: str = "en+m3", speed: int = 160) -> np.ndarray:
    """espeak-ng speech at 8 kHz, band-passed, trimmed (float samples)."""
    return _espeak(text, voice, speed)


def first_utterance(clean: np.ndarray) -> tuple[int, int]:
    """(start_ms, end_ms) of the first utterance of a clean (noise-free) signal."""
    return _first_utterance(clean)


def tone(freq: float, ms: float, amplitude: float = 6000.0) -> np.ndarray:
    """A sine beep with 5 ms ramps (float samples)."""
    t = np.arange(int(ms * RATE / 1000)) / RATE
    ramp = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.005)
    return np.sin(2 * np.pi * freq * t) * ramp * amplitude


def silence(ms: float) -> np.ndarray:
    """Digital silence (float samples)."""
    return _silence(ms)


def to_pcm(x: np.ndarray, noise_rms: float = 0.0, seed: int = 0) -> np.ndarray:
    """Float samples (+ optional white noise) to int16."""
    if noise_rms:
        x = x + np.random.default_rng(seed).standard_normal(len(x)) * noise_rms
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)
