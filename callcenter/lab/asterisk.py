"""The lab Asterisk used by ``make demo`` and ``make test``.

The host's Asterisk when it has one; otherwise Debian testing (or sid) in a chroot kept in a
cache folder outside the checkout (``$CALLCENTER_CACHE`` or ``~/.cache/callcenter``), built
once with debootstrap and reused. Everything binds to loopback. ``down`` stops what ``up``
started (by pid) and unmounts what it mounted.

A command that needs the lab for a while (the demo, a benchmark) uses :meth:`Lab.session`: it
brings the lab up and, on the way out (normally, on an exception, on Ctrl-C, and with
:func:`callcenter.lab.signals.interrupt_on_stop_signals` on SIGTERM/SIGHUP too), takes it down
again unless it found it already running.

A second lab runs beside the first with another ``$CALLCENTER_CACHE`` (its own chroot, mounts and
pid file) and ``$CALLCENTER_LAB_PORT_OFFSET`` added to every port (:func:`shift_ports`).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from callcenter import config as config_mod
from callcenter.asterisk.render import render, write
from callcenter.lab.signals import shielded

__all__ = ["Lab", "LabError", "carrier_sim", "port_offset", "pstn_sim", "shift_ports"]

SUITES = ("forky", "sid")  # Debian testing first (moves more slowly), then unstable
PACKAGES = "asterisk,asterisk-core-sounds-en-wav,asterisk-moh-opsound-wav"
MIRROR = "http://deb.debian.org/debian"
CHROOT_ETC = "/etc/asterisk-cc"


class LabError(Exception):
    pass


def pstn_sim(port: int = 5064, host: str = "127.0.0.3") -> dict[str, str]:
    """Lab extras: the public network simulated by Asterisk itself, for dialler tests and the demo.

    A trunk whose ``host``/``port`` is this second SIP transport reaches ``cc-pstn-sim``, where the
    number decides what the callee does: ``12125550NMX`` with N=1 a person ("hello", then line
    silence), 2 an answering machine (greeting, beep), 3 busy, 4 rings without answer, 5 a
    person who answers after 4 s of ringing. A line always carries audio (silence is played,
    not waited), as real lines do."""
    return {"pjsip.conf": f"""
[pstn-sim-udp]
type=transport
protocol=udp
bind={host}:{port}

[pstn-sim]
type=endpoint
context=cc-pstn-sim
disallow=all
allow=ulaw,alaw
direct_media=no
transport=pstn-sim-udp

[pstn-sim]
type=identify
endpoint=pstn-sim
match=127.0.0.1/32
""", "extensions.conf": """
[cc-pstn-sim]
exten => _12125550[1]XX,1,Answer()
 same => n,Playback(hello&silence/10&silence/10&silence/10)
 same => n,Hangup()
exten => _12125550[2]XX,1,Answer()
 same => n,Playback(vm-intro&vm-nobodyavail&beep&silence/10&silence/10)
 same => n,Hangup()
exten => _12125550[3]XX,1,Busy(5)
exten => _12125550[4]XX,1,Ringing()
 same => n,Wait(60)
 same => n,Hangup()
exten => _12125550[5]XX,1,Ringing()
 same => n,Wait(4)
 same => n,Answer()
 same => n,Playback(hello&silence/10&silence/10&silence/10)
 same => n,Hangup()
"""}


def carrier_sim(accounts: dict[str, str], port: int = 5066, host: str = "127.0.0.4") -> dict[str, str]:
    """Lab extras: a carrier that **requires** registration and digest auth, on a third SIP transport.

    Each account (user -> secret) is an endpoint of the carrier: it must REGISTER with digest auth
    (401 challenge); its INVITEs are challenged too, and the caller ID they present (P-Asserted-Identity
    trusted) is announced as ``UserEvent: CCCarrierCall`` (Account, Dialled, Presented) before the
    number is handed to ``cc-pstn-sim``. Calls to our DIDs go out as ``PJSIP/<did>@<account>``: to the registered contact
    only, so an account that has not registered gets no call (the dial fails)."""
    pj = [f"[carrier-udp]\ntype=transport\nprotocol=udp\nbind={host}:{port}\n"]
    for user, secret in accounts.items():
        pj.append(f"""[{user}]
type=endpoint
context=cc-carrier-out
disallow=all
allow=ulaw,alaw
direct_media=no
rtp_symmetric=yes
dtmf_mode=rfc4733
transport=carrier-udp
auth={user}
aors={user}
trust_id_inbound=yes

[{user}]
type=auth
auth_type=userpass
username={user}
password={secret}

[{user}]
type=aor
max_contacts=1
remove_existing=yes
""")
    return {"pjsip.conf": "\n".join(pj), "extensions.conf": """
[cc-carrier-out]
exten => _X.,1,UserEvent(CCCarrierCall,Account: ${CHANNEL(endpoint)},Dialled: ${EXTEN},Presented: ${CALLERID(num)})
 same => n,Goto(cc-pstn-sim,${EXTEN},1)
"""}


def cache_dir() -> Path:
    return Path(os.environ.get("CALLCENTER_CACHE") or Path.home() / ".cache" / "callcenter")


def port_offset() -> int:
    """Added to every lab port (``$CALLCENTER_LAB_PORT_OFFSET``, default 0) for a second lab."""
    return int(os.environ.get("CALLCENTER_LAB_PORT_OFFSET") or 0)


def shift_ports(d: dict[str, Any], offset: int) -> dict[str, Any]:
    """A copy of the raw configuration mapping ``d`` with every port moved by ``offset`` (RTP by ten
    times that, so the ranges of two labs do not overlap)."""
    import copy
    d = copy.deepcopy(d)
    if not offset:
        return d
    defaults = {"ami": 5038, "agi": 4573, "http": 9180, "sip": 5060, "audiosocket": 9093}
    for key, port in defaults.items():
        section = d.setdefault(key, {})
        section["port"] = int(section.get("port", port)) + offset
    d["sip"]["rtp_start"] = int(d["sip"].get("rtp_start", 10000)) + 10 * offset
    d["sip"]["rtp_end"] = int(d["sip"].get("rtp_end", 10999)) + 10 * offset
    for t in (d.get("trunks") or {}).values():
        if isinstance(t, dict) and "port" in t:
            t["port"] = int(t["port"]) + offset
    return d


def _run(cmd: list[str], *, check: bool = True, timeout: float = 600, quiet: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=check, timeout=timeout, text=True,
                          stdout=subprocess.PIPE if quiet else None, stderr=subprocess.STDOUT if quiet else None)


@dataclass
class Lab:
    root: Path  # the chroot, or Path("/") for a host Asterisk
    state: Path  # pid file, config hash, logs

    @classmethod
    def default(cls) -> Lab:
        host = shutil.which("asterisk")
        cache = cache_dir()
        if host and os.environ.get("CALLCENTER_LAB_CHROOT") != "1":
            return cls(Path("/"), cache / "host-lab")
        return cls(cache / "asterisk-root", cache / "lab")

    @property
    def chroot(self) -> bool:
        return self.root != Path("/")

    @property
    def etc(self) -> Path:
        return self.root / CHROOT_ETC.lstrip("/") if self.chroot else self.state / "etc"

    @property
    def conf_path(self) -> str:
        """asterisk.conf as Asterisk itself sees it."""
        return f"{CHROOT_ETC}/asterisk.conf" if self.chroot else str(self.etc / "asterisk.conf")

    # ---------------------------------------------------------------- provisioning
    def provision(self) -> None:
        """Make sure an Asterisk exists; build the chroot once if needed (about a minute)."""
        if not self.chroot:
            return
        if (self.root / "usr/sbin/asterisk").exists():
            return
        self.state.mkdir(parents=True, exist_ok=True)
        with open(self.state.parent / "provision.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if (self.root / "usr/sbin/asterisk").exists():
                return
            if shutil.which("debootstrap") is None:
                print("lab: installing debootstrap (apt-get)", flush=True)
                _run(["apt-get", "update", "-qq"], check=False)
                _run(["apt-get", "install", "-y", "-qq", "debootstrap"])
            script = Path("/usr/share/debootstrap/scripts/sid")
            errors = []
            for suite in SUITES:
                tmp = self.root.with_name(self.root.name + ".tmp")
                shutil.rmtree(tmp, ignore_errors=True)
                print(f"lab: building an Asterisk root from Debian {suite} in {self.root} (about a minute)",
                      flush=True)
                r = _run(["debootstrap", "--variant=minbase", f"--include={PACKAGES}", suite, str(tmp), MIRROR,
                          str(script)], check=False, timeout=1800, quiet=True)
                if r.returncode == 0 and (tmp / "usr/sbin/asterisk").exists():
                    tmp.rename(self.root)
                    return
                errors.append(f"{suite}: debootstrap exit {r.returncode}: {(r.stdout or '')[-400:]}")
                shutil.rmtree(tmp, ignore_errors=True)
            raise LabError("could not build an Asterisk root:\n" + "\n".join(errors))

    def version(self) -> str:
        cmd = ["asterisk", "-V"]
        r = _run(self._wrap(cmd), quiet=True, check=False, timeout=30)
        out = (r.stdout or "").strip()
        if r.returncode != 0 or not out.startswith("Asterisk"):
            raise LabError(f"asterisk -V failed: {out[-300:]}")
        return out

    # ---------------------------------------------------------------- up / down
    def _wrap(self, cmd: list[str]) -> list[str]:
        return ["chroot", str(self.root), *cmd] if self.chroot else cmd

    def _asterisk_conf(self) -> str:
        if self.chroot:
            return (f"[directories]\nastetcdir => {CHROOT_ETC}\nastrundir => /run/asterisk\n"
                    "astdatadir => /usr/share/asterisk\nastvarlibdir => /var/lib/asterisk\n"
                    "astspooldir => /var/spool/asterisk\nastlogdir => /var/log/asterisk\n"
                    "[options]\nrunuser = asterisk\nrungroup = asterisk\nverbose = 0\n")
        run = self.state / "run"
        return (f"[directories]\nastetcdir => {self.etc}\nastrundir => {run}\n"
                f"astspooldir => {self.state / 'spool'}\nastlogdir => {self.state / 'log'}\n"
                f"astvarlibdir => {self.state / 'lib'}\nastdbdir => {self.state / 'lib'}\n"
                "astdatadir => /usr/share/asterisk\n[options]\nverbose = 0\n")

    def _files(self, cfg: config_mod.Config) -> dict[str, str]:
        files = render(cfg)
        files["asterisk.conf"] = self._asterisk_conf()
        files["modules.conf"] = ("[modules]\nautoload=yes\n"
                                 # not needed, slow or noisy on a loopback lab
                                 "noload=chan_iax2.so\nnoload=res_prometheus.so\nnoload=cdr_csv.so\n"
                                 "noload=cdr_custom.so\nnoload=cel_custom.so\nnoload=res_hep.so\n"
                                 "noload=res_hep_pjsip.so\nnoload=res_hep_rtcp.so\nnoload=chan_unistim.so\n"
                                 "noload=chan_mgcp.so\nnoload=chan_skinny.so\nnoload=res_pjsip_phoneprov_provider.so\n"
                                 "noload=res_phoneprov.so\nnoload=res_xmpp.so\nnoload=chan_motif.so\n"
                                 "noload=res_stasis_test.so\nnoload=cdr_syslog.so\nnoload=res_snmp.so\n"
                                 "noload=res_calendar.so\nnoload=pbx_dundi.so\nnoload=res_config_ldap.so\n"
                                 "noload=chan_ooh323.so\nnoload=res_smdi.so\nnoload=app_voicemail.so\n"
                                 "noload=res_statsd.so\nnoload=pbx_ael.so\nnoload=pbx_lua.so\nnoload=pbx_dundi.so\n")
        files["logger.conf"] = "[general]\n[logfiles]\nmessages.log => notice,warning,error\n"
        files["http.conf"] = "[general]\nenabled=no\n"
        files["cdr.conf"] = "[general]\nenable=no\n"
        files["cel.conf"] = "[general]\nenable=no\n"
        return files

    def pid(self) -> int | None:
        try:
            pid = int((self.state / "asterisk.pid").read_text())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except OSError:
            return None
        return pid

    def up(self, config_path: str | Path, extra: dict[str, str] | None = None) -> dict[str, object]:
        """Start (or keep) the lab Asterisk with ``config_path`` rendered; ``extra`` maps file name to
        text appended to (or creating) a rendered file, e.g. app_queue for a benchmark."""
        cfg = config_mod.load(config_path)
        self.provision()
        self.state.mkdir(parents=True, exist_ok=True)
        files = self._files(cfg)
        for name, text in (extra or {}).items():
            files[name] = files.get(name, "") + "\n" + text
        digest = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()
        hash_file = self.state / "config.sha256"
        if self.pid() is not None:
            if hash_file.exists() and hash_file.read_text() == digest:
                return self.info(cfg)
            self.down()  # a different configuration: pjsip identify order needs a real restart
        if self.etc.exists():
            shutil.rmtree(self.etc)
        # Start from the distribution's stock files (indications, codecs ...), then ours on top.
        shutil.copytree(self.root / "etc/asterisk", self.etc, symlinks=True)
        write(files, self.etc)
        try:
            self._start()
        except BaseException:  # a failed or interrupted (Ctrl-C, SIGTERM) start leaves nothing behind
            with shielded():
                self.down()
            raise
        hash_file.write_text(digest)
        return self.info(cfg)

    @contextlib.contextmanager
    def session(self, config_path: str | Path, extra: dict[str, str] | None = None) -> Iterator[dict[str, object]]:
        """The lab up for the ``with`` block (see :meth:`up`); on the way out, however it is left
        (SIGTERM/SIGHUP too under ``interrupt_on_stop_signals``), Asterisk is stopped and the
        mounts undone unless the lab was already running when the block began (then it is left
        running, with this configuration)."""
        found_up = self.pid() is not None
        try:
            yield self.up(config_path, extra)
        finally:
            if not found_up:
                with shielded():
                    self.down()

    def _start(self) -> None:
        """Mount, start Asterisk (its pid in the state folder at once) and wait until it has booted."""
        self._prepare()
        log = open(self.state / "asterisk.out", "ab")
        cmd = self._wrap(["asterisk", "-f", "-C", self.conf_path] +
                         (["-U", "asterisk", "-G", "asterisk"] if self.chroot else []))
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        (self.state / "asterisk.pid").write_text(str(proc.pid))
        r = _run(self._wrap(["asterisk", "-C", self.conf_path, "-rx", "core waitfullybooted"]),
                 check=False, quiet=True, timeout=120)
        for _ in range(3):  # the control socket may not exist yet in the first instant
            if r.returncode == 0:
                break
            if proc.poll() is not None:
                raise LabError(f"asterisk exited ({proc.returncode}); see {self.state / 'asterisk.out'}")
            time.sleep(1)
            r = _run(self._wrap(["asterisk", "-C", self.conf_path, "-rx", "core waitfullybooted"]),
                     check=False, quiet=True, timeout=120)
        if r.returncode != 0:
            raise LabError(f"asterisk did not boot: {(r.stdout or '')[-300:]}")

    def _prepare(self) -> None:
        if not self.chroot:
            for d in ("run", "spool", "log", "lib"):
                (self.state / d).mkdir(parents=True, exist_ok=True)
            return
        for d in ("run/asterisk", "var/lib/asterisk", "var/log/asterisk", "var/spool/asterisk"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        _run(["chroot", str(self.root), "chown", "-R", "asterisk:asterisk", "/run/asterisk", "/var/lib/asterisk",
              "/var/log/asterisk", "/var/spool/asterisk", CHROOT_ETC], quiet=True)
        # Asterisk looks its own host name up at start; without an entry it asks DNS, which we lack.
        (self.root / "etc/hosts").write_text(f"127.0.0.1 localhost {socket.gethostname()}\n::1 localhost\n")
        for m in ("proc", "dev"):
            target = self.root / m
            if not os.path.ismount(target):
                _run(["mount", "--bind", f"/{m}", str(target)], quiet=True)

    def rx_argv(self) -> list[str]:
        """The argv prefix that runs one Asterisk CLI command on this lab (``daemon.asterisk_reload``)."""
        return self._wrap(["asterisk", "-C", self.conf_path, "-rx"])

    def rx(self, command: str) -> str:
        r = _run(self._wrap(["asterisk", "-C", self.conf_path, "-rx", command]), check=False, quiet=True,
                 timeout=30)
        return r.stdout or ""

    def down(self) -> None:
        pid = self.pid()
        if pid is not None:
            self.rx("core stop now")
            deadline = time.time() + 10
            while time.time() < deadline:
                try:
                    os.kill(pid, 0)
                except OSError:
                    break
                with contextlib.suppress(ChildProcessError):
                    if os.waitpid(pid, os.WNOHANG)[0] == pid:
                        break
                time.sleep(0.1)
            else:
                with contextlib.suppress(OSError):
                    os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            (self.state / "asterisk.pid").unlink()
        if self.chroot:
            for m in ("dev", "proc"):
                target = self.root / m
                if os.path.ismount(target):
                    _run(["umount", "-l", str(target)], check=False, quiet=True)

    def info(self, cfg: config_mod.Config) -> dict[str, object]:
        return {
            "running": self.pid() is not None,
            "pid": self.pid(),
            "asterisk": self.version(),
            "root": str(self.root),
            "ami": f"{cfg.ami.host}:{cfg.ami.port}",
            "sip": f"{cfg.sip.bind}:{cfg.sip.port}",
            "fastagi": f"{cfg.agi.host}:{cfg.agi.port}",
            "config": str(self.etc),
        }

    def status(self) -> dict[str, object]:
        return {"running": self.pid() is not None, "pid": self.pid(), "root": str(self.root),
                "provisioned": (self.root / "usr/sbin/asterisk").exists() if self.chroot else True}
