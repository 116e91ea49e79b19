"""The stand-in janitor: a Surrogate/ or <ZOMBIE> channel still there at the next sweep is hung up;
real channels and a move in progress are never touched."""

from __future__ import annotations

from callcenter.asterisk.janitor import StandInJanitor
from callcenter.protocol.ami import Message

from .fakes import FakeAmi


class ListingAmi(FakeAmi):
    """FakeAmi that answers CoreShowChannels with the channels it is told exist."""

    def __init__(self) -> None:
        super().__init__()
        self.channels: list[str] = []

    async def list_action(self, name: str, headers: object = None, *, timeout: float = 15.0) -> list[Message]:
        return [Message((("Event", "CoreShowChannel"), ("Channel", c))) for c in self.channels]


async def test_a_stand_in_that_outlives_one_sweep_is_hung_up_and_counted() -> None:
    """Seen once: left alone (it may be a move in progress); seen again: hung up; real channels never."""
    ami = ListingAmi()
    removed: list[int] = []
    j = StandInJanitor(ami, removed.append)
    ami.channels = ["PJSIP/trunk-pstn-00000001", "Surrogate/PJSIP/3024-00000bb8", "PJSIP/2001-00000002"]
    assert await j.sweep() == 0 and not [a for a, _ in ami.actions if a == "Hangup"]
    ami.channels.append("PJSIP/2001-00000003<ZOMBIE>")
    assert await j.sweep() == 1
    assert [h["Channel"] for a, h in ami.actions if a == "Hangup"] == ["Surrogate/PJSIP/3024-00000bb8"]
    assert await j.sweep() == 1 and removed == [1, 1]  # the zombie, one sweep later
    ami.channels = ["PJSIP/trunk-pstn-00000001"]
    assert await j.sweep() == 0 and j.seen == set()


async def test_a_stand_in_gone_by_the_next_sweep_is_forgotten() -> None:
    """A copy that vanished on its own is not hung up, and the janitor keeps no memory of it."""
    ami = ListingAmi()
    j = StandInJanitor(ami)
    ami.channels = ["Surrogate/PJSIP/2001-00000001"]
    await j.sweep()
    ami.channels = []
    assert await j.sweep() == 0 and j.seen == set() and not ami.actions
