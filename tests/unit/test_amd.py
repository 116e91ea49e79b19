"""The numpy answering-machine detector on generated speech, tones and silence."""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callcenter.cli import amd as amd_cli
from callcenter.features.amd import detector as amd
from callcenter.bench import amd_reference
from callcenter.features.amd.detector import AmdConfigError, AmdParams, classify
from tests import amd_corpus as corpus


def _hello() -> np.ndarray:
    if corpus.allison_available():
        return corpus.recorded("hello") * 0.8
    return corpus.synth("Hello?") * 3.0


def _greeting() -> np.ndarray:
    if corpus.allison_available():
        return np.concatenate([corpus.recorded("vm-intro"), corpus.silence(300),
                               corpus.recorded("vm-nobodyavail")])
    return np.concatenate([corpus.synth("You have reached the voicemail of Peter Brown."),
                           corpus.silence(300),
                           corpus.synth("Please leave a message after the tone.")]) * 3.0


@pytest.fixture(scope="session")
def small_corpus() -> list:
    """Twelve TRAIN-split recordings (half humans, half machines)."""
    return corpus.generate(corpus.TRAIN_SEED + 17, 12, "train")


def test_short_hello_then_silence_is_human_within_a_second() -> None:
    """A short "hello" and silence is HUMAN, decided < 1 s after the utterance ends."""
    clean = np.concatenate([corpus.silence(400), _hello(), corpus.silence(3000)])
    _, end = corpus.first_utterance(clean)
    (r,) = classify([corpus.to_pcm(clean, noise_rms=30)])
    assert r.verdict == "HUMAN"
    assert 0 < r.decided_at_ms - end <= 1000
    assert r.beep_ms is None


def test_long_greeting_is_machine_before_it_ends() -> None:
    """A long recorded greeting is MACHINE, decided while it is still playing."""
    greeting = _greeting()
    clean = np.concatenate([corpus.silence(300), greeting, corpus.silence(2000)])
    (r,) = classify([corpus.to_pcm(clean, noise_rms=30)])
    assert r.verdict == "MACHINE"
    assert r.decided_at_ms < 300 + len(greeting) / 8
    assert r.beep_ms is None


@pytest.mark.parametrize("freq", [440.0, 1000.0, 1400.0])
def test_beep_after_greeting_is_found_near_its_time(freq: float) -> None:
    """The beep after a greeting is reported within 60 ms of where it starts."""
    greeting = _greeting()
    head = np.concatenate([corpus.silence(200), greeting, corpus.silence(400)])
    clean = np.concatenate([head, corpus.tone(freq, 250, 5000), corpus.silence(1500)])
    (r,) = classify([corpus.to_pcm(clean, noise_rms=60, seed=int(freq))])
    assert r.verdict == "MACHINE"
    true_ms = len(head) * 1000 / 8000
    assert r.beep_ms is not None and abs(r.beep_ms - true_ms) <= 60


def test_beep_alone_is_machine() -> None:
    """A beep straight after the answer (a machine with no greeting) is MACHINE at the beep."""
    clean = np.concatenate([corpus.silence(500), corpus.tone(1000, 300), corpus.silence(2000)])
    (r,) = classify([corpus.to_pcm(clean)])
    assert r.verdict == "MACHINE"
    assert abs(r.beep_ms - 500) <= 40
    assert r.decided_at_ms < 900


def test_pure_silence_is_notsure_at_the_cap() -> None:
    """Silence (and faint noise) gives NOTSURE exactly at total_analysis_ms."""
    p = AmdParams()
    silent = np.zeros(8 * 8000, dtype=np.int16)
    noise = corpus.to_pcm(np.zeros(8 * 8000), noise_rms=40)
    for r in classify([silent, noise], p):
        assert r.verdict == "NOTSURE"
        assert r.decided_at_ms == p.total_analysis_ms


def test_corpus_humans_have_no_beep_and_labels_mostly_match(small_corpus: list) -> None:
    """On a small corpus: no beep in human calls, and at most one wrong verdict."""
    items = [i for i, _ in small_corpus]
    results = classify([a for _, a in small_corpus])
    wrong = sum(r.verdict != i.label.upper() for i, r in zip(items, results))
    assert wrong <= 1
    assert all(r.beep_ms is None for i, r in zip(items, results) if i.label == "human")


def test_vectorised_equals_reference_on_corpus(small_corpus: list) -> None:
    """The vectorised step and the per-channel loop give identical results on the corpus."""
    audio = [a for _, a in small_corpus]
    vec = classify(audio)
    ref = classify(audio, step_fn=amd_reference.step, new_state_fn=amd_reference.new_state)
    assert vec == ref


def test_inactive_channels_are_not_advanced() -> None:
    """A slot masked inactive keeps its state while others advance."""
    s = amd.new_state(2)
    amd.add_channel(s)
    amd.add_channel(s)
    frames = np.zeros((2, amd.FRAME), dtype=np.int16)
    for t in range(10):
        amd.step(s, frames, np.array([True, False]), t * 20)
    assert s.frames.tolist() == [10, 0]


def test_slots_are_reused_and_reset() -> None:
    """A removed slot is reused by the next call with fresh state; a full state grows."""
    s = amd.new_state(2)
    a, b = amd.add_channel(s), amd.add_channel(s)
    amd.step(s, np.full((2, amd.FRAME), 500, dtype=np.int16), None, 0)
    amd.remove_channel(s, a)
    assert amd.add_channel(s) == a
    assert s.frames[a] == 0 and s.frames[b] == 1
    assert amd.add_channel(s) == 2 and s.capacity >= 3


def test_params_from_mapping_names_the_key() -> None:
    """Bad AMD settings raise errors that name the dotted key."""
    assert AmdParams.from_mapping({"after_silence_ms": 800}).after_silence_ms == 800
    assert AmdParams.from_mapping(None) == AmdParams()
    with pytest.raises(AmdConfigError, match=r"^amd\.max_human_utterance_ms: must be > 0$"):
        AmdParams.from_mapping({"max_human_utterance_ms": 0})
    with pytest.raises(AmdConfigError, match=r"^amd\.colour: unknown key$"):
        AmdParams.from_mapping({"colour": 1})
    with pytest.raises(AmdConfigError, match=r"^amd\.min_speech_rms: must be a number$"):
        AmdParams.from_mapping({"min_speech_rms": "loud"})
    with pytest.raises(AmdConfigError, match=r"^amd\.after_silence_ms: must be an integer$"):
        AmdParams.from_mapping({"after_silence_ms": 700.5})
    with pytest.raises(AmdConfigError, match=r"^dialer\.amd\.beep_max_hz"):
        AmdParams.from_mapping({"beep_max_hz": 100.0}, prefix="dialer.amd")


@functools.lru_cache(maxsize=1)
def _clips() -> tuple[np.ndarray, ...]:
    hello = _hello()
    speech = corpus.synth("Please leave a message after the tone.") * 3.0
    return (
        corpus.to_pcm(np.concatenate([corpus.silence(300), hello, corpus.silence(1500)]), 20, 1),
        corpus.to_pcm(np.concatenate([speech, corpus.silence(300), corpus.tone(800, 300)]), 50, 2),
        corpus.to_pcm(np.concatenate([corpus.silence(200), corpus.tone(1200, 400)]), 10, 3),
        corpus.to_pcm(np.zeros(3000), 200, 4),
        corpus.to_pcm(np.concatenate([hello, corpus.silence(200), hello, corpus.silence(900)]), 5, 5),
    )


def _run(channels: list[tuple[int, int, float]], params: AmdParams) -> list[tuple]:
    """Run channels (clip, start tick, gain) together; per channel: events and final times."""
    clips = _clips()
    audio = [amd.frames_of(np.clip(clips[c].astype(np.float64) * g, -32768, 32767).astype(np.int16))
             for c, _, g in channels]
    starts = [s for _, s, _ in channels]
    n = len(channels)
    s = amd.new_state(n, params)
    for _ in range(n):
        amd.add_channel(s)
    events: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    end = max(st_ + len(a) for st_, a in zip(starts, audio))
    frames = np.zeros((n, amd.FRAME), dtype=np.int16)
    for t in range(end):
        active = np.array([st_ <= t < st_ + len(a) for st_, a in zip(starts, audio)])
        for i in np.flatnonzero(active):
            frames[i] = audio[i][t - starts[i]]
        _, v = amd.step(s, frames, active, t * 20)
        for i in np.flatnonzero(v):
            events[i].append((t - starts[i], int(v[i])))
    return [(tuple(events[i]), int(s.verdict[i]), int(s.decided_ms[i]), int(s.beep_ms[i]))
            for i in range(n)]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 40), st.sampled_from([0.3, 1.0, 2.0])),
                min_size=2, max_size=4))
def test_channels_together_equal_channels_alone(channels: list[tuple[int, int, float]]) -> None:
    """N channels stepped together (staggered starts) give each channel's verdicts alone."""
    params = AmdParams(total_analysis_ms=3000)
    together = _run(channels, params)
    alone = [_run([ch], params)[0] for ch in channels]
    assert together == alone


def test_cli_classify_json(tmp_path, capsys) -> None:
    """`amd classify --json` prints one JSON line per file with the streaming verdict."""
    import soundfile as sf
    clean = np.concatenate([corpus.silence(300), _hello(), corpus.silence(2500)])
    path = tmp_path / "hello.wav"
    sf.write(str(path), corpus.to_pcm(clean, 20), 8000, subtype="PCM_16")
    # The same audio at 16 kHz stereo is converted and gives the same verdict.
    path16 = tmp_path / "hello16.wav"
    up = np.repeat(corpus.to_pcm(clean, 20), 2)
    sf.write(str(path16), np.stack([up, up], axis=1), 16000, subtype="PCM_16")
    assert amd_cli.main(["classify", str(path), str(path16), "--json"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["file"] for x in lines] == [str(path), str(path16)]
    assert all(x["verdict"] == "HUMAN" and "beep_ms" not in x for x in lines)
    assert abs(lines[0]["decided_at_ms"] - lines[1]["decided_at_ms"]) <= 40


def test_cli_errors(tmp_path, capsys) -> None:
    """Bad arguments exit 2; an unreadable file exits 1 with a message naming it."""
    assert amd_cli.main([]) == 2
    assert amd_cli.main(["classify"]) == 2
    assert amd_cli.main(["classify", "--set", "nope=1", "x.wav"]) == 2
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio")
    assert amd_cli.main(["classify", str(bad)]) == 1
    assert "bad.wav" in capsys.readouterr().err


def test_corpus_is_deterministic() -> None:
    """The same seed gives the same recordings and labels."""
    a = corpus.generate(5, 4, "test")
    b = corpus.generate(5, 4, "test")
    assert [i for i, _ in a] == [i for i, _ in b]
    assert all(np.array_equal(x, y) for (_, x), (_, y) in zip(a, b))
