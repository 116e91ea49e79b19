"""The AMI client against a scripted AMI server on loopback (real TCP, bytes on the wire)."""

from __future__ import annotations

import asyncio

import pytest

from callcenter.asterisk.ami_client import AmiClient, NotConnected
from callcenter.protocol.ami import AmiParser, Message

BANNER = b"Asterisk Call Manager/11.0.0\r\n"


class FakeAmi:
    """Answers Login (then FullyBooted) and Originate (event first, response second)."""

    def __init__(self) -> None:
        self.sessions = 0
        self.writers: list[asyncio.StreamWriter] = []
        self.actions: list[Message] = []
        self.garbage_next = False

    async def start(self) -> int:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def handle(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        self.sessions += 1
        self.writers.append(w)
        w.write(BANNER)
        parser = AmiParser()
        parser.feed(BANNER)  # our parser expects a banner first; actions carry none
        try:
            while data := await r.read(4096):
                for m in parser.feed(data):
                    self.actions.append(m)
                    aid = m.action_id
                    if m.get("Action") == "Login":
                        w.write(f"Response: Success\r\nActionID: {aid}\r\nMessage: Authentication accepted\r\n\r\n"
                                .encode())
                        if self.garbage_next:
                            self.garbage_next = False
                            w.write(b"this is not AMI\r\n\r\n")
                        else:
                            w.write(b"Event: FullyBooted\r\nPrivilege: system,all\r\nStatus: Fully Booted\r\n\r\n")
                    elif m.get("Action") == "Originate":
                        w.write(f"Event: OriginateResponse\r\nPrivilege: call,all\r\nActionID: {aid}\r\n"
                                f"Response: Success\r\nChannel: PJSIP/2001-00000001\r\nReason: 4\r\n\r\n".encode())
                        w.write(f"Response: Success\r\nActionID: {aid}\r\nMessage: Originate successfully queued"
                                "\r\n\r\n".encode())
                await w.drain()
        except ConnectionError:
            pass

    def cut(self) -> None:
        for w in self.writers:
            w.close()
        self.writers.clear()


@pytest.fixture
async def fake() -> FakeAmi:
    f = FakeAmi()
    f.port = await f.start()
    yield f
    f.server.close()


def _client(fake: FakeAmi, events: list[Message], ups: asyncio.Queue[int], downs: list[int]) -> AmiClient:
    async def on_up() -> None:
        await ups.put(fake.sessions)

    return AmiClient("127.0.0.1", fake.port, "u", "secret-123", on_event=events.append, on_up=on_up,
                     on_down=lambda: downs.append(1), max_backoff_s=0.2)


async def test_an_event_that_beats_its_action_response_stays_an_event(fake: FakeAmi) -> None:
    """OriginateResponse (an event with a Response header) arriving first is delivered as an event."""
    events: list[Message] = []
    ups: asyncio.Queue[int] = asyncio.Queue()
    c = _client(fake, events, ups, [])
    task = asyncio.create_task(c.run())
    await asyncio.wait_for(ups.get(), 5)
    resp = await c.action("Originate", {"Channel": "PJSIP/2001"}, action_id="x-1")
    assert resp.event == "" and resp.get("Message") == "Originate successfully queued"
    assert [e.event for e in events if e.action_id == "x-1"] == ["OriginateResponse"]
    c.stop()
    await asyncio.wait_for(task, 5)


async def test_reconnects_after_a_cut_and_runs_on_up_again(fake: FakeAmi) -> None:
    """A dropped connection calls on_down, reconnects with back-off, and on_up runs again."""
    ups: asyncio.Queue[int] = asyncio.Queue()
    downs: list[int] = []
    c = _client(fake, [], ups, downs)
    task = asyncio.create_task(c.run())
    assert await asyncio.wait_for(ups.get(), 5) == 1
    fake.cut()
    assert await asyncio.wait_for(ups.get(), 5) == 2
    assert downs == [1]
    logins = [a for a in fake.actions if a.get("Action") == "Login"]
    assert len(logins) == 2
    c.stop()
    await asyncio.wait_for(task, 5)


async def test_actions_are_refused_not_queued_while_disconnected(fake: FakeAmi) -> None:
    """An action sent with no session raises NotConnected instead of being replayed later."""
    c = _client(fake, [], asyncio.Queue(), [])
    with pytest.raises(NotConnected):
        await c.action("Originate", {"Channel": "PJSIP/2001"})
    assert not fake.actions


async def test_malformed_stream_closes_the_session_and_the_client_recovers(fake: FakeAmi) -> None:
    """Garbage from the server closes that session; the next session logs in normally."""
    fake.garbage_next = True
    ups: asyncio.Queue[int] = asyncio.Queue()
    c = _client(fake, [], ups, [])
    task = asyncio.create_task(c.run())
    assert await asyncio.wait_for(ups.get(), 5) == 2  # session 1 died on garbage before FullyBooted
    c.stop()
    await asyncio.wait_for(task, 5)


async def test_an_event_handler_that_raises_ends_neither_the_reader_nor_the_session(fake: FakeAmi) -> None:
    """A KeyError in the event handler is logged; later events still arrive on the same session."""
    seen: list[str] = []
    ups: asyncio.Queue[int] = asyncio.Queue()
    downs: list[int] = []

    def handler(msg: Message) -> None:
        seen.append(msg.event)
        if msg.event == "OriginateResponse" and msg.action_id == "boom-1":
            raise KeyError("CC_CALL_ID")

    async def on_up() -> None:
        await ups.put(fake.sessions)

    c = AmiClient("127.0.0.1", fake.port, "u", "secret-123", on_event=handler, on_up=on_up,
                  on_down=lambda: downs.append(1), max_backoff_s=0.2)
    task = asyncio.create_task(c.run())
    await asyncio.wait_for(ups.get(), 5)
    await c.action("Originate", {"Channel": "PJSIP/2001"}, action_id="boom-1")
    await c.action("Originate", {"Channel": "PJSIP/2001"}, action_id="fine-2")
    assert seen.count("OriginateResponse") == 2
    assert c.handler_failures == 1 and downs == [] and fake.sessions == 1
    c.stop()
    await asyncio.wait_for(task, 5)
