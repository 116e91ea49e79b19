"""Fakes shared by unit tests: an AMI peer that records actions and answers Success."""

from __future__ import annotations

import asyncio
from typing import Any

from callcenter.protocol.agi import Env, Response
from callcenter.protocol.ami import Message


class FakeAmi:
    """Records every action; answers each with Success at once (as Asterisk does for async Originate).
    ``Variable`` headers are kept joined by ``;`` under ``Variables``."""

    def __init__(self) -> None:
        self.actions: list[tuple[str, dict[str, str]]] = []
        self.n = 0

    def new_action_id(self) -> str:
        self.n += 1
        return f"a-{self.n}"

    async def action(self, name: str, headers: Any = (), *, action_id: str | None = None,
                     timeout: float = 10.0) -> Message:
        return await self.send(name, headers, action_id=action_id)

    def send(self, name: str, headers: Any = (), *, action_id: str | None = None) -> asyncio.Future[Message]:
        """Like ``action``, answered at once: a future already holding Success."""
        pairs = list(headers.items()) if isinstance(headers, dict) else list(headers)
        self.actions.append((name, {k: v for k, v in pairs if k != "Variable"}
                             | {"ActionID": action_id or "",
                                "Variables": ";".join(v for k, v in pairs if k == "Variable")}))
        fut: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        fut.set_result(Message((("Response", "Success"),)))
        return fut

    def originates(self) -> list[dict[str, str]]:
        return [h for n, h in self.actions if n == "Originate"]


class FakeSession:
    """A FastAGI session: channel variables in, every command recorded and answered 200; WAIT FOR
    DIGIT answers the scripted ``keys`` one by one."""

    def __init__(self, args: tuple[str, ...], variables: dict[str, str], keys: str = "") -> None:
        self.env = Env({f"agi_arg_{i + 1}": a for i, a in enumerate(args)})
        self.vars = dict(variables)
        self.keys = list(keys)
        self.commands: list[tuple[str, ...]] = []

    async def get_var(self, name: str) -> str:
        return self.vars.get(name, "")

    async def set_var(self, name: str, value: str) -> None:
        self.vars[name] = value

    async def cmd(self, verb: str, *args: object) -> Response:
        self.commands.append((verb, *map(str, args)))
        if verb == "WAIT FOR DIGIT" and self.keys:
            return Response(200, str(ord(self.keys.pop(0))))
        return Response(200, "0")
