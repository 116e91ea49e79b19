"""The dialer simulator: determinism, accounting identities, compliance, scenario validation, CLI."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callcenter.cli import dialer as dialer_cli
from callcenter.features.dialer.sim import (
    Scenario,
    ScenarioError,
    _Sim,
    load_scenario,
    parse_scenario,
    simulate,
)

ROOT = Path(__file__).resolve().parents[2]
SHORT = Scenario(seed=3, duration_s=1800.0, agents=10)


def test_deterministic_per_seed() -> None:
    """The same scenario and seed give the identical result; another seed differs."""
    a = simulate(SHORT)
    assert simulate(SHORT) == a
    assert simulate(replace(SHORT, seed=4)) != a


@pytest.mark.parametrize("mode", ["predictive", "progressive", "preview"])
def test_accounting_identities(mode: str) -> None:
    """dialed = sum of outcomes (lines given up while ringing included); abandoned = no-agent drops + estimated AMD false positives."""
    r = simulate(replace(SHORT, mode=mode))
    assert r["dialed"] == r["human_answers"] + r["machine_answers"] + r["busy"] + r["no_answer"] + r["released"]
    assert r["dialed"] > 0
    assert r["abandoned"] == pytest.approx(r["abandoned_no_agent"] + r["abandoned_amd_false_positive_est"], abs=1e-2)
    assert r["abandon_rate"] == pytest.approx(r["abandoned"] / r["human_answers"], abs=1e-5)
    # every live person is connected, dropped after 2 s, or hung up on by AMD
    assert r["human_answers"] == (r["connected_humans"] + r["abandoned_no_agent"]
                                  + r["abandoned_amd_false_positive_actual"])
    # every machine is detected, connected to an agent, or dropped with no agent
    assert r["machine_answers"] == r["machines_detected"] + r["connected_machines"] + r["dropped_machines"]
    assert 0.0 <= r["agent_occupancy"] <= 1.0
    assert r["idle_share"] == pytest.approx(1.0 - r["agent_occupancy"], abs=1e-5)


def test_amd_false_positives_are_counted_as_abandoned() -> None:
    """With AMD false positives of 2% (trusted under a 3% limit) abandons include them."""
    r = simulate(replace(SHORT, mode="progressive", amd_false_positive=0.02, seed=11))
    assert r["amd_trusted"]
    assert r["abandoned_no_agent"] == 0
    assert r["abandoned_amd_false_positive_actual"] > 0
    assert r["abandoned"] > 0


def test_short_predictive_run_keeps_abandon_rate_under_limit() -> None:
    """A 2-hour predictive run of 20 agents stays within its 3% abandon limit and beats progressive idle."""
    sc = Scenario(seed=5, duration_s=7200.0, agents=20)
    p = simulate(sc)
    g = simulate(replace(sc, mode="progressive"))
    assert p["abandon_rate"] <= 0.03
    assert p["idle_share"] < g["idle_share"]


def test_untrusted_amd_routes_machines_to_agents_and_hangs_up_no_person() -> None:
    """AMD FP 5% > 3% limit: no person is hung up on by AMD; machines reach agents."""
    r = simulate(replace(SHORT, amd_false_positive=0.05))
    assert r["amd_trusted"] is False and r["amd_untrusted_at_s"] == 0.0
    assert r["abandoned_amd_false_positive_actual"] == 0 and r["machines_detected"] == 0
    assert r["connected_machines"] > 0
    assert r["abandon_rate"] <= 0.03


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(agents=st.integers(1, 12), answer=st.floats(0.02, 0.6), machine=st.floats(0.0, 0.3),
       busy=st.floats(0.0, 0.1), aht=st.floats(20, 400), cv=st.floats(0.0, 1.5),
       wrap=st.floats(0, 30), ring=st.floats(1, 30), fp=st.floats(0, 0.1),
       seed=st.integers(0, 1000))
def test_progressive_never_drops_a_call(agents: int, answer: float, machine: float, busy: float,
                                        aht: float, cv: float, wrap: float, ring: float, fp: float,
                                        seed: int) -> None:
    """Progressive has a free agent for every line: nobody waits past 2 s, so drops are 0."""
    sc = Scenario(seed=seed, duration_s=900.0, agents=agents, answer_prob=answer, machine_prob=machine,
                  busy_prob=busy, aht_s=aht, aht_cv=cv, wrap_s=wrap, ring_s=ring,
                  amd_false_positive=fp, mode="progressive")
    r = simulate(sc)
    assert r["abandoned_no_agent"] == 0 and r["dropped_machines"] == 0
    assert r["dialed"] == r["human_answers"] + r["machine_answers"] + r["busy"] + r["no_answer"] + r["released"]
    assert 0.0 <= r["agent_occupancy"] <= 1.0
    # abandoned is exactly the estimated AMD false positives while AMD was trusted
    assert r["abandoned"] == pytest.approx(r["abandoned_amd_false_positive_est"], abs=1e-2)


def test_pacer_learns_a_call_length_only_when_the_call_ends() -> None:
    """No peeking: calls that have not ended teach the pacer nothing about talk time."""
    late: list = []

    class Probe(_Sim):
        def decide(self) -> None:
            if 550.0 < self.now < 600.0:
                late.append((self.c["connected_humans"], self.est.talk[0], self.inputs().aht_mean_s))
            super().decide()

    Probe(replace(SHORT, duration_s=600.0, aht_s=5000.0, aht_cv=0.1, answer_prob=0.5, machine_prob=0.0)).run()
    connected, learnt, aht = late[-1]
    assert connected > 0 and learnt == 0
    assert aht == pytest.approx(5000.0)  # still the prior


def test_pacer_inputs_are_what_a_live_dialer_knows() -> None:
    """Mid-run inputs: per-line AMD ages, a learnt ring-time CDF, machine handling time."""
    seen: list = []

    class Probe(_Sim):
        def decide(self) -> None:
            if 600.0 < self.now and len(seen) < 50:
                seen.append(self.inputs())
            super().decide()

    Probe(replace(SHORT, duration_s=900.0)).run()
    assert seen
    for inp in seen:
        assert len(inp.amd_elapsed) == inp.amd_pending
        assert all(0.0 <= e <= SHORT.amd_s for e in inp.amd_elapsed)
        cdf = inp.ring_cdf
        assert cdf[0] == 0.0 and all(b >= a for a, b in zip(cdf, cdf[1:])) and cdf[-1] == pytest.approx(1.0)
        assert len(cdf) == int(SHORT.no_answer_s) + 1
        assert inp.machine_handle_s > 0


def test_unknown_key_is_an_error_naming_the_key() -> None:
    """An unknown scenario key is refused by name."""
    with pytest.raises(ScenarioError) as e:
        parse_scenario({"agents": 3, "agentz": 4})
    assert any(p.startswith("agentz: unknown key") for p in e.value.problems)


@pytest.mark.parametrize("data,needle", [
    ({"agents": 0}, "agents: 0 out of range"),
    ({"agents": 2.5}, "agents: expected an integer"),
    ({"answer_prob": "high"}, "answer_prob: expected a number"),
    ({"mode": "turbo"}, "mode: unknown value 'turbo'"),
    ({"no_answer_s": 10}, "no_answer_s: 10 out of range"),
    ({"answer_prob": 0.7, "machine_prob": 0.4}, "answer_prob: answer_prob + machine_prob + busy_prob"),
])
def test_bad_values_name_their_key(data: dict, needle: str) -> None:
    """Each invalid value is reported with its key path."""
    with pytest.raises(ScenarioError) as e:
        parse_scenario(data)
    assert any(needle in p for p in e.value.problems), e.value.problems


def test_example_scenario_loads() -> None:
    """The shipped example scenario validates to the issue's settings."""
    sc = load_scenario(ROOT / "config" / "dialer-scenario.example.yaml")
    assert (sc.seed, sc.agents, sc.aht_s, sc.answer_prob, sc.max_abandon_rate, sc.mode) == \
        (7, 20, 180.0, 0.35, 0.03, "predictive")


def test_cli_simulate_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`callcenter dialer simulate --scenario F --json` prints one JSON object."""
    f = tmp_path / "s.yaml"
    f.write_text("seed: 2\nduration_s: 600\nagents: 4\nmode: progressive\n")
    assert dialer_cli.main(["simulate", "--scenario", str(f), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["mode"] == "progressive" and out["agents"] == 4 and "abandon_rate" in out


def test_cli_bad_scenario_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A bad scenario exits 2 and names the key on stderr."""
    f = tmp_path / "s.yaml"
    f.write_text("seed: 2\nwrapup: 3\n")
    assert dialer_cli.main(["simulate", "--scenario", str(f), "--json"]) == 2
    assert "wrapup: unknown key" in capsys.readouterr().err
    f.write_text("seed: [1\n")
    assert dialer_cli.main(["simulate", "--scenario", str(f)]) == 2
    assert "bad YAML" in capsys.readouterr().err
