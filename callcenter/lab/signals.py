"""Stopping the lab's commands the same way whatever stops them.

``make demo``, the benchmarks and ``lab up`` clean up in ``finally`` blocks and context managers
(children terminated, the lab Asterisk stopped, ``/proc`` and ``/dev`` unmounted). Ctrl-C reaches
them as :class:`KeyboardInterrupt`; :func:`interrupt_on_stop_signals` makes ``SIGTERM`` (``kill``,
systemd, a CI runner) and ``SIGHUP`` (the terminal window closed) take that same path. The first
stop signal raises; any later one, and any that arrives while a :func:`shielded` clean-up runs, is
only remembered, so a second Ctrl-C never leaves half a clean-up behind.

The simulated phones (pjsua2) must not have an exception raised at an arbitrary point (a pj
``Call`` kept alive by a traceback aborts the process in ``libDestroy``): they use
:func:`stop_flag`, which only sets a flag their loop reads.

:func:`stop_children` terminates child processes: ``SIGTERM`` to each one's process group, then
``SIGKILL`` after a timeout, and reaps them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterable, Iterator

__all__ = ["STOP_SIGNALS", "interrupt_on_stop_signals", "shielded", "stop_flag", "stop_children"]

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class _State:
    def __init__(self) -> None:
        self.installed = 0  # nesting depth of interrupt_on_stop_signals
        self.raised = False  # a stop signal has already been turned into KeyboardInterrupt
        self.shield = 0  # nesting depth of shielded()
        self.pending: int | None = None  # a signal that arrived while shielded


_state = _State()


def _on_stop_signal(signum: int, frame: object) -> None:
    if _state.raised:
        return  # the clean-up it started is running: do not interrupt it
    if _state.shield:
        _state.pending = signum
        return
    _state.raised = True
    raise KeyboardInterrupt(signal.Signals(signum).name)


@contextlib.contextmanager
def interrupt_on_stop_signals() -> Iterator[None]:
    """Inside: SIGINT, SIGTERM and SIGHUP raise :class:`KeyboardInterrupt` once (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    if not _state.installed:
        _state.raised, _state.pending = False, None
    _state.installed += 1
    for s in STOP_SIGNALS:
        signal.signal(s, _on_stop_signal)
    try:
        yield
    finally:
        _state.installed -= 1
        for s, h in saved.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """A clean-up no stop signal interrupts; a signal that arrived meanwhile is raised after it
    (unless an exception is already on its way out)."""
    _state.shield += 1
    try:
        yield
    finally:
        _state.shield -= 1
    if not _state.shield and _state.pending is not None and _state.installed and not _state.raised:
        signum, _state.pending = _state.pending, None
        _state.raised = True
        raise KeyboardInterrupt(signal.Signals(signum).name)


def stop_flag() -> threading.Event:
    """For processes that poll: SIGINT, SIGTERM and SIGHUP only set the returned event."""
    stop = threading.Event()

    def on_signal(*_: object) -> None:
        stop.set()

    for s in STOP_SIGNALS:
        signal.signal(s, on_signal)
    return stop


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    """``sig`` to the child's process group when it leads one (``start_new_session``), else to it."""
    if proc.poll() is not None:
        return
    try:
        if os.getpgid(proc.pid) == proc.pid:
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
    except (ProcessLookupError, PermissionError):
        pass


def stop_children(procs: Iterable[subprocess.Popen[bytes] | None], timeout: float = 10.0) -> None:
    """Terminate children: SIGTERM to all at once, SIGKILL to those still alive after ``timeout``
    seconds, and reap every one (no zombies)."""
    alive = [p for p in procs if p is not None]
    with shielded():
        for p in alive:
            _signal_group(p, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for p in alive:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(max(0.0, deadline - time.monotonic()))
        for p in alive:
            if p.poll() is None:
                _signal_group(p, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    p.wait(5)
