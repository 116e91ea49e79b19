"""The production install against Debian's own Asterisk: its stock /etc/asterisk, extended by
``callcenter install`` (the include block and fragments), loads in a real Asterisk 22 with our
endpoints, dialplan, globals, applicationmap and AMI user (channelvars in the site's [general]).

The Asterisk runs in private mount, PID and network namespaces (its own loopback, so no port is
shared with any lab) over a copy of the lab root's pristine Debian configuration."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from callcenter.install.cli import main_install
from callcenter.lab.asterisk import Lab, LabError
from tests.asterisk.conftest import IN_CI

SOURCE = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(600)  # the lab root may have to be built first (about a minute)


def _lab_root() -> Path:
    lab = Lab.default()
    try:
        lab.provision()
    except (LabError, OSError, subprocess.SubprocessError) as e:
        if IN_CI:
            pytest.fail(f"CI=true and no lab Asterisk: {e}")
        pytest.skip(f"no lab Asterisk: {e}")
    if os.geteuid() != 0:
        if IN_CI:
            pytest.fail("CI=true: namespaces and mounts need root")
        pytest.skip("namespaces and mounts need root")
    return lab.root


class NsAsterisk:
    """Asterisk from ``root`` with ``etc`` as its /etc/asterisk, alone in its namespaces."""

    def __init__(self, root: Path, etc: Path, scratch: Path) -> None:
        self.root, self.etc, self.scratch = root, etc, scratch
        self.proc: subprocess.Popen[bytes] | None = None
        self.pid = 0

    def start(self) -> None:
        r = self.root
        for d in ("lib", "log", "spool"):
            (self.scratch / d).mkdir(parents=True, exist_ok=True)
        script = "\n".join([
            "set -e", "mount --make-rprivate /",
            f"mount --bind {self.etc} {r}/etc/asterisk",
            f"mount -t tmpfs tmpfs {r}/run", f"mkdir -p {r}/run/asterisk",
            *(f"mount --bind {self.scratch / d} {r}/var/{d}/asterisk" for d in ("lib", "log", "spool")),
            f"mount -t proc proc {r}/proc", f"mount --bind /dev {r}/dev",
            "ip link set lo up",
            f"exec chroot {r} /usr/sbin/asterisk -f" if r != Path("/") else "exec /usr/sbin/asterisk -f",
        ])
        log = open(self.scratch / "asterisk.out", "wb")
        self.proc = subprocess.Popen(["unshare", "--mount", "--pid", "--net", "--fork", "sh", "-c", script],
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not self.pid:
            out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout.split()
            self.pid = int(out[0]) if out else 0
            if self.proc.poll() is not None:
                raise AssertionError((self.scratch / "asterisk.out").read_text()[-2000:])
            time.sleep(0.05)
        out = self.rx("core waitfullybooted", timeout=90)
        assert "fully booted" in out, out + (self.scratch / "asterisk.out").read_text()[-2000:]

    def enter(self, *cmd: str) -> list[str]:
        chroot = ["chroot", str(self.root)] if self.root != Path("/") else []
        return ["nsenter", "-t", str(self.pid), "-m", "-n", *chroot, *cmd]

    def rx(self, command: str, timeout: float = 30) -> str:
        for _ in range(50):  # the control socket appears a moment after the process
            r = subprocess.run(self.enter("asterisk", "-rx", command), capture_output=True, text=True, timeout=timeout)
            if r.returncode == 0:
                return r.stdout
            time.sleep(0.1)
        return r.stdout + r.stderr

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, 9)  # the namespace's init: everything in it goes, mounts too
            self.proc.wait(timeout=10)


@pytest.fixture
def installed(tmp_path: Path) -> Iterator[tuple[NsAsterisk, Path]]:
    root = _lab_root()
    dest = tmp_path / "dest"
    (dest / "etc").mkdir(parents=True)
    shutil.copytree(root / "etc/asterisk", dest / "etc/asterisk", symlinks=True)  # Debian's stock files
    assert main_install(["--destdir", str(dest), "--source", str(SOURCE), "--no-venv"]) == 0
    ast = NsAsterisk(root, dest / "etc/asterisk", tmp_path / "run")
    try:
        ast.start()
        yield ast, dest
    finally:
        ast.stop()


def test_debian_asterisk_loads_the_installed_fragments(installed: tuple[NsAsterisk, Path]) -> None:
    """Endpoints, transport, dialplan, CC_* globals, applicationmap and the AMI user are all live."""
    ast, dest = installed
    assert re.search(r"cc-udp\s+udp\s+\d+\s+\d+\s+127\.0\.0\.1:5060", ast.rx("pjsip show transports"))
    assert "Endpoint:  1001/1001" in ast.rx("pjsip show endpoint 1001")
    assert "endpoint_identifier_order" in (s := ast.rx("pjsip show settings")) and "username,ip,anonymous" in s
    glob = ast.rx("dialplan show globals")
    assert "CC_AGI=agi://127.0.0.1:4573" in glob and "TRUNK=DAHDI/G2" in glob  # ours added to the site's
    assert "AGI(${CC_AGI}/agent,login" in ast.rx("dialplan show *61@cc-phones")
    assert "cc-ivr" in ast.rx("dialplan show cc-ivr")
    assert "cc-rec-pause" in ast.rx("features show")
    user = ast.rx("manager show user callcenter")
    assert "write perm: call,reporting,originate" in user or "write perm: call,originate,reporting" in user, user
    settings = ast.rx("manager show settings")
    assert re.search(r"Channel vars:\s+CC_ROLE,CC_CALL_ID", settings) and "127.0.0.1:5038" in settings


def test_the_ami_user_logs_in_with_the_generated_secret(installed: tuple[NsAsterisk, Path]) -> None:
    """The random secret written to conf.d/00-install.yaml is the one Asterisk accepts."""
    ast, dest = installed
    secret = re.search(r"secret: (\S+)", (dest / "etc/callcenter/conf.d/00-install.yaml").read_text()).group(1)
    probe = ("import socket,sys\n"
             "s=socket.create_connection(('127.0.0.1',5038),5); f=s.makefile('rwb')\n"
             "f.readline(); f.write(('Action: Login\\r\\nUsername: callcenter\\r\\nSecret: '+sys.argv[1]+'\\r\\n\\r\\n').encode()); f.flush()\n"
             "print(b''.join(iter(f.readline, b'\\r\\n')).decode())\n")
    cmd = ["nsenter", "-t", str(ast.pid), "-n", sys.executable, "-c", probe]
    ok = subprocess.run(cmd + [secret], capture_output=True, text=True, timeout=30).stdout
    bad = subprocess.run(cmd + ["wrong-secret"], capture_output=True, text=True, timeout=30).stdout
    assert "Response: Success" in ok, ok
    assert "Response: Error" in bad, bad
