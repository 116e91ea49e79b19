"""Fakes shared by unit tests: an AMI peer that records actions and answers Success."""

from __future__ import annotations

import asyncio
from typing import Any

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
