"""systemd integration: ``sd_notify`` (READY, STATUS, STOPPING) and a watchdog fed only while the
daemon vouches for every part of itself."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable

import structlog

__all__ = ["sd_notify", "start_watchdog"]

log = structlog.get_logger("callcenter.systemd")


def sd_notify(message: str) -> bool:
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return False
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        try:
            s.connect(addr)
            s.sendall(message.encode())
        except OSError:
            return False
    return True


def start_watchdog(alive: Callable[[], bool], describe: Callable[[], dict[str, object]]) -> bool:
    """Ping ``WATCHDOG=1`` every half ``WATCHDOG_USEC`` — only while the loop turns (a timer) and
    ``alive()`` holds; otherwise log what is down and let systemd restart the daemon."""
    usec = os.environ.get("WATCHDOG_USEC")
    if not usec or not (usec.isascii() and usec.isdigit()):
        return False
    interval = int(usec) / 2e6
    loop = asyncio.get_running_loop()

    def ping() -> None:
        if alive():
            sd_notify("WATCHDOG=1")
        else:
            log.error("watchdog.withheld", **describe())
        loop.call_later(interval, ping)

    ping()
    return True
