"""Hostile SIP input against the real Asterisk and the daemon, sent by SIPp from the trunk's address.

Caller IDs carrying CR/LF (folded into the header, percent-escaped in the URI, or injected as raw
header lines), quotes, ``;``, ``$(...)``, ``../`` and a 500-character display name, to the IVR DID
and to a DID straight to a queue; and INVITEs to toll-fraud style request URIs (a dial string
``500&PJSIP/...``, a dialplan pattern ``_X.``, an international number, letters, a feature code, a
phone extension, a very long number). For each: Asterisk creates no channel but the caller's own
(no Dial, no Originate, nothing towards a trunk), the daemon stays up (same pid, ``/healthz`` 200),
and what it journals of the caller is sanitised.

SIPp (Debian's ``sip-tester``) runs ``sipp/hostile_invite.xml`` once per case (``-m 1``, ``-timeout``),
from 127.0.0.2 (trunk ``pstn`` in lab.yaml) to the lab's SIP port; only loopback traffic.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import urllib.request
from pathlib import Path

import pytest

from tests.asterisk.conftest import PORT_OFFSET, SIP, DaemonProc, Witness

pytestmark = pytest.mark.asterisk

SCENARIO = Path(__file__).parent / "sipp" / "hostile_invite.xml"
TRUNK_IP = "127.0.0.2"  # trunks.pstn.match
IVR_DID, QUEUE_DID = "5551000", "5551001"
SIPP_TIMEOUT_S = 25
HOLD_MS = 2000  # how long an answered call is held before SIPp hangs up

# (id, request-URI user, From user, From display name as it goes on the wire)
CALLER_IDS = [
    ("folded-crlf", "5550701", '"Eve\r\n Folded; $(id)"'),
    ("quotes-semicolon", "5550702", r'"Q \"quoted\" ;x=1 <sip:2001@127.0.0.1>"'),
    ("escaped-crlf-in-number", "5550703%0D%0AEvil:%201", '"$(id) `id` ../../etc/passwd"'),
    ("dollar-paren-number", "$(id)", '"x"'),
    ("traversal-number", "../../5550705", '"..\\/..\\/tmp"'),
    ("long-name", "5550706", '"' + "A" * 500 + '"'),
    ("nul-escaped", "5550707%00", '"nul%00 \\\\ tab\t"'),
    ("injected-header", "5550708", '"Eve"\r\nP-Asserted-Identity: "Boss" <sip:2001@127.0.0.1>\r\nX-Pad: '),
]
TOLL_FRAUD = [
    ("dial-string", "500&PJSIP/trunk-sim"),
    ("dial-string-escaped", "500%26PJSIP%2Ftrunk-pstn%2F9011441234"),
    ("pattern-bait", "_X."),
    ("pattern-bait-escaped", "_9011.%21"),
    ("international", "9011441234"),
    ("letters", "abcdefgh"),
    ("feature-code", "*61"),
    ("phone-extension", "2001"),
    ("did-with-suffix", IVR_DID + "&PJSIP/2001"),
    ("very-long", "5" * 400),
]


def _free_udp_blocks(ip: str, count: int, size: int = 5) -> list[int]:
    """``count`` bases of ``size`` consecutive free UDP ports, none overlapping: SIPp binds its SIP
    port and, from ``-mp``, audio, audio RTCP, video and video RTCP (a lone free port was not enough:
    its +2 was sometimes another SIPp's)."""
    held: list[socket.socket] = []
    bases: list[int] = []
    try:
        while len(bases) < count:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                probe.bind((ip, 0))
                base = probe.getsockname()[1] & ~1
            block = []
            try:
                for port in range(base, base + size):
                    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                    block.append(s)
                    s.bind((ip, port))
            except OSError:
                for s in block:
                    s.close()
                continue
            held += block  # kept bound until every block is found, so no two overlap
            bases.append(base)
    finally:
        for s in held:
            s.close()
    return bases


async def _sipp(exten: str, from_user: str, from_name: str, cwd: Path, ports: int) -> tuple[int, str]:
    """One hostile INVITE (media from the even ``ports``, SIP on ``ports`` + 4); SIPp's exit code and the end of its output."""
    args = ["sipp", SIP, "-sf", str(SCENARIO), "-m", "1", "-l", "1",
            "-i", TRUNK_IP, "-p", str(ports + 4), "-mi", TRUNK_IP,
            "-mp", str(ports),
            "-key", "exten", exten, "-key", "from_user", from_user, "-key", "from_name", from_name,
            "-d", str(HOLD_MS), "-recv_timeout", "10000", "-timeout", f"{SIPP_TIMEOUT_S}s", "-timeout_error",
            "-nostdin", "-trace_err"]
    proc = await asyncio.create_subprocess_exec(*args, cwd=cwd, stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), SIPP_TIMEOUT_S + 10)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return -1, "sipp did not exit"
    errors = "".join(p.read_text(errors="replace")[-1500:] for p in cwd.glob("*_errors.log"))
    return proc.returncode or 0, out.decode(errors="replace")[-1500:] + errors


def _healthz(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=3) as r:
        return r.status


@pytest.mark.skipif(shutil.which("sipp") is None, reason="SIPp (Debian's sip-tester) is not installed")
async def test_hostile_invites_create_no_outbound_channel_and_daemon_survives(
        daemon: DaemonProc, witness: Witness, tmp_path: Path) -> None:
    """Hostile caller IDs to the IVR and queue DIDs, and toll-fraud request URIs: only the caller's own
    channel ever exists, no Dial happens, the daemon keeps its pid and /healthz, and the journal holds
    sanitised caller IDs."""
    assert daemon.proc is not None
    pid = daemon.proc.pid
    new_channels: list[str] = []
    dials: list[str] = []
    witness.m.register_event("Newchannel", lambda _m, msg: new_channels.append(msg.get("Channel", "")))
    witness.m.register_event("DialBegin", lambda _m, msg: dials.append(msg.get("DestChannel", "")))
    witness.m.register_event("OriginateResponse", lambda _m, msg: dials.append(msg.get("Channel", "")))
    mark = daemon.mark()

    cases = [(f"{cid}->{did}", did, user, name) for cid, user, name in CALLER_IDS for did in (IVR_DID, QUEUE_DID)]
    cases += [(f"fraud-{cid}", exten, "5550720", '"Fraud"') for cid, exten in TOLL_FRAUD]
    dirs = [tmp_path / f"sipp{i}" for i in range(len(cases))]
    for d in dirs:
        d.mkdir()
    bases = _free_udp_blocks(TRUNK_IP, len(cases))
    results = await asyncio.gather(*(_sipp(exten, user, name, d, b)
                                     for (_, exten, user, name), d, b in zip(cases, dirs, bases)))
    failed = {case[0]: out for case, (rc, out) in zip(cases, results) if rc not in (0, 1)}
    assert not failed, f"SIPp could not run (port offset {PORT_OFFSET}): {failed}"

    # A caller ID must not be able to end the daemon's AMI session (while it does, the ACD is blind:
    # the resync lists the same hostile channel again).
    dropped = daemon.find("ami.disconnected")
    assert not dropped, f"hostile caller IDs broke the daemon's AMI session: {dropped}"
    # Every call is over (SIPp got its BYE answered or ACKed a refusal): let the daemon journal them.
    for ev in daemon.find("call.started"):
        await daemon.until("call.ended", 15, after=mark, call_id=ev["call_id"])

    outbound = [c for c in new_channels if not c.startswith("PJSIP/trunk-pstn-")]
    assert not outbound, f"channels other than the callers' own: {outbound}"
    assert not dials, f"Dial/Originate happened: {dials}"
    chans = await witness.channels()
    assert not [c for c in chans if not c["Channel"].startswith("PJSIP/trunk-pstn-")], chans

    assert daemon.proc.poll() is None and daemon.proc.pid == pid, "the daemon died"
    assert await asyncio.to_thread(_healthz, daemon.cfg.http.port) == 200
    assert not daemon.find("agi.handler_failed"), daemon.find("agi.handler_failed")

    with daemon.db() as db:
        rows = [dict(r) for r in db.execute("SELECT call_id, did, caller_num, caller_name FROM calls")]
    assert rows, "no hostile call reached the IVR or the queue (the DIDs must answer)"
    assert {r["did"] for r in rows} <= {IVR_DID, QUEUE_DID}, rows
    dirty = [r for r in rows
             if any(ch in r["caller_num"] + r["caller_name"] for ch in "\r\n\x00")
             or len(r["caller_name"]) > 128 or len(r["caller_num"]) > 64]
    assert not dirty, f"journaled caller IDs not sanitised: {dirty}"
