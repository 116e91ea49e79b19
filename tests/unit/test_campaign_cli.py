"""`callcenter campaign`: the campaign life cycle as a table, CSV import errors by line, DNC."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml


def _cc(cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "callcenter", "campaign", "--config", str(cfg), *args],
                          capture_output=True, text=True)


def test_campaign_life_cycle_and_import(tmp_path: Path):
    """create -> import (bad rows named by line) -> start -> pause -> start -> stop; illegal moves refused."""
    data = yaml.safe_load(Path("tests/asterisk/lab.yaml").read_text())
    data["daemon"]["database"] = str(tmp_path / "cc.sqlite3")
    cfg = tmp_path / "cc.yaml"
    cfg.write_text(yaml.safe_dump(data))
    leads = tmp_path / "leads.csv"
    leads.write_text("phone,name\n+1 212 555 0100,Ann\nnot a number,Bob\n+1 310 555 0101,Cy\n")

    assert _cc(cfg, "create", "spring", "--region", "US").returncode == 0
    r = _cc(cfg, "import", "spring", str(leads))
    assert r.returncode == 3 and "2 leads imported, 1 rejected" in r.stdout
    assert f"{leads}:3:" in r.stderr
    assert _cc(cfg, "pause", "spring").returncode == 1  # created -> pause is not in the table
    for op, state in (("start", "running"), ("pause", "paused"), ("start", "running"), ("stop", "stopped")):
        r = _cc(cfg, op, "spring")
        assert r.returncode == 0 and r.stdout.strip().endswith(state), r
    r = _cc(cfg, "start", "spring")
    assert r.returncode == 1 and "is stopped: cannot start" in r.stderr
    st = json.loads(_cc(cfg, "status", "spring", "--json").stdout)
    assert st == {"campaign": "spring", "state": "stopped", "leads": {"new": 2}}
    r = _cc(cfg, "dnc", "add", "(212) 555-0100")
    assert r.returncode == 0 and "+12125550100" in r.stdout
    assert _cc(cfg, "status", "nope").returncode == 1


def _lab_cfg(tmp_path: Path) -> Path:
    data = yaml.safe_load(Path("tests/asterisk/lab.yaml").read_text())
    data["daemon"]["database"] = str(tmp_path / "cc.sqlite3")
    cfg = tmp_path / "cc.yaml"
    cfg.write_text(yaml.safe_dump(data))
    return cfg


def test_create_with_queue_trunk_and_mode_stores_dialling_settings(tmp_path: Path):
    """create --queue --trunk --mode: validated against the config and kept in the store the daemon dials from."""
    from callcenter.features.dialer.store import LeadStore
    cfg = _lab_cfg(tmp_path)
    r = _cc(cfg, "create", "autumn", "--queue", "sales", "--trunk", "sim", "--mode", "progressive")
    assert r.returncode == 0, r.stderr
    with LeadStore(tmp_path / "cc.sqlite3") as store:
        row = next(c for c in store.campaign_rows() if c.name == "autumn")
    assert row.defined_in == "cli" and row.settings["queue"] == "sales" and row.settings["mode"] == "progressive"


@pytest.mark.parametrize(("args", "message"), [
    (("--queue", "nope", "--trunk", "sim"), "no queue 'nope'"),
    (("--queue", "sales", "--trunk", "nope"), "no trunk 'nope'"),
    (("--queue", "sales"), "--queue and --trunk go together"),
    (("--queue", "sales", "--trunk", "sim", "--mode", "wild"), "invalid choice"),
])
def test_create_refuses_settings_it_could_not_dial(tmp_path: Path, args, message):
    """An unknown queue or trunk, half the pair, or a bad mode is refused with the reason."""
    r = _cc(_lab_cfg(tmp_path), "create", "bad", *args)
    assert r.returncode != 0 and message in r.stderr


def test_create_refuses_a_name_the_yaml_defines(tmp_path: Path):
    """A YAML campaign is edited in the YAML, not shadowed by a CLI one."""
    r = _cc(_lab_cfg(tmp_path), "create", "outbound", "--queue", "sales", "--trunk", "sim")
    assert r.returncode == 1 and "defined in the config" in r.stderr
