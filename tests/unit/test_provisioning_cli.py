"""``callcenter provisioning credentials`` and ``show`` on a config file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from callcenter import config as config_mod
from callcenter.cli import main as cli_main
from callcenter.features.provisioning import digest
from tests.unit.provisioning_conf import REALM, data


def _write(tmp_path: Path, d: dict[str, object]) -> Path:
    p = tmp_path / "callcenter.yaml"
    p.write_text(yaml.safe_dump(d))
    return p


def test_credentials_print_a_password_whose_ha1_goes_into_the_config(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """The printed HA1 is the digest of the printed password; put in the config, it loads; each run differs."""
    d = data(bind="192.0.2.10")
    path = _write(tmp_path, d)
    assert cli_main(["provisioning", "--config", str(path), "credentials", "2004", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["username"] == "000413000004"
    assert out["provisioning_ha1"] == digest.ha1("000413000004", REALM, out["password"])
    assert out["url"] == f"http://000413000004:{out['password']}@192.0.2.10:9190/"
    d["phones"]["2004"]["provisioning_ha1"] = out["provisioning_ha1"]
    assert config_mod.load(_write(tmp_path, d)).phones["2004"].provisioning_ha1 == out["provisioning_ha1"]
    assert cli_main(["provisioning", "--config", str(path), "credentials", "2004", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["password"] != out["password"]


def test_show_prints_the_phone_files_and_refuses_phones_without_mac(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """show prints a Yealink's two files; a phone without a MAC is an error (exit 2)."""
    path = _write(tmp_path, data())
    assert cli_main(["provisioning", "--config", str(path), "show", "2001"]) == 0
    text = capsys.readouterr().out
    assert "==> y000000000000.cfg <==" in text and "==> 805ec0000001.cfg <==" in text
    assert "account.1.user_name = 2001" in text
    assert cli_main(["provisioning", "--config", str(path), "show", "2005"]) == 2
