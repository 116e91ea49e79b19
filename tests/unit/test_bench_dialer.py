"""The dialer benchmark: its scenarios stay the issue's, and one or several seeds report alike."""

from __future__ import annotations

import json

import pytest

from callcenter.bench import dialer as bench


def test_scenarios_are_the_issues() -> None:
    """Small teams, low answer rates, long calls, a 1 % limit, AMD FPs over the limit; seed 7."""
    assert bench.BASE.seed == 7 and bench.BASE.agents == 20 and bench.BASE.max_abandon_rate == 0.03
    assert bench.SCENARIOS == {
        "base-20-agents": {},
        "small-team-3-agents": {"agents": 3},
        "low-answer-10pct": {"answer_prob": 0.10},
        "long-calls-9min": {"aht_s": 540.0},
        "limit-1pct": {"max_abandon_rate": 0.01},
        "amd-fp-breaks-limit": {"amd_false_positive": 0.05},
    }
    assert bench.TARGET_GEOMEAN == 0.5


def test_one_seed_report() -> None:
    """A short run reports every scenario with both modes, the idle ratio and the summary."""
    out = bench.run(duration_s=300.0, seed=3, workers=1)
    assert set(out["scenarios"]) == set(bench.SCENARIOS)
    s = out["scenarios"]["base-20-agents"]
    assert {"abandon_rate", "idle_share"} <= s["predictive"].keys() and s["limit"] == 0.03
    assert {"all_within_limit", "idle_never_worse", "geomean_idle_ratio"} <= out["summary"].keys()


def test_several_seeds_report(capsys: pytest.CaptureFixture[str]) -> None:
    """``--seeds 1,2`` reports each seed's scenarios and an overall verdict."""
    code = bench.main(["--seeds", "1,2", "--hours", "0.05", "--workers", "1", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert out["seeds"] == [1, 2] and set(out["per_seed"]) == {"1", "2"}
    one = out["per_seed"]["1"]
    assert set(one["scenarios"]) == set(bench.SCENARIOS)
    assert {"predictive_abandon_rate", "limit", "idle_ratio"} <= one["scenarios"]["limit-1pct"].keys()
    s = out["summary"]
    assert set(s["geomean_idle_ratio_by_seed"]) == {"1", "2"}
    assert code == (0 if (s["all_within_limit"] and s["idle_never_worse"]) else 1)


def test_bad_seeds_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    """A seed list that is not integers is refused with exit code 2."""
    assert bench.main(["--seeds", "1,x"]) == 2
    assert "--seeds" in capsys.readouterr().err
