"""The lab's stop-signal helpers (issue 12, fault 11): SIGTERM and SIGHUP take Ctrl-C's path."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from callcenter.lab.signals import interrupt_on_stop_signals, shielded, stop_children


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_stop_signal_raises_keyboard_interrupt_once(sig: int) -> None:
    """The first stop signal raises KeyboardInterrupt; one during the clean-up does not."""
    cleaned = False
    with interrupt_on_stop_signals():
        with pytest.raises(KeyboardInterrupt):
            try:
                os.kill(os.getpid(), sig)
                time.sleep(5)  # interrupted at once
            finally:
                os.kill(os.getpid(), signal.SIGTERM)  # a second signal must not cut the clean-up short
                cleaned = True
    assert cleaned
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_shielded_defers_a_signal_until_the_clean_up_is_done() -> None:
    """A signal during a shielded block is raised only after the block."""
    done = False
    with interrupt_on_stop_signals():
        with pytest.raises(KeyboardInterrupt):
            with shielded():
                os.kill(os.getpid(), signal.SIGHUP)
                time.sleep(0.05)
                done = True
    assert done


def test_stop_children_kills_a_child_that_ignores_sigterm() -> None:
    """A child ignoring SIGTERM is killed after the timeout and reaped."""
    child = subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, "
                              "signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"],
                             stdout=subprocess.PIPE, start_new_session=True)
    assert child.stdout is not None and child.stdout.readline() == b"ready\n"
    t0 = time.monotonic()
    stop_children([child], timeout=0.5)
    assert child.returncode == -signal.SIGKILL
    assert time.monotonic() - t0 < 5
