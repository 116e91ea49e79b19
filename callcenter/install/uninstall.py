"""``callcenter uninstall``: its entry in :data:`callcenter.cli.EXTENSIONS`."""

from callcenter.install.cli import main_uninstall as main

__all__ = ["main"]


if __name__ == "__main__":  # `python3 -m callcenter.install.uninstall` (make uninstall: no venv needed)
    import sys
    raise SystemExit(main(sys.argv[1:]))
