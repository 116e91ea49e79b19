"""Fakes shared by the recording and supervision service tests: an AGI session, an AMI client, a
task supervisor whose one-off tasks can be awaited, and a bus recorder."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from callcenter import config as config_mod
from callcenter.asterisk.agi_server import ChannelGone
from callcenter.events import Bus, DomainEvent
from callcenter.protocol.agi import Env, Response
from callcenter.protocol.ami import Message
from callcenter.tasks import Supervisor

ROOT = Path(__file__).resolve().parents[2]
ALICE_CHAN = "PJSIP/2001-0000002a"


def lab_cfg(tmp_path: Path) -> config_mod.Config:
    """The lab config with its database and recordings under ``tmp_path``."""
    data = copy.deepcopy(yaml.safe_load((ROOT / "tests" / "asterisk" / "lab.yaml").read_text()))
    data["daemon"]["database"] = str(tmp_path / "cc.sqlite3")
    data["recordings"] = {"dir": str(tmp_path / "rec")}
    return config_mod.parse(data)


class FakeSession:
    """An AGI session: scripted answers, every command kept; ``gone_on`` raises ChannelGone at that verb."""

    def __init__(self, args: tuple[str, ...], variables: dict[str, str] | None = None, channel: str = ALICE_CHAN,
                 pin: str = "", gone_on: str | None = None):
        values = {"agi_request": "agi://127.0.0.1/x", "agi_channel": channel}
        values.update({f"agi_arg_{i}": a for i, a in enumerate(args, 1)})
        self.env = Env(values)
        self.channel = channel
        self.vars = dict(variables or {})
        self.pin = pin
        self.gone_on = gone_on
        self.sent: list[tuple[str, ...]] = []

    async def cmd(self, verb: str, *args: object) -> Response:
        self.sent.append((verb, *map(str, args)))
        if verb == self.gone_on:
            raise ChannelGone("hung up")
        if verb == "GET DATA":
            return Response(200, self.pin)
        return Response(200, "0")

    async def get_var(self, name: str) -> str:
        return self.vars.get(name, "")

    async def set_var(self, name: str, value: str) -> None:
        await self.cmd("SET VARIABLE", name, value)
        self.vars[name] = value


class FakeAmi:
    def __init__(self) -> None:
        self.actions: list[tuple[str, dict[str, str]]] = []

    async def action(self, name: str, headers: dict[str, str]) -> Message:
        self.actions.append((name, dict(headers)))
        return Message((("Response", "Success"),))


@dataclass
class Call:
    call_id: str
    queue: str
    agent: str | None
    answered_at: float | None = 1.0


def event(name: str, channel: str, **variables: str) -> Message:
    return Message((("Event", name), ("Channel", channel), ("Uniqueid", "1.1"),
                    *(("ChanVariable", f"{k}={v}") for k, v in variables.items())))


class Tasks(Supervisor):
    """A Supervisor that remembers its one-off tasks so a test can wait for them all to finish."""

    def __init__(self) -> None:
        self.fatal: list[str] = []
        super().__init__(lambda name, exc: self.fatal.append(name))
        self.spawned: list[asyncio.Task[Any]] = []

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str, *, essential: bool = False) -> asyncio.Task[Any]:
        t = super().spawn(coro, name, essential=essential)
        if not essential:
            self.spawned.append(t)
        return t

    async def settle(self) -> None:
        """Wait until every one-off task (and any it spawned) has finished."""
        while pending := [t for t in self.spawned if not t.done()]:
            await asyncio.gather(*pending, return_exceptions=True)
        self.spawned.clear()


class Seen:
    """Every event published on ``bus``, and a way to wait for one."""

    def __init__(self, bus: Bus) -> None:
        self.events: list[DomainEvent] = []
        self._waiting: list[tuple[Callable[[Any], bool], asyncio.Future[Any]]] = []
        bus.subscribe(None, self._on)

    def _on(self, e: DomainEvent) -> None:
        self.events.append(e)
        for pred, fut in self._waiting:
            if not fut.done() and pred(e):
                fut.set_result(e)

    async def wait(self, pred: Callable[[Any], bool], timeout: float = 30.0) -> Any:
        for e in self.events:
            if pred(e):
                return e
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.append((pred, fut))
        try:
            return await asyncio.wait_for(fut, timeout)
        finally:
            self._waiting.remove((pred, fut))
