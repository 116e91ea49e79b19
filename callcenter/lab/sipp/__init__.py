"""SIPp scenarios and processes for ``callcenter bench load`` and its test (Debian's ``sip-tester``, 3.6).

Scenario files here are templates: ``@NAME@`` placeholders are filled in by :func:`scenario`.
"""

from __future__ import annotations

import contextlib
import csv
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from callcenter.lab.signals import stop_children

HERE = Path(__file__).parent
DTMF_PCAP = Path("/usr/share/sip-tester")


def sipp_binary() -> str:
    path = shutil.which("sipp")
    if path is None:
        raise RuntimeError("sipp is not installed (apt-get install -y sip-tester)")
    return path


def scenario(name: str, out_dir: Path, **values: object) -> Path:
    """Write template ``name`` (.xml) with ``@KEY@`` replaced by ``values`` into ``out_dir``."""
    text = (HERE / f"{name}.xml").read_text()
    for k, v in values.items():
        text = text.replace(f"@{k}@", str(v))
    out = out_dir / f"{name}-{'-'.join(str(v) for v in values.values() if len(str(v)) < 12)}.xml"
    out.write_text(text)
    return out


def dtmf_block(digit: str | None, delay_ms: int) -> str:
    """An RFC 2833 digit played from Debian's pcap after ``delay_ms`` (``play_pcap_audio`` needs root)."""
    if not digit:
        return ""
    pcap = DTMF_PCAP / f"dtmf_2833_{digit}.pcap"
    if not pcap.exists():
        raise RuntimeError(f"no {pcap} (Debian's sip-tester ships it)")
    return (f'  <pause milliseconds="{delay_ms}"/>\n'
            f'  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>\n')


@dataclass
class Sipp:
    """One SIPp process (its own process group), with its statistics file."""

    name: str
    argv: list[str]
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.workdir / f"{self.name}.out"

    @property
    def stat_file(self) -> Path:
        return self.workdir / f"{self.name}.stat.csv"

    def start(self) -> Sipp:
        argv = [sipp_binary(), *self.argv, "-nostdin", "-trace_stat", "-stf", str(self.stat_file), "-fd", "1",
                "-trace_err", "-error_file", str(self.workdir / f"{self.name}.errors.log")]
        with contextlib.suppress(OSError):
            self.stat_file.unlink()
        self.started = time.monotonic()
        self.proc = subprocess.Popen(argv, cwd=self.workdir, stdin=subprocess.DEVNULL,
                                     stdout=open(self.log, "wb"), stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def wait(self, timeout: float) -> int | None:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        stop_children([self.proc], timeout=5)

    def stats(self) -> dict[str, int]:
        """The last line of SIPp's statistics: calls created, successful, failed (cumulative)."""
        try:
            rows = list(csv.reader(self.stat_file.read_text().splitlines(), delimiter=";"))
        except OSError:
            return {"created": 0, "successful": 0, "failed": 0, "current": 0}
        if len(rows) < 2:
            return {"created": 0, "successful": 0, "failed": 0, "current": 0}
        head, last = rows[0], rows[-1]
        col = {h: i for i, h in enumerate(head)}

        def get(name: str) -> int:
            i = col.get(name)
            try:
                return int(last[i]) if i is not None else 0
            except (ValueError, IndexError):
                return 0
        return {"created": get("TotalCallCreated"), "successful": get("SuccessfulCall(C)"),
                "failed": get("FailedCall(C)"), "current": get("CurrentCall")}

    def errors_tail(self, n: int = 5) -> list[str]:
        """SIPp's last errors, without the receive timeouts a scenario meant (``ontimeout`` jumps)."""
        try:
            text = (self.workdir / f"{self.name}.errors.log").read_text(errors="replace")
        except OSError:
            return []
        text = re.sub(r"\S+\t\S+\t\S+: Call-Id: \S+, receive timeout on message [^,]*, jumping to label \d+",
                      "\n", text)
        lines = [x.strip() for x in text.splitlines()]
        return [x for x in lines if x and x != "The following events occurred:"][-n:]


def stop_all(procs: list[Sipp]) -> None:
    stop_children([p.proc for p in procs], timeout=5)


def clock_ticks() -> int:
    return os.sysconf("SC_CLK_TCK")
