"""The broad AMD corpus, grouped validation, the model's operating points and the decision trace."""

from __future__ import annotations

import csv
import functools
import json
import os

import numpy as np
import pytest
import soundfile as sf

from callcenter.bench import amd_reference, amd_train
from callcenter.bench import amd_vs_app_amd as bench
from callcenter.cli import amd as amd_cli
from callcenter.features.amd import detector as amd
from callcenter.features.amd.detector import AmdConfigError, AmdParams, classify
from tests import amd_broad


@functools.lru_cache(maxsize=2)
def _corpus(split: str, count: int = 16) -> tuple:
    return tuple(amd_broad.generate(5, count, split))


def test_splits_hold_out_whole_voices_and_languages() -> None:
    """No voice is in both splits, and four languages appear only in the test split."""
    tr, te = amd_broad.SPLITS["train"], amd_broad.SPLITS["test"]
    assert not set(tr["recorded"] + tr["espeak"]) & set(te["recorded"] + te["espeak"])
    train_langs = {amd_broad._lang_of(v) for v in tr["espeak"]} | {
        lg for v in tr["recorded"] for lg, _, _ in amd_broad.RECORDED[v]}
    assert {"pt", "pl", "sv", "ru"}.isdisjoint(train_langs)


def test_generated_items_carry_their_groups_and_are_deterministic() -> None:
    """Every item names its voice, language, kind and impairment; the same seed gives the same audio."""
    items = _corpus("test")
    again = amd_broad.generate(5, 4, "test")
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(items[:4], again))
    test_voices = set(amd_broad.voices("test"))
    for it, audio in items:
        assert it.voice in test_voices and it.language and it.impairment
        assert it.kind in (amd_broad.HUMAN_KINDS if it.label == "human" else amd_broad.MACHINE_KINDS)
        assert audio.dtype == np.int16 and len(audio) >= 9 * 8000 - 160
        assert it.label == "machine" or 0 < it.first_utterance_end_ms < it.duration_ms


def test_recorded_prompt_packages_are_used_when_installed() -> None:
    """With the Debian prompt packages installed, a split draws on its recorded voices too."""
    if not amd_broad.recorded_available("june"):
        pytest.skip("asterisk-core-sounds-fr-wav is not installed (make sysdeps)")
    voices = {it.voice for it, _ in amd_broad.generate(9, 24, "test")}
    assert voices & set(amd_broad.SPLITS["test"]["recorded"])


def _fresh_synthesizers_installed() -> None:
    missing = [v for v in amd_broad.SPLITS["fresh"]["synth"] if not amd_broad.synth_available(v)]
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"fresh voices not installed: {missing}: `make sysdeps` installs flite, festival, festvox-*")
        pytest.skip(f"fresh voices not installed (make sysdeps): {missing}")


def _engine(voice: str) -> str:
    return "recorded" if voice in amd_broad.RECORDED else voice.split(":")[0] if ":" in voice else "espeak"


def test_fresh_split_holds_new_voices_synthesizers_and_languages() -> None:
    """The fresh split shares no voice with train or test; its espeak-ng languages are new, its other
    voices come from synthesizers (flite, festival) train and test never use, and every language it
    speaks has texts the voice can read."""
    _fresh_synthesizers_installed()
    old = [v for sp in ("train", "test") for v in amd_broad.SPLITS[sp]["recorded"] + amd_broad.SPLITS[sp]["espeak"]]
    fr = amd_broad.SPLITS["fresh"]
    fresh = fr["recorded"] + fr["espeak"] + fr["synth"]
    assert set(amd_broad.voices("fresh")) == set(fresh) and not set(fresh) & set(old)
    assert {_engine(v) for v in old} == {"recorded", "espeak"}
    assert {_engine(v) for v in fr["synth"]} == {"flite", "festival"} and not fr["recorded"]
    old_langs = {amd_broad._lang_of(v) for v in old if v not in amd_broad.RECORDED} | {
        lg for v in old if v in amd_broad.RECORDED for lg, _, _ in amd_broad.RECORDED[v]}
    new_langs = {amd_broad._lang_of(v) for v in fr["espeak"]}
    assert new_langs.isdisjoint(old_langs) and {"cs", "fi", "ca"} <= {amd_broad._lang_of(v) for v in fresh} - old_langs
    for v in fresh:
        texts = amd_broad.TEXTS[amd_broad._lang_of(v)]
        assert set(texts) == {"word", "short", "business", "name", "prompt", "machine", "leave"}
        if v.startswith("festival:"):
            enc = amd_broad.FESTIVAL[v.split(":")[1]][1]
            assert all(t.encode(enc) for ts in texts.values() for t in ts)


def test_fresh_items_carry_their_groups_and_are_deterministic(tmp_path, monkeypatch) -> None:
    """Fresh items name fresh voices (espeak-ng and flite/festival) and their languages; the same
    item twice is the same audio, also when every clip is synthesized anew (no random dither);
    room reverb occurs only there; the CLI writes the split."""
    _fresh_synthesizers_installed()
    items = amd_broad.generate(5, 16, "fresh")
    fresh = set(amd_broad.voices("fresh"))
    for it, audio in items:
        assert it.name.startswith("fresh-5-") and it.voice in fresh
        assert it.language == amd_broad._lang_of(it.voice) and it.impairment
        assert it.kind in (amd_broad.HUMAN_KINDS if it.label == "human" else amd_broad.MACHINE_KINDS)
        assert audio.dtype == np.int16 and len(audio) >= 9 * 8000 - 160 and np.abs(audio).max() > 500
        assert 0 <= it.speech_start_ms < it.first_utterance_end_ms < it.duration_ms
    assert {_engine(it.voice) for it, _ in items} == {"espeak", "flite", "festival"}
    assert any("reverb" in it.impairment for it, _ in items)
    assert not any("reverb" in it.impairment for it, _ in _corpus("test"))
    again = amd_broad.make_item(5, 3, "fresh")
    assert again[0] == items[3][0] and np.array_equal(again[1], items[3][1])
    from tests import amd_corpus
    monkeypatch.setattr(amd_corpus, "CACHE", tmp_path / "cache")
    monkeypatch.setattr(amd_broad, "CACHE", tmp_path / "cache")
    anew = amd_broad.make_item(5, 1, "fresh")
    assert any(tmp_path.glob("cache/synd-*.wav")) or any(tmp_path.glob("cache/esd-*.wav"))
    assert anew[0] == items[1][0] and np.array_equal(anew[1], items[1][1])
    with pytest.raises(ValueError, match="train, test or fresh"):
        amd_broad.generate(5, 1, "dev")
    assert amd_broad.main([str(tmp_path), "--split", "fresh", "--count", "2", "--seed", "5"]) == 0
    rows = list(csv.DictReader((tmp_path / "labels.csv").open()))
    assert [r["voice"] for r in rows] == [it.voice for it, _ in items[:2]]


def test_vectorised_equals_reference_on_the_broad_corpus() -> None:
    """Both implementations give identical verdicts, times, rules, scores and features, also where
    the model waits or decides by score (a low operating point makes it decide)."""
    audio = [a for _, a in _corpus("test")]
    for p in (AmdParams(), AmdParams(max_live_hangups=0.2)):
        vec = classify(audio, p)
        ref = classify(audio, p, step_fn=amd_reference.step, new_state_fn=amd_reference.new_state)
        assert vec == ref
    rules = {r.rule for r in classify(audio, AmdParams(max_live_hangups=0.2))}
    assert "short_utterance_then_silence" in rules and len(rules) >= 3


def test_operating_point_trades_people_for_machines() -> None:
    """A higher max_live_hangups never raises the MACHINE threshold, and a mistyped one names its key."""
    scores = [amd.Derived.of(AmdParams(max_live_hangups=r)).machine_score for r in (0.0, 0.02, 0.05, 0.2, 1.0)]
    assert scores == sorted(scores, reverse=True)
    assert scores[0] == float("inf") and scores[-1] < scores[1]
    with pytest.raises(AmdConfigError, match=r"^amd_profiles\.x\.max_live_hangups: must be between 0 and 1$"):
        AmdParams.from_mapping({"max_live_hangups": 1.5}, prefix="amd_profiles.x")
    with pytest.raises(AmdConfigError, match=r"^amd\.total_analysis_ms: must be > after_silence_ms"):
        AmdParams.from_mapping({"after_silence_ms": 9000})
    # A profile that only lengthens after_silence_ms (as before issue 18) stays valid.
    assert amd.Derived.of(AmdParams.from_mapping({"after_silence_ms": 1500})).long_silence == 1500


def test_tree_model_learns_a_band_that_no_linear_score_can() -> None:
    """The offline trainer's boosted trees learn "machine when the feature lies in a middle band"
    (a 1.5-3 s first utterance), scored by the detector's own model_score."""
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 6, (600, 3))
    y = ((x[:, 0] > 1.5) & (x[:, 0] < 3.0)).astype(float)
    bias, trees = amd_train.fit_trees(x, y)
    s = amd_train.scores((bias, trees), x)
    assert ((s > 0) == (y > 0)).mean() > 0.95
    assert {int(t[0]) for t in trees[:5]} == {0}  # the informative feature is the one split on
    # The shipped model has the layout model_score reads: 10 numbers per tree, valid indices.
    assert all(len(t) == 10 and {int(t[0]), int(t[2]), int(t[6])} <= set(range(len(amd.FEATURES)))
               for t in amd.MODEL["trees"])


def _write_corpus(tmp_path, items) -> None:
    amd_broad.write(tmp_path, list(items))


def test_bench_reads_any_labels_csv_and_reports_groups_and_curve(tmp_path) -> None:
    """`bench amd-vs-app-amd --corpus DIR --ours-only` reports the summary, every group and the curve."""
    _write_corpus(tmp_path, _corpus("test"))
    items, audio = bench.load_corpus(tmp_path)
    assert [it.label for it in items] == [it.label for it, _ in _corpus("test")]
    res = bench.run(items, audio, 1, ["language", "kind", "impairment"], ("",), with_app_amd=False)
    assert res["ours"]["files"] == 16
    assert set(res["ours_by_group"]["kind"]) == {it.kind for it, _ in _corpus("test")}
    curve = res["curve"]["ours"]
    assert curve[0]["max_live_hangups"] == 0.0
    lost = [c["humans_classified_machine_rate"] for c in curve]
    assert lost == sorted(lost)  # a looser operating point never loses fewer people
    md = bench.markdown(res)
    assert "| people called MACHINE |" in md and "| ours, max_live_hangups 0 |" in md


def test_labels_csv_errors_name_the_row_and_keep_files_inside(tmp_path) -> None:
    """A bad label, a missing column or a file outside DIR is refused with the row named."""
    sf.write(str(tmp_path / "a.wav"), np.zeros(800, dtype=np.int16), 8000, subtype="PCM_16")
    cases = [
        ("file,label\na.wav,human\n", "missing column"),
        ("file,label,first_utterance_end_s\na.wav,robot,1.0\n", r":2: label"),
        ("file,label,first_utterance_end_s\n../etc/passwd,human,1.0\n", r":2: file"),
        ("file,label,first_utterance_end_s\na.wav,human,soon\n", r":2: first_utterance_end_s"),
    ]
    for text, msg in cases:
        (tmp_path / "labels.csv").write_text(text)
        with pytest.raises(bench.CorpusError, match=msg):
            bench.read_labels(tmp_path)
    (tmp_path / "labels.csv").write_text("file,label,first_utterance_end_s,site\na.wav,human,0.5,lyon\n")
    (it,) = bench.read_labels(tmp_path)
    assert it.group("site") == "lyon" and it.first_utterance_end_ms == 500


def test_cli_explain_gives_the_rule_score_and_features(tmp_path, capsys) -> None:
    """`amd classify --explain --json` adds the rule that decided, the score and its thresholds."""
    it, audio = next((i, a) for i, a in _corpus("test") if i.label == "human")
    path = tmp_path / "x.wav"
    sf.write(str(path), audio, 8000, subtype="PCM_16")
    assert amd_cli.main(["classify", str(path), "--json", "--explain"]) == 0
    out = json.loads(capsys.readouterr().out)
    t = out["trace"]
    assert t["rule"] in amd.RULES.values() and set(t["features"]) == set(amd.FEATURES)
    assert t["wait_score"] == amd.MODEL["wait_score"]
    assert (t["score"] >= t["wait_score"]) == (t["rule"] != "short_utterance_then_silence") or out["verdict"] != "HUMAN"
    assert amd_cli.main(["classify", str(path), "--explain"]) == 0
    assert "rule: " in capsys.readouterr().out
