"""The one "load the config or exit 2" of every command."""

from __future__ import annotations

import sys
from pathlib import Path

from callcenter import config as config_mod

__all__ = ["EXIT_CONFIG", "load_or_exit"]

EXIT_CONFIG = 2


def load_or_exit(path: str | Path) -> config_mod.Config:
    """The config at ``path``; on an error, each problem (with its key path) on stderr and exit 2."""
    try:
        return config_mod.load(path)
    except config_mod.ConfigError as e:
        for line in e.problems:
            print(f"config error: {line}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None
