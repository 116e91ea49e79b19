"""Commands that bring the lab up take it down again (issue 12, fault 11).

These run in a lab of their own, beside the suite's: another cache folder (``<cache>-cleanup``,
its chroot copied from the suite's on first use, else built by debootstrap) and every port moved
by 300 more than the suite's, so stopping this lab never touches the one the other tests use.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from callcenter.lab.asterisk import Lab, cache_dir, shift_ports

from .conftest import IN_CI, PORT_OFFSET, second_lab

REPO = Path(__file__).resolve().parents[2]
OFFSET = PORT_OFFSET + 300
pytestmark = pytest.mark.timeout(400)  # the first use copies a chroot; each demo boots a lab


def _wait(predicate: Callable[[], bool], timeout: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def _alive(pid: int) -> bool:
    """Running (a zombie, exited but not yet reaped, does not count)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _children(pid: int) -> dict[int, str]:
    out = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                ppid = int(Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()[1])
                cmd = Path(f"/proc/{d}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                out[int(d)] = cmd
    return out


def _mounts(under: Path) -> list[str]:
    return [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()
            if line.split()[1].startswith(str(under))]


@pytest.fixture(scope="module")
def own_lab() -> tuple[Lab, dict[str, str]]:
    """A second lab (cache, chroot, ports) that is down when each test begins."""
    cache = Path(f"{cache_dir()}-cleanup")
    env = {**os.environ, "CALLCENTER_CACHE": str(cache), "CALLCENTER_LAB_PORT_OFFSET": str(OFFSET)}
    lab = second_lab("cleanup")
    try:
        lab.provision()
    except Exception as e:  # noqa: BLE001
        if IN_CI:
            pytest.fail(f"CI=true and no lab Asterisk: {e}")
        pytest.skip(f"no lab Asterisk: {e}")
    lab.down()
    yield lab, env
    lab.down()


def _assert_clean(lab: Lab, pids: dict[int, str]) -> None:
    assert _wait(lambda: not any(_alive(p) for p in pids), 5), \
        {p: c for p, c in pids.items() if _alive(p)}
    assert lab.pid() is None
    if lab.chroot:
        assert _mounts(lab.root) == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_demo_cleans_up_on_signal(own_lab: tuple[Lab, dict[str, str]], tmp_path: Path, sig: int) -> None:
    """SIGTERM/SIGHUP stop the demo within 20 s and leave no Asterisk, daemon, phone or mount."""
    lab, env = own_lab
    cfg = shift_ports(yaml.safe_load((REPO / "config/callcenter.yaml").read_text()), OFFSET)
    cfg["daemon"]["database"] = str(tmp_path / "demo.sqlite3")
    path = tmp_path / "demo.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "demo.out"
    with open(out, "wb") as f:
        demo = subprocess.Popen([sys.executable, "-m", "callcenter", "demo", "--config", str(path), "--agents", "2",
                                 "--duration", "300"], cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=f,
                                stderr=subprocess.STDOUT, start_new_session=True)
    pids: dict[int, str] = {}
    try:
        assert _wait(lambda: b"Ctrl-C to stop" in out.read_bytes() or demo.poll() is not None, 120, 0.25), \
            out.read_text()[-2000:]
        assert demo.poll() is None, out.read_text()[-2000:]
        pids.update(_children(demo.pid))
        ast = lab.pid()
        assert ast is not None
        pids[ast] = "asterisk"
        floor = [c for c in pids.values() if "callcenter.lab.floor" in c]
        assert len(floor) >= 5 and any(" run " in c for c in pids.values()), pids
        assert _mounts(lab.root) or not lab.chroot
        t0 = time.monotonic()
        demo.send_signal(sig)
        demo.wait(20)
        took = time.monotonic() - t0
        assert demo.returncode == 0, out.read_text()[-2000:]
        _assert_clean(lab, pids)
        # Phones exit on SIGTERM by themselves: the demo did not have to wait 10 s and SIGKILL them.
        assert took < 9, f"demo took {took:.1f} s to stop"
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
        for p in pids:  # what a failed clean-up left behind (these tests started them)
            if _alive(p) and p != lab.pid():
                os.kill(p, signal.SIGKILL)
        lab.down()


def test_bench_vs_app_queue_takes_the_lab_down(own_lab: tuple[Lab, dict[str, str]]) -> None:
    """bench vs-app-queue stops the Asterisk it started and unmounts /proc and /dev."""
    lab, env = own_lab
    bench = subprocess.Popen([sys.executable, "-m", "callcenter", "bench", "vs-app-queue", "--rounds", "1", "--json"],
                             cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        _, err = bench.communicate(timeout=180)
    except subprocess.TimeoutExpired:  # (its daemon too: these tests started it)
        for p in _children(bench.pid):
            os.kill(p, signal.SIGKILL)
        bench.kill()
        _, err = bench.communicate()
        lab.down()
        pytest.fail(f"bench vs-app-queue hung: {err[-2000:]}")
    assert bench.returncode == 0, err[-2000:]
    _assert_clean(lab, {})


def test_lab_session_keeps_a_lab_it_found_running(own_lab: tuple[Lab, dict[str, str]], tmp_path: Path) -> None:
    """Lab.session leaves a lab that was already up running, with the same Asterisk."""
    lab, _ = own_lab
    cfg = shift_ports(yaml.safe_load((REPO / "tests/asterisk/lab.yaml").read_text()), OFFSET)
    cfg["daemon"]["database"] = str(tmp_path / "x.sqlite3")
    path = tmp_path / "lab.yaml"
    path.write_text(yaml.safe_dump(cfg))
    try:
        lab.up(path)
        before = lab.pid()
        with lab.session(path):
            pass
        assert lab.pid() == before is not None
        with pytest.raises(KeyboardInterrupt):
            with lab.session(path):
                raise KeyboardInterrupt
        assert lab.pid() == before
    finally:
        lab.down()
    _assert_clean(lab, {})
