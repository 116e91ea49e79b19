"""The one "load the config or exit 2" helper of the command line."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from callcenter.cli._config import EXIT_CONFIG, load_or_exit


def test_load_or_exit_returns_a_valid_config():
    """A valid file gives its Config."""
    cfg = load_or_exit("tests/asterisk/lab.yaml")
    assert "sales" in cfg.queues


def test_load_or_exit_prints_key_paths_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """A broken config prints each problem with its key path on stderr and exits with status 2."""
    data = yaml.safe_load(Path("tests/asterisk/lab.yaml").read_text())
    data["queues"]["sales"]["members"] = ["nobody"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(SystemExit) as exc:
        load_or_exit(bad)
    assert exc.value.code == EXIT_CONFIG == 2
    err = capsys.readouterr().err
    assert err.startswith("config error: ") and "sales" in err
