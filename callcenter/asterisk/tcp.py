"""A loopback TCP listener the daemon's protocol servers share (FastAGI, AudioSocket)."""

from __future__ import annotations

import asyncio


class TcpService:
    """Subclasses set ``host``/``port`` and implement ``_handle(reader, writer)``: one task per connection."""

    host: str
    port: int
    _server: asyncio.base_events.Server | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port, reuse_address=True)

    @property
    def serving(self) -> bool:
        """The listener is open and accepting (what the systemd watchdog vouches for)."""
        return self._server is not None and self._server.is_serving()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
