"""What the live dialler needs from the daemon, and nothing more (tests build it with fakes)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from callcenter.features.acd.agents import Agent
    from callcenter.features.acd.model import Call
    from callcenter.protocol.ami import Message

__all__ = ["AcdView", "AmiPort", "DialerHost", "DialerMetrics", "Host"]


class AmiPort(Protocol):
    def new_action_id(self) -> str: ...

    async def action(self, name: str, headers: Iterable[tuple[str, str]] = (), *,
                     action_id: str | None = None) -> Message: ...


class AcdView(Protocol):
    """A read-only view of the ACD state (``AcdState``)."""

    @property
    def agents(self) -> Mapping[str, Agent]: ...

    @property
    def calls(self) -> Mapping[str, Call]: ...

    @property
    def synced(self) -> bool: ...


class DialerMetrics(Protocol):
    """Prometheus families by campaign (``callcenter.telemetry.Metrics`` has them)."""

    dialled: Any
    dial_outcomes: Any
    dial_level: Any
    dial_abandon_rate: Any
    dial_occupancy: Any


class DialerHost(Protocol):
    ami: AmiPort
    metrics: DialerMetrics

    def acd_state(self) -> AcdView: ...

    def queue_aht(self, queue: str, now: float) -> float | None:
        """The queue's observed average handle time, if any yet."""

    def caller_gone(self, call_id: str) -> None:
        """A dialled person nobody took within 2 s: out of the queue now."""

    def compliance(self, channel: str, call_id: str) -> None:
        """Play the campaign's compliance message on ``channel``, then hang up."""

    def publish(self, event: Any) -> None:
        """A domain event for the bus (line outcomes: the journal and metrics subscribe)."""


@dataclass
class Host:
    """A :class:`DialerHost` made of explicit parts (the daemon's composition root builds one)."""

    ami: AmiPort
    metrics: DialerMetrics
    acd_state: Callable[[], AcdView]
    queue_aht: Callable[[str, float], float | None]
    caller_gone: Callable[[str], None]
    compliance: Callable[[str, str], None]
    publish: Callable[[Any], None] = lambda event: None
