"""``callcenter bench NAME ...``: benchmarks, each measured as a ratio against a baseline in one run.

Each benchmark is a module ``callcenter.bench.<name with - as _>`` with ``main(argv) -> int``.
"""

from __future__ import annotations

import importlib
import sys


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: callcenter bench NAME [options]   (see README, 'Benchmarks')")
        return 0 if argv else 2
    name = argv[0].replace("-", "_")
    try:
        module = importlib.import_module(f"callcenter.bench.{name}")
    except ModuleNotFoundError:
        print(f"callcenter bench: unknown benchmark {argv[0]!r}", file=sys.stderr)
        return 2
    return int(module.main(argv[1:]) or 0)
