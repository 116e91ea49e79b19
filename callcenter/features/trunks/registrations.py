"""Each registering trunk's registration state, from Asterisk, for ``/status``, ``callcenter status``
and Prometheus.

Asterisk reports every answer to an outbound REGISTER as an AMI ``Registry`` event (``Username``: the
client URI, ``Domain``: the server URI, ``Status``: Registered, Unregistered, Rejected, Stopped ...);
after every AMI login :meth:`Registrations.resync` reads them all with ``PJSIPShowRegistrationsOutbound``
(``OutboundRegistrationDetail`` per registration, named ``trunk-NAME``), so a daemon started after
a rejection still shows it. A rejection is never silent: a warning log line with a hint, the failures
counter, and ``state: rejected`` in the status.

:func:`apply` is the model (state + report + now -> state); :class:`Registrations` feeds it."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

import structlog
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from callcenter.features.trunks.render import endpoint_name, registration_uris

__all__ = ["Reg", "apply", "Registrations", "STATES", "status_lines", "snapshot"]

log = structlog.get_logger("callcenter.trunks")

# Asterisk's status words (res_pjsip_outbound_registration) -> ours; anything else is "unknown".
STATES: Mapping[str, str] = {"registered": "registered", "unregistered": "unregistered", "rejected": "rejected",
                             "stopping": "stopped", "stopped": "stopped"}
HINTS: Mapping[str, str] = {
    "rejected": "the carrier refused the registration (wrong trunks.{t}.auth username or secret?) or did "
                "not answer (trunks.{t}.host/port?); see `pjsip show registrations` and Asterisk's log",
    "unregistered": "not registered (yet): no inbound calls reach this trunk until it is",
    "stopped": "registration stopped (max_retries reached, or unregistered by hand): `pjsip send register trunk-{t}`",
    "unknown": "no report from Asterisk yet",
}


@dataclass(frozen=True)
class Reg:
    state: str = "unknown"
    since: float | None = None  # when it entered this state (as seen by the daemon)
    failures: int = 0  # rejections seen since the daemon started
    last_ok: float | None = None  # the last successful (re-)registration


def apply(reg: Reg, status: str, now: float, *, report: bool = True) -> Reg:
    """A report from Asterisk; ``report`` False for a resync snapshot (a rejection counts once, not again
    at every reconnect)."""
    state = STATES.get(status.strip().lower(), "unknown")
    failed = state == "rejected" and (report or reg.state != "rejected")
    return replace(reg, state=state, since=reg.since if state == reg.state else now,
                   failures=reg.failures + (1 if failed else 0),
                   last_ok=now if state == "registered" else reg.last_ok)


class Registrations(Collector):
    """The registering trunks' :class:`Reg`, updated from AMI; also a Prometheus collector."""

    def __init__(self, trunks: Callable[[], Mapping[str, Any]], clock: Callable[[], float]):
        self._trunks = trunks  # the current config's trunks (reloads change them)
        self._clock = clock
        self.regs: dict[str, Reg] = {}

    def _registering(self) -> dict[str, Any]:
        return {n: t for n, t in self._trunks().items() if t.register is not None and t.auth is not None}

    def _by_uris(self) -> dict[tuple[str, str], str]:
        return {registration_uris(t): n for n, t in self._registering().items()}

    def _set(self, trunk: str, status: str, *, report: bool) -> None:
        old = self.regs.get(trunk, Reg())
        new = self.regs[trunk] = apply(old, status, self._clock(), report=report)
        if new.state != old.state or new.failures != old.failures:
            fields = {"trunk": trunk, "state": new.state, "status": status[:32], "failures": new.failures}
            if new.state == "registered":
                log.info("trunk.registered", **fields)
            else:
                log.warning("trunk.not_registered", hint=HINTS.get(new.state, "").format(t=trunk), **fields)

    def on_event(self, msg: Any) -> None:
        if msg.event != "Registry" or msg.get("ChannelType") != "PJSIP":
            return
        trunk = self._by_uris().get((msg.get("Domain"), msg.get("Username")))
        if trunk is not None:
            self._set(trunk, msg.get("Status"), report=True)

    def resynced(self, details: list[Any] | None) -> None:
        """The answer to ``PJSIPShowRegistrationsOutbound`` (None: it failed; states left as they were)."""
        if details is None:
            return
        names = {endpoint_name(n): n for n in self._registering()}
        for m in details:
            if m.event == "OutboundRegistrationDetail" and m.get("ObjectName") in names:
                self._set(names[m.get("ObjectName")], m.get("Status"), report=False)

    def status(self) -> dict[str, dict[str, object]]:
        """Per trunk: how it is identified and, if it registers, its registration."""
        now = self._clock()
        out: dict[str, dict[str, object]] = {}
        for name, t in self._trunks().items():
            row: dict[str, object] = {"identify": (["registration"] if t.register is not None else []) +
                                      (["address"] if t.match else []), "outbound": bool(t.host)}
            if t.register is not None:
                r = self.regs.get(name, Reg())
                row.update(state=r.state, for_s=None if r.since is None else round(now - r.since, 1),
                           failures=r.failures, hint=HINTS.get(r.state, "").format(t=name) if r.state != "registered"
                           else "")
            out[name] = row
        return out

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        up = GaugeMetricFamily("callcenter_trunk_registered",
                               "1 while the trunk's registration to its carrier stands, else 0", labels=["trunk"])
        bad = CounterMetricFamily("callcenter_trunk_registration_failures",
                                  "Registrations the carrier rejected (or that timed out)", labels=["trunk"])
        for name in self._registering():
            r = self.regs.get(name, Reg())
            up.add_metric([name], 1.0 if r.state == "registered" else 0.0)
            bad.add_metric([name], float(r.failures))
        yield up
        yield bad


async def snapshot(ami: Any) -> list[Any] | None:
    """``PJSIPShowRegistrationsOutbound`` (allowed to the daemon's AMI user by its ``reporting`` class);
    None when it fails (an Asterisk without res_pjsip_outbound_registration, a lost link)."""
    from callcenter.asterisk.ami_client import AmiError, NotConnected
    try:
        return list(await ami.list_action("PJSIPShowRegistrationsOutbound"))
    except (AmiError, NotConnected, TimeoutError) as e:
        log.warning("trunk.registrations_unavailable", error=f"{type(e).__name__}: {e}"[:200])
        return None


def status_lines(trunks: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The TRUNKS block of ``callcenter status`` (from ``/status``'s ``trunks``)."""
    if not trunks:
        return []
    lines = ["", f"{'TRUNK':<14} {'IDENTIFY':<22} {'REGISTRATION':<13} {'FAILS':>5}  DETAIL"]
    for name, t in trunks.items():
        ident = "+".join(t.get("identify") or []) or "-"
        state = str(t.get("state", "-")).upper() if "state" in t else "-"
        detail = str(t.get("hint") or "")
        if t.get("state") == "registered" and t.get("for_s") is not None:
            detail = f"for {t['for_s']:.0f}s"
        lines.append(f"{name:<14} {ident:<22} {state:<13} {t.get('failures', 0) if 'state' in t else '':>5}  {detail}")
    return lines

