"""Small pure readers of AMI events, shared by the daemon and the feature services.

Asterisk sends a second ``Hangup`` for a masqueraded channel whose name ends in ``<ZOMBIE>``;
it is never the channel any feature is tracking, so every handler ignores it the same way.
``ChanVariable`` headers (the manager ``channelvars``: ``CC_ROLE``, ``CC_CALL_ID`` …) are read
in one place.
"""

from __future__ import annotations

from typing import NamedTuple

from callcenter.protocol.ami import Message

__all__ = ["BridgeEnter", "HangupInfo", "bridge_enter", "channel_endpoint", "channel_vars", "hangup", "is_stand_in",
           "is_zombie"]


class BridgeEnter(NamedTuple):
    """A channel entered a bridge: which, which bridge, how many channels it now holds, its variables."""

    channel: str
    bridge_id: str
    num_channels: int
    variables: dict[str, str]


class HangupInfo(NamedTuple):
    """A real (non-zombie) channel hung up."""

    channel: str
    uniqueid: str
    cause: str
    variables: dict[str, str]


def is_zombie(msg: Message) -> bool:
    """The event is about the ``<ZOMBIE>`` left behind by a masquerade, or the ``Surrogate/`` copy
    Asterisk makes of a channel it pulls into a bridge: never the channel a feature tracks."""
    return is_stand_in(msg.get("Channel"))


def is_stand_in(channel: str) -> bool:
    """A channel name that stands in for a moved channel (``…<ZOMBIE>``, ``Surrogate/…``)."""
    return channel.endswith("<ZOMBIE>") or channel.startswith("Surrogate/")


def channel_vars(msg: Message) -> dict[str, str]:
    """The event's ``ChanVariable``/``Variable`` headers as a dict (``CC_ROLE`` -> ``agent`` …)."""
    return msg.variables()


def bridge_enter(msg: Message) -> BridgeEnter | None:
    """``BridgeEnter`` read into a tuple; None for any other event."""
    if msg.event != "BridgeEnter":
        return None
    n = msg.get("BridgeNumChannels")
    return BridgeEnter(msg.get("Channel"), msg.get("BridgeUniqueid"), int(n) if n.isascii() and n.isdigit() else 0,
                       channel_vars(msg))


def hangup(msg: Message) -> HangupInfo | None:
    """``Hangup`` of a real channel read into a tuple; None for other events and for zombies."""
    if msg.event != "Hangup" or is_zombie(msg):
        return None
    return HangupInfo(msg.get("Channel"), msg.get("Uniqueid"), msg.get("Cause"), channel_vars(msg))


def channel_endpoint(channel: str) -> str:
    """``PJSIP/2001-0000002a`` -> ``2001`` (the endpoint part of a channel name; "" if none)."""
    tech, sep, rest = channel.partition("/")
    if not sep or not tech:
        return ""
    name, dash, _seq = rest.rpartition("-")
    return name if dash else ""
