"""The live text screen (demo, ``callcenter status``): queues, agents and their states, calls."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

from callcenter.features.trunks.registrations import status_lines

__all__ = ["fetch_status", "render_text"]

STATE_ORDER = ["Busy", "Reserved", "WrapUp", "Ready", "Paused", "LoggedOut"]


def fetch_status(host: str, port: int, timeout: float = 2.0) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://{host}:{port}/status", timeout=timeout) as r:  # noqa: S310 - loopback
        return json.load(r)


def wait_healthy(host: str, port: int, timeout: float) -> bool:
    """Poll the daemon's ``/healthz`` until it answers 200 (AMI synced), at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://{host}:{port}/healthz", timeout=2) as r:  # noqa: S310 - loopback
                if r.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


def _pct(v: float | None) -> str:
    return "   -" if v is None else f"{v * 100:3.0f}%"


def _num(v: float | None, unit: str = "s") -> str:
    return "    -" if v is None else f"{v:4.1f}{unit}"


def render_text(st: dict[str, Any], title: str = "callcenter") -> str:
    lines = [f"{title} — AMI {'synced' if st.get('synced') else 'NOT SYNCED (reconnecting)'}", ""]
    lines.append(f"{'QUEUE':<10} {'WAIT':>4} {'RING':>4} {'TALK':>4} {'LONGEST':>8} {'ANSW':>5} {'ABND':>5} "
                 f"{'SL20s':>5} {'ASA':>6} {'AHT':>6} {'ABND%':>5}")
    for name, q in st.get("queues", {}).items():
        lines.append(f"{name:<10} {q['waiting']:>4} {q['ringing']:>4} {q['talking']:>4} {q['longest_wait_s']:>7.1f}s "
                     f"{q['answered']:>5} {q['abandoned']:>5} {_pct(q['service_level']):>5} {_num(q['asa_s']):>6} "
                     f"{_num(q['aht_s']):>6} {_pct(q['abandon_rate']):>5}")
    lines += ["", f"{'AGENT':<10} {'STATE':<10} {'DEVICE':<11} {'CALLS':>5}  DETAIL"]
    agents = st.get("agents", {})
    for name, a in sorted(agents.items(), key=lambda kv: (STATE_ORDER.index(kv[1]["state"])
                                                         if kv[1]["state"] in STATE_ORDER else 99, kv[0])):
        detail = ""
        if a["state"] == "Paused":
            detail = f"reason: {a['reason']}"
        elif a["state"] in ("Busy", "Reserved") and a.get("call_id"):
            detail = f"call {a['call_id']}"
        elif a["state"] == "Ready" and a.get("idle_s") is not None:
            detail = f"idle {a['idle_s']:.0f}s"
        lines.append(f"{name:<10} {a['state']:<10} {a['device']:<11} {a['calls']:>5}  {detail}")
    calls = st.get("calls", [])
    lines += ["", f"CALLS IN QUEUE OR TALKING: {len(calls)}"]
    for c in sorted(calls, key=lambda c: -c["wait_s"])[:12]:
        lines.append(f"  {c['call_id']}  {c['queue']:<10} {c['state']:<8} {c['agent'] or '':<10} waited {c['wait_s']:.0f}s")
    camps = st.get("campaigns", {})
    if camps:
        lines += ["", f"{'CAMPAIGN':<14} {'STATE':<8} {'LINES':>5} {'ANSW':>5} {'ABND':>5} {'ABND%':>6}  PACING"]
        for name, c in camps.items():
            dec = c.get("last_decision") or {}
            leads = c.get("leads", {})
            lines.append(f"{name:<14} {c['state']:<8} {c['lines']:>5} {c['rolling_human_answers']:>5} "
                         f"{c['rolling_abandoned']:>5} {_pct(c['abandon_rate']):>6}  "
                         f"{dec.get('lines', 0)} line(s): {str(dec.get('reason', ''))[:60]}")
            lines.append(f"{'':<14} leads " + "  ".join(f"{k}={v}" for k, v in sorted(leads.items())))
    spans = st.get("cards", {})
    if spans:
        lines += ["", f"{'SPAN':<5} {'TYPE':<7} {'STATE':<8} {'CHANNELS':<9} {'TRUNKS':<16} ALARM"]
        for n, sp in spans.items():
            alarm = sp.get("alarm") or ""
            if sp.get("channels_in_alarm"):
                alarm = (alarm + " " if alarm else "") + f"{len(sp['channels_in_alarm'])} channel(s) in alarm"
            state = sp["state"].upper() if sp["state"] != "up" else "up"
            lines.append(f"{n:<5} {sp['type']:<7} {state:<8} {sp['channels']:<9} {','.join(sp['trunks'])[:16]:<16} "
                         f"{alarm}")
    lines += status_lines(st.get("trunks") or {})  # carrier registrations (callcenter.features.trunks)
    out = st.get("outcomes", {})
    if out:
        lines += ["", "OUTCOMES: " + "  ".join(f"{k}={v}" for k, v in sorted(out.items()))]
    return "\n".join(lines)
