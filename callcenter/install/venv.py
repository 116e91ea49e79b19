"""The daemon's virtualenv in ``/opt/callcenter/.venv`` (standard library only: ``make install``
runs this with the host's ``python3`` before anything of ours is installed).

``pip install`` runs only when the source differs from what was installed last (a SHA-256 of the
package files kept in the venv), so a second install changes nothing. pip builds from a copy of
the source, so the operator's checkout gets no ``build/`` or ``.egg-info``.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["VENV", "source_digest", "ensure", "main"]

VENV = "/opt/callcenter/.venv"
STAMP = ".callcenter-source.sha256"
_TOP = ("pyproject.toml", "README.md")


def _source_files(source: Path) -> list[Path]:
    files = [source / n for n in _TOP if (source / n).is_file()]
    files += sorted(p for p in (source / "callcenter").rglob("*")
                    if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")
    return files


def source_digest(source: Path) -> str:
    """SHA-256 over the relative path and bytes of every file pip would package."""
    h = hashlib.sha256()
    for p in _source_files(source):
        h.update(str(p.relative_to(source)).encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def ensure(source: Path, venv: Path = Path(VENV), python: str = sys.executable or "python3") -> list[str]:
    """Create ``venv`` if missing and install ``source`` into it if it changed; return the changes."""
    changes: list[str] = []
    if not (venv / "bin" / "python").exists():
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
        changes.append(f"created {venv}")
    digest = source_digest(source)
    stamp = venv / STAMP
    if stamp.exists() and stamp.read_text().strip() == digest and (venv / "bin" / "callcenter").exists():
        return changes
    with tempfile.TemporaryDirectory(prefix="callcenter-src-") as tmp:
        for p in _source_files(source):
            dst = Path(tmp) / p.relative_to(source)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(p, dst)
        subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check",
                        "--upgrade", tmp], check=True)
    stamp.write_text(digest + "\n")
    changes.append(f"installed callcenter from {source} into {venv} ({digest[:12]})")
    return changes


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python3 -m callcenter.install.venv", description=__doc__)
    p.add_argument("--source", default=".", help="the checkout (default: .)")
    p.add_argument("--venv", default=VENV)
    a = p.parse_args(argv)
    for line in ensure(Path(a.source).resolve(), Path(a.venv)) or ["venv: up to date"]:
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
