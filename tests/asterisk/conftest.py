"""Fixtures for tests against the real lab Asterisk, real pjsua2 phones and the real daemon.

When CI=true a missing or broken Asterisk fails these tests; elsewhere they are skipped with
the reason.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from callcenter import config as config_mod
from callcenter.lab.asterisk import Lab, LabError, carrier_sim, pstn_sim

HERE = Path(__file__).parent
IN_CI = os.environ.get("CI", "").lower() == "true"
# A second lab can run beside the first (another CALLCENTER_CACHE, every port shifted by this).
PORT_OFFSET = int(os.environ.get("CALLCENTER_LAB_PORT_OFFSET", "0"))


def _lab_config() -> Path:
    src = HERE / "lab.yaml"
    if not PORT_OFFSET:
        return src
    d = yaml.safe_load(src.read_text())
    d.setdefault("audiosocket", {"host": "127.0.0.1", "port": 9093})
    for key in ("ami", "agi", "http", "sip", "audiosocket"):
        d[key]["port"] += PORT_OFFSET
    d["sip"]["rtp_start"] += 10 * PORT_OFFSET
    d["sip"]["rtp_end"] += 10 * PORT_OFFSET
    for t in d["trunks"].values():
        if "port" in t:
            t["port"] += PORT_OFFSET
    from callcenter.lab.asterisk import cache_dir
    out = cache_dir() / "lab-config" / "lab.yaml"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(d))
    return out


LAB_CONFIG = _lab_config()
SIP = f"127.0.0.1:{5060 + PORT_OFFSET}"
DID_URI = f"sip:5551000@{SIP}"
CALLER_PORT = 5062 + PORT_OFFSET  # trunks.pstn in lab.yaml dials the callers back here

# The simulated public network (callcenter.lab.asterisk.pstn_sim): trunk "sim" dials 127.0.0.3.
PSTN = pstn_sim(5064 + PORT_OFFSET)
# Test-only dialplan: a "remote party" that answers and plays a recording (then silence, as a
# line does), connected through a Local channel to the production AMD subroutine.
# A carrier that requires registration and digest auth (trunks carrier and carrier-bad in lab.yaml).
CARRIER_PORT = 5066 + PORT_OFFSET
CARRIER = carrier_sim({"cc-acct1": "carrier-secret-1", "cc-acct2": "carrier-secret-2"}, CARRIER_PORT)
LAB_EXTRA = {"pjsip.conf": PSTN["pjsip.conf"] + CARRIER["pjsip.conf"],
             "extensions.conf": PSTN["extensions.conf"] + CARRIER["extensions.conf"] + """
[cc-amd-test]
exten => play,1,Answer()
 same => n,Playback(${FILE}&silence/10&silence/10&silence/10&silence/10)
 same => n,Hangup()
exten => detect,1,Answer()
 same => n,Gosub(cc-amd,s,1)
 same => n,UserEvent(CCAmdTest,Verdict: ${CC_AMD},Beep: ${CC_AMD_BEEP_MS})
 same => n,Hangup()
"""}

# Test-only dialplan for recording and supervision (test_recording_supervision.py). Files go to
# the monitor spool (relative MixMonitor names) as cc-test/<id>.wav.
# - cc-test-party: a caller as a Local channel (;2 half): plays ${CC_TEST_TONE} Hz into the call
#   and records what the caller hears.
# - tap<HHHH><id> from a desk phone: Asterisk plays HHHH Hz (0000: silence) to the phone, which
#   relays it into its other call, and records what the phone relays back (what it hears there):
#   pjsua2 cannot play or record audio itself, but its conference bridge can connect two calls.
# - cc-test-hostile: a caller ID no trunk should send (newline, ';', '$(...)', '../').
# - cc-test-speaker: a caller as a Local channel (;2 half) that keeps quiet until redirected to
#   `talk`: then ${CC_TEST_QUIET_S} s of silence (audio frames of zeros, as a phone sends, not no
#   frames at all), ${CC_TEST_TONE} Hz for ${CC_TEST_TALK_S} s, silence again, and it hangs up (a
#   message left while waiting, test_queue_extras.py).
LAB_MEDIA_DIALPLAN = r"""
[cc-test-speaker]
exten => s,1,Answer()
 same => n,Wait(600)
 same => n,Hangup()
exten => talk,1,Playback(silence/${CC_TEST_QUIET_S})
 same => n,PlayTones(${CC_TEST_TONE})
 same => n,Wait(${CC_TEST_TALK_S})
 same => n,StopPlayTones()
 same => n,Playback(silence/${CC_TEST_QUIET_S})
 same => n,Hangup()

[cc-phones]
exten => _tapXXXX.,1,Goto(cc-test-tap,${EXTEN},1)

[cc-test-tap]
exten => _tapXXXX.,1,Answer()
 same => n,MixMonitor(,r(cc-test/${EXTEN:7}.wav))
 same => n,GotoIf($[${EXTEN:3:4} = 0]?quiet)
 same => n,PlayTones($[${EXTEN:3:4} + 0])
 same => n(quiet),Wait(600)
 same => n,Hangup()

[cc-test-party]
exten => party,1,Answer()
 same => n,MixMonitor(,r(cc-test/${CC_TEST_ID}.wav))
 same => n,GotoIf($["${CC_TEST_TONE}" = ""]?quiet)
 same => n,PlayTones(${CC_TEST_TONE})
 same => n(quiet),Wait(600)
 same => n,Hangup()

[cc-test-hostile]
exten => s,1,Set(CALLERID(name)=../../../tmp/x\;$(touch /tmp/cc-pwned)${BASE64_DECODE(Cg==)}Evil: 1)
 same => n,Set(CALLERID(num)=../5550${BASE64_DECODE(Cg==)}\;$(id))
 same => n,Goto(cc-trunk-pstn,5551001,1)
"""
LAB_EXTRA["extensions.conf"] += LAB_MEDIA_DIALPLAN


def second_lab(suffix: str) -> Lab:
    """A lab of its own (cache ``<cache>-<suffix>``) for a test module that must not share the suite's:
    on a chroot host its root is a copy of the suite's (seconds) rather than another debootstrap;
    the copy leaves /proc and /dev mounts and Asterisk's run files behind (one file system)."""
    from callcenter.lab.asterisk import cache_dir
    cache = Path(f"{cache_dir()}-{suffix}")
    base = Lab.default()
    if not base.chroot:
        return Lab(base.root, cache / "host-lab")
    lab = Lab(cache / "asterisk-root", cache / "lab")
    if not (lab.root / "usr/sbin/asterisk").exists() and (base.root / "usr/sbin/asterisk").exists():
        tmp = lab.root.with_name("asterisk-root.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["cp", "-a", "--one-file-system", str(base.root), str(tmp)], check=True, timeout=600)
        for d in ("proc", "dev"):
            (tmp / d).mkdir(exist_ok=True)
        shutil.rmtree(tmp / "run/asterisk", ignore_errors=True)
        tmp.rename(lab.root)
    return lab


def sipp_lab(suffix: str) -> Lab:
    """A lab of its own (:func:`second_lab`) for a module that drives SIPp, provisioned and stopped
    (one left by an interrupted run goes); with no SIPp, no lab Asterisk or no root (SIPp plays RFC
    2833 DTMF from a pcap with a raw socket) the module fails under CI=true and skips elsewhere."""
    from callcenter.lab.sipp import sipp_binary
    try:
        sipp_binary()
        lab = second_lab(suffix)
        lab.provision()
        lab.down()
    except (RuntimeError, LabError, OSError, subprocess.SubprocessError) as e:
        if IN_CI:
            pytest.fail(f"CI=true and no SIPp or lab Asterisk: {e}")
        pytest.skip(f"no SIPp or lab Asterisk: {e}")
    if os.geteuid() != 0:
        if IN_CI:
            pytest.fail("CI=true: SIPp plays RFC 2833 DTMF from a pcap with a raw socket: needs root")
        pytest.skip("SIPp plays RFC 2833 DTMF from a pcap with a raw socket: needs root")
    return lab


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(item.fspath).parents:
            item.add_marker(pytest.mark.asterisk)


@pytest.fixture(scope="session")
def lab() -> Iterator[dict[str, object]]:
    lab = Lab.default()
    try:
        info = lab.up(LAB_CONFIG, extra=LAB_EXTRA)
        lab.rx("channel request hangup all")  # a kept lab may hold calls of an interrupted run
    except (LabError, OSError, subprocess.SubprocessError) as e:
        if IN_CI:
            pytest.fail(f"CI=true and no lab Asterisk: {e}")
        pytest.skip(f"no lab Asterisk: {e}")
    yield info
    if os.environ.get("CALLCENTER_KEEP_LAB") != "1":
        lab.down()


@pytest.fixture(scope="session")
def phones(lab: dict[str, object]) -> Iterator[object]:
    from callcenter.lab.phones import Phones
    p = Phones(asterisk=SIP, caller_port=CALLER_PORT)
    yield p
    p.close()


# --------------------------------------------------------------------------- the daemon

class DaemonProc:
    """``callcenter run`` in a subprocess; its JSON log lines are the events tests wait on."""

    def __init__(self, config_path: Path, env: dict[str, str] | None = None):
        self.config_path = config_path
        self.env = {**os.environ, **(env or {})}
        self.cfg = config_mod.load(config_path)
        self.events: list[dict[str, object]] = []
        self.cond = threading.Condition()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> DaemonProc:
        self.proc = subprocess.Popen([sys.executable, "-m", "callcenter", "run", "--config", str(self.config_path)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     env=self.env)
        threading.Thread(target=self._read, args=(self.proc,), daemon=True).start()
        return self

    def _read(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stderr is not None
        for raw in proc.stderr:
            line = raw.decode("utf-8", "replace").strip()
            try:
                ev = json.loads(line)
            except ValueError:
                ev = {"event": "raw", "line": line}
            with self.cond:
                self.events.append(ev)
                self.cond.notify_all()
        with self.cond:
            self.events.append({"event": "process.exit", "pid": proc.pid})
            self.cond.notify_all()

    def find(self, event: str, **fields: object) -> list[dict[str, object]]:
        with self.cond:
            return [e for e in self.events if e.get("event") == event
                    and all(e.get(k) == v for k, v in fields.items())]

    def wait_for(self, event: str, timeout: float = 15, after: int = 0, **fields: object) -> dict[str, object]:
        """Block until a log event ``event`` with ``fields`` (at index >= ``after``) appears."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for e in self.events[after:]:
                    if e.get("event") == event and all(e.get(k) == v for k, v in fields.items()):
                        return e
                left = deadline - time.monotonic()
                if left <= 0:
                    tail = "\n".join(json.dumps(e) for e in self.events[-25:])
                    raise AssertionError(f"no {event} {fields} within {timeout}s; last log lines:\n{tail}")
                self.cond.wait(left)

    def mark(self) -> int:
        with self.cond:
            return len(self.events)

    async def until(self, event: str, timeout: float = 15, after: int = 0, **fields: object) -> dict[str, object]:
        return await asyncio.to_thread(self.wait_for, event, timeout, after, **fields)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(10)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)

    def db(self) -> sqlite3.Connection:
        c = sqlite3.connect(self.cfg.daemon.database)
        c.row_factory = sqlite3.Row
        return c

    def call_record(self, call_id: str, timeout: float = 5.0) -> sqlite3.Row:
        """The call's row; once the daemon has logged ``call.ended``, the row with its end (the journal
        writes on its own thread, a moment after the log line)."""
        deadline = time.monotonic() + timeout
        while True:
            with self.db() as c:
                row = c.execute("SELECT * FROM calls WHERE call_id=?", (call_id,)).fetchone()
            done = row is not None and (row["ended_at"] is not None or not self.find("call.ended", call_id=call_id))
            if done or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert row is not None, f"no call record for {call_id}"
        return row


@pytest.fixture
def daemon_config(lab: dict[str, object], tmp_path: Path) -> Callable[..., Path]:
    """Write the lab config with this test's database (and overrides) into tmp_path."""
    def make(**overrides: object) -> Path:
        data = yaml.safe_load(LAB_CONFIG.read_text())
        data["daemon"]["database"] = str(tmp_path / "callcenter.sqlite3")
        for dotted, value in overrides.items():
            node = data
            *parents, leaf = dotted.split("__")
            for p in parents:
                node = node[p]
            node[leaf] = value
        path = tmp_path / "callcenter.yaml"
        path.write_text(yaml.safe_dump(data))
        return path
    return make


@pytest.fixture
def daemon(daemon_config: Callable[..., Path]) -> Iterator[DaemonProc]:
    d = DaemonProc(daemon_config()).start()
    d.wait_for("ami.resynced", 20)
    yield d
    d.stop()


@pytest.fixture
def floor(phones: object, lab: dict[str, object]) -> Iterator[Floor]:
    f = Floor(phones)
    yield f
    # Let Asterisk end the calls, so pj handles the BYEs on its own thread. A hang-up sent from
    # here holds the GIL inside pj (pybind never releases it) and deadlocks when a pj callback
    # holding pjsua's lock waits for the GIL -- seen once: a teardown hang-up meeting an
    # incoming call. (This pjsua2 wheel has no libHandleEvents to poll pj from Python instead.)
    stand_ins = _stand_in_channels()
    try:
        Lab.default().rx("channel request hangup all")
    except (LabError, OSError, subprocess.SubprocessError):
        pass
    f.close()
    # Every live test ends with no Surrogate/ or <ZOMBIE> copy of a channel left in Asterisk: such a
    # copy stays in the dialplan for ever (it was seen at load, left in the wait loop by a Bridge()).
    assert not stand_ins, f"stand-in channels left in Asterisk: {stand_ins}"


def _stand_in_channels(settle_s: float = 3.0) -> list[str]:
    """Channels named Surrogate/… or …<ZOMBIE> still there after ``settle_s`` (a move in progress ends
    within milliseconds)."""
    deadline = time.monotonic() + settle_s
    while True:
        try:
            out = Lab.default().rx("core show channels concise")
        except (LabError, OSError, subprocess.SubprocessError):
            return []
        names = [line.split("!", 1)[0] for line in out.splitlines() if "!" in line]
        left = [n for n in names if n.startswith("Surrogate/") or n.endswith("<ZOMBIE>")]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


class Floor:
    """The phones one test uses; all their calls are hung up (and agents unregistered) at the end."""

    def __init__(self, phones: object):
        self.phones = phones
        self.accounts: list[object] = []
        self.callers: list[object] = []
        self.cfg = config_mod.load(LAB_CONFIG)

    async def wait(self, predicate: Callable[[], bool], timeout: float = 10, what: str = "") -> None:
        ok = await asyncio.to_thread(self.phones.wait, predicate, timeout)
        assert ok, f"timed out after {timeout}s waiting for {what or predicate}"

    async def agent(self, name: str, *, auto_answer: bool = True) -> object:
        """The agent's desk phone: one account per extension for the whole session (a second
        account with the same contact would make the phone ambiguous), registered."""
        ext = self.cfg.agents[name].phone
        cache = self.phones.__dict__.setdefault("desk", {})
        acc = cache.get(ext)
        if acc is None:
            acc = cache[ext] = self.phones.agent(ext, self.cfg.phones[ext].secret)
        acc.auto_answer = auto_answer
        self.accounts.append(acc)
        await self.wait(lambda: acc.registered, 10, f"{ext} registered")
        return acc

    async def feature(self, acc: object, code: str) -> None:
        """Dial a feature code from an agent phone and wait until the daemon hangs up."""
        h = acc.dial(f"sip:{code}@{SIP}")
        await self.wait(lambda: h.ended, 10, f"feature {code} call to end")
        assert h.confirmed_at is not None, f"feature code {code} was not answered: {h.states}"

    async def login(self, daemon: DaemonProc, name: str, *, auto_answer: bool = True) -> object:
        acc = await self.agent(name, auto_answer=auto_answer)
        mark = daemon.mark()
        await self.feature(acc, "*61")
        await daemon.until("agent.state", 10, after=mark, agent=name, state="Ready")
        return acc

    def caller(self, number: str = "5550123", name: str = "") -> object:
        """A caller's account for this test only (pjsua allows 8 accounts per process)."""
        acc = self.phones.caller(number, name)
        self.accounts.append(acc)
        self.callers.append(acc)
        return acc

    async def call_in(self, number: str = "5550123", name: str = "") -> object:
        c = self.caller(number, name)
        h = c.dial(DID_URI)
        await self.wait(lambda: h.state == "CONFIRMED" and h.media, 10, "the IVR to answer")
        return h

    async def press(self, daemon: DaemonProc, call: object, digit: str, menu: str, mark: int = 0) -> int:
        """Press ``digit`` while ``menu``'s prompt plays (as a person would); returns a new log mark."""
        await daemon.until("ivr.menu", 10, after=mark, menu=menu)
        new_mark = daemon.mark()
        await asyncio.sleep(0.3)
        call.dtmf(digit)
        return new_mark

    def close(self) -> None:
        def ended() -> bool:
            return all(h.call is None for a in self.accounts for h in a.calls)

        if not self.phones.wait(ended, 3):  # Asterisk was asked to hang up: wait for the BYEs
            for acc in self.accounts:
                for h in acc.calls:
                    h.hangup()
            self.phones.wait(ended, 5)
        self.phones.pump()
        for acc in self.accounts:
            acc.calls.clear()
        for acc in self.callers:
            self.phones.drop(acc)


# --------------------------------------------------------------------------- an independent AMI witness

@pytest.fixture
async def witness(lab: dict[str, object]) -> object:
    """panoramisk's AMI client: checks what Asterisk really shows, independently of our own client."""
    from panoramisk import Manager
    cfg = config_mod.load(LAB_CONFIG)
    m = Manager(loop=asyncio.get_running_loop(), host=cfg.ami.host, port=cfg.ami.port,
                username=cfg.ami.username, secret=cfg.ami.secret, ping_delay=3600)
    await m.connect()
    yield Witness(m)
    m.close()


class Witness:
    def __init__(self, manager: object):
        self.m = manager

    async def channels(self) -> list[dict[str, str]]:
        msgs = await self.m.send_action({"Action": "CoreShowChannels"})
        return [dict(x) for x in msgs if x.get("Event") == "CoreShowChannel"]

    async def action(self, action: dict[str, str]) -> object:
        return await self.m.send_action(action)
