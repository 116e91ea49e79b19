"""``callcenter uninstall``: its entry in :data:`callcenter.cli.EXTENSIONS`."""

from callcenter.install.cli import main_uninstall as main

__all__ = ["main"]
