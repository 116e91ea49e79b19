"""The install under a real systemd: a Debian container (the lab root plus systemd, booted with
``systemd-nspawn`` on its own loopback) with Debian's Asterisk as a service. ``make install``'s
two steps run inside it; the unit starts and reaches READY (AMI logged in and synced); a frozen
daemon (SIGSTOP) is restarted by the watchdog; the uninstall leaves the site's files as they were.

Notes for this machine: the host runs no systemd and has a hybrid cgroup tree, so the container
gets a unified one (``SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1``; Debian testing's systemd refuses
cgroup v1), and nspawn's scratch under /run/systemd/nspawn must be a tmpfs (it refuses to clean a
disk file system) — both set up inside a private mount namespace. The container has no network:
its pip installs from a wheelhouse the host downloads once from PyPI for the container's Python.
``WatchdogSec`` is lowered to 3 s by a drop-in so the hung-daemon case takes seconds, not 30 s.
The venv is kept between runs (restored before the install: the install then only checks it).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from callcenter.lab.asterisk import Lab, LabError, cache_dir
from tests.asterisk.conftest import IN_CI

SOURCE = Path(__file__).resolve().parents[2]
PACKAGES = "systemd,systemd-sysv,dbus,python3,python3-venv,procps,iproute2"


def _fail_or_skip(why: str) -> None:
    if IN_CI:
        pytest.fail(f"CI=true: {why}")
    pytest.skip(why)


def _run(cmd: list[str], timeout: float = 600, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)  # type: ignore[call-overload]


def systemd_root() -> Path:
    """The lab root (Debian testing with Asterisk) plus systemd and python3: built once, cached."""
    root = cache_dir() / "systemd-root"
    if (root / "usr/lib/systemd/systemd").exists() and (root / "usr/bin/python3").exists():
        return root
    lab = Lab.default()
    if not lab.chroot:
        _fail_or_skip("the host has its own Asterisk: no lab root to boot as a container")
    lab.provision()
    tmp = root.with_name("systemd-root.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    _run(["cp", "-a", "--one-file-system", str(lab.root), str(tmp)], check=True)
    shutil.rmtree(tmp / "run/asterisk", ignore_errors=True)
    apt = ("apt-get -o Acquire::Check-Valid-Until=false update -qq && DEBIAN_FRONTEND=noninteractive "
           f"apt-get install -y -qq --no-install-recommends {PACKAGES.replace(',', ' ')}")
    r = _run(["unshare", "--mount", "sh", "-c", f"mount --make-rprivate / && mount --bind /proc {tmp}/proc && "
              f"mount --bind /dev {tmp}/dev && chroot {tmp} sh -c '{apt}'"], timeout=1800)
    if r.returncode != 0:
        raise LabError(f"could not add systemd to the container root: {r.stdout[-600:]}{r.stderr[-600:]}")
    tmp.rename(root)
    return root


def wheelhouse(root: Path) -> Path:
    """The project's dependencies (and setuptools, to build it) as wheels for the container's Python."""
    ver = _run(["chroot", str(root), "python3", "-c", "import sys; print('%d%d' % sys.version_info[:2])"],
               check=True).stdout.strip()
    deps = tomllib.loads((SOURCE / "pyproject.toml").read_text())["project"]["dependencies"] + ["setuptools>=68"]
    key = hashlib.sha256(("\n".join(deps) + ver).encode()).hexdigest()[:12]
    out = cache_dir() / f"systemd-wheels-cp{ver}-{key}"
    if out.is_dir():
        return out
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    plats = [a for p in ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
                         "manylinux_2_5_x86_64", "manylinux1_x86_64", "any") for a in ("--platform", p)]
    _run([sys.executable, "-m", "pip", "download", "-q", "-d", str(tmp), "--only-binary=:all:", "--python-version",
          ver, "--implementation", "cp", "--abi", f"cp{ver}", "--abi", "abi3", "--abi", "none", *plats, *deps],
         check=True)
    tmp.rename(out)
    return out


def _comm(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


class Container:
    def __init__(self, root: Path, wheels: Path, log: Path) -> None:
        self.root, self.wheels, self.log = root, wheels, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.init = 0

    def boot(self) -> None:
        nspawn = (f"systemd-nspawn -q -D {self.root} --register=no --keep-unit -b --private-network "
                  f"--console=pipe -M cc-install-test --bind-ro={SOURCE}:/src --bind-ro={self.wheels}:/wheels")
        script = ("mount --make-rprivate / && mkdir -p /run/systemd/nspawn && "
                  f"mount -t tmpfs tmpfs /run/systemd/nspawn && exec {nspawn}")
        env = dict(os.environ, SYSTEMD_NSPAWN_UNIFIED_HIERARCHY="1")
        self.proc = subprocess.Popen(["unshare", "--mount", "sh", "-c", script], env=env, stdin=subprocess.DEVNULL,
                                     stdout=open(self.log, "wb"), stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not self.init:
            if self.proc.poll() is not None:
                raise AssertionError(f"nspawn exited {self.proc.returncode}: {self.log.read_text()[-1500:]}")
            for pid in _run(["pgrep", "-P", str(self.proc.pid)]).stdout.split():  # unshare execs nspawn
                if _comm(pid) == "systemd":
                    self.init = int(pid)
            time.sleep(0.1)
        assert self.init, self.log.read_text()[-1500:]
        state = ""
        while time.monotonic() < deadline + 60 and not state:  # until PID 1 answers on its bus
            state = self.sh("systemctl is-system-running --wait", timeout=120).stdout.strip()
            time.sleep(0.2)
        assert state in ("running", "degraded"), state + self.sh("systemctl --failed --no-pager").stdout

    def sh(self, command: str, timeout: float = 120, check: bool = False) -> subprocess.CompletedProcess[str]:
        r = _run(["nsenter", "-t", str(self.init), "-a", "sh", "-c", command], timeout=timeout)
        if check:
            assert r.returncode == 0, f"{command}: {r.stdout[-2000:]}{r.stderr[-2000:]}"
        return r

    def show(self, unit: str) -> dict[str, str]:
        out = self.sh(f"systemctl show -p ActiveState -p SubState -p StatusText -p MainPID -p NRestarts {unit}").stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def halt(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)  # to nspawn: it halts the container cleanly
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def container(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    if os.geteuid() != 0:
        _fail_or_skip("booting a container needs root")
    if shutil.which("systemd-nspawn") is None:
        _fail_or_skip("no systemd-nspawn (Debian package systemd-container; `make sysdeps` installs it)")
    try:
        root = systemd_root()
        wheels = wheelhouse(root)
    except (LabError, OSError, subprocess.SubprocessError) as e:
        _fail_or_skip(f"no container root: {e}")
    for d in ("src", "wheels"):
        (root / d).mkdir(exist_ok=True)
    c = Container(root, wheels, tmp_path_factory.mktemp("nspawn") / "console.log")
    try:
        c.boot()
        yield c
    finally:
        c.halt()


@pytest.mark.timeout(900)  # the first run builds the container root and the venv (minutes, once)
def test_install_ready_watchdog_restart_and_uninstall(container: Container) -> None:
    """make install's steps in a booted Debian: READY after AMI sync, a SIGSTOPped daemon restarted by the
    watchdog, a second install changes nothing, the uninstall restores the site's Asterisk files."""
    c = container
    # A clean host: whatever an interrupted run left goes; then the kept venv, if any, comes back.
    c.sh("cd /src && PYTHONPATH=/src python3 -m callcenter.install.uninstall --purge", check=True)
    kept, venv = cache_dir() / "systemd-venv", c.root / "opt/callcenter/.venv"
    if kept.is_dir():
        venv.parent.mkdir(parents=True, exist_ok=True)
        _run(["cp", "-a", str(kept), str(venv)], check=True)
    orig = c.sh("sha256sum /etc/asterisk/pjsip.conf /etc/asterisk/extensions.conf /etc/asterisk/manager.conf").stdout
    # make install = these two steps (the venv needs no network here: pip finds the wheels in /wheels)
    c.sh("cd /src && PIP_NO_INDEX=1 PIP_FIND_LINKS=/wheels PYTHONPATH=/src python3 -m callcenter.install.venv "
         "--source /src", timeout=600, check=True)
    out = c.sh("/opt/callcenter/.venv/bin/callcenter install --source /src", timeout=300, check=True).stdout
    assert "created system user callcenter" in out and "created /etc/asterisk/callcenter/" in out, out
    assert "Next steps:" in out, out
    again = c.sh("/opt/callcenter/.venv/bin/callcenter install --source /src", timeout=300, check=True).stdout
    assert "install: nothing to change" in again, again
    assert c.sh("stat -c '%a %U:%G' /etc/callcenter/conf.d/00-install.yaml").stdout.strip() == "640 root:callcenter"
    try:
        c.sh("mkdir -p /etc/systemd/system/callcenter.service.d && printf '[Service]\\nWatchdogSec=3\\n' > "
             "/etc/systemd/system/callcenter.service.d/test-watchdog.conf && systemctl daemon-reload", check=True)
        c.sh("systemctl restart asterisk && asterisk -rx 'core waitfullybooted'", check=True)
        r = c.sh("systemctl start callcenter", timeout=120)  # Type=notify: returns once READY=1 came
        st = c.show("callcenter")
        journal = c.sh("journalctl -u callcenter --no-pager -n 40").stdout
        assert r.returncode == 0 and st["ActiveState"] == "active", f"{st}\n{r.stderr}\n{journal}"
        assert st["StatusText"] == "AMI logged in and synced", st
        pid, restarts = st["MainPID"], int(st["NRestarts"])

        c.sh(f"kill -STOP {pid}", check=True)  # a hung daemon: the loop no longer feeds the watchdog
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            st = c.show("callcenter")
            if int(st["NRestarts"]) > restarts and st["ActiveState"] == "active" and st["MainPID"] not in ("0", pid):
                break
            time.sleep(0.5)
        journal = c.sh("journalctl -u callcenter --no-pager -n 40").stdout
        assert int(st["NRestarts"]) == restarts + 1 and st["ActiveState"] == "active", f"{st}\n{journal}"
        assert "Watchdog timeout" in journal, journal
        assert st["StatusText"] == "AMI logged in and synced", st
        # The container's newer systemd scores the running unit too.
        sec = c.sh("systemd-analyze security callcenter.service").stdout
        m = re.search(r"Overall exposure level for callcenter\.service: ([0-9.]+)", sec)
        assert m and float(m.group(1)) <= 2.0, sec
    finally:
        c.sh("systemctl stop callcenter; rm -rf /etc/systemd/system/callcenter.service.d")
        # Spare the next run a 40 s pip install: keep a copy of the venv.
        if not kept.exists() and (c.root / "opt/callcenter/.venv/bin/callcenter").exists():
            _run(["cp", "-a", str(c.root / "opt/callcenter/.venv"), str(kept)], check=True)

    out = c.sh("cd /src && PYTHONPATH=/src python3 -m callcenter.install.uninstall --purge", check=True).stdout
    assert "removed system user callcenter" in out, out
    assert c.sh("ls /etc/callcenter /etc/systemd/system/callcenter.service 2>&1").stdout.count("No such file") == 2
    # /opt/callcenter itself was made by this test (to restore the kept venv), not by the install
    assert c.sh("ls -A /opt/callcenter").stdout == "" if kept.is_dir() else "No such" in c.sh("ls /opt/callcenter 2>&1").stdout
    assert c.sh("id callcenter").returncode != 0
    assert c.sh("sha256sum /etc/asterisk/pjsip.conf /etc/asterisk/extensions.conf "
                "/etc/asterisk/manager.conf").stdout == orig
